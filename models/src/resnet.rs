use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use featx_graph::{NodeId, Window2d};

use crate::{FeatureModel, InputSpec, Tracer};

/// torchvision's ResNet with `BasicBlock`s (ResNet18 and ResNet34).
///
/// Field names follow torchvision, so `layer2.0.downsample.0.weight` is a parameter path here
/// too (`downsample` is a `(Conv2d, BatchNorm)` tuple, whose elements are named `0` and `1`).
#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    layer1: Vec<BasicBlock>,
    layer2: Vec<BasicBlock>,
    layer3: Vec<BasicBlock>,
    layer4: Vec<BasicBlock>,
    fc: Linear,
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

/// Configuration of a [`ResNet`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Blocks per stage (`[2, 2, 2, 2]` is ResNet18).
    pub blocks: [usize; 4],
    /// Classifier outputs.
    #[config(default = 1000)]
    pub num_classes: usize,
}

impl ResNetConfig {
    /// ResNet18 with torchvision's layout.
    pub fn resnet18(num_classes: usize) -> Self {
        Self::new([2, 2, 2, 2]).with_num_classes(num_classes)
    }

    /// ResNet34 with torchvision's layout.
    pub fn resnet34(num_classes: usize) -> Self {
        Self::new([3, 4, 6, 3]).with_num_classes(num_classes)
    }

    /// Builds the model with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> ResNet {
        let mut in_planes = 64;
        let mut stage = |planes: usize, count: usize, stride: usize| {
            (0..count)
                .map(|i| {
                    let s = if i == 0 { stride } else { 1 };
                    let block = BasicBlock::new(in_planes, planes, s, device);
                    in_planes = planes;
                    block
                })
                .collect::<Vec<_>>()
        };
        let layer1 = stage(64, self.blocks[0], 1);
        let layer2 = stage(128, self.blocks[1], 2);
        let layer3 = stage(256, self.blocks[2], 2);
        let layer4 = stage(512, self.blocks[3], 2);
        ResNet {
            conv1: conv(3, 64, 7, 2, 3, device),
            bn1: BatchNormConfig::new(64).init(device),
            layer1,
            layer2,
            layer3,
            layer4,
            fc: LinearConfig::new(512, self.num_classes).init(device),
        }
    }
}

impl BasicBlock {
    fn new(in_planes: usize, planes: usize, stride: usize, device: &Device) -> Self {
        let downsample = (stride != 1 || in_planes != planes).then(|| {
            (
                conv(in_planes, planes, 1, stride, 0, device),
                BatchNormConfig::new(planes).init(device),
            )
        });
        Self {
            conv1: conv(in_planes, planes, 3, stride, 1, device),
            bn1: BatchNormConfig::new(planes).init(device),
            conv2: conv(planes, planes, 3, 1, 1, device),
            bn2: BatchNormConfig::new(planes).init(device),
            downsample,
        }
    }

    /// `BasicBlock.forward`, in the block's own scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let out = t.conv2d("conv1", &self.conv1, x);
        let out = t.batch_norm("bn1", &self.bn1, out);
        let out = t.relu("relu", out);
        let out = t.conv2d("conv2", &self.conv2, out);
        let out = t.batch_norm("bn2", &self.bn2, out);
        let identity = match &self.downsample {
            Some((conv, bn)) => t.scope("downsample", |t| {
                let d = t.conv2d("0", conv, x);
                t.batch_norm("1", bn, d)
            }),
            None => x,
        };
        let out = t.add(out, identity);
        t.relu("relu", out)
    }
}

impl FeatureModel for ResNet {
    fn name(&self) -> &str {
        match [
            self.layer1.len(),
            self.layer2.len(),
            self.layer3.len(),
            self.layer4.len(),
        ] {
            [2, 2, 2, 2] => "resnet18",
            [3, 4, 6, 3] => "resnet34",
            _ => "resnet",
        }
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: 3,
            size: None,
            nominal_size: [224, 224],
        }
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

/// A bias-free convolution with symmetric padding, as torchvision's ResNet uses.
fn conv(
    in_planes: usize,
    planes: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([in_planes, planes], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(false)
        .init(device)
}
