//! torchvision's MNASNet: "MnasNet: Platform-Aware Neural Architecture Search for Mobile"
//! (Tan et al., 2019), a stem of plain and depthwise-separable convolutions, six stacks of
//! inverted residuals, a 1x1 convolution to 1280 channels, a spatial mean and a classifier.

use burn::prelude::*;
use featx_graph::NodeId;

use crate::registry::{Architecture, Init, Row};
use crate::sequential::{SeqModule, sequential};
use crate::{FeatureModel, Tracer};

/// torchvision's `_InvertedResidual`: expand 1x1, depthwise, project 1x1 (each with
/// BatchNorm, ReLU after the first two), plus the input when shapes allow.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    layers: Vec<SeqModule>,
    /// `in_ch == out_ch and stride == 1`.
    #[module(skip)]
    residual: bool,
}

impl InvertedResidual {
    fn new(io: [usize; 2], kernel: usize, stride: usize, expansion: usize, d: &Device) -> Self {
        let [in_ch, out_ch] = io;
        let mid = in_ch * expansion;
        InvertedResidual {
            layers: vec![
                SeqModule::conv([in_ch, mid], 1, 1, 1, d),
                SeqModule::batch_norm2d(mid, d),
                SeqModule::relu(),
                SeqModule::conv([mid, mid], kernel, stride, mid, d),
                SeqModule::batch_norm2d(mid, d),
                SeqModule::relu(),
                SeqModule::conv([mid, out_ch], 1, 1, 1, d),
                SeqModule::batch_norm2d(out_ch, d),
            ],
            residual: in_ch == out_ch && stride == 1,
        }
    }

    /// `_InvertedResidual.forward`: `self.layers(input) + input` when residual.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let y = sequential(t, "layers", &self.layers, x);
        if self.residual { t.add(y, x) } else { y }
    }
}

/// One entry of MNASNet's `layers` Sequential.
// Built once per model and kept in a `Vec`: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum MnasLayer {
    /// A plain layer of the stem or the head.
    Layer(SeqModule),
    /// A stack of inverted residuals (torchvision's `_stack`, an `nn.Sequential`).
    Stack(Vec<InvertedResidual>),
}

/// torchvision's MNASNet: `layers`, `mean` over height and width, `classifier` (dropout,
/// linear).
#[derive(Module, Debug)]
pub struct MnasNet {
    layers: Vec<MnasLayer>,
    classifier: Vec<SeqModule>,
    #[module(skip)]
    name: String,
}

/// Configuration of a [`MnasNet`].
#[derive(Debug, Clone, PartialEq)]
pub struct MnasNetConfig {
    /// The architecture's name (`mnasnet1_0`).
    pub name: String,
    /// The depth multiplier (0.5, 0.75, 1.0, 1.3).
    pub alpha: f64,
    /// Classifier outputs.
    pub num_classes: usize,
    /// Dropout probability before the classifier.
    pub dropout: f64,
}

/// torchvision's `_round_to_multiple_of(val, divisor, 0.9)`.
fn round_to_multiple_of(val: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let rounded = divisor.max(((val + d / 2.0) as usize) / divisor * divisor);
    if rounded as f64 >= 0.9 * val {
        rounded
    } else {
        rounded + divisor
    }
}

impl MnasNetConfig {
    /// An MNASNet named `name` with depth multiplier `alpha`, 1000 classes, dropout 0.2.
    pub fn new(name: &str, alpha: f64) -> Self {
        Self {
            name: name.into(),
            alpha,
            num_classes: 1000,
            dropout: 0.2,
        }
    }

