use burn::prelude::*;
use serde::Serialize;

use super::args::{same_shape, single_any};
use super::{Cx, OpDef};
use crate::{Feature, TensorFn, Value};

/// A tensor and a Python number: `x * c` or `x + c` (GoogLeNet's and Inception v3's
/// `transform_input`, `x_ch0 * (0.229 / 0.5) + (0.485 - 0.5) / 0.5`). As in PyTorch, the number
/// is rounded to the tensor's float32 first.
///
/// # Shapes
/// Any shape to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Scalar {
    /// `x + c` (FX `operator.add` with a constant).
    Add(f64),
    /// `x * c` (FX `operator.mul` with a constant).
    Mul(f64),
}

impl TensorFn for Scalar {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        match *self {
            Scalar::Add(c) => t.add_scalar(c as f32),
            Scalar::Mul(c) => t.mul_scalar(c as f32),
        }
    }
}

impl OpDef for Scalar {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        same_shape(inputs)
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        Ok(single_any(inputs)?.map_float(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn scalar_ops_add_or_multiply_every_element() {
        let x = || feature(vec![1.0, -2.0, 0.5, 4.0], &[1, 1, 2, 2]);
        let (shape, sum) = run(&Scalar::Add(-0.25), vec![x()]).expect("fits");
        assert_eq!(shape, [1, 1, 2, 2]);
        assert_eq!(sum, [0.75, -2.25, 0.25, 3.75]);
        let (_, product) = run(&Scalar::Mul(0.458), vec![x()]).expect("fits");
        let expected = [1.0f32, -2.0, 0.5, 4.0].map(|v| v * 0.458f32);
        assert_eq!(product, expected);
    }
}
