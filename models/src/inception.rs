//! torchvision's Inception v3: "Rethinking the Inception Architecture for Computer Vision"
//! (Szegedy et al., 2015). A stem of five `BasicConv2d`s and two max pools, eleven Inception
//! blocks of five kinds (A to E: parallel branches of factorised convolutions and pools, joined
//! along the channels), and in training an auxiliary classifier reading `Mixed_6e`. It is made
//! for 299x299 inputs; its auxiliary head needs about that much.
//!
//! Its `forward` reads `self.training`, so FX records one graph per mode: `AuxLogits` is in the
//! train-mode graph only ([`FeatureModel::traces_by_mode`]). `inception_v3(weights=...)`
//! keeps the head and converts the input from ImageNet's normalisation to the original
//! network's (`transform_input`); `inception_v3()` leaves the input alone
//! ([`Inception3Config::published`] and [`Inception3Config::new`]).

// Field names are torchvision's module names (`Mixed_5b`, `AuxLogits`), hence parameter paths.
#![allow(non_snake_case)]

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use featx_graph::{Mode, NodeId, Window2d};

use crate::googlenet::{BasicConv2d, transform_input};
use crate::registry::{Architecture, Init, Interpolation, Preprocessing, Row};
use crate::{FeatureModel, InputSpec, Tracer};

/// torchvision's `Inception3`. Field names follow torchvision, so
/// `Mixed_6b.branch7x7_2.conv.weight` and `AuxLogits.fc.bias` are parameter paths here too.
#[derive(Module, Debug)]
pub struct Inception3 {
    Conv2d_1a_3x3: BasicConv2d,
    Conv2d_2a_3x3: BasicConv2d,
    Conv2d_2b_3x3: BasicConv2d,
    Conv2d_3b_1x1: BasicConv2d,
    Conv2d_4a_3x3: BasicConv2d,
    Mixed_5b: InceptionA,
    Mixed_5c: InceptionA,
    Mixed_5d: InceptionA,
    Mixed_6a: InceptionB,
    Mixed_6b: InceptionC,
    Mixed_6c: InceptionC,
    Mixed_6d: InceptionC,
    Mixed_6e: InceptionC,
    AuxLogits: Option<InceptionAux>,
    Mixed_7a: InceptionD,
    Mixed_7b: InceptionE,
    Mixed_7c: InceptionE,
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

/// A 1x1 `BasicConv2d`.
fn conv1x1(channels: [usize; 2], d: &Device) -> BasicConv2d {
    BasicConv2d::square(channels, 1, 1, 0, d)
}

/// A 1x`k` `BasicConv2d` padded to keep the size (`kernel_size=(1, k), padding=(0, k / 2)`).
fn conv_row(channels: [usize; 2], k: usize, d: &Device) -> BasicConv2d {
    BasicConv2d::new(channels, [1, k], 1, [0, k / 2], d)
}

/// A `k`x1 `BasicConv2d` padded to keep the size.
fn conv_column(channels: [usize; 2], k: usize, d: &Device) -> BasicConv2d {
    BasicConv2d::new(channels, [k, 1], 1, [k / 2, 0], d)
}

/// `F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)`, every block's pool branch but B's
/// and D's.
fn same_avg_pool(t: &mut Tracer, x: NodeId) -> NodeId {
    t.functional_avg_pool2d(Window2d::square(3, 1, 1), x)
}

/// `F.max_pool2d(x, kernel_size=3, stride=2)`, the pool branch of the reduction blocks B and D.
fn reduce_max_pool(t: &mut Tracer, x: NodeId) -> NodeId {
    t.functional_max_pool2d(Window2d::square(3, 2, 0), false, x)
}

/// `InceptionA`: 1x1; 1x1 then 5x5; 1x1 then two 3x3; a 3x3 average pool then 1x1.
#[derive(Module, Debug)]
pub struct InceptionA {
    branch1x1: BasicConv2d,
    branch5x5_1: BasicConv2d,
    branch5x5_2: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionA {
    fn new(cin: usize, pool_features: usize, d: &Device) -> Self {
        InceptionA {
            branch1x1: conv1x1([cin, 64], d),
            branch5x5_1: conv1x1([cin, 48], d),
            branch5x5_2: BasicConv2d::square([48, 64], 5, 1, 2, d),
            branch3x3dbl_1: conv1x1([cin, 64], d),
            branch3x3dbl_2: BasicConv2d::square([64, 96], 3, 1, 1, d),
            branch3x3dbl_3: BasicConv2d::square([96, 96], 3, 1, 1, d),
            branch_pool: conv1x1([cin, pool_features], d),
        }
    }

    /// `InceptionA.forward`, in the block's scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let branch1x1 = self.branch1x1.trace(t, "branch1x1", x);
        let b5 = self.branch5x5_1.trace(t, "branch5x5_1", x);
        let b5 = self.branch5x5_2.trace(t, "branch5x5_2", b5);
        let b3 = self.branch3x3dbl_1.trace(t, "branch3x3dbl_1", x);
        let b3 = self.branch3x3dbl_2.trace(t, "branch3x3dbl_2", b3);
        let b3 = self.branch3x3dbl_3.trace(t, "branch3x3dbl_3", b3);
        let pool = same_avg_pool(t, x);
        let pool = self.branch_pool.trace(t, "branch_pool", pool);
        t.cat(&[branch1x1, b5, b3, pool], 1)
    }
}

/// `InceptionB` (grid reduction): a strided 3x3; 1x1, 3x3, strided 3x3; a strided max pool.
#[derive(Module, Debug)]
pub struct InceptionB {
    branch3x3: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    fn new(cin: usize, d: &Device) -> Self {
        InceptionB {
            branch3x3: BasicConv2d::square([cin, 384], 3, 2, 0, d),
            branch3x3dbl_1: conv1x1([cin, 64], d),
            branch3x3dbl_2: BasicConv2d::square([64, 96], 3, 1, 1, d),
            branch3x3dbl_3: BasicConv2d::square([96, 96], 3, 2, 0, d),
        }
    }

