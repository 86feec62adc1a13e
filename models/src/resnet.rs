use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use featx_graph::{NodeId, Window2d};

use crate::registry::{Architecture, Init, Row};
use crate::{FeatureModel, Tracer};

/// torchvision's ResNet: ResNet18/34 (`BasicBlock`), ResNet50/101/152 (`Bottleneck`),
/// ResNeXt (grouped `Bottleneck`s) and Wide ResNet (wider `Bottleneck`s).
///
/// Field names follow torchvision, so `layer2.0.downsample.0.weight` is a parameter path here
/// too (`downsample` is a `(Conv2d, BatchNorm)` tuple, whose elements are named `0` and `1`).
#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    layer1: Vec<Block>,
    layer2: Vec<Block>,
    layer3: Vec<Block>,
    layer4: Vec<Block>,
    fc: Linear,
    /// The architecture's name, from its configuration.
    #[module(skip)]
    name: String,
}

/// A residual block; every block of a ResNet is of one kind.
// Each block is built once and kept in a `Vec`: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Block {
    /// Two 3x3 convolutions (ResNet18/34).
    Basic(BasicBlock),
    /// 1x1, grouped 3x3, 1x1 (ResNet50 and up, ResNeXt, Wide ResNet).
    Bottleneck(Bottleneck),
}

/// torchvision's `BasicBlock`: two 3x3 convolutions and a residual connection.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    downsample: Option<(Conv2d, BatchNorm)>,
}

/// torchvision's `Bottleneck`: 1x1 down to `width`, 3x3 (grouped, with the stride), 1x1 up to
/// four times `planes`, and a residual connection.
#[derive(Module, Debug)]
pub struct Bottleneck {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Conv2d,
    bn3: BatchNorm,
    downsample: Option<(Conv2d, BatchNorm)>,
}

/// Which block a [`ResNet`] is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// [`BasicBlock`] (expansion 1).
    Basic,
    /// [`Bottleneck`] (expansion 4).
    Bottleneck,
}

impl BlockKind {
    /// Output channels per `planes` (torchvision's `block.expansion`).
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// Configuration of a [`ResNet`], as torchvision's `ResNet(block, layers, ...)` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResNetConfig {
    /// The architecture's name (`resnet50`), which the model reports.
    pub name: String,
    /// The block kind.
    pub block: BlockKind,
    /// Blocks per stage (`[2, 2, 2, 2]` is ResNet18).
    pub blocks: [usize; 4],
    /// Groups of the 3x3 convolution of a `Bottleneck` (32 in ResNeXt50_32x4d).
    pub groups: usize,
    /// Channels per group of that convolution, for 64 `planes` (4 in ResNeXt50_32x4d,
    /// 128 in Wide ResNet50_2).
    pub width_per_group: usize,
    /// Classifier outputs.
    pub num_classes: usize,
}

impl ResNetConfig {
    /// A ResNet of `BasicBlock`s with these block counts (named `resnet`) and 1000 classes.
    pub fn new(blocks: [usize; 4]) -> Self {
        Self {
            name: "resnet".into(),
            block: BlockKind::Basic,
            blocks,
            groups: 1,
            width_per_group: 64,
            num_classes: 1000,
        }
    }

