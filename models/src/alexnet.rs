use burn::prelude::*;
use featx_graph::NodeId;

use crate::registry::{Architecture, Init, Row};
use crate::sequential::{SeqModule, sequential};
use crate::{FeatureModel, InputSpec, Tracer};

/// The seed article's AlexNet (not torchvision's, which is [`TorchvisionAlexNet`]): three
/// `nn.Sequential` feature stages and a classifier, flattened with `view(-1, 9216)`.
///
/// Parameter paths keep the `nn.Sequential` indices (`conv3.0`, `conv3.2`, `conv3.4`; `fc.0`,
/// `fc.3`, `fc.6`).
#[derive(Module, Debug)]
pub struct AlexNet {
    conv1: Vec<SeqModule>,
    conv2: Vec<SeqModule>,
    conv3: Vec<SeqModule>,
    fc: Vec<SeqModule>,
}

/// Configuration of the article's [`AlexNet`].
#[derive(Config, Debug)]
pub struct AlexNetConfig {
    /// Classifier outputs (the article uses 100).
    #[config(default = 100)]
    pub num_classes: usize,
}

/// Flattened feature size after `conv3` at 224x224 (`256 * 6 * 6`).
const FLAT: usize = 9216;
/// Dropout probability of the classifiers.
const DROPOUT: f64 = 0.5;

impl AlexNetConfig {
    /// Builds the model with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> AlexNet {
        use SeqModule as nn;
        let conv = |io, k, s, p| nn::conv2d(io, k, s, p, device);
        let linear = |i, o| nn::linear(i, o, device);
        AlexNet {
            conv1: vec![conv([3, 96], 11, 4, 2), nn::relu(), nn::max_pool2d(3, 2)],
            conv2: vec![conv([96, 256], 5, 1, 2), nn::relu(), nn::max_pool2d(3, 2)],
            conv3: vec![
                conv([256, 384], 3, 1, 1),
                nn::relu(),
                conv([384, 384], 3, 1, 1),
                nn::relu(),
                conv([384, 256], 3, 1, 1),
                nn::relu(),
                nn::max_pool2d(3, 2),
            ],
            fc: vec![
                linear(FLAT, 4096),
                nn::relu(),
                nn::dropout(DROPOUT),
                linear(4096, 4096),
                nn::relu(),
                nn::dropout(DROPOUT),
                linear(4096, self.num_classes),
            ],
        }
    }
}

impl FeatureModel for AlexNet {
    fn name(&self) -> &str {
        "alexnet"
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: 3,
            size: Some([224, 224]),
            nominal_size: [224, 224],
        }
    }

    /// `self.fc(self.conv3(self.conv2(self.conv1(x))).view(-1, 9216))`.
    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = sequential(t, "conv1", &self.conv1, x);
        let x = sequential(t, "conv2", &self.conv2, x);
        let x = sequential(t, "conv3", &self.conv3, x);
        let x = t.view(x, &[-1, FLAT as i64]);
        sequential(t, "fc", &self.fc, x)
    }
}

/// torchvision's `alexnet` (the "one weird trick" variant torchvision ships): `features`,
/// `avgpool` to 6x6, `flatten`, `classifier`.
#[derive(Module, Debug)]
pub struct TorchvisionAlexNet {
    features: Vec<SeqModule>,
    classifier: Vec<SeqModule>,
}

/// Configuration of [`TorchvisionAlexNet`].
#[derive(Config, Debug)]
pub struct TorchvisionAlexNetConfig {
    /// Classifier outputs.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout probability of the classifier.
    #[config(default = 0.5)]
    pub dropout: f64,
}

impl TorchvisionAlexNetConfig {
    /// Builds the model with freshly initialised weights on `device` (torchvision's
    /// `AlexNet.__init__`).
    pub fn init(&self, device: &Device) -> TorchvisionAlexNet {
        use SeqModule as nn;
        let conv = |io, k, s, p| nn::conv2d(io, k, s, p, device);
        let linear = |i, o| nn::linear(i, o, device);
        TorchvisionAlexNet {
            features: vec![
                conv([3, 64], 11, 4, 2),
                nn::relu(),
                nn::max_pool2d(3, 2),
                conv([64, 192], 5, 1, 2),
                nn::relu(),
                nn::max_pool2d(3, 2),
                conv([192, 384], 3, 1, 1),
                nn::relu(),
                conv([384, 256], 3, 1, 1),
                nn::relu(),
                conv([256, 256], 3, 1, 1),
                nn::relu(),
                nn::max_pool2d(3, 2),
            ],
            classifier: vec![
                nn::dropout(self.dropout),
                linear(256 * 6 * 6, 4096),
                nn::relu(),
                nn::dropout(self.dropout),
                linear(4096, 4096),
                nn::relu(),
                linear(4096, self.num_classes),
            ],
        }
    }
}

impl FeatureModel for TorchvisionAlexNet {
    fn name(&self) -> &str {
        "tv_alexnet"
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = sequential(t, "features", &self.features, x);
        let x = t.adaptive_avg_pool2d("avgpool", [6, 6], x);
        let x = t.flatten(x, 1);
        sequential(t, "classifier", &self.classifier, x)
    }
}

/// A row of the AlexNet family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "AlexNet", about)
}

/// The AlexNet rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("alexnet",
        "the seed article's AlexNet, 100 classes, 224x224 only (torchvision's: tv_alexnet)")
        .model(&Init::new(|d, a| {
            AlexNetConfig::new().with_num_classes(a.num_classes.unwrap_or(100)).init(d)
        })),
    row("tv_alexnet", "torchvision's alexnet")
        .weights("AlexNet_Weights.IMAGENET1K_V1", "alexnet-owt-7be5be79.pth")
        .model(&Init::new(|d, a| {
            TorchvisionAlexNetConfig::new().with_num_classes(a.classes()).init(d)
        })),
];
