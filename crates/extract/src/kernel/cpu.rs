//! Builders for featx's own CPU kernels (`featx-kernels`), on the flex device. They have no
//! backward pass: a plan for gradients never picks them.

use std::sync::Arc;

use burn::prelude::{Device, Tensor};
use burn::tensor::TensorData;
use featx_graph::ops::{Softmax, Unary, single, single_any};
use featx_graph::{Activation, Cx, Layer, Mode, Op, OpDef, TensorFn};
use featx_kernels::cpu::{
    Elementwise, MaxPool2d, PackedAttention, PackedBatchNorm, PackedConv2d, PackedDepthwise,
    PackedLayerNorm, PackedLinear, PackedMlp, PackedSqueezeExcitation, softmax_rows,
};

use super::{Kernel, NodeSpec};
use crate::Feature;

/// A convolution with weights packed once, bias, residual add, ReLU and another activation
/// in its epilogue.
#[derive(Debug)]
struct Conv {
    packed: PackedConv2d,
    relu: bool,
    /// Whether its second input (a ResNet block's identity) is added before the ReLU.
    residual: bool,
    /// An activation applied to its output piece by piece while in cache (a folded
    /// `Conv2dNormActivation`'s Hardswish or SiLU).
    activation: Option<Elementwise>,
}

/// The packed convolution, on the flex device for ungrouped convolutions.
pub(super) fn conv2d(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    packed_conv2d(spec, None)
}

/// [`conv2d`]'s kernel with `activation` in its epilogue, for [`super::choose_activated`].
pub(super) fn conv2d_activated(spec: &NodeSpec, activation: Activation) -> Option<Arc<dyn Kernel>> {
    packed_conv2d(spec, Some(elementwise_of(activation)))
}

fn packed_conv2d(spec: &NodeSpec, activation: Option<Elementwise>) -> Option<Arc<dyn Kernel>> {
    let (Op::Conv2d(op), Some(Layer::Conv2d(conv))) = (spec.op, spec.layer) else {
        return None;
    };
    if *spec.device != Device::flex() || spec.gradients {
        return None;
    }
    let bias = conv.bias.as_ref().map(|b| b.val());
    let packed = PackedConv2d::new(&conv.weight.val(), bias.as_ref(), op.window, op.groups)?;
    Some(Arc::new(Conv {
        packed,
        relu: spec.relu,
        residual: spec.residual,
        activation,
    }))
}

impl Kernel for Conv {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        let rank4 = |f: Feature| {
            f.into_rank::<4>()
                .map_err(|f| format!("expected a rank-4 input, got shape {:?}", f.dims()))
        };
        let (x, residual) = match self.residual {
            true => {
                let [x, identity]: [Feature; 2] = inputs
                    .try_into()
                    .map_err(|_| "a residual convolution takes two inputs".to_string())?;
                (rank4(x)?, Some(rank4(identity)?))
            }
            false => (single(inputs)?, None),
        };
        self.packed
            .forward_activated(x, residual, self.relu, self.activation)
            .map(Feature::from)
            .map_err(|x| format!("the CPU convolution cannot take {:?}", x.dims()))
    }

    fn name(&self) -> &'static str {
        self.packed.form()
    }
}

/// A depthwise convolution (`groups == channels`), bias and ReLU in its epilogue.
#[derive(Debug)]
struct Depthwise {
    packed: PackedDepthwise,
    relu: bool,
}

/// The depthwise convolution, on the flex device.
pub(super) fn depthwise(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let (Op::Conv2d(op), Some(Layer::Conv2d(conv))) = (spec.op, spec.layer) else {
        return None;
    };
    if *spec.device != Device::flex() || spec.gradients || spec.residual {
        return None;
    }
    let bias = conv.bias.as_ref().map(|b| b.val());
    let packed = PackedDepthwise::new(&conv.weight.val(), bias.as_ref(), op.window, op.groups)?;
    Some(Arc::new(Depthwise {
        packed,
        relu: spec.relu,
    }))
}

