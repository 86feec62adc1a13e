//! torchvision's ConvNeXt (tiny, small, base, large): depthwise 7x7 convolutions, LayerNorm
//! over channels (through permutes), GELU and a learned per-channel layer scale.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use featx_graph::NodeId;

use crate::registry::{Architecture, Init, Row};
use crate::{FeatureModel, ParamTensor, Tracer};

/// The `eps` of every LayerNorm in torchvision's ConvNeXt.
const EPS: f64 = 1e-6;

/// torchvision's `ConvNeXt`: `features` (stem, four stages of `CNBlock`s with downsampling
/// between them), `avgpool`, `classifier` (LayerNorm2d, Flatten, Linear).
#[derive(Module, Debug)]
pub struct ConvNeXt {
    features: Vec<Feature>,
    /// `LayerNorm2d`, `Flatten(1)`, `Linear`.
    classifier: Vec<Entry>,
    /// The architecture's name, from its configuration.
    #[module(skip)]
    name: String,
}

/// One entry of ConvNeXt's `features` Sequential.
// Built once per model; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Feature {
    /// `features.0`: `Conv2dNormActivation(3, C, 4, stride 4, LayerNorm2d, no activation)`.
    Stem(Stem),
    /// A stage: a Sequential of `CNBlock`s.
    Stage(Vec<CnBlock>),
    /// Downsampling: `Sequential(LayerNorm2d, Conv2d(C, 2C, 2, stride 2))`.
    Downsample(Downsample),
}

/// torchvision's `Conv2dNormActivation` as ConvNeXt's stem uses it: the convolution and the
/// LayerNorm over channels (a tuple, so their module names are `0` and `1`).
pub type Stem = (Conv2d, LayerNorm);

/// A downsampling layer: LayerNorm over channels (`0`), then a 2x2 stride-2 convolution
/// (`1`).
pub type Downsample = (LayerNorm, Conv2d);

/// torchvision's `CNBlock`: `layer_scale * block(x)`, stochastic depth, plus `x`.
#[derive(Module, Debug)]
pub struct CnBlock {
    layer_scale: Param<Tensor<3>>,
    /// Depthwise 7x7 conv, permute, LayerNorm, Linear 4x, GELU, Linear, permute back: only
    /// the entries with parameters appear in the state dict (`block.0`, `.2`, `.3`, `.5`).
    block: Vec<Entry>,
    /// Stochastic depth probability (train mode only).
    #[module(skip)]
    sd_prob: f64,
}

/// One entry of a ConvNeXt Sequential (`CNBlock.block`, `classifier`): its index is its
/// module path, and only entries with parameters have state-dict keys.
#[derive(Module, Debug)]
pub enum Entry {
    /// `nn.Conv2d`.
    Conv2d(Conv2d),
    /// `nn.LayerNorm` (or `LayerNorm2d`, by where it sits).
    LayerNorm(LayerNorm),
    /// `nn.Linear`.
    Linear(Linear),
    /// A parameter-free module (`Permute`, `GELU`, `Flatten`).
    Stateless(Stateless),
}

/// A module without parameters.
#[derive(Module, Debug)]
pub struct Stateless;

/// Configuration of a [`ConvNeXt`]: per stage, the channels and the number of blocks
/// (torchvision's `CNBlockConfig`s), and the stochastic depth probability.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvNeXtConfig {
    /// The architecture's name (`convnext_tiny`), which the model reports.
    pub name: String,
    /// Channels of each stage.
    pub dims: [usize; 4],
    /// Blocks of each stage.
    pub depths: [usize; 4],
    /// The last block's stochastic depth probability (linearly from 0 at the first).
    pub stochastic_depth_prob: f64,
    /// Classifier outputs.
    pub num_classes: usize,
}

impl ConvNeXtConfig {
    fn named(name: &str, dims: [usize; 4], depths: [usize; 4], sd: f64, classes: usize) -> Self {
        Self {
            name: name.into(),
            dims,
            depths,
            stochastic_depth_prob: sd,
            num_classes: classes,
        }
    }

