//! Every op of the IR with burn's own tensor ops: the kernel for any device, and the reference
//! the specialised kernels are tested against.

use burn::nn::BatchNorm;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::module::{adaptive_avg_pool2d, batch_norm, batch_norm_train, conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use featx_graph::{Activation, Op, Window2d};
use featx_models::Layer;

use super::{Kernel, NodeSpec, single};
use crate::feature::TensorFn;
use crate::{Feature, Mode};

/// One node computed with burn's ops.
#[derive(Debug)]
pub(super) struct Generic {
    op: Op,
    layer: Option<Layer>,
    mode: Mode,
    relu: bool,
}

impl Generic {
    pub(super) fn new(spec: &NodeSpec) -> Self {
        Self {
            op: spec.op.clone(),
            layer: spec.layer.cloned(),
            mode: spec.mode,
            relu: spec.relu,
        }
    }

    fn compute(&self, mut inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        Ok(match (&self.op, &self.layer) {
            (Op::Input { .. }, _) => return super::PassThrough.run(inputs, out_shape),
            (Op::Conv2d { window, groups, .. }, Some(Layer::Conv2d(conv))) => {
                convolve(single(inputs)?, conv, window, *groups).into()
            }
            (Op::BatchNorm2d { eps, .. }, Some(Layer::BatchNorm(bn))) => {
                self.norm(single(inputs)?, bn, *eps).into()
            }
            (Op::Linear { .. }, Some(Layer::Linear(linear))) => {
                single_any(inputs)?.map_float(linear)
            }
            (Op::Relu, _) => single_any(inputs)?.relu(),
            (Op::MaxPool2d { window, ceil_mode }, _) => {
                let options = MaxPoolOptions {
                    kernel_size: window.kernel,
                    stride: window.stride,
                    padding: window.padding,
                    dilation: window.dilation,
                    ceil_mode: *ceil_mode,
                };
                max_pool2d(single(inputs)?, options).into()
            }
            (Op::AdaptiveAvgPool2d { output }, _) => {
                adaptive_avg_pool2d(single(inputs)?, *output).into()
            }
            (Op::Dropout { p }, _) => {
                let x = single_any(inputs)?;
                match self.mode {
                    Mode::Eval => x,
                    Mode::Train => x.map_float(Dropout(*p)),
                }
            }
            (Op::Add, _) => {
                let (Some(b), Some(a), true) = (inputs.pop(), inputs.pop(), inputs.is_empty())
                else {
                    return Err("add takes two inputs".into());
                };
                let shapes = (a.dims(), b.dims());
                a.checked_add(b)
                    .ok_or_else(|| format!("cannot add shapes {:?} and {:?}", shapes.0, shapes.1))?
            }
            (Op::Flatten { .. } | Op::View { .. }, _) => {
                let x = single_any(inputs)?;
                let from = x.dims();
                x.reshape(out_shape)
                    .ok_or_else(|| format!("cannot reshape {from:?} to {out_shape:?}"))?
            }
            (Op::Permute { dims }, _) => {
                let x = single_any(inputs)?;
                let from = x.dims();
                x.permute(dims)
                    .ok_or_else(|| format!("cannot permute {from:?} by {dims:?}"))?
            }
            // Mobile nets (MobileNet, EfficientNet, RegNet).
            (Op::Mul, _) => {
                let (Some(b), Some(a), true) = (inputs.pop(), inputs.pop(), inputs.is_empty())
                else {
                    return Err("mul takes two inputs".into());
                };
                let shapes = (a.dims(), b.dims());
                a.broadcast_mul(b).ok_or_else(|| {
                    format!("cannot multiply shapes {:?} and {:?}", shapes.0, shapes.1)
                })?
            }
            (Op::Relu6, _) => activate(single_any(inputs)?, Activation::Relu6),
            (Op::Hardswish, _) => activate(single_any(inputs)?, Activation::Hardswish),
            (Op::Hardsigmoid, _) => activate(single_any(inputs)?, Activation::Hardsigmoid),
            (Op::Silu, _) => activate(single_any(inputs)?, Activation::Silu),
            (Op::Sigmoid, _) => activate(single_any(inputs)?, Activation::Sigmoid),
            (Op::StochasticDepth { p, row }, _) => {
                let x = single_any(inputs)?;
                match self.mode {
                    Mode::Eval => x,
                    Mode::Train => x.map_float(StochasticDepth { p: *p, row: *row }),
                }
            }
            (
                Op::ConvNormActivation {
                    window,
                    groups,
                    eps,
                    activation,
                    ..
                },
                Some(Layer::ConvNorm(c, bn)),
            ) => {
                let x = self.norm(convolve(single(inputs)?, c, window, *groups), bn, *eps);
                match activation {
                    Some(a) => activate(x.into(), *a),
                    None => x.into(),
                }
            }
            (
                Op::SqueezeExcitation {
                    activation,
                    scale_activation,
                    ..
                },
                Some(Layer::SqueezeExcitation(fc1, fc2)),
            ) => {
                let x: Tensor<4> = single(inputs)?;
                let one = Window2d::square(1, 1, 0);
                let scale = adaptive_avg_pool2d(x.clone(), [1, 1]);
                let scale = activated(convolve(scale, fc1, &one, 1), *activation);
                let scale = activated(convolve(scale, fc2, &one, 1), *scale_activation);
                (x * scale).into()
            }
            (Op::AdaptiveAvgPool2dFunction { output }, _) => {
                adaptive_avg_pool2d(single(inputs)?, *output).into()
            }
            (
                Op::Conv2d { .. }
                | Op::BatchNorm2d { .. }
                | Op::Linear { .. }
                | Op::ConvNormActivation { .. }
                | Op::SqueezeExcitation { .. },
                _,
            ) => {
                return Err("no parameters were traced for this layer".into());
            }
        })
    }

    /// `nn.BatchNorm2d` in this kernel's mode.
    fn norm(&self, x: Tensor<4>, bn: &BatchNorm, eps: f64) -> Tensor<4> {
        let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
        match self.mode {
            Mode::Eval => {
                let (mean, var) = (bn.running_mean.value(), bn.running_var.value());
                batch_norm(x, gamma, beta, mean, var, eps)
            }
            Mode::Train => batch_norm_train(x, gamma, beta, eps).output,
        }
    }
}

/// `nn.Conv2d` with `conv`'s parameters over `window`.
fn convolve(x: Tensor<4>, conv: &Conv2d, window: &Window2d, groups: usize) -> Tensor<4> {
    let options =
        ConvOptions::new_with_padding(window.stride, window.padding, window.dilation, groups);
    let bias = conv.bias.as_ref().map(|b| b.val());
    conv2d(x, conv.weight.val(), bias, options)
}

impl Kernel for Generic {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        let value = self.compute(inputs, out_shape)?;
        Ok(if self.relu { value.relu() } else { value })
    }

    fn name(&self) -> &'static str {
        "burn"
    }
}