impl Kernel for Depthwise {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        let x: Tensor<4> = single(inputs)?;
        self.packed
            .forward(x, self.relu)
            .map(Feature::from)
            .map_err(|x| format!("the CPU depthwise convolution cannot take {:?}", x.dims()))
    }

    fn name(&self) -> &'static str {
        "cpu-depthwise"
    }
}

/// An eval-mode BatchNorm that runs as its own step (its convolution's output is asked for, or
/// it follows no convolution), as one per-channel scale and shift, ReLU in the same pass.
#[derive(Debug)]
struct BatchNorm {
    packed: PackedBatchNorm,
    relu: bool,
}

/// The one-pass BatchNorm, on the flex device in eval mode (train mode's batch statistics stay
/// on burn's op).
pub(super) fn batch_norm(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let (Op::BatchNorm2d(op), Some(Layer::BatchNorm(bn))) = (spec.op, spec.layer) else {
        return None;
    };
    if *spec.device != Device::flex() || spec.gradients || spec.residual || spec.mode != Mode::Eval
    {
        return None;
    }
    let packed = PackedBatchNorm::new(
        &bn.gamma.val(),
        &bn.beta.val(),
        &bn.running_mean.value(),
        &bn.running_var.value(),
        op.eps,
    )?;
    Some(Arc::new(BatchNorm {
        packed,
        relu: spec.relu,
    }))
}

impl Kernel for BatchNorm {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        let x: Tensor<4> = single(inputs)?;
        self.packed
            .forward(x, self.relu)
            .map(Feature::from)
            .map_err(|x| format!("the CPU BatchNorm cannot take {:?}", x.dims()))
    }

    fn name(&self) -> &'static str {
        "cpu-batch-norm"
    }
}

/// torchvision's squeeze-excitation block in three passes (means, two dot-product layers,
/// rescale) where burn runs ten ops.
#[derive(Debug)]
struct SqueezeExcitation(PackedSqueezeExcitation);

/// The squeeze-excitation kernel, on the flex device.
pub(super) fn squeeze_excitation(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let (Op::SqueezeExcitation(op), Some(Layer::SqueezeExcitation(params))) = (spec.op, spec.layer)
    else {
        return None;
    };
    if !plain_flex(spec) {
        return None;
    }
    let (b1, b2) = (params.fc1.bias.as_ref()?, params.fc2.bias.as_ref()?);
    let packed = PackedSqueezeExcitation::new(
        (&params.fc1.weight.val(), &b1.val()),
        (&params.fc2.weight.val(), &b2.val()),
        elementwise_of(op.activation),
        elementwise_of(op.scale_activation),
    )?;
    Some(Arc::new(SqueezeExcitation(packed)))
}

impl Kernel for SqueezeExcitation {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        let x: Tensor<4> = single(inputs)?;
        self.0
            .forward(x)
            .map(Feature::from)
            .map_err(|x| format!("the CPU squeeze-excitation cannot take {:?}", x.dims()))
    }

    fn name(&self) -> &'static str {
        "cpu-squeeze-excitation"
    }
}

/// A Linear layer over the last axis of any rank, as one matrix product, an activation in
/// its epilogue.
#[derive(Debug)]
struct Linear {
    packed: PackedLinear,
    /// Applied to the output piece by piece while in cache (ConvNeXt's GELU, a ReLU).
    activation: Option<Elementwise>,
}

/// The Linear layer, on the flex device.
pub(super) fn linear(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    packed_linear(spec, spec.relu.then_some(Elementwise::Relu))
}