    /// torchvision's `convnext_tiny`.
    pub fn convnext_tiny(num_classes: usize) -> Self {
        Self::named(
            "convnext_tiny",
            [96, 192, 384, 768],
            [3, 3, 9, 3],
            0.1,
            num_classes,
        )
    }

    /// torchvision's `convnext_small`.
    pub fn convnext_small(num_classes: usize) -> Self {
        Self::named(
            "convnext_small",
            [96, 192, 384, 768],
            [3, 3, 27, 3],
            0.4,
            num_classes,
        )
    }

    /// torchvision's `convnext_base`.
    pub fn convnext_base(num_classes: usize) -> Self {
        Self::named(
            "convnext_base",
            [128, 256, 512, 1024],
            [3, 3, 27, 3],
            0.5,
            num_classes,
        )
    }

    /// torchvision's `convnext_large`.
    pub fn convnext_large(num_classes: usize) -> Self {
        Self::named(
            "convnext_large",
            [192, 384, 768, 1536],
            [3, 3, 27, 3],
            0.5,
            num_classes,
        )
    }

    /// Builds the model with freshly initialised weights on `device` (torchvision's
    /// `ConvNeXt.__init__`; layer scales start at 1e-6).
    pub fn init(&self, device: &Device) -> ConvNeXt {
        let norm = |c: usize| LayerNormConfig::new(c).with_epsilon(EPS).init(device);
        let total: usize = self.depths.iter().sum();
        let mut block_id = 0;
        let mut features = vec![Feature::Stem((
            conv(3, self.dims[0], 4, 4, 0, 1, device),
            norm(self.dims[0]),
        ))];
        for (stage, (&dim, &depth)) in self.dims.iter().zip(&self.depths).enumerate() {
            let blocks = (0..depth)
                .map(|_| {
                    let sd_prob =
                        self.stochastic_depth_prob * block_id as f64 / (total as f64 - 1.0);
                    block_id += 1;
                    CnBlock {
                        layer_scale: Initializer::Constant { value: 1e-6 }
                            .init([dim, 1, 1], device),
                        block: vec![
                            Entry::Conv2d(conv(dim, dim, 7, 1, 3, dim, device)),
                            Entry::Stateless(Stateless),
                            Entry::LayerNorm(norm(dim)),
                            Entry::Linear(LinearConfig::new(dim, 4 * dim).init(device)),
                            Entry::Stateless(Stateless),
                            Entry::Linear(LinearConfig::new(4 * dim, dim).init(device)),
                            Entry::Stateless(Stateless),
                        ],
                        sd_prob,
                    }
                })
                .collect();
            features.push(Feature::Stage(blocks));
            if let Some(&next) = self.dims.get(stage + 1) {
                features.push(Feature::Downsample((
                    norm(dim),
                    conv(dim, next, 2, 2, 0, 1, device),
                )));
            }
        }
        let last = self.dims[3];
        ConvNeXt {
            features,
            classifier: vec![
                Entry::LayerNorm(norm(last)),
                Entry::Stateless(Stateless),
                Entry::Linear(LinearConfig::new(last, self.num_classes).init(device)),
            ],
            name: self.name.clone(),
        }
    }
}

/// A convolution with bias.
fn conv(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_groups(groups)
        .init(device)
}

/// torchvision's `LayerNorm2d.forward` (not a leaf: FX records its permutes, the reads of its
/// weight and bias, and `F.layer_norm`).
fn layer_norm_2d(t: &mut Tracer, norm: &LayerNorm, x: NodeId) -> NodeId {
    let x = t.permute(x, &[0, 2, 3, 1]);
    let weight = t.parameter("weight", ParamTensor::R1(norm.gamma.clone()));
    let bias = match &norm.beta {
        Some(beta) => t.parameter("bias", ParamTensor::R1(beta.clone())),
        // torchvision's LayerNorm2d always has a bias; a model built here does too.
        None => weight,
    };
    let features = norm.gamma.lazy_shape().num_elements();
    let x = t.functional_layer_norm(x, weight, bias, features, EPS);
    t.permute(x, &[0, 3, 1, 2])
}

