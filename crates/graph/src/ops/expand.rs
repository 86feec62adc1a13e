use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::reshape::fill_ints;
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// `x.expand(*sizes)`: size-1 dimensions repeated without copying.
///
/// # Shapes
/// Any shape to `sizes`, where `-1` keeps a dimension and a `None` entry is the next int input
/// after the tensor (ViT's `class_token.expand(n, -1, -1)`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expand {
    /// Target sizes.
    pub sizes: Vec<Option<i64>>,
}

impl OpDef for Expand {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let sizes = fill_ints(&self.sizes, inputs.get(1..).unwrap_or_default())?;
        tensor(expand_shape(first_shape(inputs)?, &sizes)?)
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let from = x.dims();
        x.expand(cx.out_shape)
            .ok_or_else(|| format!("cannot expand {from:?} to {:?}", cx.out_shape))
    }
}

/// `x.expand(*sizes)`: `-1` keeps a dimension, a size-1 dimension may grow; new leading
/// dimensions are allowed.
fn expand_shape(input: &[usize], sizes: &[i64]) -> Result<Vec<usize>, String> {
    if sizes.len() < input.len() {
        return Err(format!("cannot expand {input:?} to {sizes:?}"));
    }
    let lead = sizes.len() - input.len();
    sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let current = i.checked_sub(lead).map(|j| input[j]);
            match (s, current) {
                (-1, Some(c)) => Ok(c),
                (s, Some(c)) if s >= 0 && (c == 1 || c as i64 == s) => Ok(s as usize),
                (s, None) if s >= 0 => Ok(s as usize),
                _ => Err(format!("cannot expand {input:?} to {sizes:?}")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_keeps_minus_one_and_grows_size_one() {
        let expand = Expand {
            sizes: vec![None, Some(-1), Some(-1)],
        };
        let token = Value::Tensor(vec![1, 1, 768]);
        assert_eq!(
            expand.infer(&[&token, &Value::Int(2)]),
            Ok(Value::Tensor(vec![2, 1, 768]))
        );
        let wide = Value::Tensor(vec![3, 1, 768]);
        assert!(expand.infer(&[&wide, &Value::Int(2)]).is_err());
    }
}
