use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use featx_graph::{NodeId, Window2d};

use crate::Tracer;

/// One entry of an `nn.Sequential`, as torchvision's classification models fill them.
///
/// A `Vec<SeqModule>` field is an `nn.Sequential`: an entry's index is its module path
/// (`features.3`), and only entries with parameters have state-dict keys, so the keys keep
/// torchvision's gaps (`features.0.weight`, `features.3.weight`). Burn names no enum variant in
/// a parameter path.
#[derive(Module, Debug)]
pub enum SeqModule {
    /// `nn.Conv2d`.
    Conv2d(Conv2d),
    /// `nn.BatchNorm2d`.
    BatchNorm2d(BatchNorm),
    /// `nn.Linear`.
    Linear(Linear),
    /// `nn.ReLU`.
    ReLU(Relu),
    /// `nn.MaxPool2d`.
    MaxPool2d(MaxPool),
    /// `nn.Dropout`.
    Dropout(Dropout),
}

/// `nn.MaxPool2d`'s window (it has no parameters).
#[derive(Module, Debug)]
pub struct MaxPool {
    /// Kernel, stride, padding, dilation.
    #[module(skip)]
    pub window: Window2d,
    /// Round the output size up instead of down.
    #[module(skip)]
    pub ceil_mode: bool,
}

/// `nn.Dropout`'s probability (it has no parameters).
#[derive(Module, Debug)]
pub struct Dropout {
    /// Probability of zeroing an element in train mode.
    #[module(skip)]
    pub p: f64,
}

impl SeqModule {
    /// A bias-free `nn.Conv2d` with padding `kernel / 2` and `groups`: the convolution of
    /// MNASNet's and ShuffleNetV2's `nn.Sequential` blocks.
    pub(crate) fn conv(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        groups: usize,
        d: &Device,
    ) -> SeqModule {
        let p = kernel / 2;
        SeqModule::Conv2d(
            Conv2dConfig::new(channels, [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_groups(groups)
                .with_bias(false)
                .init(d),
        )
    }

    /// `nn.Conv2d(in_channels, out_channels, kernel, stride, padding)` with a bias.
    pub fn conv2d(
        [in_channels, out_channels]: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: usize,
        device: &Device,
    ) -> Self {
        Self::Conv2d(
            Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(
                    padding, padding, padding, padding,
                ))
                .init(device),
        )
    }

    /// `nn.BatchNorm2d(features)` (eps 1e-5).
    pub fn batch_norm2d(features: usize, device: &Device) -> Self {
        Self::BatchNorm2d(BatchNormConfig::new(features).init(device))
    }

    /// `nn.Linear(in_features, out_features)` with a bias.
    pub fn linear(in_features: usize, out_features: usize, device: &Device) -> Self {
        Self::Linear(LinearConfig::new(in_features, out_features).init(device))
    }

    /// `nn.ReLU()`.
    pub fn relu() -> Self {
        Self::ReLU(Relu)
    }

    /// `nn.MaxPool2d(kernel, stride)`: no padding, rounding down.
    pub fn max_pool2d(kernel: usize, stride: usize) -> Self {
        Self::MaxPool2d(MaxPool {
            window: Window2d::square(kernel, stride, 0),
            ceil_mode: false,
        })
    }

    /// `nn.Dropout(p)`.
    pub fn dropout(p: f64) -> Self {
        Self::Dropout(Dropout { p })
    }

    /// This entry's call at `name` (its index in the sequence).
    pub(crate) fn trace(&self, t: &mut Tracer, name: &str, x: NodeId) -> NodeId {
        match self {
            Self::Conv2d(conv) => t.conv2d(name, conv, x),
            Self::BatchNorm2d(bn) => t.batch_norm(name, bn, x),
            Self::Linear(linear) => t.linear(name, linear, x),
            Self::ReLU(_) => t.relu(name, x),
            Self::MaxPool2d(pool) => t.max_pool2d(name, pool.window, pool.ceil_mode, x),
            Self::Dropout(dropout) => t.dropout(name, dropout.p, x),
        }
    }
}

/// `nn.Sequential.forward` of the submodule `name`: every entry in turn, each named by its
/// index (`features.0`, `features.1`, ...).
pub fn sequential(t: &mut Tracer, name: &str, modules: &[SeqModule], x: NodeId) -> NodeId {
    t.scope(name, |t| {
        modules
            .iter()
            .enumerate()
            .fold(x, |x, (i, module)| module.trace(t, &i.to_string(), x))
    })
}