impl CnBlock {
    /// `CNBlock.forward`.
    fn trace(&self, t: &mut Tracer, input: NodeId) -> NodeId {
        let scale = t.parameter("layer_scale", ParamTensor::R3(self.layer_scale.clone()));
        let x = t.scope("block", |t| {
            self.block.iter().enumerate().fold(input, |x, (i, entry)| {
                let name = i.to_string();
                match entry {
                    Entry::Conv2d(conv) => t.conv2d(&name, conv, x),
                    Entry::LayerNorm(norm) => t.layer_norm(&name, norm, EPS, x),
                    Entry::Linear(linear) => t.linear(&name, linear, x),
                    // `Permute([0, 2, 3, 1])`, `GELU`, `Permute([0, 3, 1, 2])`.
                    Entry::Stateless(_) if i == 1 => t.permute_module(&name, &[0, 2, 3, 1], x),
                    Entry::Stateless(_) if i == 4 => t.gelu(&name, x),
                    Entry::Stateless(_) => t.permute_module(&name, &[0, 3, 1, 2], x),
                }
            })
        });
        let x = t.mul(scale, x);
        let x = t.stochastic_depth("stochastic_depth", self.sd_prob, true, x);
        t.add(x, input)
    }
}

impl FeatureModel for ConvNeXt {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.scope("features", |t| {
            self.features
                .iter()
                .enumerate()
                .fold(x, |x, (i, feature)| match feature {
                    Feature::Stem((conv, norm)) => {
                        t.conv_layer_norm(&i.to_string(), conv, norm, EPS, x)
                    }
                    Feature::Stage(blocks) => t.scope(&i.to_string(), |t| {
                        blocks.iter().enumerate().fold(x, |x, (j, block)| {
                            t.scope(&j.to_string(), |t| block.trace(t, x))
                        })
                    }),
                    Feature::Downsample((norm, conv)) => t.scope(&i.to_string(), |t| {
                        let x = t.scope("0", |t| layer_norm_2d(t, norm, x));
                        t.conv2d("1", conv, x)
                    }),
                })
        });
        let x = t.adaptive_avg_pool2d("avgpool", [1, 1], x);
        t.scope("classifier", |t| {
            self.classifier.iter().enumerate().fold(x, |x, (i, entry)| {
                let name = i.to_string();
                match entry {
                    Entry::LayerNorm(norm) => t.scope(&name, |t| layer_norm_2d(t, norm, x)),
                    Entry::Linear(linear) => t.linear(&name, linear, x),
                    Entry::Conv2d(conv) => t.conv2d(&name, conv, x),
                    Entry::Stateless(_) => t.flatten_module(&name, 1, x),
                }
            })
        })
    }
}

/// A row of the ConvNeXt family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "ConvNeXt", about)
}

/// The ConvNeXt rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("convnext_tiny", "torchvision's ConvNeXt-Tiny")
        .weights("ConvNeXt_Tiny_Weights.IMAGENET1K_V1", "convnext_tiny-983f1562.pth")
        .resize(236)
        .model(&Init::new(|d, a| ConvNeXtConfig::convnext_tiny(a.classes()).init(d))),
    row("convnext_small", "torchvision's ConvNeXt-Small")
        .weights("ConvNeXt_Small_Weights.IMAGENET1K_V1", "convnext_small-0c510722.pth")
        .resize(230)
        .model(&Init::new(|d, a| ConvNeXtConfig::convnext_small(a.classes()).init(d))),
    row("convnext_base", "torchvision's ConvNeXt-Base")
        .weights("ConvNeXt_Base_Weights.IMAGENET1K_V1", "convnext_base-6075fbad.pth")
        .resize(232)
        .model(&Init::new(|d, a| ConvNeXtConfig::convnext_base(a.classes()).init(d))),
    row("convnext_large", "torchvision's ConvNeXt-Large")
        .weights("ConvNeXt_Large_Weights.IMAGENET1K_V1", "convnext_large-ea097f82.pth")
        .resize(232)
        .model(&Init::new(|d, a| ConvNeXtConfig::convnext_large(a.classes()).init(d))),
];
