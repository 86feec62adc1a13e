//! torchvision's RegNetY and RegNetX (400MF to 32GF).

use burn::module::{
    Content, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use featx_graph::{Activation, ConvNormClass, NodeId};

use crate::misc::{ConvNormActivation, ConvNormConfig, SqueezeExcitation};
use crate::registry::{Architecture, BuildArgs, Init, Interpolation, Preprocessing, Row};
use crate::{FeatureModel, Tracer};

/// torchvision's `BottleneckTransform`: 1x1 (`a`), grouped 3x3 with the stride (`b`), optional
/// squeeze-excitation (`se`, RegNetY), 1x1 without activation (`c`).
#[derive(Module, Debug)]
pub struct BottleneckTransform {
    a: ConvNormActivation,
    b: ConvNormActivation,
    se: Option<SqueezeExcitation>,
    c: ConvNormActivation,
}

/// torchvision's `ResBottleneckBlock`: `activation(proj(x) + f(x))`, `x` itself when the
/// shape is kept.
#[derive(Module, Debug)]
pub struct ResBottleneckBlock {
    proj: Option<ConvNormActivation>,
    f: BottleneckTransform,
}

impl ResBottleneckBlock {
    fn new(
        [width_in, width_out]: [usize; 2],
        stride: usize,
        groups: usize,
        se_ratio: Option<f64>,
        device: &Device,
    ) -> Self {
        let relu = Some(Activation::Relu);
        let proj = (width_in != width_out || stride != 1)
            .then(|| ConvNormConfig::new([width_in, width_out], 1, stride, None).init(device));
        // The bottleneck multiplier is 1 in every torchvision RegNet.
        let w_b = width_out;
        let f = BottleneckTransform {
            a: ConvNormConfig::new([width_in, w_b], 1, 1, relu).init(device),
            b: ConvNormConfig::new([w_b, w_b], 3, stride, relu)
                .with_groups(groups)
                .init(device),
            se: se_ratio.map(|r| {
                let squeeze = (r * width_in as f64).round_ties_even() as usize;
                SqueezeExcitation::new(w_b, squeeze, Activation::Relu, Activation::Sigmoid, device)
            }),
            c: ConvNormConfig::new([w_b, width_out], 1, 1, None).init(device),
        };
        Self { proj, f }
    }

    /// `ResBottleneckBlock.forward`.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let proj = self
            .proj
            .as_ref()
            .map(|proj| t.conv_norm_activation("proj", proj, x));
        let f = t.scope("f", |t| {
            let out = t.conv_norm_activation("a", &self.f.a, x);
            let out = t.conv_norm_activation("b", &self.f.b, out);
            let out = match &self.f.se {
                Some(se) => t.squeeze_excitation("se", se, out),
                None => out,
            };
            t.conv_norm_activation("c", &self.f.c, out)
        });
        let sum = match proj {
            Some(proj) => t.add(proj, f),
            None => t.add(x, f),
        };
        t.activation("activation", Activation::Relu, sum)
    }
}

/// torchvision's `AnyStage`: blocks named `block<stage>-<i>` (`trunk_output.block2.block2-0`),
/// names no Rust field can have, hence the hand-written [`Module`] implementation.
#[derive(Debug, Clone)]
pub struct AnyStage {
    blocks: Vec<ResBottleneckBlock>,
    stage: usize,
}

impl AnyStage {
    fn block_name(&self, i: usize) -> String {
        format!("block{}-{i}", self.stage)
    }
}

impl Module for AnyStage {
    fn collect_devices(&self, devices: Vec<Device>) -> Vec<Device> {
        self.blocks
            .iter()
            .fold(devices, |devices, b| b.collect_devices(devices))
    }

    fn fork(self, device: &Device) -> Self {
        Self {
            blocks: self.blocks.into_iter().map(|b| b.fork(device)).collect(),
            stage: self.stage,
        }
    }

    fn to_device(self, device: &Device) -> Self {
        Self {
            blocks: self
                .blocks
                .into_iter()
                .map(|b| b.to_device(device))
                .collect(),
            stage: self.stage,
        }
    }

    fn train(self) -> Self {
        Self {
            blocks: self.blocks.into_iter().map(Module::train).collect(),
            stage: self.stage,
        }
    }

