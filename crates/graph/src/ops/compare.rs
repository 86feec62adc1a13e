use burn::prelude::*;
use serde::Serialize;

use super::args::{binary, broadcast_shape, shapes, tensor};
use super::{Cx, OpDef};
use crate::feature::BinaryFn;
use crate::{Feature, Value};

/// An elementwise comparison of two tensors with NumPy broadcasting (ONNX `Equal`, `Less`,
/// `Greater`, `LessOrEqual`, `GreaterOrEqual`), as floats: 1.0 where it holds, 0.0 elsewhere
/// (a [`Feature`] holds floats only; [`super::Where`] and [`super::Logical`] read them so).
///
/// # Shapes
/// Two shapes that broadcast to their broadcast shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Compare {
    /// `a == b`.
    Equal,
    /// `a < b`.
    Less,
    /// `a > b`.
    Greater,
    /// `a <= b`.
    LessOrEqual,
    /// `a >= b`.
    GreaterOrEqual,
}

impl BinaryFn for Compare {
    fn apply<const D: usize>(&self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        match self {
            Compare::Equal => a.equal(b),
            Compare::Less => a.lower(b),
            Compare::Greater => a.greater(b),
            Compare::LessOrEqual => a.lower_equal(b),
            Compare::GreaterOrEqual => a.greater_equal(b),
        }
        .float()
    }
}

impl OpDef for Compare {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        match shapes(inputs)?.as_slice() {
            [a, b] => tensor(broadcast_shape(a, b)?),
            other => Err(format!("{self:?} takes two tensors, got {}", other.len())),
        }
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        binary(inputs, "compare", |a, b| a.zip_broadcast(b, self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn comparisons_are_ones_and_zeros() {
        let a = || feature(vec![1.0, 2.0, 3.0], &[3]);
        let b = || feature(vec![2.0], &[1]);
        let cases = [
            (Compare::Equal, [0.0, 1.0, 0.0]),
            (Compare::Less, [1.0, 0.0, 0.0]),
            (Compare::Greater, [0.0, 0.0, 1.0]),
            (Compare::LessOrEqual, [1.0, 1.0, 0.0]),
            (Compare::GreaterOrEqual, [0.0, 1.0, 1.0]),
        ];
        for (op, want) in cases {
            let (shape, got) = run(&op, vec![a(), b()]).expect("compares");
            assert_eq!(shape, [3]);
            assert_eq!(got, want, "{op:?}");
        }
    }
}
