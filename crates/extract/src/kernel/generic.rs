//! Every op of the IR with burn's own tensor ops: the kernel for any device, and the reference
//! the specialised kernels are tested against.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::{
    adaptive_avg_pool2d, avg_pool2d, batch_norm, batch_norm_train, conv2d, max_pool2d,
};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use featx_graph::Op;
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
                let options = ConvOptions::new_with_padding(
                    window.stride,
                    window.padding,
                    window.dilation,
                    *groups,
                );
                let bias = conv.bias.as_ref().map(|b| b.val());
                conv2d(single(inputs)?, conv.weight.val(), bias, options).into()
            }
            (Op::BatchNorm2d { eps, .. }, Some(Layer::BatchNorm(bn))) => {
                let x: Tensor<4> = single(inputs)?;
                let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
                match self.mode {
                    Mode::Eval => {
                        let (mean, var) = (bn.running_mean.value(), bn.running_var.value());
                        batch_norm(x, gamma, beta, mean, var, *eps)
                    }
                    Mode::Train => batch_norm_train(x, gamma, beta, *eps).output,
                }
                .into()
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
            (Op::Conv2d { .. } | Op::BatchNorm2d { .. } | Op::Linear { .. }, _) => {
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
        })
    }
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
