use burn::prelude::*;
use serde::Serialize;

use super::args::{broadcast_shape, first_shape, shapes, tensor};
use super::{Cx, OpDef};
use crate::feature::BinaryFn;
use crate::{Feature, TensorFn, Value};

/// ONNX's logical ops on truth values held as floats (nonzero is true, as [`super::Compare`]
/// produces them), giving 1.0 or 0.0.
///
/// # Shapes
/// `Not`: any shape to the same. `And`, `Or`: two shapes that broadcast to their broadcast
/// shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Logical {
    /// Not `a` (one input).
    Not,
    /// `a` and `b`.
    And,
    /// `a` or `b`.
    Or,
}

impl TensorFn for Logical {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        t.equal_elem(0.0).float()
    }
}

impl BinaryFn for Logical {
    fn apply<const D: usize>(&self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        let (a, b) = (a.not_equal_elem(0.0), b.not_equal_elem(0.0));
        match self {
            Logical::Or => a.bool_or(b),
            // `Not` takes one input; `eval` never gives it two.
            Logical::And | Logical::Not => a.bool_and(b),
        }
        .float()
    }
}

impl OpDef for Logical {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        if *self == Logical::Not {
            return tensor(first_shape(inputs)?.to_vec());
        }
        match shapes(inputs)?.as_slice() {
            [a, b] => tensor(broadcast_shape(a, b)?),
            other => Err(format!("{self:?} takes two tensors, got {}", other.len())),
        }
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        match (self, <[Feature; 2]>::try_from(inputs)) {
            (Logical::Not, Err(inputs)) if inputs.len() == 1 => {
                Ok(super::single_any(inputs)?.map_float(Logical::Not))
            }
            (Logical::And | Logical::Or, Ok([a, b])) => {
                let shapes = (a.dims(), b.dims());
                a.zip_broadcast(b, self.clone())
                    .ok_or_else(|| format!("cannot broadcast shapes {:?} and {:?}", shapes.0, shapes.1))
            }
            _ => Err(format!("wrong number of inputs for {self:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn logical_ops_read_nonzero_as_true() {
        let a = || feature(vec![0.0, 0.0, 1.0, 2.0], &[4]);
        let b = || feature(vec![0.0, 1.0, 0.0, 1.0], &[4]);
        assert_eq!(run(&Logical::Not, vec![a()]).expect("not").1, [1.0, 1.0, 0.0, 0.0]);
        assert_eq!(run(&Logical::And, vec![a(), b()]).expect("and").1, [0.0, 0.0, 0.0, 1.0]);
        assert_eq!(run(&Logical::Or, vec![a(), b()]).expect("or").1, [0.0, 1.0, 1.0, 1.0]);
        assert!(Logical::And.infer(&[&Value::Tensor(vec![4])]).is_err());
    }
}