/// The one input, whatever its rank.
fn single_any(inputs: Vec<Feature>) -> Result<Feature, String> {
    inputs
        .into_iter()
        .next()
        .ok_or_else(|| "no input value".to_string())
}

impl TensorFn for &Linear {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        self.forward(t)
    }
}

/// Inverted dropout as `nn.Dropout` in train mode: zero with probability `p`, scale the rest.
struct Dropout(f64);

impl TensorFn for Dropout {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        let p = self.0;
        if p <= 0.0 {
            return t;
        }
        let keep = 1.0 - p;
        let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
        let mask = t.random_like(Distribution::Bernoulli(keep));
        t * mask * scale
    }
}

// Mobile nets (MobileNet, EfficientNet, RegNet).
/// `activation(x)`, whatever the rank.
pub(super) fn activate(x: Feature, activation: Activation) -> Feature {
    x.map_float(ActivationFn(activation))
}

/// `activation(x)` at a known rank.
fn activated<const D: usize>(x: Tensor<D>, activation: Activation) -> Tensor<D> {
    ActivationFn(activation).apply(x)
}

/// An activation as PyTorch computes it.
struct ActivationFn(Activation);

impl TensorFn for ActivationFn {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        match self.0 {
            Activation::Relu => burn::tensor::activation::relu(t),
            Activation::Relu6 => t.clamp(0.0, 6.0),
            // `x * relu6(x + 3) / 6`, as PyTorch's kernel.
            Activation::Hardswish => t.clone() * (t + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Hardsigmoid => (t + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Silu => silu(t),
            Activation::Sigmoid => sigmoid(t),
        }
    }
}

/// torchvision's `stochastic_depth` in train mode: each sample (`row`) or the whole batch is
/// kept with probability `1 - p` and scaled by `1 / (1 - p)`.
struct StochasticDepth {
    p: f64,
    row: bool,
}

impl TensorFn for StochasticDepth {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        if self.p <= 0.0 {
            return t;
        }
        let keep = 1.0 - self.p;
        let mut shape = [1usize; D];
        if self.row {
            shape[0] = t.dims()[0];
        }
        let noise = Tensor::<D>::random(shape, Distribution::Bernoulli(keep), &t.device());
        let noise = if keep > 0.0 { noise / keep } else { noise };
        t * noise
    }
}
