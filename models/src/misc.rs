//! torchvision.ops.misc's building blocks of the mobile nets: `Conv2dNormActivation` and
//! `SqueezeExcitation`. FX feature extraction keeps torchvision.ops modules as leaves, so each
//! is one node (`features.0`, `features.4.block.2`) whose parameters sit under its path.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use featx_graph::{Activation, ConvNormClass};

/// torchvision.ops' `Conv2dNormActivation`: a convolution (`0`), a BatchNorm (`1`) and the
/// activation (`2`, no parameters), so the state-dict keys are `<path>.0.weight`,
/// `<path>.1.running_mean`, ... as torchvision's `nn.Sequential` subclass names them.
pub type ConvNormActivation = (Conv2d, BatchNorm, Activate);

/// The parameter-free tail of a [`ConvNormActivation`]: its activation and the class FX
/// reports for the node.
#[derive(Module, Debug)]
pub struct Activate {
    /// The activation after the BatchNorm, if any.
    #[module(skip)]
    pub activation: Option<Activation>,
    /// `Conv2dNormActivation`, or a subclass's name.
    #[module(skip)]
    pub class: ConvNormClass,
}

/// An activation module on its own (`nn.Hardswish()` in a classifier): no parameters.
#[derive(Module, Debug)]
pub struct ActivationLayer {
    /// Which activation.
    #[module(skip)]
    pub activation: Activation,
}

/// How to build a [`ConvNormActivation`], as torchvision's constructor takes it: padding
/// `(kernel - 1) / 2 * dilation`, no convolution bias (a BatchNorm follows).
#[derive(Debug, Clone, Copy)]
pub struct ConvNormConfig {
    /// `[in_channels, out_channels]`.
    pub channels: [usize; 2],
    /// Square kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Channel groups.
    pub groups: usize,
    /// BatchNorm's epsilon.
    pub eps: f64,
    /// The activation, if any.
    pub activation: Option<Activation>,
    /// The class FX reports.
    pub class: ConvNormClass,
}

impl ConvNormConfig {
    /// A `Conv2dNormActivation(in, out, kernel, stride)` with BatchNorm (eps 1e-5) and `activation`.
    pub fn new(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        activation: Option<Activation>,
    ) -> Self {
        Self {
            channels,
            kernel,
            stride,
            groups: 1,
            eps: 1e-5,
            activation,
            class: ConvNormClass::Conv2dNormActivation,
        }
    }

    /// The same with `groups` channel groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// The same with BatchNorm's epsilon `eps`.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// The same reported as `class`.
    pub fn with_class(mut self, class: ConvNormClass) -> Self {
        self.class = class;
        self
    }

    /// Builds it with fresh weights on `device`.
    pub fn init(&self, device: &Device) -> ConvNormActivation {
        let padding = (self.kernel - 1) / 2;
        let conv = Conv2dConfig::new(self.channels, [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_padding(PaddingConfig2d::Explicit(
                padding, padding, padding, padding,
            ))
            .with_groups(self.groups)
            .with_bias(false)
            .init(device);
        let norm = BatchNormConfig::new(self.channels[1])
            .with_epsilon(self.eps)
            .init(device);
        let tail = Activate {
            activation: self.activation,
            class: self.class,
        };
        (conv, norm, tail)
    }
}

/// torchvision.ops' `SqueezeExcitation`: `input * scale_activation(fc2(activation(fc1(
/// avgpool(input)))))`, with 1x1 convolutions `fc1` and `fc2`.
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    /// `channels -> squeeze`, with bias.
    pub fc1: Conv2d,
    /// `squeeze -> channels`, with bias.
    pub fc2: Conv2d,
    /// After `fc1` (`ReLU` by default, `SiLU` in EfficientNet).
    #[module(skip)]
    pub activation: Activation,
    /// After `fc2` (`Sigmoid` by default, `Hardsigmoid` in MobileNetV3).
    #[module(skip)]
    pub scale_activation: Activation,
}

impl SqueezeExcitation {
    /// `SqueezeExcitation(channels, squeeze, activation, scale_activation)` with fresh weights.
    pub fn new(
        channels: usize,
        squeeze: usize,
        activation: Activation,
        scale_activation: Activation,
        device: &Device,
    ) -> Self {
        Self {
            fc1: Conv2dConfig::new([channels, squeeze], [1, 1]).init(device),
            fc2: Conv2dConfig::new([squeeze, channels], [1, 1]).init(device),
            activation,
            scale_activation,
        }
    }
}

/// torchvision's `_make_divisible(v, divisor)`: `v` rounded to the nearest multiple of
/// `divisor` (at least `divisor`), never more than 10% below `v`.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = divisor.max(((v + d / 2.0) as usize) / divisor * divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// torchvision.ops' `StochasticDepth(p, mode)`: identity in eval mode (no parameters).
#[derive(Module, Debug)]
pub struct StochasticDepth {
    /// Probability of dropping a sample (`row`) or the batch.
    #[module(skip)]
    pub p: f64,
    /// `mode="row"`, else `"batch"`.
    #[module(skip)]
    pub row: bool,
}
