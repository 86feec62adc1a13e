//! torchvision's GoogLeNet (Inception v1): "Going Deeper with Convolutions" (Szegedy et al.,
//! 2014). A 7x7 stem, nine Inception blocks of four parallel branches joined along the
//! channels, ceil-mode max pools between the stages, and in training two auxiliary
//! classifiers reading `inception4a` and `inception4d`.
//!
//! Its `forward` reads `self.training`, so FX records one graph per mode: the auxiliary heads
//! (`aux1`, `aux2`) are in the train-mode graph only ([`FeatureModel::traces_by_mode`]).
//! torchvision's builder differs with and without weights: `googlenet()` keeps the heads and
//! leaves the input alone; `googlenet(weights=...)` loads the published file into a model with
//! heads, then drops them, and converts the input from ImageNet's normalisation to the
//! original network's (`transform_input`). [`GoogLeNetConfig::new`] and
//! [`GoogLeNetConfig::published`] with [`GoogLeNet::without_aux_logits`] are the two.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use featx_graph::{Mode, NodeId, Window2d};

use crate::registry::{Architecture, Init, Row};
use crate::sequential::MaxPool;
use crate::{FeatureModel, Tracer};

/// torchvision's GoogLeNet. Field names follow torchvision, so `inception4a.branch2.1.bn.weight`
/// and `aux1.fc2.bias` are parameter paths here too.
#[derive(Module, Debug)]
pub struct GoogLeNet {
    conv1: BasicConv2d,
    conv2: BasicConv2d,
    conv3: BasicConv2d,
    inception3a: Inception,
    inception3b: Inception,
    inception4a: Inception,
    inception4b: Inception,
    inception4c: Inception,
    inception4d: Inception,
    inception4e: Inception,
    inception5a: Inception,
    inception5b: Inception,
    aux1: Option<InceptionAux>,
    aux2: Option<InceptionAux>,
    fc: Linear,
    /// Convert ImageNet-normalised input to the original network's `[-1, 1]` range.
    #[module(skip)]
    transform_input: bool,
    /// Dropout before the classifier.
    #[module(skip)]
    dropout: f64,
    /// The architecture's name.
    #[module(skip)]
    name: String,
}

/// torchvision's `BasicConv2d` (GoogLeNet's and Inception v3's): a bias-free convolution,
/// BatchNorm with `eps = 0.001`, and a functional ReLU.
#[derive(Module, Debug)]
pub struct BasicConv2d {
    conv: Conv2d,
    bn: BatchNorm,
}

impl BasicConv2d {
    /// `BasicConv2d(channels[0], channels[1], kernel_size, stride, padding)`, with
    /// `[height, width]` kernels and paddings (Inception v3's 1x7 and 7x1).
    pub(crate) fn new(
        channels: [usize; 2],
        kernel: [usize; 2],
        stride: usize,
        [ph, pw]: [usize; 2],
        device: &Device,
    ) -> Self {
        BasicConv2d {
            conv: Conv2dConfig::new(channels, kernel)
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(channels[1])
                .with_epsilon(1e-3)
                .init(device),
        }
    }

    /// A square `kernel` with `stride` and `padding` on both axes.
    pub(crate) fn square(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: usize,
        device: &Device,
    ) -> Self {
        Self::new(channels, [kernel; 2], stride, [padding; 2], device)
    }

    /// `BasicConv2d.forward` at `name`: `conv`, `bn`, then `F.relu` (named `<name>.relu`).
    pub(crate) fn trace(&self, t: &mut Tracer, name: &str, x: NodeId) -> NodeId {
        t.scope(name, |t| {
            let x = t.conv2d("conv", &self.conv, x);
            let x = t.batch_norm("bn", &self.bn, x);
            t.functional_relu(x)
        })
    }
}

/// GoogLeNet's `Inception` block: a 1x1 branch, 1x1 then 3x3, 1x1 then 3x3 again (torchvision
/// keeps the "5x5" branch's known 3x3 kernel), and a ceil-mode 3x3 max pool then 1x1, joined
/// along the channels.
#[derive(Module, Debug)]
pub struct Inception {
    branch1: BasicConv2d,
    branch2: Vec<BasicConv2d>,
    branch3: Vec<BasicConv2d>,
    /// `nn.Sequential(MaxPool2d, BasicConv2d)`: its entries are named `0` and `1`.
    branch4: (MaxPool, BasicConv2d),
}

impl Inception {
    /// `Inception(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)`.
    fn new(
        [cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj]: [usize; 7],
        d: &Device,
    ) -> Self {
        let pool = MaxPool {
            window: Window2d::square(3, 1, 1),
            ceil_mode: true,
        };
        Inception {
            branch1: BasicConv2d::square([cin, ch1x1], 1, 1, 0, d),
            branch2: vec![
                BasicConv2d::square([cin, ch3x3red], 1, 1, 0, d),
                BasicConv2d::square([ch3x3red, ch3x3], 3, 1, 1, d),
            ],
            branch3: vec![
                BasicConv2d::square([cin, ch5x5red], 1, 1, 0, d),
                BasicConv2d::square([ch5x5red, ch5x5], 3, 1, 1, d),
            ],
            branch4: (pool, BasicConv2d::square([cin, pool_proj], 1, 1, 0, d)),
        }
    }

