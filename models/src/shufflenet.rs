//! torchvision's ShuffleNetV2: "ShuffleNet V2: Practical Guidelines for Efficient CNN
//! Architecture Design" (Ma et al., 2018). A strided convolution and a max pool, three stages
//! of units that split the channels (or, when downsampling, copy the input) into two
//! branches, join them and shuffle the channels between the branches, a 1x1 convolution, a
//! spatial mean and a classifier.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use featx_graph::{NodeId, Window2d};

use crate::registry::{Architecture, Init, Row};
use crate::sequential::{SeqModule, sequential};
use crate::tracer::Size;
use crate::{FeatureModel, Tracer};

/// torchvision's ShuffleNetV2 `InvertedResidual`: with stride 1, half the channels pass
/// through and `branch2` transforms the other half; with a larger stride, `branch1` and
/// `branch2` both transform the whole input. The halves are joined and shuffled.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// Depthwise 3x3, BatchNorm, 1x1, BatchNorm, ReLU; empty with stride 1.
    branch1: Vec<SeqModule>,
    /// 1x1, BatchNorm, ReLU, depthwise 3x3, BatchNorm, 1x1, BatchNorm, ReLU.
    branch2: Vec<SeqModule>,
    #[module(skip)]
    stride: usize,
}

impl InvertedResidual {
    /// `InvertedResidual(inp, oup, stride)`: each branch gives `oup / 2` channels.
    fn new([inp, oup]: [usize; 2], stride: usize, d: &Device) -> Self {
        let features = oup / 2;
        let branch1 = if stride > 1 {
            vec![
                SeqModule::conv([inp, inp], 3, stride, inp, d),
                SeqModule::batch_norm2d(inp, d),
                SeqModule::conv([inp, features], 1, 1, 1, d),
                SeqModule::batch_norm2d(features, d),
                SeqModule::relu(),
            ]
        } else {
            Vec::new()
        };
        let branch2_in = if stride > 1 { inp } else { features };
        InvertedResidual {
            branch1,
            branch2: vec![
                SeqModule::conv([branch2_in, features], 1, 1, 1, d),
                SeqModule::batch_norm2d(features, d),
                SeqModule::relu(),
                SeqModule::conv([features, features], 3, stride, features, d),
                SeqModule::batch_norm2d(features, d),
                SeqModule::conv([features, features], 1, 1, 1, d),
                SeqModule::batch_norm2d(features, d),
                SeqModule::relu(),
            ],
            stride,
        }
    }

    /// `InvertedResidual.forward`.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let out = if self.stride == 1 {
            let [x1, x2] = t.chunk::<2>(x, 1);
            let x2 = sequential(t, "branch2", &self.branch2, x2);
            t.cat(&[x1, x2], 1)
        } else {
            let b1 = sequential(t, "branch1", &self.branch1, x);
            let b2 = sequential(t, "branch2", &self.branch2, x);
            t.cat(&[b1, b2], 1)
        };
        channel_shuffle(t, out, 2)
    }
}

/// torchvision's `channel_shuffle(x, groups)`: `[N, C, H, W]` viewed as `[N, groups,
/// C / groups, H, W]`, the two group axes swapped, and viewed back, so that each branch's
/// channels are interleaved with the other's. Every size is read from `x.size()`, as FX
/// records it.
fn channel_shuffle(t: &mut Tracer, x: NodeId, groups: i64) -> NodeId {
    let size = t.size(x);
    let [batchsize, num_channels, height, width] = [0, 1, 2, 3].map(|i| t.get_item(size, i));
    let channels_per_group = t.floordiv(num_channels, groups);
    let shape = [
        Size::Node(batchsize),
        Size::Const(groups),
        Size::Node(channels_per_group),
        Size::Node(height),
        Size::Node(width),
    ];
    let x = t.view_sizes(x, &shape);
    let x = t.transpose(x, shape.len(), 1, 2);
    let x = t.contiguous(x);
    let shape = [batchsize, num_channels, height, width].map(Size::Node);
    t.view_sizes(x, &shape)
}

/// torchvision's ShuffleNetV2: `conv1`, `maxpool`, `stage2` to `stage4`, `conv5`, the mean
/// over height and width, `fc`.
#[derive(Module, Debug)]
pub struct ShuffleNetV2 {
    conv1: Vec<SeqModule>,
    stage2: Vec<InvertedResidual>,
    stage3: Vec<InvertedResidual>,
    stage4: Vec<InvertedResidual>,
    conv5: Vec<SeqModule>,
    fc: Linear,
    #[module(skip)]
    name: String,
}

/// Configuration of a [`ShuffleNetV2`], as torchvision's `shufflenet_v2_x*` builders set it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShuffleNetV2Config {
    /// The architecture's name (`shufflenet_v2_x1_0`).
    pub name: String,
    /// Units in `stage2`, `stage3`, `stage4` (torchvision's `stages_repeats`).
    pub stages_repeats: [usize; 3],
    /// Output channels of `conv1`, the three stages and `conv5` (torchvision's
    /// `stages_out_channels`); the stages' must be even, each branch giving half.
    pub stages_out_channels: [usize; 5],
    /// Classifier outputs.
    pub num_classes: usize,
}

