//! The CNN layers' CPU kernels: packed, Winograd and direct convolutions, depthwise
//! convolutions, BatchNorm, squeeze-excitation and max pooling.

use std::sync::Arc;

use burn::prelude::{Device, Tensor};
use featx_graph::ops::single;
use featx_graph::{Activation, Layer, Mode, Op};
use featx_kernels::cpu::{
    Elementwise, MaxPool2d, PackedBatchNorm, PackedConv2d, PackedDepthwise, PackedSqueezeExcitation,
};

use super::{elementwise_of, plain_flex};
use crate::Feature;
use crate::kernel::{Kernel, NodeSpec};

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
pub(crate) fn conv2d(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    packed_conv2d(spec, None)
}

/// [`conv2d`]'s kernel with `activation` in its epilogue, for [`super::choose_activated`].
pub(crate) fn conv2d_activated(spec: &NodeSpec, activation: Activation) -> Option<Arc<dyn Kernel>> {
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
pub(crate) fn depthwise(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
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
pub(crate) fn batch_norm(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
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
pub(crate) fn squeeze_excitation(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
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

/// Max pooling without argmax indices.
#[derive(Debug)]
struct Pool(MaxPool2d);

/// The CPU max pool, on the flex device.
pub(crate) fn max_pool2d(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
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
