//! torchvision's EfficientNet B0 to B7 (EfficientNet: Rethinking Model Scaling for
//! Convolutional Neural Networks, Tan & Le, 2019) and EfficientNetV2-S, -M and -L
//! (EfficientNetV2: Smaller Models and Faster Training, Tan & Le, 2021): one `EfficientNet`
//! class in torchvision, one here, the versions differing in their stage tables.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use featx_graph::{Activation, NodeId};

use crate::misc::make_divisible;
use crate::misc::{ConvNormActivation, ConvNormConfig, SqueezeExcitation, StochasticDepth};
use crate::mobilenet::{MobileModule, sequence};
use crate::registry::{Architecture, Init, Interpolation, Preprocessing, Row};
use crate::sequential::Dropout;
use crate::{FeatureModel, Tracer};

/// torchvision's `MBConv` and `FusedMBConv`: `block`, then, when the shape is kept,
/// stochastic depth and the input added. The two classes' forwards and module names are the
/// same; only what `block` holds differs (see [`MBConvKind`]), so one type serves both.
#[derive(Module, Debug)]
pub struct MBConv {
    block: Vec<MobileModule>,
    stochastic_depth: StochasticDepth,
    #[module(skip)]
    use_res_connect: bool,
}

impl MBConv {
    /// `MBConv.forward` (and `FusedMBConv.forward`).
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

/// Which block a stage repeats: EfficientNetV2 fuses its early stages' expansion and
/// depthwise convolutions into one, which runs faster on accelerators at small widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MBConvKind {
    /// `MBConv`: 1x1 expansion unless the ratio is 1, depthwise convolution,
    /// squeeze-excitation, 1x1 projection.
    MBConv,
    /// `FusedMBConv`: a full convolution expanding, then a 1x1 projection; a single full
    /// convolution when the ratio is 1. No squeeze-excitation.
    Fused,
}

/// One row of torchvision's `inverted_residual_setting` (Table 1 of the EfficientNet paper,
/// Table 4 of EfficientNetV2's), before width and depth scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageConfig {
    /// `MBConv` or `FusedMBConv`.
    pub kind: MBConvKind,
    /// Expansion ratio of the hidden channels.
    pub expand_ratio: usize,
    /// Square kernel size of the depthwise (or fused) convolution.
    pub kernel: usize,
    /// Stride of the stage's first block (the others keep the size).
    pub stride: usize,
    /// Input channels of the stage's first block.
    pub input_channels: usize,
    /// Output channels of every block.
    pub out_channels: usize,
    /// Blocks in the stage.
    pub num_layers: usize,
}

/// An `MBConvConfig(expand_ratio, kernel, stride, input, out, layers)` row.
const fn mb(expand: usize, kernel: usize, stride: usize, io: [usize; 2], n: usize) -> StageConfig {
    StageConfig {
        kind: MBConvKind::MBConv,
        expand_ratio: expand,
        kernel,
        stride,
        input_channels: io[0],
        out_channels: io[1],
        num_layers: n,
    }
}

/// A `FusedMBConvConfig(expand_ratio, kernel, stride, input, out, layers)` row.
const fn fused(
    expand: usize,
    kernel: usize,
    stride: usize,
    io: [usize; 2],
    n: usize,
) -> StageConfig {
    StageConfig {
        kind: MBConvKind::Fused,
        ..mb(expand, kernel, stride, io, n)
    }
}

/// The B0 table, which width and depth multipliers scale into B1 to B7.
const STAGES_B: [StageConfig; 7] = [
    mb(1, 3, 1, [32, 16], 1),
    mb(6, 3, 2, [16, 24], 2),
    mb(6, 5, 2, [24, 40], 2),
    mb(6, 3, 2, [40, 80], 3),
    mb(6, 5, 1, [80, 112], 3),
    mb(6, 5, 2, [112, 192], 4),
    mb(6, 3, 1, [192, 320], 1),
];

/// EfficientNetV2-S.
const STAGES_V2_S: [StageConfig; 6] = [
    fused(1, 3, 1, [24, 24], 2),
    fused(4, 3, 2, [24, 48], 4),
    fused(4, 3, 2, [48, 64], 4),
    mb(4, 3, 2, [64, 128], 6),
    mb(6, 3, 1, [128, 160], 9),
    mb(6, 3, 2, [160, 256], 15),
];

/// EfficientNetV2-M.
const STAGES_V2_M: [StageConfig; 7] = [
    fused(1, 3, 1, [24, 24], 3),
    fused(4, 3, 2, [24, 48], 5),
    fused(4, 3, 2, [48, 80], 5),
    mb(4, 3, 2, [80, 160], 7),
    mb(6, 3, 1, [160, 176], 14),
    mb(6, 3, 2, [176, 304], 18),
    mb(6, 3, 1, [304, 512], 5),
];

