//! torchvision's DenseNet (121, 161, 169, 201): dense blocks whose layers each read the
//! concatenation of every earlier feature map of the block.

use burn::module::{Content, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use core::fmt::Debug;
use featx_graph::{NodeId, Window2d};

use crate::registry::{Architecture, Init, Row};
use crate::{FeatureModel, Tracer};

/// torchvision's `DenseNet`: `features` (stem, dense blocks, transitions, `norm5`), a
/// functional ReLU, average pool and flatten, then `classifier`.
#[derive(Module, Debug)]
pub struct DenseNet {
    features: DenseFeatures,
    classifier: Linear,
    /// The architecture's name, from its configuration.
    #[module(skip)]
    name: String,
}

/// DenseNet's `features` Sequential, whose entries torchvision names (`conv0`, `denseblock1`,
/// `transition1`, ..., `norm5`).
#[derive(Module, Debug)]
pub struct DenseFeatures {
    conv0: Conv2d,
    norm0: BatchNorm,
    denseblock1: DenseBlock,
    transition1: Transition,
    denseblock2: DenseBlock,
    transition2: Transition,
    denseblock3: DenseBlock,
    transition3: Transition,
    denseblock4: DenseBlock,
    norm5: BatchNorm,
}

/// torchvision's `_DenseLayer`: BN, ReLU, 1x1 convolution to `bn_size * growth_rate`
/// channels, BN, ReLU, 3x3 convolution to `growth_rate` channels.
#[derive(Module, Debug)]
pub struct DenseLayer {
    norm1: BatchNorm,
    conv1: Conv2d,
    norm2: BatchNorm,
    conv2: Conv2d,
}

/// torchvision's `_Transition`: BN, ReLU, 1x1 convolution halving the channels, 2x2 average
/// pool.
#[derive(Module, Debug)]
pub struct Transition {
    norm: BatchNorm,
    conv: Conv2d,
}

/// A module on the heap, transparent in parameter paths. A block's 48 layers held inline
/// make Burn's derived `map` (weight loading) need stack frames of megabytes in unoptimised
/// builds; boxed, a block is 48 pointers.
#[derive(Debug, Clone)]
pub struct Boxed<T>(Box<T>);

impl<T: Module + Debug + Send + Clone> Module for Boxed<T> {
    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        self.0.visit(visitor)
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        Boxed(Box::new((*self.0).map(mapper)))
    }

    fn to_device(self, device: &Device) -> Self {
        Boxed(Box::new((*self.0).to_device(device)))
    }

    fn fork(self, device: &Device) -> Self {
        Boxed(Box::new((*self.0).fork(device)))
    }

    fn collect_devices(&self, devices: Vec<Device>) -> Vec<Device> {
        self.0.collect_devices(devices)
    }

    fn valid(&self) -> Self {
        Boxed(Box::new(self.0.valid()))
    }

    fn train(self) -> Self {
        Boxed(Box::new((*self.0).train()))
    }

    fn materialize(self) -> Self {
        Boxed(Box::new((*self.0).materialize()))
    }
}

impl<T: ModuleDisplay> ModuleDisplayDefault for Boxed<T> {
    fn content(&self, content: Content) -> Option<Content> {
        self.0.content(content)
    }
}

impl<T: ModuleDisplay> ModuleDisplay for Boxed<T> {}

/// The most layers a dense block has (DenseNet201's third block).
const MAX_LAYERS: usize = 48;