    /// The same configuration with `num_classes` outputs.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    fn named(name: &str, block: BlockKind, blocks: [usize; 4], num_classes: usize) -> Self {
        Self {
            name: name.into(),
            block,
            ..Self::new(blocks).with_num_classes(num_classes)
        }
    }

    fn grouped(mut self, groups: usize, width_per_group: usize) -> Self {
        self.groups = groups;
        self.width_per_group = width_per_group;
        self
    }

    /// torchvision's `resnet18`.
    pub fn resnet18(num_classes: usize) -> Self {
        Self::named("resnet18", BlockKind::Basic, [2, 2, 2, 2], num_classes)
    }

    /// torchvision's `resnet34`.
    pub fn resnet34(num_classes: usize) -> Self {
        Self::named("resnet34", BlockKind::Basic, [3, 4, 6, 3], num_classes)
    }

    /// torchvision's `resnet50`.
    pub fn resnet50(num_classes: usize) -> Self {
        Self::named("resnet50", BlockKind::Bottleneck, [3, 4, 6, 3], num_classes)
    }

    /// torchvision's `resnet101`.
    pub fn resnet101(num_classes: usize) -> Self {
        Self::named(
            "resnet101",
            BlockKind::Bottleneck,
            [3, 4, 23, 3],
            num_classes,
        )
    }

    /// torchvision's `resnet152`.
    pub fn resnet152(num_classes: usize) -> Self {
        Self::named(
            "resnet152",
            BlockKind::Bottleneck,
            [3, 8, 36, 3],
            num_classes,
        )
    }

    /// torchvision's `resnext50_32x4d`: 32 groups of 4 channels.
    pub fn resnext50_32x4d(num_classes: usize) -> Self {
        Self::named(
            "resnext50_32x4d",
            BlockKind::Bottleneck,
            [3, 4, 6, 3],
            num_classes,
        )
        .grouped(32, 4)
    }

    /// torchvision's `resnext101_32x8d`: 32 groups of 8 channels.
    pub fn resnext101_32x8d(num_classes: usize) -> Self {
        Self::named(
            "resnext101_32x8d",
            BlockKind::Bottleneck,
            [3, 4, 23, 3],
            num_classes,
        )
        .grouped(32, 8)
    }

    /// torchvision's `resnext101_64x4d`: 64 groups of 4 channels.
    pub fn resnext101_64x4d(num_classes: usize) -> Self {
        Self::named(
            "resnext101_64x4d",
            BlockKind::Bottleneck,
            [3, 4, 23, 3],
            num_classes,
        )
        .grouped(64, 4)
    }

    /// torchvision's `wide_resnet50_2`: bottlenecks twice as wide.
    pub fn wide_resnet50_2(num_classes: usize) -> Self {
        Self::named(
            "wide_resnet50_2",
            BlockKind::Bottleneck,
            [3, 4, 6, 3],
            num_classes,
        )
        .grouped(1, 128)
    }

    /// torchvision's `wide_resnet101_2`: bottlenecks twice as wide.
    pub fn wide_resnet101_2(num_classes: usize) -> Self {
        Self::named(
            "wide_resnet101_2",
            BlockKind::Bottleneck,
            [3, 4, 23, 3],
            num_classes,
        )
        .grouped(1, 128)
    }

    /// Builds the model with freshly initialised weights on `device` (torchvision's
    /// `ResNet.__init__` and `_make_layer`).
    pub fn init(&self, device: &Device) -> ResNet {
        let expansion = self.block.expansion();
        let mut inplanes = 64;
        let mut make_layer = |planes: usize, blocks: usize, stride: usize| {
            (0..blocks)
                .map(|i| {
                    let stride = if i == 0 { stride } else { 1 };
                    let downsample = (stride != 1 || inplanes != planes * expansion)
                        .then(|| conv_bn(inplanes, planes * expansion, 1, stride, device));
                    let block = match self.block {
                        BlockKind::Basic => Block::Basic(BasicBlock::new(
                            inplanes, planes, stride, downsample, device,
                        )),
                        BlockKind::Bottleneck => {
                            let width = planes * self.width_per_group / 64 * self.groups;
                            Block::Bottleneck(Bottleneck::new(
                                [inplanes, width, planes * expansion],
                                stride,
                                self.groups,
                                downsample,
                                device,
                            ))
                        }
                    };
                    inplanes = planes * expansion;
                    block
                })
                .collect::<Vec<_>>()
        };
        let layer1 = make_layer(64, self.blocks[0], 1);
        let layer2 = make_layer(128, self.blocks[1], 2);
        let layer3 = make_layer(256, self.blocks[2], 2);
        let layer4 = make_layer(512, self.blocks[3], 2);
        ResNet {
            conv1: conv(3, 64, 7, 2, 1, device),
            bn1: BatchNormConfig::new(64).init(device),
            layer1,
            layer2,
            layer3,
            layer4,
            fc: LinearConfig::new(512 * expansion, self.num_classes).init(device),
            name: self.name.clone(),
        }
    }
}