    /// `InceptionB.forward`, in the block's scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let b3 = self.branch3x3.trace(t, "branch3x3", x);
        let dbl = self.branch3x3dbl_1.trace(t, "branch3x3dbl_1", x);
        let dbl = self.branch3x3dbl_2.trace(t, "branch3x3dbl_2", dbl);
        let dbl = self.branch3x3dbl_3.trace(t, "branch3x3dbl_3", dbl);
        let pool = reduce_max_pool(t, x);
        t.cat(&[b3, dbl, pool], 1)
    }
}

/// `InceptionC`: 1x1; 1x1, 1x7, 7x1; 1x1 and four alternating 7x1 / 1x7; a 3x3 average pool
/// then 1x1.
#[derive(Module, Debug)]
pub struct InceptionC {
    branch1x1: BasicConv2d,
    branch7x7_1: BasicConv2d,
    branch7x7_2: BasicConv2d,
    branch7x7_3: BasicConv2d,
    branch7x7dbl_1: BasicConv2d,
    branch7x7dbl_2: BasicConv2d,
    branch7x7dbl_3: BasicConv2d,
    branch7x7dbl_4: BasicConv2d,
    branch7x7dbl_5: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionC {
    fn new(cin: usize, c7: usize, d: &Device) -> Self {
        InceptionC {
            branch1x1: conv1x1([cin, 192], d),
            branch7x7_1: conv1x1([cin, c7], d),
            branch7x7_2: conv_row([c7, c7], 7, d),
            branch7x7_3: conv_column([c7, 192], 7, d),
            branch7x7dbl_1: conv1x1([cin, c7], d),
            branch7x7dbl_2: conv_column([c7, c7], 7, d),
            branch7x7dbl_3: conv_row([c7, c7], 7, d),
            branch7x7dbl_4: conv_column([c7, c7], 7, d),
            branch7x7dbl_5: conv_row([c7, 192], 7, d),
            branch_pool: conv1x1([cin, 192], d),
        }
    }

    /// `InceptionC.forward`, in the block's scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let b1 = self.branch1x1.trace(t, "branch1x1", x);
        let b7 = self.branch7x7_1.trace(t, "branch7x7_1", x);
        let b7 = self.branch7x7_2.trace(t, "branch7x7_2", b7);
        let b7 = self.branch7x7_3.trace(t, "branch7x7_3", b7);
        let dbl = self.branch7x7dbl_1.trace(t, "branch7x7dbl_1", x);
        let dbl = self.branch7x7dbl_2.trace(t, "branch7x7dbl_2", dbl);
        let dbl = self.branch7x7dbl_3.trace(t, "branch7x7dbl_3", dbl);
        let dbl = self.branch7x7dbl_4.trace(t, "branch7x7dbl_4", dbl);
        let dbl = self.branch7x7dbl_5.trace(t, "branch7x7dbl_5", dbl);
        let pool = same_avg_pool(t, x);
        let pool = self.branch_pool.trace(t, "branch_pool", pool);
        t.cat(&[b1, b7, dbl, pool], 1)
    }
}