    fn valid(&self) -> Self {
        Self {
            blocks: self.blocks.iter().map(Module::valid).collect(),
            stage: self.stage,
        }
    }

    fn materialize(self) -> Self {
        Self {
            blocks: self.blocks.into_iter().map(Module::materialize).collect(),
            stage: self.stage,
        }
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        for (i, block) in self.blocks.iter().enumerate() {
            let name = self.block_name(i);
            visitor.enter_module(&name, "Struct:AnyStage");
            block.visit(visitor);
            visitor.exit_module(&name, "Struct:AnyStage");
        }
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let stage = self.stage;
        let blocks = self
            .blocks
            .into_iter()
            .enumerate()
            .map(|(i, block)| {
                let name = format!("block{stage}-{i}");
                mapper.enter_module(&name, "Struct:AnyStage");
                let block = block.map(mapper);
                mapper.exit_module(&name, "Struct:AnyStage");
                block
            })
            .collect();
        Self { blocks, stage }
    }
}

impl ModuleDisplayDefault for AnyStage {
    fn content(&self, content: Content) -> Option<Content> {
        self.blocks
            .iter()
            .enumerate()
            .fold(content, |acc, (i, block)| {
                acc.add(&self.block_name(i), block)
            })
            .set_top_level_type("AnyStage")
            .optional()
    }
}

impl ModuleDisplay for AnyStage {}

/// torchvision's `trunk_output`: four stages.
#[derive(Module, Debug)]
pub struct TrunkOutput {
    block1: AnyStage,
    block2: AnyStage,
    block3: AnyStage,
    block4: AnyStage,
}

/// torchvision's RegNet: `SimpleStemIN`, four stages of `ResBottleneckBlock`s, average pool,
/// `fc`.
#[derive(Module, Debug)]
pub struct RegNet {
    stem: ConvNormActivation,
    trunk_output: TrunkOutput,
    fc: Linear,
    #[module(skip)]
    name: String,
}

/// Configuration of a [`RegNet`]: the per-stage table torchvision's `BlockParams` computes
/// from the architecture's `(depth, w_0, w_a, w_m, group_width)` (all bottleneck
/// multipliers 1).
#[derive(Debug, Clone, PartialEq)]
pub struct RegNetConfig {
    /// The architecture's name (`regnet_y_400mf`).
    pub name: String,
    /// Blocks per stage.
    pub depths: [usize; 4],
    /// Output channels per stage.
    pub widths: [usize; 4],
    /// Groups of each stage's 3x3 convolutions (width / group width).
    pub groups: [usize; 4],
    /// Squeeze-excitation ratio (RegNetY's 0.25), or none (RegNetX).
    pub se_ratio: Option<f64>,
    /// Classifier outputs.
    pub num_classes: usize,
}

impl RegNetConfig {
    fn table(
        name: &str,
        depths: [usize; 4],
        widths: [usize; 4],
        groups: [usize; 4],
        se: bool,
    ) -> Self {
        Self {
            name: name.into(),
            depths,
            widths,
            groups,
            se_ratio: se.then_some(0.25),
            num_classes: 1000,
        }
    }