/// Declares [`DenseBlock`] with one optional field per layer: torchvision names a block's
/// layers `denselayer1`, `denselayer2`, ... (one-based), which a `Vec` field cannot spell.
macro_rules! dense_block {
    ($($field:ident),* $(,)?) => {
        /// torchvision's `_DenseBlock`: `denselayer1` .. `denselayerN` (only the first N fields
        /// are present), each reading the concatenation of the block's input and every earlier
        /// layer's output.
        #[derive(Module, Debug)]
        pub struct DenseBlock {
            $($field: Option<Boxed<DenseLayer>>,)*
        }

        impl DenseBlock {
            /// A block of `layers` (at most [`MAX_LAYERS`]).
            fn new(layers: Vec<DenseLayer>) -> Self {
                let mut layers = layers.into_iter().map(|l| Boxed(Box::new(l)));
                Self { $($field: layers.next(),)* }
            }

            /// The layers with their module names, in order.
            fn layers(&self) -> Vec<(&'static str, &DenseLayer)> {
                [$((stringify!($field), &self.$field)),*]
                    .into_iter()
                    .filter_map(|(name, layer)| layer.as_ref().map(|l| (name, &*l.0)))
                    .collect()
            }
        }
    };
}

dense_block!(
    denselayer1,
    denselayer2,
    denselayer3,
    denselayer4,
    denselayer5,
    denselayer6,
    denselayer7,
    denselayer8,
    denselayer9,
    denselayer10,
    denselayer11,
    denselayer12,
    denselayer13,
    denselayer14,
    denselayer15,
    denselayer16,
    denselayer17,
    denselayer18,
    denselayer19,
    denselayer20,
    denselayer21,
    denselayer22,
    denselayer23,
    denselayer24,
    denselayer25,
    denselayer26,
    denselayer27,
    denselayer28,
    denselayer29,
    denselayer30,
    denselayer31,
    denselayer32,
    denselayer33,
    denselayer34,
    denselayer35,
    denselayer36,
    denselayer37,
    denselayer38,
    denselayer39,
    denselayer40,
    denselayer41,
    denselayer42,
    denselayer43,
    denselayer44,
    denselayer45,
    denselayer46,
    denselayer47,
    denselayer48,
);

/// Configuration of a [`DenseNet`], as torchvision's `DenseNet(growth_rate, block_config,
/// num_init_features)` takes it (`bn_size` 4, no dropout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenseNetConfig {
    /// The architecture's name (`densenet121`), which the model reports.
    pub name: String,
    /// Channels each dense layer adds.
    pub growth_rate: usize,
    /// Layers per dense block.
    pub block_config: [usize; 4],
    /// Channels of the stem convolution.
    pub num_init_features: usize,
    /// Classifier outputs.
    pub num_classes: usize,
}

impl DenseNetConfig {
    fn named(
        name: &str,
        growth_rate: usize,
        block_config: [usize; 4],
        num_init_features: usize,
        num_classes: usize,
    ) -> Self {
        Self {
            name: name.into(),
            growth_rate,
            block_config,
            num_init_features,
            num_classes,
        }
    }

    /// torchvision's `densenet121`.
    pub fn densenet121(num_classes: usize) -> Self {
        Self::named("densenet121", 32, [6, 12, 24, 16], 64, num_classes)
    }

    /// torchvision's `densenet161`.
    pub fn densenet161(num_classes: usize) -> Self {
        Self::named("densenet161", 48, [6, 12, 36, 24], 96, num_classes)
    }

    /// torchvision's `densenet169`.
    pub fn densenet169(num_classes: usize) -> Self {
        Self::named("densenet169", 32, [6, 12, 32, 32], 64, num_classes)
    }

    /// torchvision's `densenet201`.
    pub fn densenet201(num_classes: usize) -> Self {
        Self::named("densenet201", 32, [6, 12, 48, 32], 64, num_classes)
    }

