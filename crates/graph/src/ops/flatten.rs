use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// `torch.flatten(x, start_dim)`, `x.flatten(start_dim)` or `nn.Flatten(start_dim)`.
///
/// # Shapes
/// `[d0, .., d(start-1), d(start), .., dn]` to `[d0, .., d(start-1), d(start) * .. * dn]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flatten {
    /// First dimension folded into the last.
    pub start_dim: usize,
}

impl OpDef for Flatten {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        let start = self.start_dim;
        if start >= shape.len() {
            return Err(format!("cannot flatten from dimension {start}"));
        }
        let mut out = shape[..start].to_vec();
        out.push(shape[start..].iter().product());
        tensor(out)
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let from = x.dims();
        x.reshape(cx.out_shape)
            .ok_or_else(|| format!("cannot reshape {from:?} to {:?}", cx.out_shape))
    }
}