    /// torchvision's builder `name` (`regnet_y_400mf` ... `regnet_x_32gf`), if it is one.
    pub fn named(name: &str) -> Option<Self> {
        let (d, w, g, se): ([usize; 4], [usize; 4], [usize; 4], bool) = match name {
            "regnet_y_400mf" => ([1, 3, 6, 6], [48, 104, 208, 440], [6, 13, 26, 55], true),
            "regnet_y_800mf" => ([1, 3, 8, 2], [64, 144, 320, 784], [4, 9, 20, 49], true),
            "regnet_y_1_6gf" => ([2, 6, 17, 2], [48, 120, 336, 888], [2, 5, 14, 37], true),
            "regnet_y_3_2gf" => ([2, 5, 13, 1], [72, 216, 576, 1512], [3, 9, 24, 63], true),
            "regnet_y_8gf" => ([2, 4, 10, 1], [224, 448, 896, 2016], [4, 8, 16, 36], true),
            "regnet_y_16gf" => ([2, 4, 11, 1], [224, 448, 1232, 3024], [2, 4, 11, 27], true),
            "regnet_y_32gf" => ([2, 5, 12, 1], [232, 696, 1392, 3712], [1, 3, 6, 16], true),
            "regnet_y_128gf" => ([2, 7, 17, 1], [528, 1056, 2904, 7392], [2, 4, 11, 28], true),
            "regnet_x_400mf" => ([1, 2, 7, 12], [32, 64, 160, 400], [2, 4, 10, 25], false),
            "regnet_x_800mf" => ([1, 3, 7, 5], [64, 128, 288, 672], [4, 8, 18, 42], false),
            "regnet_x_1_6gf" => ([2, 4, 10, 2], [72, 168, 408, 912], [3, 7, 17, 38], false),
            "regnet_x_3_2gf" => ([2, 6, 15, 2], [96, 192, 432, 1008], [2, 4, 9, 21], false),
            "regnet_x_8gf" => ([2, 5, 15, 1], [80, 240, 720, 1920], [1, 2, 6, 16], false),
            "regnet_x_16gf" => ([2, 6, 13, 1], [256, 512, 896, 2048], [2, 4, 7, 16], false),
            "regnet_x_32gf" => ([2, 7, 13, 1], [336, 672, 1344, 2520], [2, 4, 8, 15], false),
            _ => return None,
        };
        Some(Self::table(name, d, w, g, se))
    }

    /// Builds the model with fresh weights on `device` (torchvision's `RegNet.__init__`).
    pub fn init(&self, device: &Device) -> RegNet {
        let stem_width = 32;
        let stem = ConvNormConfig::new([3, stem_width], 3, 2, Some(Activation::Relu))
            .with_class(ConvNormClass::SimpleStemIn)
            .init(device);
        let mut width_in = stem_width;
        let mut stage = |i: usize| {
            let width_out = self.widths[i];
            let blocks = (0..self.depths[i])
                .map(|j| {
                    let (input, stride) = if j == 0 {
                        (width_in, 2)
                    } else {
                        (width_out, 1)
                    };
                    ResBottleneckBlock::new(
                        [input, width_out],
                        stride,
                        self.groups[i],
                        self.se_ratio,
                        device,
                    )
                })
                .collect();
            width_in = width_out;
            AnyStage {
                blocks,
                stage: i + 1,
            }
        };
        let trunk_output = TrunkOutput {
            block1: stage(0),
            block2: stage(1),
            block3: stage(2),
            block4: stage(3),
        };
        RegNet {
            stem,
            trunk_output,
            fc: LinearConfig::new(self.widths[3], self.num_classes).init(device),
            name: self.name.clone(),
        }
    }
}

impl FeatureModel for RegNet {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.conv_norm_activation("stem", &self.stem, x);
        let trunk = &self.trunk_output;
        let x = t.scope("trunk_output", |t| {
            [&trunk.block1, &trunk.block2, &trunk.block3, &trunk.block4]
                .into_iter()
                .fold(x, |x, stage| {
                    t.scope(&format!("block{}", stage.stage), |t| {
                        stage.blocks.iter().enumerate().fold(x, |x, (i, block)| {
                            t.scope(&stage.block_name(i), |t| block.trace(t, x))
                        })
                    })
                })
        });
        let x = t.adaptive_avg_pool2d("avgpool", [1, 1], x);
        let x = t.flatten_method(x, 1);
        t.linear("fc", &self.fc, x)
    }
}

/// A row of the RegNet family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "RegNet", about)
}