impl BasicBlock {
    fn new(
        inplanes: usize,
        planes: usize,
        stride: usize,
        downsample: Option<(Conv2d, BatchNorm)>,
        device: &Device,
    ) -> Self {
        Self {
            conv1: conv(inplanes, planes, 3, stride, 1, device),
            bn1: BatchNormConfig::new(planes).init(device),
            conv2: conv(planes, planes, 3, 1, 1, device),
            bn2: BatchNormConfig::new(planes).init(device),
            downsample,
        }
    }

    /// `BasicBlock.forward`, in the block's own scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let identity = x;
        let out = t.conv2d("conv1", &self.conv1, x);
        let out = t.batch_norm("bn1", &self.bn1, out);
        let out = t.relu("relu", out);
        let out = t.conv2d("conv2", &self.conv2, out);
        let out = t.batch_norm("bn2", &self.bn2, out);
        let identity = downsample(t, &self.downsample, identity);
        let out = t.add(out, identity);
        t.relu("relu", out)
    }
}

impl Bottleneck {
    fn new(
        [inplanes, width, out]: [usize; 3],
        stride: usize,
        groups: usize,
        downsample: Option<(Conv2d, BatchNorm)>,
        device: &Device,
    ) -> Self {
        Self {
            conv1: conv(inplanes, width, 1, 1, 1, device),
            bn1: BatchNormConfig::new(width).init(device),
            conv2: conv(width, width, 3, stride, groups, device),
            bn2: BatchNormConfig::new(width).init(device),
            conv3: conv(width, out, 1, 1, 1, device),
            bn3: BatchNormConfig::new(out).init(device),
            downsample,
        }
    }

    /// `Bottleneck.forward`, in the block's own scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let identity = x;
        let out = t.conv2d("conv1", &self.conv1, x);
        let out = t.batch_norm("bn1", &self.bn1, out);
        let out = t.relu("relu", out);
        let out = t.conv2d("conv2", &self.conv2, out);
        let out = t.batch_norm("bn2", &self.bn2, out);
        let out = t.relu("relu", out);
        let out = t.conv2d("conv3", &self.conv3, out);
        let out = t.batch_norm("bn3", &self.bn3, out);
        let identity = downsample(t, &self.downsample, identity);
        let out = t.add(out, identity);
        t.relu("relu", out)
    }
}

impl Block {
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        match self {
            Block::Basic(block) => block.trace(t, x),
            Block::Bottleneck(block) => block.trace(t, x),
        }
    }
}

/// `self.downsample(x)` if the block has one, else `x`.
fn downsample(t: &mut Tracer, downsample: &Option<(Conv2d, BatchNorm)>, x: NodeId) -> NodeId {
    match downsample {
        Some((conv, bn)) => t.scope("downsample", |t| {
            let x = t.conv2d("0", conv, x);
            t.batch_norm("1", bn, x)
        }),
        None => x,
    }
}

impl FeatureModel for ResNet {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.conv2d("conv1", &self.conv1, x);
        let x = t.batch_norm("bn1", &self.bn1, x);
        let x = t.relu("relu", x);
        let mut x = t.max_pool2d("maxpool", Window2d::square(3, 2, 1), false, x);
        let stages = [
            ("layer1", &self.layer1),
            ("layer2", &self.layer2),
            ("layer3", &self.layer3),
            ("layer4", &self.layer4),
        ];
        for (name, blocks) in stages {
            x = t.scope(name, |t| {
                blocks.iter().enumerate().fold(x, |x, (i, block)| {
                    t.scope(&i.to_string(), |t| block.trace(t, x))
                })
            });
        }
        let x = t.adaptive_avg_pool2d("avgpool", [1, 1], x);
        let x = t.flatten(x, 1);
        t.linear("fc", &self.fc, x)
    }
}

