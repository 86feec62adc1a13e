use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// `x.view(*shape)` or `x.reshape(*shape)`: the same values in another shape, row-major.
///
/// # Shapes
/// Any shape to `shape`, with at most one `-1` inferred; a `None` entry is the next int input
/// after the tensor (`x.reshape(n, 768, h * w)` with `n = x.shape[0]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reshape {
    /// Target shape; `-1` is inferred, `None` read from an int input.
    pub shape: Vec<Option<i64>>,
}

impl OpDef for Reshape {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = fill_ints(&self.shape, inputs.get(1..).unwrap_or_default())?;
        tensor(view_shape(first_shape(inputs)?, &shape)?)
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let from = x.dims();
        x.reshape(cx.out_shape)
            .ok_or_else(|| format!("cannot reshape {from:?} to {:?}", cx.out_shape))
    }
}

/// `spec` with each `None` replaced by the next int of `values`.
pub(crate) fn fill_ints(spec: &[Option<i64>], values: &[&Value]) -> Result<Vec<i64>, String> {
    let mut values = values.iter();
    spec.iter()
        .map(|d| match d {
            Some(d) => Ok(*d),
            None => values
                .next()
                .ok_or_else(|| "missing a size argument".to_string())?
                .int(),
        })
        .collect()
}

/// `torch.view`'s output shape: `shape`, its one `-1` inferred from the element count.
fn view_shape(input: &[usize], shape: &[i64]) -> Result<Vec<usize>, String> {
    let numel: usize = input.iter().product();
    let known: usize = shape
        .iter()
        .filter(|&&d| d >= 0)
        .map(|&d| d as usize)
        .product();
    let inferred = shape.iter().filter(|&&d| d == -1).count();
    if inferred > 1 || shape.iter().any(|&d| d < -1) {
        return Err(format!("invalid view shape {shape:?}"));
    }
    if inferred == 0 {
        if known != numel {
            return Err(format!("cannot view {numel} elements as {shape:?}"));
        }
        return Ok(shape.iter().map(|&d| d as usize).collect());
    }
    if known == 0 || !numel.is_multiple_of(known) {
        return Err(format!("cannot view {numel} elements as {shape:?}"));
    }
    Ok(shape
        .iter()
        .map(|&d| if d == -1 { numel / known } else { d as usize })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_infers_minus_one_and_rejects_uneven_sizes() {
        let view = Reshape {
            shape: vec![Some(-1), Some(6)],
        };
        let infer = |shape: Vec<usize>| view.infer(&[&Value::Tensor(shape)]);
        assert_eq!(infer(vec![2, 3, 2, 2]), Ok(Value::Tensor(vec![4, 6])));
        assert!(infer(vec![1, 5]).is_err());
    }

    #[test]
    fn sizes_come_from_int_inputs() {
        let reshape = Reshape {
            shape: vec![None, Some(768), None],
        };
        let conv = Value::Tensor(vec![2, 768, 14, 14]);
        assert_eq!(
            reshape.infer(&[&conv, &Value::Int(2), &Value::Int(196)]),
            Ok(Value::Tensor(vec![2, 768, 196]))
        );
        assert!(reshape.infer(&[&conv, &Value::Int(2)]).is_err());
    }
}
