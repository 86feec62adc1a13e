//! torchvision's EfficientNet B0 to B7.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use featx_graph::{Activation, NodeId};

use crate::misc::make_divisible;
use crate::misc::{ConvNormActivation, ConvNormConfig, SqueezeExcitation, StochasticDepth};
use crate::mobilenet::{MobileModule, sequence};
use crate::registry::{Architecture, Init, Interpolation, Preprocessing, Row};
use crate::sequential::Dropout;
use crate::{FeatureModel, Tracer};

/// torchvision's `MBConv`: `block` (1x1 expansion unless the ratio is 1, depthwise,
/// squeeze-excitation, 1x1 projection), then, when the shape is kept, stochastic depth and
/// the input added.
#[derive(Module, Debug)]
pub struct MBConv {
    block: Vec<MobileModule>,
    stochastic_depth: StochasticDepth,
    #[module(skip)]
    use_res_connect: bool,
}

impl MBConv {
    /// `MBConv.forward`.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let result = sequence(t, "block", &self.block, x);
        if self.use_res_connect {
            let sd = &self.stochastic_depth;
            let result = t.stochastic_depth("stochastic_depth", sd.p, sd.row, result);
            t.add(result, x)
        } else {
            result
        }
    }
}

/// One entry of EfficientNet's `features`: the first and last `Conv2dNormActivation`, or a
/// stage of `MBConv`s.
// Built once per model and kept in a `Vec`: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum EfficientNetFeature {
    /// A `Conv2dNormActivation`.
    ConvNormActivation(ConvNormActivation),
    /// An `nn.Sequential` of `MBConv`s.
    Stage(Vec<MBConv>),
}

/// torchvision's EfficientNet (V1).
#[derive(Module, Debug)]
pub struct EfficientNet {
    features: Vec<EfficientNetFeature>,
    classifier: (Dropout, Linear),
    #[module(skip)]
    name: String,
}

/// Configuration of an [`EfficientNet`], as torchvision's `efficientnet_bN` builders set it.
#[derive(Debug, Clone, PartialEq)]
pub struct EfficientNetConfig {
    /// The architecture's name (`efficientnet_b0`).
    pub name: String,
    /// Channel multiplier.
    pub width_mult: f64,
    /// Depth multiplier.
    pub depth_mult: f64,
    /// Classifier dropout.
    pub dropout: f64,
    /// BatchNorm's epsilon (1e-3 from B5 on).
    pub eps: f64,
    /// Stochastic depth probability of the last block (0.2).
    pub stochastic_depth_prob: f64,
    /// Classifier outputs.
    pub num_classes: usize,
}

/// One stage of the B0 table: expansion, kernel, stride, input and output channels, blocks.
type Stage = (usize, usize, usize, usize, usize, usize);

const STAGES: [Stage; 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

impl EfficientNetConfig {
    /// `efficientnet_b<variant>` (0 to 7; others are B7) with `num_classes` outputs.
    pub fn b(variant: u8, num_classes: usize) -> Self {
        let (width_mult, depth_mult, dropout) = match variant {
            0 => (1.0, 1.0, 0.2),
            1 => (1.0, 1.1, 0.2),
            2 => (1.1, 1.2, 0.3),
            3 => (1.2, 1.4, 0.3),
            4 => (1.4, 1.8, 0.4),
            5 => (1.6, 2.2, 0.4),
            6 => (1.8, 2.6, 0.5),
            _ => (2.0, 3.1, 0.5),
        };
        let variant = variant.min(7);
        Self {
            name: format!("efficientnet_b{variant}"),
            width_mult,
            depth_mult,
            dropout,
            eps: if variant >= 5 { 1e-3 } else { 1e-5 },
            stochastic_depth_prob: 0.2,
            num_classes,
        }
    }

    fn channels(&self, c: usize) -> usize {
        make_divisible(c as f64 * self.width_mult, 8)
    }

    fn depth(&self, n: usize) -> usize {
        (n as f64 * self.depth_mult).ceil() as usize
    }

    /// Builds the model with fresh weights on `device` (torchvision's
    /// `_efficientnet_conf` and `EfficientNet.__init__`).
    pub fn init(&self, device: &Device) -> EfficientNet {
        let silu = Some(Activation::Silu);
        let conv = |channels, kernel, stride, activation| {
            ConvNormConfig::new(channels, kernel, stride, activation).with_eps(self.eps)
        };
        let first = self.channels(STAGES[0].3);
        let mut features = vec![EfficientNetFeature::ConvNormActivation(
            conv([3, first], 3, 2, silu).init(device),
        )];
        let total: usize = STAGES.iter().map(|s| self.depth(s.5)).sum();
        let mut block_id = 0;
        for (expand, kernel, stride, input, out, n) in STAGES {
            let (input, out) = (self.channels(input), self.channels(out));
            let stage = (0..self.depth(n))
                .map(|i| {
                    let (input, stride) = if i == 0 { (input, stride) } else { (out, 1) };
                    let expanded = make_divisible((input * expand) as f64, 8);
                    let mut block = Vec::new();
                    if expanded != input {
                        block.push(MobileModule::ConvNormActivation(
                            conv([input, expanded], 1, 1, silu).init(device),
                        ));
                    }
                    block.push(MobileModule::ConvNormActivation(
                        conv([expanded, expanded], kernel, stride, silu)
                            .with_groups(expanded)
                            .init(device),
                    ));
                    block.push(MobileModule::SqueezeExcitation(SqueezeExcitation::new(
                        expanded,
                        (input / 4).max(1),
                        Activation::Silu,
                        Activation::Sigmoid,
                        device,
                    )));
                    block.push(MobileModule::ConvNormActivation(
                        conv([expanded, out], 1, 1, None).init(device),
                    ));
                    let p = self.stochastic_depth_prob * block_id as f64 / total as f64;
                    block_id += 1;
                    MBConv {
                        block,
                        stochastic_depth: StochasticDepth { p, row: true },
                        use_res_connect: stride == 1 && input == out,
                    }
                })
                .collect();
            features.push(EfficientNetFeature::Stage(stage));
        }
        let last_in = self.channels(STAGES[6].4);
        let last_out = 4 * last_in;
        features.push(EfficientNetFeature::ConvNormActivation(
            conv([last_in, last_out], 1, 1, silu).init(device),
        ));
        EfficientNet {
            features,
            classifier: (
                Dropout { p: self.dropout },
                LinearConfig::new(last_out, self.num_classes).init(device),
            ),
            name: self.name.clone(),
        }
    }
}

impl FeatureModel for EfficientNet {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.scope("features", |t| {
            self.features.iter().enumerate().fold(x, |x, (i, f)| {
                let name = i.to_string();
                match f {
                    EfficientNetFeature::ConvNormActivation(m) => {
                        t.conv_norm_activation(&name, m, x)
                    }
                    EfficientNetFeature::Stage(blocks) => t.scope(&name, |t| {
                        blocks.iter().enumerate().fold(x, |x, (j, block)| {
                            t.scope(&j.to_string(), |t| block.trace(t, x))
                        })
                    }),
                }
            })
        });
        let x = t.adaptive_avg_pool2d("avgpool", [1, 1], x);
        let x = t.flatten(x, 1);
        t.scope("classifier", |t| {
            let x = t.dropout("0", self.classifier.0.p, x);
            t.linear("1", &self.classifier.1, x)
        })
    }
}