/// torchvision's `conv1x1` / `conv3x3` (and the 7x7 stem): bias-free, padding `kernel / 2`.
fn conv(
    in_planes: usize,
    out_planes: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    let padding = kernel / 2;
    Conv2dConfig::new([in_planes, out_planes], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_groups(groups)
        .with_bias(false)
        .init(device)
}

/// A `downsample`: 1x1 convolution with the block's stride, then BatchNorm.
fn conv_bn(
    in_planes: usize,
    out_planes: usize,
    kernel: usize,
    stride: usize,
    device: &Device,
) -> (Conv2d, BatchNorm) {
    (
        conv(in_planes, out_planes, kernel, stride, 1, device),
        BatchNormConfig::new(out_planes).init(device),
    )
}

const RESNET: &str = "ResNet";
const RESNEXT: &str = "ResNeXt";
const WIDE: &str = "Wide ResNet";

/// The ResNet, ResNeXt and Wide ResNet rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    Row::new("resnet18", RESNET, "torchvision's ResNet18 (BasicBlock)")
        .weights("ResNet18_Weights.IMAGENET1K_V1", "resnet18-f37072fd.pth")
        .model(&Init::new(|d, a| ResNetConfig::resnet18(a.classes()).init(d))),
    Row::new("resnet34", RESNET, "torchvision's ResNet34 (BasicBlock)")
        .weights("ResNet34_Weights.IMAGENET1K_V1", "resnet34-b627a593.pth")
        .model(&Init::new(|d, a| ResNetConfig::resnet34(a.classes()).init(d))),
    Row::new("resnet50", RESNET, "torchvision's ResNet50 (Bottleneck)")
        .weights("ResNet50_Weights.IMAGENET1K_V2", "resnet50-11ad3fa6.pth")
        .resize(232)
        .model(&Init::new(|d, a| ResNetConfig::resnet50(a.classes()).init(d))),
    Row::new("resnet101", RESNET, "torchvision's ResNet101 (Bottleneck)")
        .weights("ResNet101_Weights.IMAGENET1K_V2", "resnet101-cd907fc2.pth")
        .resize(232)
        .model(&Init::new(|d, a| ResNetConfig::resnet101(a.classes()).init(d))),
    Row::new("resnet152", RESNET, "torchvision's ResNet152 (Bottleneck)")
        .weights("ResNet152_Weights.IMAGENET1K_V2", "resnet152-f82ba261.pth")
        .resize(232)
        .model(&Init::new(|d, a| ResNetConfig::resnet152(a.classes()).init(d))),
    Row::new("resnext50_32x4d", RESNEXT, "torchvision's ResNeXt50 32x4d (grouped Bottleneck)")
        .weights("ResNeXt50_32X4D_Weights.IMAGENET1K_V2", "resnext50_32x4d-1a0047aa.pth")
        .resize(232)
        .model(&Init::new(|d, a| ResNetConfig::resnext50_32x4d(a.classes()).init(d))),
    Row::new("resnext101_32x8d", RESNEXT, "torchvision's ResNeXt101 32x8d (grouped Bottleneck)")
        .weights("ResNeXt101_32X8D_Weights.IMAGENET1K_V2", "resnext101_32x8d-110c445d.pth")
        .resize(232)
        .model(&Init::new(|d, a| ResNetConfig::resnext101_32x8d(a.classes()).init(d))),
    Row::new("resnext101_64x4d", RESNEXT, "torchvision's ResNeXt101 64x4d (grouped Bottleneck)")
        .weights("ResNeXt101_64X4D_Weights.IMAGENET1K_V1", "resnext101_64x4d-173b62eb.pth")
        .resize(232)
        .model(&Init::new(|d, a| ResNetConfig::resnext101_64x4d(a.classes()).init(d))),
    Row::new("wide_resnet50_2", WIDE, "torchvision's Wide ResNet50-2 (Bottleneck twice as wide)")
        .weights("Wide_ResNet50_2_Weights.IMAGENET1K_V2", "wide_resnet50_2-9ba9bcbe.pth")
        .resize(232)
        .model(&Init::new(|d, a| ResNetConfig::wide_resnet50_2(a.classes()).init(d))),
    Row::new("wide_resnet101_2", WIDE, "torchvision's Wide ResNet101-2 (Bottleneck twice as wide)")
        .weights("Wide_ResNet101_2_Weights.IMAGENET1K_V2", "wide_resnet101_2-d733dc28.pth")
        .resize(232)
        .model(&Init::new(|d, a| ResNetConfig::wide_resnet101_2(a.classes()).init(d))),
];
