//! torchvision's VGG: the model, its configuration, and the layouts of `cfgs` (`VGG11` is
//! `cfgs["A"]`, with [`M`] for a max pool).

use burn::prelude::*;
use featx_graph::NodeId;

use crate::registry::{Architecture, Init, Row};
use crate::sequential::{SeqModule, sequential};
use crate::{FeatureModel, Tracer};

/// torchvision's VGG (VGG11/13/16/19, with or without BatchNorm): `features`, `avgpool`,
/// `flatten`, `classifier`.
#[derive(Module, Debug)]
pub struct Vgg {
    features: Vec<SeqModule>,
    classifier: Vec<SeqModule>,
    /// The architecture's name, from its configuration.
    #[module(skip)]
    name: String,
}

/// A max pool in a VGG layout (`"M"` in torchvision's `cfgs`).
pub const M: usize = 0;

/// torchvision's `cfgs["A"]`: VGG11.
pub const VGG11: &[usize] = &[64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
/// torchvision's `cfgs["B"]`: VGG13.
pub const VGG13: &[usize] = &[
    64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M,
];
/// torchvision's `cfgs["D"]`: VGG16.
pub const VGG16: &[usize] = &[
    64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M,
];
/// torchvision's `cfgs["E"]`: VGG19.
pub const VGG19: &[usize] = &[
    64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M,
];

/// Configuration of a [`Vgg`].
#[derive(Debug, Clone, PartialEq)]
pub struct VggConfig {
    /// The architecture's name (`vgg16_bn`), which the model reports.
    pub name: String,
    /// The `features` layout: output channels of each 3x3 convolution, [`M`] for a max pool.
    pub layout: Vec<usize>,
    /// A BatchNorm after every convolution (the `_bn` variants).
    pub batch_norm: bool,
    /// Classifier outputs.
    pub num_classes: usize,
    /// Dropout probability of the classifier.
    pub dropout: f64,
}

impl VggConfig {
    /// A VGG named `name` with this layout, 1000 classes and dropout 0.5.
    pub fn new(name: &str, layout: &[usize], batch_norm: bool) -> Self {
        Self {
            name: name.into(),
            layout: layout.to_vec(),
            batch_norm,
            num_classes: 1000,
            dropout: 0.5,
        }
    }

    /// The same configuration with `num_classes` outputs.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// torchvision's `vgg11`.
    pub fn vgg11(num_classes: usize) -> Self {
        Self::new("vgg11", VGG11, false).with_num_classes(num_classes)
    }

    /// torchvision's `vgg11_bn`.
    pub fn vgg11_bn(num_classes: usize) -> Self {
        Self::new("vgg11_bn", VGG11, true).with_num_classes(num_classes)
    }

    /// torchvision's `vgg13`.
    pub fn vgg13(num_classes: usize) -> Self {
        Self::new("vgg13", VGG13, false).with_num_classes(num_classes)
    }

    /// torchvision's `vgg13_bn`.
    pub fn vgg13_bn(num_classes: usize) -> Self {
        Self::new("vgg13_bn", VGG13, true).with_num_classes(num_classes)
    }

    /// torchvision's `vgg16`.
    pub fn vgg16(num_classes: usize) -> Self {
        Self::new("vgg16", VGG16, false).with_num_classes(num_classes)
    }

    /// torchvision's `vgg16_bn`.
    pub fn vgg16_bn(num_classes: usize) -> Self {
        Self::new("vgg16_bn", VGG16, true).with_num_classes(num_classes)
    }

    /// torchvision's `vgg19`.
    pub fn vgg19(num_classes: usize) -> Self {
        Self::new("vgg19", VGG19, false).with_num_classes(num_classes)
    }

    /// torchvision's `vgg19_bn`.
    pub fn vgg19_bn(num_classes: usize) -> Self {
        Self::new("vgg19_bn", VGG19, true).with_num_classes(num_classes)
    }

    /// Builds the model with freshly initialised weights on `device` (torchvision's
    /// `VGG.__init__` and `make_layers`).
    pub fn init(&self, device: &Device) -> Vgg {
        let mut features = Vec::new();
        let mut in_channels = 3;
        for &v in &self.layout {
            if v == M {
                features.push(SeqModule::max_pool2d(2, 2));
            } else {
                features.push(SeqModule::conv2d([in_channels, v], 3, 1, 1, device));
                if self.batch_norm {
                    features.push(SeqModule::batch_norm2d(v, device));
                }
                features.push(SeqModule::relu());
                in_channels = v;
            }
        }
        let classifier = vec![
            SeqModule::linear(512 * 7 * 7, 4096, device),
            SeqModule::relu(),
            SeqModule::dropout(self.dropout),
            SeqModule::linear(4096, 4096, device),
            SeqModule::relu(),
            SeqModule::dropout(self.dropout),
            SeqModule::linear(4096, self.num_classes, device),
        ];
        Vgg {
            features,
            classifier,
            name: self.name.clone(),
        }
    }
}

impl FeatureModel for Vgg {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = sequential(t, "features", &self.features, x);
        let x = t.adaptive_avg_pool2d("avgpool", [7, 7], x);
        let x = t.flatten(x, 1);
        sequential(t, "classifier", &self.classifier, x)
    }
}

/// A row of the VGG family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "VGG", about)
}

/// The VGG rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("vgg11", "torchvision's VGG11")
        .weights("VGG11_Weights.IMAGENET1K_V1", "vgg11-8a719046.pth")
        .model(&Init::new(|d, a| VggConfig::vgg11(a.classes()).init(d))),
    row("vgg11_bn", "torchvision's VGG11 with BatchNorm")
        .weights("VGG11_BN_Weights.IMAGENET1K_V1", "vgg11_bn-6002323d.pth")
        .model(&Init::new(|d, a| VggConfig::vgg11_bn(a.classes()).init(d))),
    row("vgg13", "torchvision's VGG13")
        .weights("VGG13_Weights.IMAGENET1K_V1", "vgg13-19584684.pth")
        .model(&Init::new(|d, a| VggConfig::vgg13(a.classes()).init(d))),
    row("vgg13_bn", "torchvision's VGG13 with BatchNorm")
        .weights("VGG13_BN_Weights.IMAGENET1K_V1", "vgg13_bn-abd245e5.pth")
        .model(&Init::new(|d, a| VggConfig::vgg13_bn(a.classes()).init(d))),
    row("vgg16", "torchvision's VGG16")
        .weights("VGG16_Weights.IMAGENET1K_V1", "vgg16-397923af.pth")
        .model(&Init::new(|d, a| VggConfig::vgg16(a.classes()).init(d))),
    row("vgg16_bn", "torchvision's VGG16 with BatchNorm")
        .weights("VGG16_BN_Weights.IMAGENET1K_V1", "vgg16_bn-6c64b313.pth")
        .model(&Init::new(|d, a| VggConfig::vgg16_bn(a.classes()).init(d))),
    row("vgg19", "torchvision's VGG19")
        .weights("VGG19_Weights.IMAGENET1K_V1", "vgg19-dcbb9e9d.pth")
        .model(&Init::new(|d, a| VggConfig::vgg19(a.classes()).init(d))),
    row("vgg19_bn", "torchvision's VGG19 with BatchNorm")
        .weights("VGG19_BN_Weights.IMAGENET1K_V1", "vgg19_bn-c79401a0.pth")
        .model(&Init::new(|d, a| VggConfig::vgg19_bn(a.classes()).init(d))),
];
