//! The transformer layers' CPU kernels: Linear, LayerNorm (ConvNeXt's stem with its
//! convolution), ViT's MLP and self-attention blocks.

use std::sync::Arc;

use burn::prelude::{Device, Tensor};
use featx_graph::ops::{single, single_any};
use featx_graph::{Activation, Layer, Op, TensorFn};
use featx_kernels::cpu::{
    Elementwise, PackedAttention, PackedConv2d, PackedLayerNorm, PackedLinear, PackedMlp,
};

use super::{elementwise_of, plain_flex};
use crate::Feature;
use crate::kernel::{Kernel, NodeSpec};

/// A Linear layer over the last axis of any rank, as one matrix product, an activation in
/// its epilogue.
#[derive(Debug)]
struct Linear {
    packed: PackedLinear,
    /// Applied to the output piece by piece while in cache (ConvNeXt's GELU, a ReLU).
    activation: Option<Elementwise>,
}

/// The Linear layer, on the flex device.
pub(crate) fn linear(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    packed_linear(spec, spec.relu.then_some(Elementwise::Relu))
}

/// [`linear`]'s kernel with `activation` in its epilogue, for [`super::choose_activated`].
pub(crate) fn linear_activated(spec: &NodeSpec, activation: Activation) -> Option<Arc<dyn Kernel>> {
    if spec.relu {
        return None;
    }
    packed_linear(spec, Some(elementwise_of(activation)))
}

fn packed_linear(spec: &NodeSpec, activation: Option<Elementwise>) -> Option<Arc<dyn Kernel>> {
    let (Op::Linear(_), Some(Layer::Linear(layer))) = (spec.op, spec.layer) else {
        return None;
    };
    if *spec.device != Device::flex() || spec.gradients || spec.residual {
        return None;
    }
    let bias = layer.bias.as_ref().map(|b| b.val());
    let packed = PackedLinear::new(&layer.weight.val(), bias.as_ref())?;
    Some(Arc::new(Linear { packed, activation }))
}

impl Kernel for Linear {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        over_rows(single_any(inputs)?, self.packed.inputs(), |x| {
            self.packed.forward_activated(x, self.activation).ok()
        })
    }

    fn name(&self) -> &'static str {
        "cpu-linear"
    }
}

/// LayerNorm over the last axis of any rank, a row at a time: `nn.LayerNorm` (its parameters
/// packed once) or `F.layer_norm` (its weight and bias read from its inputs on every call,
/// as ConvNeXt's `LayerNorm2d` passes them).
#[derive(Debug)]
struct LayerNorm {
    /// The module's parameters; `None` for the functional form.
    packed: Option<PackedLayerNorm>,
    features: usize,
    eps: f64,
}

/// LayerNorm in either form, on the flex device.
pub(crate) fn layer_norm(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let Op::LayerNorm(op) = spec.op else {
        return None;
    };
    if !plain_flex(spec) {
        return None;
    }
    let packed = match spec.layer {
        Some(Layer::LayerNorm(norm)) => {
            let beta = norm.beta.as_ref().map(|b| b.val());
            let packed = PackedLayerNorm::new(&norm.gamma.val(), beta.as_ref(), op.eps);
            Some(packed.filter(|p| p.features() == op.features)?)
        }
        None => None,
        Some(_) => return None,
    };
    Some(Arc::new(LayerNorm {
        packed,
        features: op.features,
        eps: op.eps,
    }))
}

impl Kernel for LayerNorm {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        let mut inputs = inputs.into_iter();
        let x = inputs.next().ok_or("no input value")?;
        let read;
        let packed = match &self.packed {
            Some(packed) => packed,
            None => {
                let vector = |f: Option<Feature>| {
                    f.and_then(|f| f.into_rank::<1>().ok())
                        .ok_or_else(|| "layer_norm takes an input, a weight and a bias".to_string())
                };
                let (weight, bias) = (vector(inputs.next())?, vector(inputs.next())?);
                read = PackedLayerNorm::new(&weight, Some(&bias), self.eps)
                    .filter(|p| p.features() == self.features)
                    .ok_or_else(|| {
                        format!(
                            "the CPU LayerNorm cannot take a weight of {:?}",
                            weight.dims()
                        )
                    })?;
                &read
            }
        };
        // Ranks 2 to 4 (tokens, NHWC maps) read a permuted view without copying it first.
        let x = match x.rank() {
            2 => return rows_of::<2>(packed, x),
            3 => return rows_of::<3>(packed, x),
            4 => return rows_of::<4>(packed, x),
            _ => x,
        };
        over_rows(x, self.features, |x| packed.forward(x).ok())
    }

    fn name(&self) -> &'static str {
        "cpu-layer-norm"
    }
}

/// [`PackedLayerNorm::forward_rows`] on a feature of rank `D`.
fn rows_of<const D: usize>(norm: &PackedLayerNorm, x: Feature) -> Result<Feature, String>
where
    Feature: From<Tensor<D>>,
{
    let dims = x.dims();
    x.into_rank::<D>()
        .ok()
        .and_then(|x| norm.forward_rows(x).ok())
        .map(Feature::from)
        .ok_or_else(|| {
            let width = norm.features();
            format!("the CPU LayerNorm of width {width} cannot take {dims:?}")
        })
}

