use burn::prelude::*;
use burn::tensor::activation::{gelu, relu, sigmoid, silu};
use serde::Serialize;

use super::args::{same_shape, single_any};
use super::{Cx, OpDef};
use crate::{Feature, TensorFn, Value};

/// An elementwise activation, as a module (`nn.ReLU`), a function (`F.relu`) or inside a
/// composite module (`Conv2dNormActivation`, `SqueezeExcitation`).
///
/// # Shapes
/// Any shape to the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Activation {
    /// `nn.ReLU`: `max(x, 0)`.
    Relu,
    /// `nn.ReLU6`: `min(max(x, 0), 6)`.
    Relu6,
    /// `nn.Hardswish`: `x * relu6(x + 3) / 6`.
    Hardswish,
    /// `nn.Hardsigmoid`: `relu6(x + 3) / 6`.
    Hardsigmoid,
    /// `nn.SiLU`: `x * sigmoid(x)`.
    Silu,
    /// `nn.Sigmoid`.
    Sigmoid,
    /// `nn.GELU`, the exact (erf) form.
    Gelu,
}

impl Activation {
    /// The `torch.nn` class of the activation as a module (`ReLU`, `SiLU`).
    pub fn module_class(self) -> &'static str {
        match self {
            Activation::Relu => "ReLU",
            Activation::Relu6 => "ReLU6",
            Activation::Hardswish => "Hardswish",
            Activation::Hardsigmoid => "Hardsigmoid",
            Activation::Silu => "SiLU",
            Activation::Sigmoid => "Sigmoid",
            Activation::Gelu => "GELU",
        }
    }

    /// The activation of `x`, at any rank, as PyTorch computes it.
    pub fn apply<const D: usize>(self, t: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => relu(t),
            Activation::Relu6 => t.clamp(0.0, 6.0),
            // `x * relu6(x + 3) / 6`, as PyTorch's kernel.
            Activation::Hardswish => t.clone() * (t + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Hardsigmoid => (t + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Silu => silu(t),
            Activation::Sigmoid => sigmoid(t),
            Activation::Gelu => gelu(t),
        }
    }

    /// The activation of a value of any rank.
    pub fn activate(self, x: Feature) -> Feature {
        x.map_float(self)
    }
}

impl TensorFn for Activation {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        Activation::apply(*self, t)
    }
}

impl OpDef for Activation {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        same_shape(inputs)
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        Ok(self.activate(single_any(inputs)?))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;

    #[test]
    fn activations_follow_pytorchs_definitions() {
        let input = [-7.0f32, -2.0, -0.5, 0.0, 1.5, 8.0];
        let device = Device::flex();
        type Scalar = fn(f32) -> f32;
        let cases: [(Activation, Scalar); 6] = [
            (Activation::Relu, |v| v.max(0.0)),
            (Activation::Relu6, |v| v.clamp(0.0, 6.0)),
            (Activation::Hardswish, |v| v * (v + 3.0).clamp(0.0, 6.0) / 6.0),
            (Activation::Hardsigmoid, |v| (v + 3.0).clamp(0.0, 6.0) / 6.0),
            (Activation::Silu, |v| v / (1.0 + (-v).exp())),
            (Activation::Sigmoid, |v| 1.0 / (1.0 + (-v).exp())),
        ];
        for (a, f) in cases {
            let x = Tensor::<2>::from_data(TensorData::new(input.to_vec(), [2, 3]), &device);
            let got = a.activate(x.into()).to_vec_f32().expect("f32");
            for (g, v) in got.iter().zip(input) {
                assert!((g - f(v)).abs() < 1e-6, "{a:?}({v}): {g} vs {}", f(v));
            }
        }
        // GELU(1) = Φ(1) = 0.8413447.
        let one = Tensor::<1>::from_data(TensorData::new(vec![1.0f32], [1]), &device);
        let gelu = Activation::Gelu.activate(one.into()).to_vec_f32().expect("f32");
        assert!((gelu[0] - 0.841_344_7).abs() < 1e-6, "{gelu:?}");
    }
}