/// `InceptionD` (grid reduction): 1x1 then a strided 3x3; 1x1, 1x7, 7x1, strided 3x3; a
/// strided max pool.
#[derive(Module, Debug)]
pub struct InceptionD {
    branch3x3_1: BasicConv2d,
    branch3x3_2: BasicConv2d,
    branch7x7x3_1: BasicConv2d,
    branch7x7x3_2: BasicConv2d,
    branch7x7x3_3: BasicConv2d,
    branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    fn new(cin: usize, d: &Device) -> Self {
        InceptionD {
            branch3x3_1: conv1x1([cin, 192], d),
            branch3x3_2: BasicConv2d::square([192, 320], 3, 2, 0, d),
            branch7x7x3_1: conv1x1([cin, 192], d),
            branch7x7x3_2: conv_row([192, 192], 7, d),
            branch7x7x3_3: conv_column([192, 192], 7, d),
            branch7x7x3_4: BasicConv2d::square([192, 192], 3, 2, 0, d),
        }
    }

    /// `InceptionD.forward`, in the block's scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let b3 = self.branch3x3_1.trace(t, "branch3x3_1", x);
        let b3 = self.branch3x3_2.trace(t, "branch3x3_2", b3);
        let b7 = self.branch7x7x3_1.trace(t, "branch7x7x3_1", x);
        let b7 = self.branch7x7x3_2.trace(t, "branch7x7x3_2", b7);
        let b7 = self.branch7x7x3_3.trace(t, "branch7x7x3_3", b7);
        let b7 = self.branch7x7x3_4.trace(t, "branch7x7x3_4", b7);
        let pool = reduce_max_pool(t, x);
        t.cat(&[b3, b7, pool], 1)
    }
}

/// `InceptionE`: 1x1; 1x1 then 1x3 and 3x1 side by side; 1x1, 3x3, then 1x3 and 3x1 side by
/// side; a 3x3 average pool then 1x1.
#[derive(Module, Debug)]
pub struct InceptionE {
    branch1x1: BasicConv2d,
    branch3x3_1: BasicConv2d,
    branch3x3_2a: BasicConv2d,
    branch3x3_2b: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3a: BasicConv2d,
    branch3x3dbl_3b: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionE {
    fn new(cin: usize, d: &Device) -> Self {
        InceptionE {
            branch1x1: conv1x1([cin, 320], d),
            branch3x3_1: conv1x1([cin, 384], d),
            branch3x3_2a: conv_row([384, 384], 3, d),
            branch3x3_2b: conv_column([384, 384], 3, d),
            branch3x3dbl_1: conv1x1([cin, 448], d),
            branch3x3dbl_2: BasicConv2d::square([448, 384], 3, 1, 1, d),
            branch3x3dbl_3a: conv_row([384, 384], 3, d),
            branch3x3dbl_3b: conv_column([384, 384], 3, d),
            branch_pool: conv1x1([cin, 192], d),
        }
    }

    /// `InceptionE.forward`, in the block's scope (three `torch.cat`s: `cat`, `cat_1`, `cat_2`).
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let b1 = self.branch1x1.trace(t, "branch1x1", x);
        let b3 = self.branch3x3_1.trace(t, "branch3x3_1", x);
        let b3a = self.branch3x3_2a.trace(t, "branch3x3_2a", b3);
        let b3b = self.branch3x3_2b.trace(t, "branch3x3_2b", b3);
        let b3 = t.cat(&[b3a, b3b], 1);
        let dbl = self.branch3x3dbl_1.trace(t, "branch3x3dbl_1", x);
        let dbl = self.branch3x3dbl_2.trace(t, "branch3x3dbl_2", dbl);
        let dbl_a = self.branch3x3dbl_3a.trace(t, "branch3x3dbl_3a", dbl);
        let dbl_b = self.branch3x3dbl_3b.trace(t, "branch3x3dbl_3b", dbl);
        let dbl = t.cat(&[dbl_a, dbl_b], 1);
        let pool = same_avg_pool(t, x);
        let pool = self.branch_pool.trace(t, "branch_pool", pool);
        t.cat(&[b1, b3, dbl, pool], 1)
    }
}