/// ConvNeXt's stem (`Conv2dNormActivation` with `LayerNorm2d`): the packed convolution, then
/// LayerNorm over each position's channels, in NCHW order throughout.
#[derive(Debug)]
struct ConvLayerNorm {
    conv: PackedConv2d,
    norm: PackedLayerNorm,
}

/// The stem's convolution and LayerNorm, on the flex device.
pub(crate) fn conv_layer_norm(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let (Op::ConvLayerNorm2d(op), Some(Layer::ConvLayerNorm(params))) = (spec.op, spec.layer)
    else {
        return None;
    };
    if !plain_flex(spec) {
        return None;
    }
    let bias = params.conv.bias.as_ref().map(|b| b.val());
    let conv = PackedConv2d::new(
        &params.conv.weight.val(),
        bias.as_ref(),
        op.conv.window,
        op.conv.groups,
    )?;
    let beta = params.norm.beta.as_ref().map(|b| b.val());
    let norm = PackedLayerNorm::new(&params.norm.gamma.val(), beta.as_ref(), op.eps)?;
    (norm.features() == op.conv.out_channels)
        .then(|| Arc::new(ConvLayerNorm { conv, norm }) as Arc<dyn Kernel>)
}

impl Kernel for ConvLayerNorm {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        let x: Tensor<4> = single(inputs)?;
        let x = self
            .conv
            .forward(x, None, false)
            .map_err(|x| format!("the CPU convolution cannot take {:?}", x.dims()))?;
        self.norm
            .forward_channels(x)
            .map(Feature::from)
            .map_err(|x| format!("the CPU LayerNorm cannot take {:?}", x.dims()))
    }

    fn name(&self) -> &'static str {
        "cpu-conv-layer-norm"
    }
}

/// `layer` applied to every row of `x` (any rank, `width` values on its last axis) as one
/// `[rows, width]` matrix, the leading axes restored after.
fn over_rows(
    x: Feature,
    width: usize,
    layer: impl FnOnce(Tensor<2>) -> Option<Tensor<2>>,
) -> Result<Feature, String> {
    let dims = x.dims();
    let cannot = || format!("the CPU layer of width {width} cannot take {dims:?}");
    let Some((&k, leading)) = dims.split_last() else {
        return Err(cannot());
    };
    if k != width {
        return Err(cannot());
    }
    let rows = leading.iter().product();
    // A permuted view (ConvNeXt's NHWC view of its NCHW convolution output) is copied by
    // featx's tiled transpose before the reshape, not by burn-flex's copy inside it.
    let x: Tensor<2> = x
        .map_float(Contiguous)
        .reshape(&[rows, k])
        .and_then(|x| x.into_rank().ok())
        .ok_or_else(cannot)?;
    let out = layer(x).ok_or_else(cannot)?;
    let mut shape = leading.to_vec();
    shape.push(out.dims()[1]);
    Feature::from(out)
        .reshape(&shape)
        .ok_or_else(|| format!("no output of shape {shape:?}"))
}

/// [`featx_kernels::cpu::contiguous`] for a feature of any rank.
struct Contiguous;

impl TensorFn for Contiguous {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        featx_kernels::cpu::contiguous(t)
    }
}

/// torchvision's `MLPBlock` leaf (ViT's feed-forward layers).
#[derive(Debug)]
struct Mlp(PackedMlp);

/// The MLP block, on the flex device.
pub(crate) fn mlp(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let (Op::Mlp(_), Some(Layer::Mlp(params))) = (spec.op, spec.layer) else {
        return None;
    };
    if !plain_flex(spec) {
        return None;
    }
    let bias = |l: &burn::nn::Linear| l.bias.as_ref().map(|b| b.val());
    let (b1, b2) = (bias(&params.fc1), bias(&params.fc2));
    let packed = PackedMlp::new(
        (&params.fc1.weight.val(), b1.as_ref()),
        (&params.fc2.weight.val(), b2.as_ref()),
    )?;
    Some(Arc::new(Mlp(packed)))
}

impl Kernel for Mlp {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        over_rows(single_any(inputs)?, self.0.inputs(), |x| {
            self.0.forward(x).ok()
        })
    }

    fn name(&self) -> &'static str {
        "cpu-mlp"
    }
}

/// `nn.MultiheadAttention` as self attention (ViT's encoder blocks).
#[derive(Debug)]
struct Attention(PackedAttention);

/// Self attention, on the flex device.
pub(crate) fn attention(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let (Op::MultiheadAttention(op), Some(Layer::Attention(attn))) = (spec.op, spec.layer) else {
        return None;
    };
    if !plain_flex(spec) {
        return None;
    }
    let out_bias = attn.out_proj.bias.as_ref().map(|b| b.val());
    let packed = PackedAttention::new(
        // PyTorch's `[3E, E]`, as burn's Linear layout `[E, 3E]`.
        &attn.in_proj_weight.val().transpose(),
        Some(&attn.in_proj_bias.val()),
        &attn.out_proj.weight.val(),
        out_bias.as_ref(),
        op.num_heads,
    )?;
    Some(Arc::new(Attention(packed)))
}

impl Kernel for Attention {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        // Self attention: query, key and value are one tensor.
        let x: Tensor<3> = single(inputs)?;
        let dims = x.dims();
        self.0
            .forward(x)
            .map(Feature::from)
            .map_err(|_| format!("the CPU attention cannot take {dims:?}"))
    }

    fn name(&self) -> &'static str {
        "cpu-attention"
    }
}