    /// `Inception.forward`, in the block's own scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let branch1 = self.branch1.trace(t, "branch1", x);
        let branch2 = basic_sequential(t, "branch2", &self.branch2, x);
        let branch3 = basic_sequential(t, "branch3", &self.branch3, x);
        let (pool, conv) = &self.branch4;
        let branch4 = t.scope("branch4", |t| {
            let x = t.max_pool2d("0", pool.window, pool.ceil_mode, x);
            conv.trace(t, "1", x)
        });
        t.cat(&[branch1, branch2, branch3, branch4], 1)
    }
}

/// An `nn.Sequential` of `BasicConv2d`s at `name`.
fn basic_sequential(t: &mut Tracer, name: &str, convs: &[BasicConv2d], x: NodeId) -> NodeId {
    t.scope(name, |t| {
        convs
            .iter()
            .enumerate()
            .fold(x, |x, (i, conv)| conv.trace(t, &i.to_string(), x))
    })
}

/// GoogLeNet's `InceptionAux`: pooled to 4x4, a 1x1 `BasicConv2d` to 128 channels, and two
/// linear layers with a ReLU and dropout between them.
#[derive(Module, Debug)]
pub struct InceptionAux {
    conv: BasicConv2d,
    fc1: Linear,
    fc2: Linear,
    #[module(skip)]
    dropout: f64,
}

impl InceptionAux {
    fn new(in_channels: usize, num_classes: usize, dropout: f64, d: &Device) -> Self {
        InceptionAux {
            conv: BasicConv2d::square([in_channels, 128], 1, 1, 0, d),
            fc1: LinearConfig::new(2048, 1024).init(d),
            fc2: LinearConfig::new(1024, num_classes).init(d),
            dropout,
        }
    }

    /// `InceptionAux.forward`, in the head's own scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.functional_adaptive_avg_pool2d([4, 4], x);
        let x = self.conv.trace(t, "conv", x);
        let x = t.flatten(x, 1);
        let x = t.linear("fc1", &self.fc1, x);
        let x = t.functional_relu(x);
        let x = t.dropout("dropout", self.dropout, x);
        t.linear("fc2", &self.fc2, x)
    }
}

/// torchvision's `_transform_input`: each channel `c` of an ImageNet-normalised `x` (mean
/// `m_c`, std `s_c`) mapped to `(x * s_c + m_c - 0.5) / 0.5`, the original networks' input
/// range, as `torch.unsqueeze(x[:, c], 1) * (s_c / 0.5) + (m_c - 0.5) / 0.5`, then joined.
pub(crate) fn transform_input(t: &mut Tracer, x: NodeId) -> NodeId {
    const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
    const STD: [f64; 3] = [0.229, 0.224, 0.225];
    let channels: Vec<NodeId> = (0..3)
        .map(|c| {
            let channel = t.select(x, 1, c);
            let channel = t.unsqueeze(channel, 1);
            let channel = t.mul_scalar(channel, STD[c] / 0.5);
            t.add_scalar(channel, (MEAN[c] - 0.5) / 0.5)
        })
        .collect();
    t.cat(&channels, 1)
}

/// Configuration of a [`GoogLeNet`], as torchvision's `GoogLeNet(...)` takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogLeNetConfig {
    /// Classifier outputs (of the auxiliary heads too).
    pub num_classes: usize,
    /// Build the auxiliary heads.
    pub aux_logits: bool,
    /// Convert ImageNet-normalised input to the original network's range first.
    pub transform_input: bool,
    /// Dropout before the classifier.
    pub dropout: f64,
    /// Dropout in the auxiliary heads.
    pub dropout_aux: f64,
}

