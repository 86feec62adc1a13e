use burn::prelude::*;
use burn::tensor::activation::{elu, gelu_approximate, hard_sigmoid, leaky_relu, mish, softplus};
use serde::Serialize;

use super::args::{same_shape, single_any};
use super::{Cx, OpDef};
use crate::{Feature, TensorFn, Value};

/// An elementwise function with ONNX's definition: the unary math ops (`Tanh`, `Erf`, `Sqrt`,
/// ...) and the activations [`crate::Activation`] does not hold (those PyTorch's vision models
/// do not use, or use with other parameters).
///
/// # Shapes
/// Any shape to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Unary {
    /// `tanh(x)`.
    Tanh,
    /// The error function.
    Erf,
    /// `sqrt(x)` (NaN below 0).
    Sqrt,
    /// `exp(x)`.
    Exp,
    /// The natural logarithm (NaN below 0, `-inf` at 0).
    Log,
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `1 / x`.
    Reciprocal,
    /// Rounding down.
    Floor,
    /// Rounding up.
    Ceil,
    /// `sin(x)`.
    Sin,
    /// `cos(x)`.
    Cos,
    /// `x` clamped to `[min, max]`, each bound optional (ONNX `Clip`, `torch.clamp`).
    Clip {
        /// The lower bound, if any.
        min: Option<f32>,
        /// The upper bound, if any.
        max: Option<f32>,
    },
    /// ONNX `HardSigmoid`: `max(0, min(1, alpha * x + beta))` (PyTorch's `Hardsigmoid` is
    /// `alpha = 1/6, beta = 1/2`).
    HardSigmoid {
        /// The slope.
        alpha: f32,
        /// The offset.
        beta: f32,
    },
    /// `x` for `x >= 0`, `alpha * x` below.
    LeakyRelu {
        /// The slope below 0.
        alpha: f32,
    },
    /// `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise.
    Elu {
        /// The scale of the negative part.
        alpha: f32,
    },
    /// GELU's tanh approximation (`nn.GELU(approximate="tanh")`):
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    GeluTanh,
    /// `ln(1 + exp(x))` (`x` itself above 20, where they agree in `f32`).
    Softplus,
    /// `x * tanh(softplus(x))`.
    Mish,
}

impl TensorFn for Unary {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        match *self {
            Unary::Tanh => t.tanh(),
            Unary::Erf => t.erf(),
            Unary::Sqrt => t.sqrt(),
            Unary::Exp => t.exp(),
            Unary::Log => t.log(),
            Unary::Neg => t.neg(),
            Unary::Abs => t.abs(),
            Unary::Reciprocal => t.recip(),
            Unary::Floor => t.floor(),
            Unary::Ceil => t.ceil(),
            Unary::Sin => t.sin(),
            Unary::Cos => t.cos(),
            Unary::Clip { min, max } => {
                let t = match min {
                    Some(min) => t.clamp_min(min),
                    None => t,
                };
                match max {
                    Some(max) => t.clamp_max(max),
                    None => t,
                }
            }
            Unary::HardSigmoid { alpha, beta } => hard_sigmoid(t, alpha.into(), beta.into()),
            Unary::LeakyRelu { alpha } => leaky_relu(t, alpha.into()),
            Unary::Elu { alpha } => elu(t, alpha.into()),
            Unary::GeluTanh => gelu_approximate(t),
            Unary::Softplus => softplus(t, 1.0),
            Unary::Mish => mish(t),
        }
    }
}

impl OpDef for Unary {
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

    fn apply(op: Unary, input: &[f32]) -> Vec<f32> {
        let x = feature(input.to_vec(), &[1, input.len()]);
        run(&op, vec![x]).expect("eval").1
    }

    fn close(got: &[f32], want: &[f32]) -> bool {
        got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-5)
    }

    #[test]
    fn unary_ops_follow_onnx() {
        let x = [-2.0f32, -0.5, 0.0, 1.5];
        type Case = (Unary, [f32; 4]);
        let cases: [Case; 10] = [
            (Unary::Neg, [2.0, 0.5, 0.0, -1.5]),
            (Unary::Abs, [2.0, 0.5, 0.0, 1.5]),
            (Unary::Floor, [-2.0, -1.0, 0.0, 1.0]),
            (Unary::Ceil, [-2.0, -0.0, 0.0, 2.0]),
            (
                Unary::Clip {
                    min: Some(-1.0),
                    max: None,
                },
                [-1.0, -0.5, 0.0, 1.5],
            ),
            (
                Unary::Clip {
                    min: None,
                    max: Some(1.0),
                },
                [-2.0, -0.5, 0.0, 1.0],
            ),
            // max(0, min(1, 0.2x + 0.5)).
            (
                Unary::HardSigmoid {
                    alpha: 0.2,
                    beta: 0.5,
                },
                [0.1, 0.4, 0.5, 0.8],
            ),
            (Unary::LeakyRelu { alpha: 0.1 }, [-0.2, -0.05, 0.0, 1.5]),
            // alpha (e^x - 1): e^-2 - 1 and e^-0.5 - 1.
            (Unary::Elu { alpha: 1.0 }, [-0.864_664_7, -0.393_469_3, 0.0, 1.5]),
            // erf(-2), erf(-0.5), erf(0), erf(1.5).
            (Unary::Erf, [-0.995_322_3, -0.520_499_9, 0.0, 0.966_105_1]),
        ];
        for (op, want) in cases {
            let got = apply(op.clone(), &x);
            assert!(close(&got, &want), "{op:?}: {got:?} vs {want:?}");
        }
        let pos = [0.25f32, 1.0, 4.0];
        assert!(close(&apply(Unary::Sqrt, &pos), &[0.5, 1.0, 2.0]));
        assert!(close(&apply(Unary::Reciprocal, &pos), &[4.0, 1.0, 0.25]));
        assert!(close(
            &apply(Unary::Log, &pos),
            &[-1.386_294_4, 0.0, 1.386_294_4]
        ));
        // GELU-tanh(1) = 0.5 (1 + tanh(0.7978846 * 1.044715)) = 0.8411920.
        assert!(close(&apply(Unary::GeluTanh, &[1.0]), &[0.841_192]));
        // softplus(0) = ln 2; mish(1) = tanh(ln(1 + e)) = 0.8650984.
        assert!(close(&apply(Unary::Softplus, &[0.0]), &[std::f32::consts::LN_2]));
        assert!(close(&apply(Unary::Mish, &[1.0]), &[0.865_098_4]));
        assert!(close(&apply(Unary::Tanh, &[1.0]), &[0.761_594_2]));
        assert!(close(&apply(Unary::Exp, &[1.0]), &[std::f32::consts::E]));
        assert!(close(&apply(Unary::Sin, &[0.5]), &[0.479_425_5]));
        assert!(close(&apply(Unary::Cos, &[0.5]), &[0.877_582_6]));
    }
}
