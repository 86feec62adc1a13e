use burn::prelude::*;
use serde::Serialize;

use super::args::{binary, broadcast_shape, shapes, tensor};
use super::{Cx, OpDef};
use crate::feature::BinaryFn;
use crate::{Feature, Value};

/// An elementwise arithmetic op of two tensors with NumPy broadcasting: ONNX `Sub`, `Div`,
/// `Pow`, `Max` and `Min` of two inputs (`Add` and `Mul` are the ops [`super::Add`] and
/// [`super::Mul`]).
///
/// # Shapes
/// Two shapes that broadcast to their broadcast shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Binary {
    /// `a - b`.
    Sub,
    /// `a / b` (IEEE: a division by 0 is infinite or NaN).
    Div,
    /// `a ^ b` (NaN for a negative base and a non-integer exponent).
    Pow,
    /// The larger of `a` and `b`.
    Max,
    /// The smaller of `a` and `b`.
    Min,
}

impl Binary {
    fn verb(&self) -> &'static str {
        match self {
            Binary::Sub => "subtract",
            Binary::Div => "divide",
            Binary::Pow => "raise to the power",
            Binary::Max => "take the maximum of",
            Binary::Min => "take the minimum of",
        }
    }
}

impl BinaryFn for Binary {
    fn apply<const D: usize>(&self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        match self {
            Binary::Sub => a - b,
            Binary::Div => a / b,
            Binary::Pow => a.powf(b),
            Binary::Max => a.max_pair(b),
            Binary::Min => a.min_pair(b),
        }
    }
}

impl OpDef for Binary {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        match shapes(inputs)?.as_slice() {
            [a, b] => tensor(broadcast_shape(a, b)?),
            other => Err(format!("{:?} takes two tensors, got {}", self, other.len())),
        }
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        binary(inputs, self.verb(), |a, b| a.zip_broadcast(b, self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn binary_ops_broadcast_their_operands() {
        // [2, 2] against a [2] row: b broadcasts over the rows.
        let a = || feature(vec![1.0, -2.0, 3.0, 4.0], &[2, 2]);
        let b = || feature(vec![2.0, 3.0], &[2]);
        let cases = [
            (Binary::Sub, [-1.0, -5.0, 1.0, 1.0]),
            (Binary::Div, [0.5, -2.0 / 3.0, 1.5, 4.0 / 3.0]),
            (Binary::Pow, [1.0, -8.0, 9.0, 64.0]),
            (Binary::Max, [2.0, 3.0, 3.0, 4.0]),
            (Binary::Min, [1.0, -2.0, 2.0, 3.0]),
        ];
        for (op, want) in cases {
            let (shape, got) = run(&op, vec![a(), b()]).expect("broadcasts");
            assert_eq!(shape, [2, 2]);
            assert!(
                got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6),
                "{op:?}: {got:?} vs {want:?}"
            );
        }
        // A [2, 1] column against a [3] row: a [2, 3] table.
        let col = feature(vec![10.0, 20.0], &[2, 1]);
        let row = feature(vec![1.0, 2.0, 3.0], &[3]);
        let (shape, got) = run(&Binary::Sub, vec![col, row]).expect("broadcasts");
        assert_eq!(shape, [2, 3]);
        assert_eq!(got, [9.0, 8.0, 7.0, 19.0, 18.0, 17.0]);
        let bad = Binary::Sub.infer(&[&Value::Tensor(vec![2, 3]), &Value::Tensor(vec![4])]);
        assert!(bad.is_err());
    }
}