/// [`linear`]'s kernel with `activation` in its epilogue, for [`super::choose_activated`].
pub(super) fn linear_activated(spec: &NodeSpec, activation: Activation) -> Option<Arc<dyn Kernel>> {
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
pub(super) fn layer_norm(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
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
pub(super) fn conv_layer_norm(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
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
pub(super) fn mlp(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
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
pub(super) fn attention(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
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

/// Max pooling without argmax indices.
#[derive(Debug)]
struct Pool(MaxPool2d);

/// The CPU max pool, on the flex device.
pub(super) fn max_pool2d(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let Op::MaxPool2d(pool) = spec.op else {
        return None;
    };
    // Its ReLU epilogue is not written; the generic kernel handles that case.
    if *spec.device != Device::flex() || spec.relu || spec.gradients {
        return None;
    }
    Some(Arc::new(Pool(MaxPool2d {
        window: pool.window,
    })))
}

impl Kernel for Pool {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        let x: Tensor<4> = single(inputs)?;
        let &[_, _, oh, ow] = out_shape else {
            return Err(format!("a max pool's output is rank 4, not {out_shape:?}"));
        };
        self.0
            .forward(x, [oh, ow])
            .map(Feature::from)
            .map_err(|x| format!("the CPU max pool cannot take {:?}", x.dims()))
    }

    fn name(&self) -> &'static str {
        "cpu-max-pool"
    }
}

/// A transcendental activation or a softmax, vectorised.
#[derive(Debug)]
enum Vectorised {
    /// An elementwise function.
    Map(Elementwise),
    /// Softmax over `axis` (vectorised over the last axis; another axis runs the generic op).
    Softmax(Softmax),
}

/// The vectorised sigmoid, SiLU, GELU, tanh, erf, exp and softmax, on the flex device, where
/// burn-flex calls libm one element at a time; and hardswish, hardsigmoid and ReLU6 as one
/// pass, where burn runs four ops.
pub(super) fn elementwise(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    if !plain_flex(spec) {
        return None;
    }
    let kernel = match spec.op {
        // A plain ReLU stays on burn's op, which takes its input's buffer in place.
        Op::Activation(Activation::Relu) => return None,
        Op::Activation(activation) => Vectorised::Map(elementwise_of(*activation)),
        Op::Unary(Unary::GeluTanh) => Vectorised::Map(Elementwise::GeluTanh),
        Op::Unary(Unary::Tanh) => Vectorised::Map(Elementwise::Tanh),
        Op::Unary(Unary::Erf) => Vectorised::Map(Elementwise::Erf),
        Op::Unary(Unary::Exp) => Vectorised::Map(Elementwise::Exp),
        Op::Softmax(op) if !op.log => Vectorised::Softmax(op.clone()),
        _ => return None,
    };
    Some(Arc::new(kernel))
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

impl Kernel for Vectorised {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        if let Vectorised::Softmax(op) = self
            && op.axis + 1 != out_shape.len()
        {
            return eval_generic(op, inputs, out_shape);
        }
        let x = single_any(inputs)?;
        let dims = x.dims();
        let n: usize = dims.iter().product();
        let out = match self {
            // In place, or in one pass into a new buffer where the input is held elsewhere.
            Vectorised::Map(f) => match featx_kernels::cpu::map(*f, flat(x)?) {
                Ok(out) => out,
                Err(x) => {
                    let mut values = flat_values(Feature::from(x))?;
                    f.apply(&mut values);
                    Tensor::<1>::from_data(TensorData::new(values, [n]), &Device::flex())
                }
            },
            Vectorised::Softmax(_) => {
                let mut values = flat_values(x)?;
                softmax_rows(&mut values, dims.last().copied().unwrap_or(1));
                Tensor::<1>::from_data(TensorData::new(values, [n]), &Device::flex())
            }
        };
        Feature::from(out)
            .reshape(&dims)
            .ok_or_else(|| format!("cannot reshape back to {dims:?}"))
    }

    fn name(&self) -> &'static str {
        "cpu-vectorised"
    }
}

/// `a + b` of two tensors of one shape (a residual add), split over the cores, reading a
/// transposed operand (ConvNeXt's permuted Linear output) a tile at a time.
#[derive(Debug)]
struct Add;

/// The CPU add, on the flex device; broadcasts and other layouts run burn's add at run time.
pub(super) fn add(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let Op::Add(_) = spec.op else {
        return None;
    };
    if !plain_flex(spec) {
        return None;
    }
    Some(Arc::new(Add))
}

impl Kernel for Add {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        let Ok([a, b]) = <[Feature; 2]>::try_from(inputs) else {
            return Err("add takes two inputs".to_string());
        };
        let sum = match (a.rank(), a.dims() == b.dims()) {
            (2, true) => ranked_add::<2>(a, b),
            (3, true) => ranked_add::<3>(a, b),
            (4, true) => ranked_add::<4>(a, b),
            _ => Err((a, b)),
        };
        sum.or_else(|(a, b)| eval_generic(&featx_graph::ops::Add, vec![a, b], out_shape))
    }

    fn name(&self) -> &'static str {
        "cpu-add"
    }
}