impl GoogLeNetConfig {
    /// torchvision's `googlenet(num_classes=num_classes)`: auxiliary heads, the input as
    /// given.
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            aux_logits: true,
            transform_input: false,
            dropout: 0.2,
            dropout_aux: 0.7,
        }
    }

    /// The model `googlenet(weights=...)` loads the published file into: auxiliary heads
    /// (the file has them) and `transform_input`. torchvision then drops the heads
    /// ([`GoogLeNet::without_aux_logits`]).
    pub fn published(num_classes: usize) -> Self {
        Self {
            transform_input: true,
            ..Self::new(num_classes)
        }
    }

    /// Builds the model with freshly initialised weights on `device`.
    pub fn init(&self, d: &Device) -> GoogLeNet {
        let n = self.num_classes;
        let aux = |channels| {
            self.aux_logits
                .then(|| InceptionAux::new(channels, n, self.dropout_aux, d))
        };
        GoogLeNet {
            conv1: BasicConv2d::square([3, 64], 7, 2, 3, d),
            conv2: BasicConv2d::square([64, 64], 1, 1, 0, d),
            conv3: BasicConv2d::square([64, 192], 3, 1, 1, d),
            inception3a: Inception::new([192, 64, 96, 128, 16, 32, 32], d),
            inception3b: Inception::new([256, 128, 128, 192, 32, 96, 64], d),
            inception4a: Inception::new([480, 192, 96, 208, 16, 48, 64], d),
            inception4b: Inception::new([512, 160, 112, 224, 24, 64, 64], d),
            inception4c: Inception::new([512, 128, 128, 256, 24, 64, 64], d),
            inception4d: Inception::new([512, 112, 144, 288, 32, 64, 64], d),
            inception4e: Inception::new([528, 256, 160, 320, 32, 128, 128], d),
            inception5a: Inception::new([832, 256, 160, 320, 32, 128, 128], d),
            inception5b: Inception::new([832, 384, 192, 384, 48, 128, 128], d),
            aux1: aux(512),
            aux2: aux(528),
            fc: LinearConfig::new(1024, n).init(d),
            transform_input: self.transform_input,
            dropout: self.dropout,
            name: "googlenet".into(),
        }
    }
}

impl GoogLeNet {
    /// The model without its auxiliary heads, as `googlenet(weights=...)` leaves it after
    /// loading (`model.aux1 = None`, `model.aux2 = None`): both modes then trace one graph.
    pub fn without_aux_logits(mut self) -> Self {
        self.aux1 = None;
        self.aux2 = None;
        self
    }

    /// Whether the model converts its input (`transform_input`).
    pub fn transforms_input(&self) -> bool {
        self.transform_input
    }
}

/// A ceil-mode `nn.MaxPool2d(kernel, stride)`.
fn ceil_pool(t: &mut Tracer, name: &str, kernel: usize, x: NodeId) -> NodeId {
    t.max_pool2d(name, Window2d::square(kernel, 2, 0), true, x)
}

impl FeatureModel for GoogLeNet {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        self.forward_trace_in(t, x, Mode::Eval)
    }

    fn traces_by_mode(&self) -> bool {
        self.aux1.is_some() || self.aux2.is_some()
    }

    /// `GoogLeNet.forward`: the auxiliary heads run in train mode only (`if self.training`).
    fn forward_trace_in(&self, t: &mut Tracer, x: NodeId, mode: Mode) -> NodeId {
        let x = if self.transform_input {
            transform_input(t, x)
        } else {
            x
        };
        let x = self.conv1.trace(t, "conv1", x);
        let x = ceil_pool(t, "maxpool1", 3, x);
        let x = self.conv2.trace(t, "conv2", x);
        let x = self.conv3.trace(t, "conv3", x);
        let x = ceil_pool(t, "maxpool2", 3, x);
        let x = t.scope("inception3a", |t| self.inception3a.trace(t, x));
        let x = t.scope("inception3b", |t| self.inception3b.trace(t, x));
        let x = ceil_pool(t, "maxpool3", 3, x);
        let x = t.scope("inception4a", |t| self.inception4a.trace(t, x));
        if let (Some(aux1), Mode::Train) = (&self.aux1, mode) {
            t.scope("aux1", |t| aux1.trace(t, x));
        }
        let x = t.scope("inception4b", |t| self.inception4b.trace(t, x));
        let x = t.scope("inception4c", |t| self.inception4c.trace(t, x));
        let x = t.scope("inception4d", |t| self.inception4d.trace(t, x));
        if let (Some(aux2), Mode::Train) = (&self.aux2, mode) {
            t.scope("aux2", |t| aux2.trace(t, x));
        }
        let x = t.scope("inception4e", |t| self.inception4e.trace(t, x));
        let x = ceil_pool(t, "maxpool4", 2, x);
        let x = t.scope("inception5a", |t| self.inception5a.trace(t, x));
        let x = t.scope("inception5b", |t| self.inception5b.trace(t, x));
        let x = t.adaptive_avg_pool2d("avgpool", [1, 1], x);
        let x = t.flatten(x, 1);
        let x = t.dropout("dropout", self.dropout, x);
        t.linear("fc", &self.fc, x)
    }
}

/// The GoogLeNet row of [`crate::MODELS`]: `googlenet()` when random or loaded from a file,
/// `googlenet(weights=DEFAULT)` for the published weights.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    Row::new("googlenet", "GoogLeNet", "torchvision's GoogLeNet (Inception v1); aux heads in train mode")
        .weights("GoogLeNet_Weights.IMAGENET1K_V1", "googlenet-1378be20.pth")
        .model(&Init::new(|d, a| GoogLeNetConfig::new(a.classes()).init(d)).published(
            |d, a| GoogLeNetConfig::published(a.classes()).init(d),
            GoogLeNet::without_aux_logits,
        )),
];