/// Inception v3's `InceptionAux`: a 5x5 average pool with stride 3, a 1x1 and a 5x5
/// `BasicConv2d`, a global average pool and a linear classifier.
#[derive(Module, Debug)]
pub struct InceptionAux {
    conv0: BasicConv2d,
    conv1: BasicConv2d,
    fc: Linear,
}

impl InceptionAux {
    fn new(cin: usize, num_classes: usize, d: &Device) -> Self {
        InceptionAux {
            conv0: conv1x1([cin, 128], d),
            conv1: BasicConv2d::square([128, 768], 5, 1, 0, d),
            fc: LinearConfig::new(768, num_classes).init(d),
        }
    }

    /// `InceptionAux.forward`, in the head's scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.functional_avg_pool2d(Window2d::square(5, 3, 0), x);
        let x = self.conv0.trace(t, "conv0", x);
        let x = self.conv1.trace(t, "conv1", x);
        let x = t.functional_adaptive_avg_pool2d([1, 1], x);
        let x = t.flatten(x, 1);
        t.linear("fc", &self.fc, x)
    }
}

/// Configuration of an [`Inception3`], as torchvision's `Inception3(...)` takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inception3Config {
    /// Classifier outputs (of the auxiliary head too).
    pub num_classes: usize,
    /// Build the auxiliary head.
    pub aux_logits: bool,
    /// Convert ImageNet-normalised input to the original network's range first.
    pub transform_input: bool,
    /// Dropout before the classifier.
    pub dropout: f64,
}

impl Inception3Config {
    /// torchvision's `inception_v3(num_classes=num_classes)`: the auxiliary head, the input
    /// as given.
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            aux_logits: true,
            transform_input: false,
            dropout: 0.5,
        }
    }

    /// What `inception_v3(weights=...)` builds: the auxiliary head and `transform_input`.
    pub fn published(num_classes: usize) -> Self {
        Self {
            transform_input: true,
            ..Self::new(num_classes)
        }
    }

    /// Builds the model with freshly initialised weights on `device`.
    pub fn init(&self, d: &Device) -> Inception3 {
        let n = self.num_classes;
        Inception3 {
            Conv2d_1a_3x3: BasicConv2d::square([3, 32], 3, 2, 0, d),
            Conv2d_2a_3x3: BasicConv2d::square([32, 32], 3, 1, 0, d),
            Conv2d_2b_3x3: BasicConv2d::square([32, 64], 3, 1, 1, d),
            Conv2d_3b_1x1: conv1x1([64, 80], d),
            Conv2d_4a_3x3: BasicConv2d::square([80, 192], 3, 1, 0, d),
            Mixed_5b: InceptionA::new(192, 32, d),
            Mixed_5c: InceptionA::new(256, 64, d),
            Mixed_5d: InceptionA::new(288, 64, d),
            Mixed_6a: InceptionB::new(288, d),
            Mixed_6b: InceptionC::new(768, 128, d),
            Mixed_6c: InceptionC::new(768, 160, d),
            Mixed_6d: InceptionC::new(768, 160, d),
            Mixed_6e: InceptionC::new(768, 192, d),
            AuxLogits: self.aux_logits.then(|| InceptionAux::new(768, n, d)),
            Mixed_7a: InceptionD::new(768, d),
            Mixed_7b: InceptionE::new(1280, d),
            Mixed_7c: InceptionE::new(2048, d),
            fc: LinearConfig::new(2048, n).init(d),
            transform_input: self.transform_input,
            dropout: self.dropout,
            name: "inception_v3".into(),
        }
    }
}