/// A tensor times a vector along one of its axes (ConvNeXt's layer scale, `[C, 1, 1] *
/// [N, C, H, W]`), in the tensor's own memory order on every core; other products run burn's
/// at run time.
#[derive(Debug)]
struct Scale;

/// The CPU product by a per-axis vector, on the flex device.
pub(super) fn mul(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let Op::Mul(_) = spec.op else {
        return None;
    };
    if !plain_flex(spec) {
        return None;
    }
    Some(Arc::new(Scale))
}

impl Kernel for Scale {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        let Ok([a, b]) = <[Feature; 2]>::try_from(inputs) else {
            return Err("multiply takes two inputs".to_string());
        };
        // The product commutes (exactly): the full-shaped operand first.
        let (x, v) = if a.dims() == out_shape {
            (a, b)
        } else {
            (b, a)
        };
        let axis = (x.dims() == out_shape)
            .then(|| scale_axis(&x.dims(), &v.dims()))
            .flatten();
        let scaled = match axis {
            Some(axis) => {
                let factors = flat_values(v.clone())?;
                match x.rank() {
                    2 => ranked_scale::<2>(x, axis, &factors),
                    3 => ranked_scale::<3>(x, axis, &factors),
                    4 => ranked_scale::<4>(x, axis, &factors),
                    _ => Err(x),
                }
            }
            None => Err(x),
        };
        scaled.or_else(|x| eval_generic(&featx_graph::ops::Mul, vec![x, v], out_shape))
    }

    fn name(&self) -> &'static str {
        "cpu-scale"
    }
}

/// The axis of `x` along which `v` (broadcast to `x`'s shape, NumPy's way) varies, where it
/// varies along exactly one and is 1 on every other.
fn scale_axis(x: &[usize], v: &[usize]) -> Option<usize> {
    let offset = x.len().checked_sub(v.len())?;
    let mut varying = v.iter().enumerate().filter(|&(_, &d)| d != 1);
    let (i, &d) = varying.next()?;
    (varying.next().is_none() && x[offset + i] == d).then_some(offset + i)
}

/// [`featx_kernels::cpu::scale`] on a feature of rank `D`, or it back.
#[allow(clippy::result_large_err)] // `Err` hands the input back; it is no error.
fn ranked_scale<const D: usize>(
    x: Feature,
    axis: usize,
    factors: &[f32],
) -> Result<Feature, Feature>
where
    Feature: From<Tensor<D>>,
{
    match x.into_rank::<D>() {
        Ok(x) => featx_kernels::cpu::scale(x, axis, factors)
            .map(Feature::from)
            .map_err(Feature::from),
        Err(x) => Err(x),
    }
}

/// [`featx_kernels::cpu::add`] on two features of rank `D`, or both back.
#[allow(clippy::result_large_err)] // `Err` hands the inputs back; it is no error.
fn ranked_add<const D: usize>(a: Feature, b: Feature) -> Result<Feature, (Feature, Feature)>
where
    Feature: From<Tensor<D>>,
{
    match (a.into_rank::<D>(), b.into_rank::<D>()) {
        (Ok(a), Ok(b)) => featx_kernels::cpu::add(a, b)
            .map(Feature::from)
            .map_err(|(a, b)| (a.into(), b.into())),
        (a, b) => Err((
            a.map_or_else(|f| f, Feature::from),
            b.map_or_else(|f| f, Feature::from),
        )),
    }
}