    /// The same configuration with `num_classes` outputs.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Builds the model with freshly initialised weights on `device` (torchvision's
    /// `MNASNet.__init__`, the current `_version` 2 layout).
    pub fn init(&self, device: &Device) -> MnasNet {
        let depths: Vec<usize> = [32, 16, 24, 40, 80, 96, 192, 320]
            .iter()
            .map(|&depth| round_to_multiple_of(depth as f64 * self.alpha, 8))
            .collect();
        let layer = MnasLayer::Layer;
        // (kernel, stride, expansion, repeats) of each stack, from depths[1..] to depths[2..].
        let stacks = [
            (3, 2, 3, 3),
            (5, 2, 3, 3),
            (5, 2, 6, 3),
            (3, 1, 6, 2),
            (5, 2, 6, 4),
            (3, 1, 6, 1),
        ];
        let mut layers = vec![
            layer(SeqModule::conv([3, depths[0]], 3, 2, 1, device)),
            layer(SeqModule::batch_norm2d(depths[0], device)),
            layer(SeqModule::relu()),
            layer(SeqModule::conv(
                [depths[0], depths[0]],
                3,
                1,
                depths[0],
                device,
            )),
            layer(SeqModule::batch_norm2d(depths[0], device)),
            layer(SeqModule::relu()),
            layer(SeqModule::conv([depths[0], depths[1]], 1, 1, 1, device)),
            layer(SeqModule::batch_norm2d(depths[1], device)),
        ];
        for (i, &(kernel, stride, expansion, repeats)) in stacks.iter().enumerate() {
            let (in_ch, out_ch) = (depths[i + 1], depths[i + 2]);
            let stack = (0..repeats)
                .map(|r| {
                    let (io, s) = if r == 0 {
                        ([in_ch, out_ch], stride)
                    } else {
                        ([out_ch, out_ch], 1)
                    };
                    InvertedResidual::new(io, kernel, s, expansion, device)
                })
                .collect();
            layers.push(MnasLayer::Stack(stack));
        }
        layers.extend([
            layer(SeqModule::conv([depths[7], 1280], 1, 1, 1, device)),
            layer(SeqModule::batch_norm2d(1280, device)),
            layer(SeqModule::relu()),
        ]);
        MnasNet {
            layers,
            classifier: vec![
                SeqModule::dropout(self.dropout),
                SeqModule::linear(1280, self.num_classes, device),
            ],
            name: self.name.clone(),
        }
    }
}

impl FeatureModel for MnasNet {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.scope("layers", |t| {
            self.layers.iter().enumerate().fold(x, |x, (i, entry)| {
                let name = i.to_string();
                match entry {
                    MnasLayer::Layer(layer) => layer.trace(t, &name, x),
                    MnasLayer::Stack(blocks) => t.scope(&name, |t| {
                        blocks.iter().enumerate().fold(x, |x, (j, block)| {
                            t.scope(&j.to_string(), |t| block.trace(t, x))
                        })
                    }),
                }
            })
        });
        let x = t.mean(x, &[2, 3]);
        sequential(t, "classifier", &self.classifier, x)
    }
}

/// A row of the MNASNet family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "MNASNet", about)
}

/// The MNASNet rows of [`crate::MODELS`].
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("mnasnet0_5", "torchvision's MNASNet, depth multiplier 0.5")
        .weights("MNASNet0_5_Weights.IMAGENET1K_V1", "mnasnet0.5_top1_67.823-3ffadce67e.pth")
        .model(&Init::new(|d, a| MnasNetConfig::new("mnasnet0_5", 0.5).with_num_classes(a.classes()).init(d))),
    row("mnasnet0_75", "torchvision's MNASNet, depth multiplier 0.75")
        .weights("MNASNet0_75_Weights.IMAGENET1K_V1", "mnasnet0_75-7090bc5f.pth")
        .resize(232)
        .model(&Init::new(|d, a| MnasNetConfig::new("mnasnet0_75", 0.75).with_num_classes(a.classes()).init(d))),
    row("mnasnet1_0", "torchvision's MNASNet, depth multiplier 1.0")
        .weights("MNASNet1_0_Weights.IMAGENET1K_V1", "mnasnet1.0_top1_73.512-f206786ef8.pth")
        .model(&Init::new(|d, a| MnasNetConfig::new("mnasnet1_0", 1.0).with_num_classes(a.classes()).init(d))),
    row("mnasnet1_3", "torchvision's MNASNet, depth multiplier 1.3")
        .weights("MNASNet1_3_Weights.IMAGENET1K_V1", "mnasnet1_3-a4c69d6f.pth")
        .resize(232)
        .model(&Init::new(|d, a| MnasNetConfig::new("mnasnet1_3", 1.3).with_num_classes(a.classes()).init(d))),
];
