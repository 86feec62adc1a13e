//! Every op of the IR with burn's own tensor ops: the kernel for any device, and the reference
//! the specialised kernels are tested against.

use burn::nn::BatchNorm;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{gelu, sigmoid, silu, softmax};
use burn::tensor::module::{
    adaptive_avg_pool2d, avg_pool2d, batch_norm, batch_norm_train, conv2d, layer_norm, max_pool2d,
};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use featx_graph::{Activation, Op, Window2d};
use featx_models::{Attention, Layer, ParamTensor};

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
    /// A convolution with the add after it folded in: its second input is added to its output.
    residual: bool,
}

impl Generic {
    pub(super) fn new(spec: &NodeSpec) -> Self {
        Self {
            op: spec.op.clone(),
            layer: spec.layer.cloned(),
            mode: spec.mode,
            relu: spec.relu,
            residual: spec.residual,
        }
    }

    fn compute(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        Ok(match (&self.op, &self.layer) {
            (Op::Input { .. }, _) => return super::PassThrough.run(inputs, out_shape),
            (Op::Conv2d { window, groups, .. }, Some(Layer::Conv2d(conv))) if self.residual => {
                binary(inputs, "add", |x, identity| {
                    let x = x.into_rank::<4>().ok()?;
                    Feature::from(convolve(x, conv, window, *groups)).checked_add(identity)
                })?
            }
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
            (Op::Add, _) => binary(inputs, "add", Feature::checked_add)?,
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
            (Op::Mul, _) => binary(inputs, "multiply", Feature::broadcast_mul)?,
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
            // DenseNet, ConvNeXt, ViT.
            (Op::Cat { dim }, _) => {
                let shapes: Vec<Vec<usize>> = inputs.iter().map(Feature::dims).collect();
                Feature::cat(inputs, *dim)
                    .ok_or_else(|| format!("cannot join shapes {shapes:?} along {dim}"))?
            }
            (Op::AvgPool2d { window, ceil_mode }, _) => {
                let options = AvgPoolOptions {
                    kernel_size: window.kernel,
                    stride: window.stride,
                    padding: window.padding,
                    count_include_pad: true,
                    ceil_mode: *ceil_mode,
                };
                avg_pool2d(single(inputs)?, options).into()
            }
            (Op::FunctionalRelu, _) => single_any(inputs)?.relu(),
            (Op::FunctionalAdaptiveAvgPool2d { output }, _) => {
                adaptive_avg_pool2d(single(inputs)?, *output).into()
            }
            (Op::Parameter { .. }, Some(Layer::Parameter(param))) => match param {
                ParamTensor::R1(p) => p.val().into(),
                ParamTensor::R3(p) => p.val().into(),
            },
            (Op::ConvLayerNorm2d { window, eps, .. }, Some(Layer::ConvLayerNorm(conv, norm))) => {
                let options = ConvOptions::new_with_padding(
                    window.stride,
                    window.padding,
                    window.dilation,
                    1,
                );
                let bias = conv.bias.as_ref().map(|b| b.val());
                let x = conv2d(single(inputs)?, conv.weight.val(), bias, options);
                let beta = norm.beta.as_ref().map(|b| b.val());
                let x = layer_norm(x.permute([0, 2, 3, 1]), norm.gamma.val(), beta, *eps);
                x.permute([0, 3, 1, 2]).into()
            }
            (Op::PermuteModule { dims }, _) => {
                let x = single_any(inputs)?;
                let from = x.dims();
                x.permute(dims)
                    .ok_or_else(|| format!("cannot permute {from:?} by {dims:?}"))?
            }
            (Op::LayerNorm { eps, .. }, Some(Layer::LayerNorm(norm))) => {
                let beta = norm.beta.as_ref().map(|b| b.val());
                single_any(inputs)?.map_float(LayerNormFn {
                    gamma: norm.gamma.val(),
                    beta,
                    eps: *eps,
                })
            }
            (Op::FunctionalLayerNorm { eps, .. }, _) => {
                let mut inputs = inputs.into_iter();
                let (Some(x), Some(w), Some(b)) = (inputs.next(), inputs.next(), inputs.next())
                else {
                    return Err("layer_norm takes an input, a weight and a bias".into());
                };
                let vector = |f: Feature| {
                    f.into_rank::<1>()
                        .map_err(|f| format!("expected a vector, got {:?}", f.dims()))
                };
                x.map_float(LayerNormFn {
                    gamma: vector(w)?,
                    beta: Some(vector(b)?),
                    eps: *eps,
                })
            }
            (Op::Gelu, _) => single_any(inputs)?.map_float(Gelu),
            (Op::AddBroadcast, _) => binary(inputs, "add", Feature::broadcast_add)?,
            (Op::FlattenModule { .. } | Op::Reshape { .. }, _) => {
                let x = single_any(inputs)?;
                let from = x.dims();
                x.reshape(out_shape)
                    .ok_or_else(|| format!("cannot reshape {from:?} to {out_shape:?}"))?
            }
            (Op::Expand { .. }, _) => {
                let x = single_any(inputs)?;
                let from = x.dims();
                x.expand(out_shape)
                    .ok_or_else(|| format!("cannot expand {from:?} to {out_shape:?}"))?
            }
            (Op::MultiheadAttention { num_heads, .. }, Some(Layer::Attention(attn))) => {
                // Self attention: query, key and value are one tensor.
                let x: Tensor<3> = single(inputs)?;
                attention(x, attn, *num_heads).into()
            }
            (Op::TupleItem { .. }, _) => single_any(inputs)?,
            (Op::Select { dim, index }, _) => {
                let x = single_any(inputs)?;
                let from = x.dims();
                x.select(*dim, *index)
                    .ok_or_else(|| format!("cannot take index {index} of {dim} in {from:?}"))?
            }
            (Op::Mlp { .. }, Some(Layer::Mlp(fc1, fc2))) => {
                single_any(inputs)?.map_float(MlpFn(fc1, fc2))
            }
            (
                Op::Parameter { .. }
                | Op::ConvLayerNorm2d { .. }
                | Op::LayerNorm { .. }
                | Op::MultiheadAttention { .. }
                | Op::Mlp { .. },
                _,
            ) => {
                return Err("no parameters were traced for this layer".into());
            }
            (
                Op::Shape
                | Op::GetItem { .. }
                | Op::Eq { .. }
                | Op::Assert { .. }
                | Op::FloorDiv { .. }
                | Op::MulInt
                | Op::Dim
                | Op::NoneItem { .. },
                _,
            ) => return Err("a shape check is not computed on tensors".into()),
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

/// `f(a, b)` of a two-input op, or why not (`verb` names it: "cannot add shapes ...").
fn binary(
    inputs: Vec<Feature>,
    verb: &str,
    f: impl FnOnce(Feature, Feature) -> Option<Feature>,
) -> Result<Feature, String> {
    let Ok([a, b]) = <[Feature; 2]>::try_from(inputs) else {
        return Err(format!("{verb} takes two inputs"));
    };
    let shapes = (a.dims(), b.dims());
    f(a, b).ok_or_else(|| format!("cannot {verb} shapes {:?} and {:?}", shapes.0, shapes.1))
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

// DenseNet, ConvNeXt, ViT.

/// LayerNorm over the last dimension, as `F.layer_norm`.
struct LayerNormFn {
    gamma: Tensor<1>,
    beta: Option<Tensor<1>>,
    eps: f64,
}

impl TensorFn for LayerNormFn {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        layer_norm(t, self.gamma.clone(), self.beta.clone(), self.eps)
    }
}

/// The exact GELU, `x * Φ(x)` with the error function (`nn.GELU()`'s default).
struct Gelu;

impl TensorFn for Gelu {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        gelu(t)
    }
}

/// torchvision's `MLPBlock` in eval mode: `fc2(gelu(fc1(x)))`.
struct MlpFn<'a>(&'a Linear, &'a Linear);

impl TensorFn for MlpFn<'_> {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        self.1.forward(gelu(self.0.forward(t)))
    }
}

/// `nn.MultiheadAttention(x, x, x, need_weights=False)` in eval mode, batch first, no mask:
/// project to queries, keys and values, `softmax(q k^T / sqrt(d)) v` per head, project out.
fn attention(x: Tensor<3>, attn: &Attention, heads: usize) -> Tensor<3> {
    let [n, l, e] = x.dims();
    let d = e / heads.max(1);
    let rows = x.reshape([n * l, e]);
    let qkv = rows.matmul(attn.in_proj_weight.val().transpose())
        + attn.in_proj_bias.val().reshape([1, 3 * e]);
    // [n*l, 3e] -> [3, n, heads, l, d]
    let qkv = qkv.reshape([n, l, 3, heads, d]).permute([2, 0, 3, 1, 4]);
    let part = |i: usize| -> Tensor<4> { qkv.clone().narrow(0, i, 1).reshape([n, heads, l, d]) };
    let (q, k, v) = (part(0), part(1), part(2));
    let q = q * (1.0 / (d as f64).sqrt());
    let weights = softmax(q.matmul(k.swap_dims(2, 3)), 3);
    let out = weights.matmul(v).swap_dims(1, 2).reshape([n * l, e]);
    let out = attn.out_proj.forward(out);
    out.reshape([n, l, e])
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
        let noise = Tensor::<D>::random(shape, Distribution::Bernoulli(keep), &t.device())
            .cast(burn::tensor::FloatDType::from(t.dtype()));
        let noise = if keep > 0.0 { noise / keep } else { noise };
        t * noise
    }
}