impl Inception3 {
    /// Whether the model converts its input (`transform_input`).
    pub fn transforms_input(&self) -> bool {
        self.transform_input
    }
}

/// `nn.MaxPool2d(kernel_size=3, stride=2)` at `name`.
fn stem_pool(t: &mut Tracer, name: &str, x: NodeId) -> NodeId {
    t.max_pool2d(name, Window2d::square(3, 2, 0), false, x)
}

impl FeatureModel for Inception3 {
    fn name(&self) -> &str {
        &self.name
    }

    /// Any size of at least 75x75 in eval mode (the auxiliary head of the train-mode graph
    /// needs about 299x299); listed at its published crop, 299x299.
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            nominal_size: [299, 299],
            ..InputSpec::IMAGE
        }
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        self.forward_trace_in(t, x, Mode::Eval)
    }

    fn traces_by_mode(&self) -> bool {
        self.AuxLogits.is_some()
    }

    /// `Inception3.forward`: the auxiliary head runs in train mode only (`if self.training`).
    fn forward_trace_in(&self, t: &mut Tracer, x: NodeId, mode: Mode) -> NodeId {
        let x = if self.transform_input {
            transform_input(t, x)
        } else {
            x
        };
        let x = self.Conv2d_1a_3x3.trace(t, "Conv2d_1a_3x3", x);
        let x = self.Conv2d_2a_3x3.trace(t, "Conv2d_2a_3x3", x);
        let x = self.Conv2d_2b_3x3.trace(t, "Conv2d_2b_3x3", x);
        let x = stem_pool(t, "maxpool1", x);
        let x = self.Conv2d_3b_1x1.trace(t, "Conv2d_3b_1x1", x);
        let x = self.Conv2d_4a_3x3.trace(t, "Conv2d_4a_3x3", x);
        let x = stem_pool(t, "maxpool2", x);
        let x = t.scope("Mixed_5b", |t| self.Mixed_5b.trace(t, x));
        let x = t.scope("Mixed_5c", |t| self.Mixed_5c.trace(t, x));
        let x = t.scope("Mixed_5d", |t| self.Mixed_5d.trace(t, x));
        let x = t.scope("Mixed_6a", |t| self.Mixed_6a.trace(t, x));
        let x = t.scope("Mixed_6b", |t| self.Mixed_6b.trace(t, x));
        let x = t.scope("Mixed_6c", |t| self.Mixed_6c.trace(t, x));
        let x = t.scope("Mixed_6d", |t| self.Mixed_6d.trace(t, x));
        let x = t.scope("Mixed_6e", |t| self.Mixed_6e.trace(t, x));
        if let (Some(aux), Mode::Train) = (&self.AuxLogits, mode) {
            t.scope("AuxLogits", |t| aux.trace(t, x));
        }
        let x = t.scope("Mixed_7a", |t| self.Mixed_7a.trace(t, x));
        let x = t.scope("Mixed_7b", |t| self.Mixed_7b.trace(t, x));
        let x = t.scope("Mixed_7c", |t| self.Mixed_7c.trace(t, x));
        let x = t.adaptive_avg_pool2d("avgpool", [1, 1], x);
        let x = t.dropout("dropout", self.dropout, x);
        let x = t.flatten(x, 1);
        t.linear("fc", &self.fc, x)
    }
}

/// The Inception v3 row of [`crate::MODELS`]: `inception_v3()` when random or loaded from a
/// file, `inception_v3(weights=DEFAULT)` (the same model with `transform_input`) for the
/// published weights, evaluated at 299x299 after resizing to 342.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    Row::new("inception_v3", "Inception v3", "torchvision's Inception v3, 299x299; aux head in train mode")
        .weights("Inception_V3_Weights.IMAGENET1K_V1", "inception_v3_google-0cc3c7bd.pth")
        .preprocess(Preprocessing::sized(342, 299, Interpolation::Bilinear))
        .model(&Init::new(|d, a| Inception3Config::new(a.classes()).init(d)).published(
            |d, a| Inception3Config::published(a.classes()).init(d),
            |model| model,
        )),
];
