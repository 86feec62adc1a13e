use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// `x[:, index]` (FX `getitem` with a slice and an int): dimension `dim` indexed and dropped
/// (ViT's class token).
///
/// # Shapes
/// `[.., d(dim), ..]` to `[.., ..]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Select {
    /// The dimension indexed.
    pub dim: usize,
    /// The index taken.
    pub index: usize,
}

impl OpDef for Select {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        let (dim, index) = (self.dim, self.index);
        if dim >= shape.len() || index >= shape[dim] {
            return Err(format!("cannot take index {index} of dimension {dim}"));
        }
        let mut out = shape.to_vec();
        out.remove(dim);
        tensor(out)
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let from = x.dims();
        x.select(self.dim, self.index).ok_or_else(|| {
            format!("cannot take index {} of {} in {from:?}", self.index, self.dim)
        })
    }
}