impl ShuffleNetV2Config {
    /// A ShuffleNetV2 named `name` with torchvision's repeats (4, 8, 4), the channel table
    /// `stages_out_channels` and 1000 classes.
    pub fn new(name: &str, stages_out_channels: [usize; 5]) -> Self {
        Self {
            name: name.into(),
            stages_repeats: [4, 8, 4],
            stages_out_channels,
            num_classes: 1000,
        }
    }

    /// `shufflenet_v2_x0_5`.
    pub fn x0_5() -> Self {
        Self::new("shufflenet_v2_x0_5", [24, 48, 96, 192, 1024])
    }

    /// `shufflenet_v2_x1_0`.
    pub fn x1_0() -> Self {
        Self::new("shufflenet_v2_x1_0", [24, 116, 232, 464, 1024])
    }

    /// `shufflenet_v2_x1_5`.
    pub fn x1_5() -> Self {
        Self::new("shufflenet_v2_x1_5", [24, 176, 352, 704, 1024])
    }

    /// `shufflenet_v2_x2_0`.
    pub fn x2_0() -> Self {
        Self::new("shufflenet_v2_x2_0", [24, 244, 488, 976, 2048])
    }

    /// The same configuration with `num_classes` outputs.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Builds the model with freshly initialised weights on `device` (torchvision's
    /// `ShuffleNetV2.__init__`).
    pub fn init(&self, device: &Device) -> ShuffleNetV2 {
        let [first, out2, out3, out4, last] = self.stages_out_channels;
        let mut input = first;
        let mut stage = |repeats: usize, output: usize| {
            let units = (0..repeats.max(1))
                .map(|i| match i {
                    // The first unit downsamples; torchvision builds it even for 0 repeats.
                    0 => InvertedResidual::new([input, output], 2, device),
                    _ => InvertedResidual::new([output, output], 1, device),
                })
                .collect();
            input = output;
            units
        };
        let [r2, r3, r4] = self.stages_repeats;
        let (stage2, stage3, stage4) = (stage(r2, out2), stage(r3, out3), stage(r4, out4));
        ShuffleNetV2 {
            conv1: vec![
                SeqModule::conv([3, first], 3, 2, 1, device),
                SeqModule::batch_norm2d(first, device),
                SeqModule::relu(),
            ],
            stage2,
            stage3,
            stage4,
            conv5: vec![
                SeqModule::conv([out4, last], 1, 1, 1, device),
                SeqModule::batch_norm2d(last, device),
                SeqModule::relu(),
            ],
            fc: LinearConfig::new(last, self.num_classes).init(device),
            name: self.name.clone(),
        }
    }
}

impl FeatureModel for ShuffleNetV2 {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = sequential(t, "conv1", &self.conv1, x);
        let mut x = t.max_pool2d("maxpool", Window2d::square(3, 2, 1), false, x);
        for (name, units) in [
            ("stage2", &self.stage2),
            ("stage3", &self.stage3),
            ("stage4", &self.stage4),
        ] {
            x = t.scope(name, |t| {
                units.iter().enumerate().fold(x, |x, (i, unit)| {
                    t.scope(&i.to_string(), |t| unit.trace(t, x))
                })
            });
        }
        let x = sequential(t, "conv5", &self.conv5, x);
        // torchvision's global pool.
        let x = t.mean(x, &[2, 3]);
        t.linear("fc", &self.fc, x)
    }
}

/// A row of the ShuffleNetV2 family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "ShuffleNetV2", about)
}

/// The ShuffleNetV2 rows of [`crate::MODELS`].
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("shufflenet_v2_x0_5", "torchvision's ShuffleNetV2, 0.5x channels")
        .weights("ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1", "shufflenetv2_x0.5-f707e7126e.pth")
        .model(&Init::new(|d, a| ShuffleNetV2Config::x0_5().with_num_classes(a.classes()).init(d))),
    row("shufflenet_v2_x1_0", "torchvision's ShuffleNetV2, 1.0x channels")
        .weights("ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1", "shufflenetv2_x1-5666bf0f80.pth")
        .model(&Init::new(|d, a| ShuffleNetV2Config::x1_0().with_num_classes(a.classes()).init(d))),
    row("shufflenet_v2_x1_5", "torchvision's ShuffleNetV2, 1.5x channels")
        .weights("ShuffleNet_V2_X1_5_Weights.IMAGENET1K_V1", "shufflenetv2_x1_5-3c479a10.pth")
        .resize(232)
        .model(&Init::new(|d, a| ShuffleNetV2Config::x1_5().with_num_classes(a.classes()).init(d))),
    row("shufflenet_v2_x2_0", "torchvision's ShuffleNetV2, 2.0x channels")
        .weights("ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1", "shufflenetv2_x2_0-8be3c8ee.pth")
        .resize(232)
        .model(&Init::new(|d, a| ShuffleNetV2Config::x2_0().with_num_classes(a.classes()).init(d))),
];