/// A row of the EfficientNet family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "EfficientNet", about)
}

/// The EfficientNet rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("efficientnet_b0", "torchvision's EfficientNet-B0 (MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_B0_Weights.IMAGENET1K_V1", "efficientnet_b0_rwightman-7f5810bc.pth")
        .preprocess(Preprocessing::sized(256, 224, Interpolation::Bicubic))
        .model(&Init::new(|d, a| EfficientNetConfig::b(0, a.classes()).init(d))),
    row("efficientnet_b1", "torchvision's EfficientNet-B1 (MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_B1_Weights.IMAGENET1K_V2", "efficientnet_b1-c27df63c.pth")
        .preprocess(Preprocessing::sized(255, 240, Interpolation::Bilinear))
        .model(&Init::new(|d, a| EfficientNetConfig::b(1, a.classes()).init(d))),
    row("efficientnet_b2", "torchvision's EfficientNet-B2 (MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_B2_Weights.IMAGENET1K_V1", "efficientnet_b2_rwightman-c35c1473.pth")
        .preprocess(Preprocessing::sized(288, 288, Interpolation::Bicubic))
        .model(&Init::new(|d, a| EfficientNetConfig::b(2, a.classes()).init(d))),
    row("efficientnet_b3", "torchvision's EfficientNet-B3 (MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_B3_Weights.IMAGENET1K_V1", "efficientnet_b3_rwightman-b3899882.pth")
        .preprocess(Preprocessing::sized(320, 300, Interpolation::Bicubic))
        .model(&Init::new(|d, a| EfficientNetConfig::b(3, a.classes()).init(d))),
    row("efficientnet_b4", "torchvision's EfficientNet-B4 (MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_B4_Weights.IMAGENET1K_V1", "efficientnet_b4_rwightman-23ab8bcd.pth")
        .preprocess(Preprocessing::sized(384, 380, Interpolation::Bicubic))
        .model(&Init::new(|d, a| EfficientNetConfig::b(4, a.classes()).init(d))),
    row("efficientnet_b5", "torchvision's EfficientNet-B5 (MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_B5_Weights.IMAGENET1K_V1", "efficientnet_b5_lukemelas-1a07897c.pth")
        .preprocess(Preprocessing::sized(456, 456, Interpolation::Bicubic))
        .model(&Init::new(|d, a| EfficientNetConfig::b(5, a.classes()).init(d))),
    row("efficientnet_b6", "torchvision's EfficientNet-B6 (MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_B6_Weights.IMAGENET1K_V1", "efficientnet_b6_lukemelas-24a108a5.pth")
        .preprocess(Preprocessing::sized(528, 528, Interpolation::Bicubic))
        .model(&Init::new(|d, a| EfficientNetConfig::b(6, a.classes()).init(d))),
    row("efficientnet_b7", "torchvision's EfficientNet-B7 (MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_B7_Weights.IMAGENET1K_V1", "efficientnet_b7_lukemelas-c5b4e57e.pth")
        .preprocess(Preprocessing::sized(600, 600, Interpolation::Bicubic))
        .model(&Init::new(|d, a| EfficientNetConfig::b(7, a.classes()).init(d))),
];
