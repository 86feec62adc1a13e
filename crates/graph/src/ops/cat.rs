use serde::Serialize;

use super::args::{shapes, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// `torch.cat(tensors, dim)`: tensors of equal shape except along `dim`.
///
/// # Shapes
/// Shapes equal but along `dim` to their common shape with `dim`'s sizes summed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cat {
    /// The dimension the tensors are joined along.
    pub dim: usize,
}

impl OpDef for Cat {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let inputs = shapes(inputs)?;
        let dim = self.dim;
        let Some(first) = inputs.first() else {
            return Err("cat of no tensors".into());
        };
        if dim >= first.len() {
            return Err(format!(
                "cannot join rank-{} tensors along dimension {dim}",
                first.len()
            ));
        }
        let mut out = first.to_vec();
        out[dim] = 0;
        for shape in &inputs {
            let fits = shape.len() == first.len()
                && shape
                    .iter()
                    .zip(first.iter())
                    .enumerate()
                    .all(|(d, (a, b))| d == dim || a == b);
            if !fits {
                return Err(format!(
                    "cannot join shapes {first:?} and {shape:?} along dimension {dim}"
                ));
            }
            out[dim] += shape[dim];
        }
        tensor(out)
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let shapes: Vec<Vec<usize>> = inputs.iter().map(Feature::dims).collect();
        Feature::cat(inputs, self.dim)
            .ok_or_else(|| format!("cannot join shapes {shapes:?} along {}", self.dim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cat_sums_the_joined_dimension_and_checks_the_others() {
        let cat = Cat { dim: 1 };
        let a = Value::Tensor(vec![2, 64, 8, 8]);
        assert_eq!(
            cat.infer(&[&a, &Value::Tensor(vec![2, 32, 8, 8])]),
            Ok(Value::Tensor(vec![2, 96, 8, 8]))
        );
        assert!(cat.infer(&[&a, &Value::Tensor(vec![2, 32, 4, 4])]).is_err());
    }
}
