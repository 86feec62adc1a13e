//! Builders for featx's own CPU kernels (`featx-kernels`), on the flex device, by family of
//! layer. They have no backward pass: a plan for gradients never picks them.

mod convolution;
mod pointwise;
mod transformer;

use burn::prelude::{Device, Tensor};
use featx_graph::{Activation, Cx, Mode, OpDef};
use featx_kernels::cpu::Elementwise;

use crate::Feature;
use crate::kernel::NodeSpec;

pub(crate) use convolution::{
    batch_norm, conv2d, conv2d_activated, depthwise, max_pool2d, squeeze_excitation,
};
pub(crate) use pointwise::{add, elementwise, mul};
pub(crate) use transformer::{
    attention, conv_layer_norm, layer_norm, linear, linear_activated, mlp,
};

/// Whether a node runs on the flex device outside a gradient tape, with no ReLU or residual
/// add fused into it: what the kernels that take no epilogue accept.
fn plain_flex(spec: &NodeSpec) -> bool {
    *spec.device == Device::flex() && !spec.gradients && !spec.relu && !spec.residual
}

/// `op` on burn's generic path, for a call a specialised kernel hands back at run time.
fn eval_generic(
    op: &impl OpDef,
    inputs: Vec<Feature>,
    out_shape: &[usize],
) -> Result<Feature, String> {
    let cx = Cx {
        layer: None,
        mode: Mode::Eval,
        out_shape,
    };
    op.eval(&cx, inputs)
}

/// A tensor's values, row-major: moved out without a copy when nothing else holds its buffer.
fn flat_values(x: Feature) -> Result<Vec<f32>, String> {
    flat(x)?
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}

/// `x` as one axis (a view where it is row-major).
fn flat(x: Feature) -> Result<Tensor<1>, String> {
    let dims = x.dims();
    let n: usize = dims.iter().product();
    x.reshape(&[n])
        .and_then(|f| f.into_rank::<1>().ok())
        .ok_or_else(|| format!("cannot flatten {dims:?}"))
}

/// The vectorised form of each activation featx's graphs name.
fn elementwise_of(activation: Activation) -> Elementwise {
    match activation {
        Activation::Relu => Elementwise::Relu,
        Activation::Relu6 => Elementwise::Relu6,
        Activation::Hardswish => Elementwise::Hardswish,
        Activation::Hardsigmoid => Elementwise::Hardsigmoid,
        Activation::Silu => Elementwise::Silu,
        Activation::Sigmoid => Elementwise::Sigmoid,
        Activation::Gelu => Elementwise::Gelu,
    }
}