    /// Builds the model with freshly initialised weights on `device` (torchvision's
    /// `DenseNet.__init__`); block sizes above `MAX_LAYERS` are cut to it.
    pub fn init(&self, device: &Device) -> DenseNet {
        const BN_SIZE: usize = 4;
        let growth = self.growth_rate;
        let mut channels = self.num_init_features;
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (i, &layers) in self.block_config.iter().enumerate() {
            let layers = (0..layers.min(MAX_LAYERS))
                .map(|j| {
                    let input = channels + j * growth;
                    DenseLayer {
                        norm1: BatchNormConfig::new(input).init(device),
                        conv1: conv(input, BN_SIZE * growth, 1, 1, device),
                        norm2: BatchNormConfig::new(BN_SIZE * growth).init(device),
                        conv2: conv(BN_SIZE * growth, growth, 3, 1, device),
                    }
                })
                .collect::<Vec<_>>();
            channels += layers.len() * growth;
            blocks.push(DenseBlock::new(layers));
            if i != self.block_config.len() - 1 {
                transitions.push(Transition {
                    norm: BatchNormConfig::new(channels).init(device),
                    conv: conv(channels, channels / 2, 1, 1, device),
                });
                channels /= 2;
            }
        }
        let mut blocks = blocks.into_iter();
        let mut transitions = transitions.into_iter();
        let mut block = || blocks.next().unwrap_or_else(|| DenseBlock::new(Vec::new()));
        let mut transition = || {
            transitions.next().unwrap_or_else(|| Transition {
                norm: BatchNormConfig::new(1).init(device),
                conv: conv(1, 1, 1, 1, device),
            })
        };
        let features = DenseFeatures {
            conv0: conv(3, self.num_init_features, 7, 2, device),
            norm0: BatchNormConfig::new(self.num_init_features).init(device),
            denseblock1: block(),
            transition1: transition(),
            denseblock2: block(),
            transition2: transition(),
            denseblock3: block(),
            transition3: transition(),
            denseblock4: block(),
            norm5: BatchNormConfig::new(channels).init(device),
        };
        DenseNet {
            features,
            classifier: LinearConfig::new(channels, self.num_classes).init(device),
            name: self.name.clone(),
        }
    }
}

impl DenseLayer {
    /// `_DenseLayer.forward`: `bn_function` (concatenate, norm1, relu1, conv1), then norm2,
    /// relu2, conv2.
    fn trace(&self, t: &mut Tracer, features: &[NodeId]) -> NodeId {
        let x = t.cat(features, 1);
        let x = t.batch_norm("norm1", &self.norm1, x);
        let x = t.relu("relu1", x);
        let x = t.conv2d("conv1", &self.conv1, x);
        let x = t.batch_norm("norm2", &self.norm2, x);
        let x = t.relu("relu2", x);
        t.conv2d("conv2", &self.conv2, x)
    }
}

impl DenseBlock {
    /// `_DenseBlock.forward`: every layer reads all feature maps so far; the block returns
    /// their concatenation.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let mut features = vec![x];
        for (name, layer) in self.layers() {
            let new = t.scope(name, |t| layer.trace(t, &features));
            features.push(new);
        }
        t.cat(&features, 1)
    }
}

impl Transition {
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.batch_norm("norm", &self.norm, x);
        let x = t.relu("relu", x);
        let x = t.conv2d("conv", &self.conv, x);
        t.avg_pool2d("pool", Window2d::square(2, 2, 0), false, x)
    }
}

impl FeatureModel for DenseNet {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let f = &self.features;
        let x = t.scope("features", |t| {
            let x = t.conv2d("conv0", &f.conv0, x);
            let x = t.batch_norm("norm0", &f.norm0, x);
            let x = t.relu("relu0", x);
            let mut x = t.max_pool2d("pool0", Window2d::square(3, 2, 1), false, x);
            let stages = [
                (
                    "denseblock1",
                    &f.denseblock1,
                    Some(("transition1", &f.transition1)),
                ),
                (
                    "denseblock2",
                    &f.denseblock2,
                    Some(("transition2", &f.transition2)),
                ),
                (
                    "denseblock3",
                    &f.denseblock3,
                    Some(("transition3", &f.transition3)),
                ),
                ("denseblock4", &f.denseblock4, None),
            ];
            for (name, block, transition) in stages {
                x = t.scope(name, |t| block.trace(t, x));
                if let Some((name, transition)) = transition {
                    x = t.scope(name, |t| transition.trace(t, x));
                }
            }
            t.batch_norm("norm5", &f.norm5, x)
        });
        let x = t.functional_relu(x);
        let x = t.functional_adaptive_avg_pool2d([1, 1], x);
        let x = t.flatten(x, 1);
        t.linear("classifier", &self.classifier, x)
    }
}

