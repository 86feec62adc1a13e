//! torchvision's SqueezeNet 1.0 and 1.1: "SqueezeNet: AlexNet-level accuracy with 50x fewer
//! parameters and <0.5MB model size" (Iandola et al., 2016), `Fire` modules between ceil-mode
//! max pools and a convolutional classifier.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use featx_graph::{NodeId, Window2d};

use crate::registry::{Architecture, Init, Row};
use crate::sequential::{MaxPool, SeqModule, sequential};
use crate::{FeatureModel, Tracer};

/// torchvision's `Fire`: a 1x1 squeeze, then 1x1 and 3x3 expands concatenated on channels.
#[derive(Module, Debug)]
pub struct Fire {
    squeeze: Conv2d,
    expand1x1: Conv2d,
    expand3x3: Conv2d,
}

impl Fire {
    /// `Fire(inplanes, squeeze_planes, expand1x1_planes, expand3x3_planes)`.
    fn new(
        inplanes: usize,
        squeeze: usize,
        expand1x1: usize,
        expand3x3: usize,
        d: &Device,
    ) -> Self {
        let conv = |channels: [usize; 2], kernel: usize| {
            Conv2dConfig::new(channels, [kernel, kernel])
                .with_padding(PaddingConfig2d::Explicit(
                    kernel / 2,
                    kernel / 2,
                    kernel / 2,
                    kernel / 2,
                ))
                .init(d)
        };
        Fire {
            squeeze: conv([inplanes, squeeze], 1),
            expand1x1: conv([squeeze, expand1x1], 1),
            expand3x3: conv([squeeze, expand3x3], 3),
        }
    }

    /// `Fire.forward`.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.conv2d("squeeze", &self.squeeze, x);
        let x = t.relu("squeeze_activation", x);
        let a = t.conv2d("expand1x1", &self.expand1x1, x);
        let a = t.relu("expand1x1_activation", a);
        let b = t.conv2d("expand3x3", &self.expand3x3, x);
        let b = t.relu("expand3x3_activation", b);
        t.cat(&[a, b], 1)
    }
}

/// One entry of SqueezeNet's `features` Sequential.
// Built once per model and kept in a `Vec`: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum SqueezeFeature {
    /// A plain layer (the stem convolution, ReLU, max pools).
    Layer(SeqModule),
    /// A [`Fire`] module.
    Fire(Fire),
}

/// torchvision's SqueezeNet: `features`, `classifier` (dropout, 1x1 convolution, ReLU, global
/// average pool), `flatten`.
#[derive(Module, Debug)]
pub struct SqueezeNet {
    features: Vec<SqueezeFeature>,
    /// `classifier.0` to `classifier.2`; `classifier.3`, the pool, has no parameters.
    classifier: Vec<SeqModule>,
    #[module(skip)]
    name: String,
}

/// Which SqueezeNet (torchvision's `version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqueezeNetVersion {
    /// `squeezenet1_0`: a 7x7 stem with 96 channels.
    V1_0,
    /// `squeezenet1_1`: a 3x3 stem with 64 channels and earlier pools (2.4x less compute).
    V1_1,
}

/// Configuration of a [`SqueezeNet`].
#[derive(Debug, Clone, PartialEq)]
pub struct SqueezeNetConfig {
    /// Which layout.
    pub version: SqueezeNetVersion,
    /// Classifier outputs.
    pub num_classes: usize,
    /// Dropout probability before the classifier's convolution.
    pub dropout: f64,
}

impl SqueezeNetConfig {
    /// `version` with 1000 classes and dropout 0.5.
    pub fn new(version: SqueezeNetVersion) -> Self {
        Self {
            version,
            num_classes: 1000,
            dropout: 0.5,
        }
    }

    /// The same configuration with `num_classes` outputs.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Builds the model with freshly initialised weights on `device` (torchvision's
    /// `SqueezeNet.__init__`).
    pub fn init(&self, device: &Device) -> SqueezeNet {
        let layer = SqueezeFeature::Layer;
        let pool = || {
            SqueezeFeature::Layer(SeqModule::MaxPool2d(MaxPool {
                window: Window2d::square(3, 2, 0),
                ceil_mode: true,
            }))
        };
        let fire = |i, s, e1, e3| SqueezeFeature::Fire(Fire::new(i, s, e1, e3, device));
        let (name, features) = match self.version {
            SqueezeNetVersion::V1_0 => (
                "squeezenet1_0",
                vec![
                    layer(SeqModule::conv2d([3, 96], 7, 2, 0, device)),
                    layer(SeqModule::relu()),
                    pool(),
                    fire(96, 16, 64, 64),
                    fire(128, 16, 64, 64),
                    fire(128, 32, 128, 128),
                    pool(),
                    fire(256, 32, 128, 128),
                    fire(256, 48, 192, 192),
                    fire(384, 48, 192, 192),
                    fire(384, 64, 256, 256),
                    pool(),
                    fire(512, 64, 256, 256),
                ],
            ),
            SqueezeNetVersion::V1_1 => (
                "squeezenet1_1",
                vec![
                    layer(SeqModule::conv2d([3, 64], 3, 2, 0, device)),
                    layer(SeqModule::relu()),
                    pool(),
                    fire(64, 16, 64, 64),
                    fire(128, 16, 64, 64),
                    pool(),
                    fire(128, 32, 128, 128),
                    fire(256, 32, 128, 128),
                    pool(),
                    fire(256, 48, 192, 192),
                    fire(384, 48, 192, 192),
                    fire(384, 64, 256, 256),
                    fire(512, 64, 256, 256),
                ],
            ),
        };
        SqueezeNet {
            features,
            classifier: vec![
                SeqModule::dropout(self.dropout),
                SeqModule::conv2d([512, self.num_classes], 1, 1, 0, device),
                SeqModule::relu(),
            ],
            name: name.into(),
        }
    }
}

impl FeatureModel for SqueezeNet {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.scope("features", |t| {
            self.features
                .iter()
                .enumerate()
                .fold(x, |x, (i, feature)| match feature {
                    SqueezeFeature::Layer(layer) => layer.trace(t, &i.to_string(), x),
                    SqueezeFeature::Fire(fire) => t.scope(&i.to_string(), |t| fire.trace(t, x)),
                })
        });
        let x = sequential(t, "classifier", &self.classifier, x);
        let x = t.scope("classifier", |t| t.adaptive_avg_pool2d("3", [1, 1], x));
        t.flatten(x, 1)
    }
}

/// A row of the SqueezeNet family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "SqueezeNet", about)
}

/// The SqueezeNet rows of [`crate::MODELS`].
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("squeezenet1_0", "torchvision's SqueezeNet 1.0")
        .weights("SqueezeNet1_0_Weights.IMAGENET1K_V1", "squeezenet1_0-b66bff10.pth")
        .model(&Init::new(|d, a| {
            SqueezeNetConfig::new(SqueezeNetVersion::V1_0).with_num_classes(a.classes()).init(d)
        })),
    row("squeezenet1_1", "torchvision's SqueezeNet 1.1")
        .weights("SqueezeNet1_1_Weights.IMAGENET1K_V1", "squeezenet1_1-b8a52dc0.pth")
        .model(&Init::new(|d, a| {
            SqueezeNetConfig::new(SqueezeNetVersion::V1_1).with_num_classes(a.classes()).init(d)
        })),
];