/// The RegNet rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("regnet_y_400mf", "torchvision's RegNetY 400MF (squeeze-excitation bottlenecks)")
        .weights("RegNet_Y_400MF_Weights.IMAGENET1K_V2", "regnet_y_400mf-e6988f5f.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_y_400mf"))),
    row("regnet_y_800mf", "torchvision's RegNetY 800MF (squeeze-excitation bottlenecks)")
        .weights("RegNet_Y_800MF_Weights.IMAGENET1K_V2", "regnet_y_800mf-58fc7688.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_y_800mf"))),
    row("regnet_y_1_6gf", "torchvision's RegNetY 1.6GF (squeeze-excitation bottlenecks)")
        .weights("RegNet_Y_1_6GF_Weights.IMAGENET1K_V2", "regnet_y_1_6gf-0d7bc02a.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_y_1_6gf"))),
    row("regnet_y_3_2gf", "torchvision's RegNetY 3.2GF (squeeze-excitation bottlenecks)")
        .weights("RegNet_Y_3_2GF_Weights.IMAGENET1K_V2", "regnet_y_3_2gf-9180c971.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_y_3_2gf"))),
    row("regnet_y_8gf", "torchvision's RegNetY 8GF (squeeze-excitation bottlenecks)")
        .weights("RegNet_Y_8GF_Weights.IMAGENET1K_V2", "regnet_y_8gf-dc2b1b54.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_y_8gf"))),
    row("regnet_y_16gf", "torchvision's RegNetY 16GF (squeeze-excitation bottlenecks)")
        .weights("RegNet_Y_16GF_Weights.IMAGENET1K_V2", "regnet_y_16gf-3e4a00f9.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_y_16gf"))),
    row("regnet_y_32gf", "torchvision's RegNetY 32GF (squeeze-excitation bottlenecks)")
        .weights("RegNet_Y_32GF_Weights.IMAGENET1K_V2", "regnet_y_32gf-8db6d4b5.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_y_32gf"))),
    // Only SWAG weights are published for 128GF: trained on 3.6 billion Instagram images, then
    // fine-tuned end to end on ImageNet at 384x384.
    row("regnet_y_128gf", "torchvision's RegNetY 128GF (squeeze-excitation bottlenecks)")
        .weights("RegNet_Y_128GF_Weights.IMAGENET1K_SWAG_E2E_V1", "regnet_y_128gf_swag-c8ce3e52.pth")
        .preprocess(Preprocessing::sized(384, 384, Interpolation::Bicubic))
        .model(&Init::new(|d, a| regnet(d, a, "regnet_y_128gf"))),
    row("regnet_x_400mf", "torchvision's RegNetX 400MF (grouped bottlenecks)")
        .weights("RegNet_X_400MF_Weights.IMAGENET1K_V2", "regnet_x_400mf-62229a5f.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_x_400mf"))),
    row("regnet_x_800mf", "torchvision's RegNetX 800MF (grouped bottlenecks)")
        .weights("RegNet_X_800MF_Weights.IMAGENET1K_V2", "regnet_x_800mf-94a99ebd.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_x_800mf"))),
    row("regnet_x_1_6gf", "torchvision's RegNetX 1.6GF (grouped bottlenecks)")
        .weights("RegNet_X_1_6GF_Weights.IMAGENET1K_V2", "regnet_x_1_6gf-a12f2b72.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_x_1_6gf"))),
    row("regnet_x_3_2gf", "torchvision's RegNetX 3.2GF (grouped bottlenecks)")
        .weights("RegNet_X_3_2GF_Weights.IMAGENET1K_V2", "regnet_x_3_2gf-7071aa85.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_x_3_2gf"))),
    row("regnet_x_8gf", "torchvision's RegNetX 8GF (grouped bottlenecks)")
        .weights("RegNet_X_8GF_Weights.IMAGENET1K_V2", "regnet_x_8gf-2b70d774.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_x_8gf"))),
    row("regnet_x_16gf", "torchvision's RegNetX 16GF (grouped bottlenecks)")
        .weights("RegNet_X_16GF_Weights.IMAGENET1K_V2", "regnet_x_16gf-ba3796d7.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_x_16gf"))),
    row("regnet_x_32gf", "torchvision's RegNetX 32GF (grouped bottlenecks)")
        .weights("RegNet_X_32GF_Weights.IMAGENET1K_V2", "regnet_x_32gf-6eb8fdc6.pth")
        .resize(232)
        .model(&Init::new(|d, a| regnet(d, a, "regnet_x_32gf"))),
];

/// The RegNet `name` (a name from the rows above, so always found).
fn regnet(device: &Device, args: BuildArgs, name: &str) -> RegNet {
    let config = RegNetConfig::named(name)
        .unwrap_or_else(|| unreachable!("{name} is in RegNetConfig::named"));
    RegNetConfig {
        num_classes: args.classes(),
        ..config
    }
    .init(device)
}