/// A bias-free convolution with padding `kernel / 2`.
fn conv(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    device: &Device,
) -> Conv2d {
    let padding = kernel / 2;
    Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(false)
        .init(device)
}

/// torchvision's published DenseNet files predate its module names: `norm.1.weight` there is
/// `norm1.weight` now. torchvision renames them in `densenet._load_state_dict` with a regular
/// expression; this is the same rename: `...denselayerN.{norm,relu,conv}.{1,2}.{param}` becomes
/// `...denselayerN.{norm,relu,conv}{1,2}.{param}`. Other keys are kept.
pub fn legacy_key(key: &str) -> Option<String> {
    const PARAMS: [&str; 4] = ["weight", "bias", "running_mean", "running_var"];
    let (head, param) = key.rsplit_once('.')?;
    let (head, digit) = head.rsplit_once('.')?;
    let (layer, kind) = head.rsplit_once('.')?;
    let layer_name = layer.rsplit('.').next()?;
    let is_layer = layer_name
        .strip_prefix("denselayer")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    (is_layer
        && matches!(kind, "norm" | "relu" | "conv")
        && matches!(digit, "1" | "2")
        && PARAMS.contains(&param))
    .then(|| format!("{layer}.{kind}{digit}.{param}"))
}

/// A row of the DenseNet family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "DenseNet", about)
}

/// The DenseNet rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("densenet121", "torchvision's DenseNet121 (growth 32)")
        .weights("DenseNet121_Weights.IMAGENET1K_V1", "densenet121-a639ec97.pth")
        .model(&Init::new(|d, a| DenseNetConfig::densenet121(a.classes()).init(d)).renamed(legacy_key)),
    row("densenet161", "torchvision's DenseNet161 (growth 48)")
        .weights("DenseNet161_Weights.IMAGENET1K_V1", "densenet161-8d451a50.pth")
        .model(&Init::new(|d, a| DenseNetConfig::densenet161(a.classes()).init(d)).renamed(legacy_key)),
    row("densenet169", "torchvision's DenseNet169 (growth 32)")
        .weights("DenseNet169_Weights.IMAGENET1K_V1", "densenet169-b2777c0a.pth")
        .model(&Init::new(|d, a| DenseNetConfig::densenet169(a.classes()).init(d)).renamed(legacy_key)),
    row("densenet201", "torchvision's DenseNet201 (growth 32)")
        .weights("DenseNet201_Weights.IMAGENET1K_V1", "densenet201-c1103571.pth")
        .model(&Init::new(|d, a| DenseNetConfig::densenet201(a.classes()).init(d)).renamed(legacy_key)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_keys_are_renamed_as_torchvision_does() {
        assert_eq!(
            legacy_key("features.denseblock1.denselayer1.norm.1.weight").as_deref(),
            Some("features.denseblock1.denselayer1.norm1.weight")
        );
        assert_eq!(
            legacy_key("features.denseblock4.denselayer16.conv.2.weight").as_deref(),
            Some("features.denseblock4.denselayer16.conv2.weight")
        );
        assert_eq!(
            legacy_key("features.denseblock2.denselayer3.norm.2.running_var").as_deref(),
            Some("features.denseblock2.denselayer3.norm2.running_var")
        );
        for kept in [
            "features.denseblock1.denselayer1.norm1.weight",
            "features.transition1.norm.weight",
            "features.norm5.bias",
            "classifier.weight",
            "features.denseblock1.denselayer1.norm.3.weight",
        ] {
            assert_eq!(legacy_key(kept), None, "{kept}");
        }
    }
}
