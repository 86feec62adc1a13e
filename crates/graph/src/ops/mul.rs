use serde::Serialize;

use super::args::{binary, broadcast_shape, first, shapes, tensor};
use super::{Cx, Kind, OpDef};
use crate::{Feature, Value};

/// `a * b` (`operator.mul`): of two tensors, elementwise with NumPy broadcasting (`scale *
/// input`); of two ints, their product (arithmetic on an input's size, known before any
/// compute).
///
/// # Shapes
/// Two shapes that broadcast to their broadcast shape; or two ints to an int.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mul;

impl OpDef for Mul {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        if let [a @ Value::Int(_), b] = inputs {
            return Ok(Value::Int(a.int()? * b.int()?));
        }
        match shapes(inputs)?.as_slice() {
            [a, b] => tensor(broadcast_shape(a, b)?),
            _ => Err(format!("cannot multiply {}", first(inputs))),
        }
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        binary(inputs, "multiply", Feature::broadcast_mul)
    }

    fn kind(&self, inputs: &[Kind]) -> Kind {
        match inputs.iter().all(|k| *k == Kind::Static) {
            true => Kind::Static,
            false => Kind::Tensor,
        }
    }

    fn non_tensor(&self, _: &[Kind]) -> &'static str {
        "an int (arithmetic on an input's size)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_broadcasts_like_numpy_and_multiplies_ints() {
        let infer = |a: Vec<usize>, b: Vec<usize>| {
            Mul.infer(&[&Value::Tensor(a), &Value::Tensor(b)])
        };
        let map = vec![2, 8, 5, 5];
        assert_eq!(infer(vec![2, 8, 1, 1], map.clone()), Ok(Value::Tensor(map.clone())));
        assert_eq!(infer(vec![8, 1, 1], map.clone()), Ok(Value::Tensor(map)));
        assert_eq!(
            infer(vec![96, 1, 1], vec![2, 96, 56, 56]),
            Ok(Value::Tensor(vec![2, 96, 56, 56]))
        );
        assert!(infer(vec![2, 3], vec![2, 4]).is_err());
        assert!(infer(vec![3, 1], vec![2, 4]).is_err());
        assert_eq!(Mul.infer(&[&Value::Int(14), &Value::Int(14)]), Ok(Value::Int(196)));
        assert_eq!(Mul.kind(&[Kind::Static, Kind::Static]), Kind::Static);
        assert_eq!(Mul.kind(&[Kind::Tensor, Kind::Tensor]), Kind::Tensor);
    }
}