/// EfficientNetV2-L.
const STAGES_V2_L: [StageConfig; 7] = [
    fused(1, 3, 1, [32, 32], 4),
    fused(4, 3, 2, [32, 64], 7),
    fused(4, 3, 2, [64, 96], 7),
    mb(4, 3, 2, [96, 192], 10),
    mb(6, 3, 1, [192, 224], 19),
    mb(6, 3, 2, [224, 384], 25),
    mb(6, 3, 1, [384, 640], 7),
];

/// One entry of EfficientNet's `features`: the first and last `Conv2dNormActivation`, or a
/// stage of `MBConv`s or `FusedMBConv`s.
// Built once per model and kept in a `Vec`: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum EfficientNetFeature {
    /// A `Conv2dNormActivation`.
    ConvNormActivation(ConvNormActivation),
    /// An `nn.Sequential` of `MBConv`s or `FusedMBConv`s.
    Stage(Vec<MBConv>),
}

/// torchvision's EfficientNet (V1 and V2).
#[derive(Module, Debug)]
pub struct EfficientNet {
    features: Vec<EfficientNetFeature>,
    classifier: (Dropout, Linear),
    #[module(skip)]
    name: String,
}

/// Configuration of an [`EfficientNet`], as torchvision's `efficientnet_bN` and
/// `efficientnet_v2_*` builders set it.
#[derive(Debug, Clone, PartialEq)]
pub struct EfficientNetConfig {
    /// The architecture's name (`efficientnet_b0`).
    pub name: String,
    /// The stages before scaling (torchvision's `inverted_residual_setting`).
    pub stages: Vec<StageConfig>,
    /// Channel multiplier of the `MBConv` stages (1 for V2).
    pub width_mult: f64,
    /// Depth multiplier of the `MBConv` stages (1 for V2).
    pub depth_mult: f64,
    /// Output channels of the last convolution: 1280 for V2; `None` is V1's four times the
    /// last stage's.
    pub last_channel: Option<usize>,
    /// Classifier dropout.
    pub dropout: f64,
    /// BatchNorm's epsilon (1e-3 from B5 on and for V2).
    pub eps: f64,
    /// Stochastic depth probability of the last block (0.2).
    pub stochastic_depth_prob: f64,
    /// Classifier outputs.
    pub num_classes: usize,
}

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
            stages: STAGES_B.to_vec(),
            width_mult,
            depth_mult,
            last_channel: None,
            dropout,
            eps: if variant >= 5 { 1e-3 } else { 1e-5 },
            stochastic_depth_prob: 0.2,
            num_classes,
        }
    }

    /// `efficientnet_v2_s` with `num_classes` outputs.
    pub fn v2_s(num_classes: usize) -> Self {
        Self::v2("efficientnet_v2_s", &STAGES_V2_S, 0.2, num_classes)
    }

    /// `efficientnet_v2_m` with `num_classes` outputs.
    pub fn v2_m(num_classes: usize) -> Self {
        Self::v2("efficientnet_v2_m", &STAGES_V2_M, 0.3, num_classes)
    }

    /// `efficientnet_v2_l` with `num_classes` outputs.
    pub fn v2_l(num_classes: usize) -> Self {
        Self::v2("efficientnet_v2_l", &STAGES_V2_L, 0.4, num_classes)
    }

    /// What the V2 builders share: no scaling, a 1280-channel last convolution and
    /// BatchNorm's epsilon 1e-3.
    fn v2(name: &str, stages: &[StageConfig], dropout: f64, num_classes: usize) -> Self {
        Self {
            name: name.into(),
            stages: stages.to_vec(),
            width_mult: 1.0,
            depth_mult: 1.0,
            last_channel: Some(1280),
            dropout,
            eps: 1e-3,
            stochastic_depth_prob: 0.2,
            num_classes,
        }
    }

    /// `stage` as torchvision's config classes store it: `MBConvConfig` scales channels and
    /// depth, `FusedMBConvConfig` takes them as given.
    fn scaled(&self, stage: &StageConfig) -> StageConfig {
        match stage.kind {
            MBConvKind::Fused => *stage,
            MBConvKind::MBConv => StageConfig {
                input_channels: make_divisible(stage.input_channels as f64 * self.width_mult, 8),
                out_channels: make_divisible(stage.out_channels as f64 * self.width_mult, 8),
                num_layers: (stage.num_layers as f64 * self.depth_mult).ceil() as usize,
                ..*stage
            },
        }
    }

    /// A `Conv2dNormActivation` with this model's BatchNorm epsilon.
    fn conv(
        &self,
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        activation: Option<Activation>,
    ) -> ConvNormConfig {
        ConvNormConfig::new(channels, kernel, stride, activation).with_eps(self.eps)
    }

    /// `MBConv.__init__` or `FusedMBConv.__init__` for the block configuration `cnf`
    /// (channels scaled, the stage's later blocks with stride 1) and stochastic depth `p`.
    fn block(&self, cnf: &StageConfig, p: f64, device: &Device) -> MBConv {
        let silu = Some(Activation::Silu);
        let StageConfig {
            kernel,
            stride,
            input_channels: input,
            out_channels: out,
            ..
        } = *cnf;
        let expanded = make_divisible((input * cnf.expand_ratio) as f64, 8);
        let cna = |c: ConvNormConfig| MobileModule::ConvNormActivation(c.init(device));
        let block = match cnf.kind {
            MBConvKind::MBConv => {
                let mut block = Vec::new();
                if expanded != input {
                    block.push(cna(self.conv([input, expanded], 1, 1, silu)));
                }
                let depthwise = self.conv([expanded, expanded], kernel, stride, silu);
                block.push(cna(depthwise.with_groups(expanded)));
                block.push(MobileModule::SqueezeExcitation(SqueezeExcitation::new(
                    expanded,
                    (input / 4).max(1),
                    Activation::Silu,
                    Activation::Sigmoid,
                    device,
                )));
                block.push(cna(self.conv([expanded, out], 1, 1, None)));
                block
            }
            MBConvKind::Fused if expanded != input => vec![
                cna(self.conv([input, expanded], kernel, stride, silu)),
                cna(self.conv([expanded, out], 1, 1, None)),
            ],
            MBConvKind::Fused => vec![cna(self.conv([input, out], kernel, stride, silu))],
        };
        MBConv {
            block,
            stochastic_depth: StochasticDepth { p, row: true },
            use_res_connect: stride == 1 && input == out,
        }
    }

    /// Builds the model with fresh weights on `device` (torchvision's
    /// `_efficientnet_conf` and `EfficientNet.__init__`).
    pub fn init(&self, device: &Device) -> EfficientNet {
        let silu = Some(Activation::Silu);
        let stages: Vec<StageConfig> = self.stages.iter().map(|s| self.scaled(s)).collect();
        // An empty table (torchvision refuses it) gives the stem's 32 channels and no stages.
        let first = stages.first().map_or(32, |s| s.input_channels);
        let mut features = vec![EfficientNetFeature::ConvNormActivation(
            self.conv([3, first], 3, 2, silu).init(device),
        )];
        let total: usize = stages.iter().map(|s| s.num_layers).sum();
        let mut block_id = 0;
        for cnf in &stages {
            let blocks = (0..cnf.num_layers)
                .map(|i| {
                    let cnf = match i {
                        0 => *cnf,
                        _ => StageConfig {
                            input_channels: cnf.out_channels,
                            stride: 1,
                            ..*cnf
                        },
                    };
                    let p = self.stochastic_depth_prob * block_id as f64 / total as f64;
                    block_id += 1;
                    self.block(&cnf, p, device)
                })
                .collect();
            features.push(EfficientNetFeature::Stage(blocks));
        }
        let last_in = stages.last().map_or(first, |s| s.out_channels);
        let last_out = self.last_channel.unwrap_or(4 * last_in);
        features.push(EfficientNetFeature::ConvNormActivation(
            self.conv([last_in, last_out], 1, 1, silu).init(device),
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
    row("efficientnet_v2_s", "torchvision's EfficientNetV2-S (Fused-MBConv, MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_V2_S_Weights.IMAGENET1K_V1", "efficientnet_v2_s-dd5fe13b.pth")
        .preprocess(Preprocessing::sized(384, 384, Interpolation::Bilinear))
        .model(&Init::new(|d, a| EfficientNetConfig::v2_s(a.classes()).init(d))),
    row("efficientnet_v2_m", "torchvision's EfficientNetV2-M (Fused-MBConv, MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_V2_M_Weights.IMAGENET1K_V1", "efficientnet_v2_m-dc08266a.pth")
        .preprocess(Preprocessing::sized(480, 480, Interpolation::Bilinear))
        .model(&Init::new(|d, a| EfficientNetConfig::v2_m(a.classes()).init(d))),
    // The published V2-L weights were trained with bicubic resizing and inputs scaled to [-1, 1].
    row("efficientnet_v2_l", "torchvision's EfficientNetV2-L (Fused-MBConv, MBConv, squeeze-excitation, SiLU)")
        .weights("EfficientNet_V2_L_Weights.IMAGENET1K_V1", "efficientnet_v2_l-59c71312.pth")
        .preprocess(Preprocessing { mean: [0.5; 3], std: [0.5; 3], ..Preprocessing::sized(480, 480, Interpolation::Bicubic) })
        .model(&Init::new(|d, a| EfficientNetConfig::v2_l(a.classes()).init(d))),
];
