//! torchvision's MobileNetV2 and MobileNetV3 (large, small).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use featx_graph::{Activation, NodeId};

use crate::misc::{
    ActivationLayer, ConvNormActivation, ConvNormConfig, SqueezeExcitation, make_divisible,
};
use crate::registry::{Architecture, Init, Row};
use crate::sequential::Dropout;
use crate::{FeatureModel, Tracer};

/// One module of a mobile net's `nn.Sequential` (`features`, a block's `conv` or `block`):
/// its index is its path, and enum variants are not named in parameter paths.
// Built once per model and kept in `Vec`s: boxing the larger variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum MobileModule {
    /// torchvision.ops' `Conv2dNormActivation`.
    ConvNormActivation(ConvNormActivation),
    /// torchvision.ops' `SqueezeExcitation`.
    SqueezeExcitation(SqueezeExcitation),
    /// `nn.Conv2d` (MobileNetV2's linear projection).
    Conv2d(Conv2d),
    /// `nn.BatchNorm2d` (after that projection).
    BatchNorm2d(BatchNorm),
    /// MobileNetV2's `InvertedResidual`.
    InvertedResidualV2(InvertedResidualV2),
    /// MobileNetV3's `InvertedResidual`.
    InvertedResidualV3(InvertedResidualV3),
}

impl MobileModule {
    /// This module's call at `name` in the current scope.
    pub(crate) fn trace(&self, t: &mut Tracer, name: &str, x: NodeId) -> NodeId {
        match self {
            Self::ConvNormActivation(m) => t.conv_norm_activation(name, m, x),
            Self::SqueezeExcitation(m) => t.squeeze_excitation(name, m, x),
            Self::Conv2d(m) => t.conv2d(name, m, x),
            Self::BatchNorm2d(m) => t.batch_norm(name, m, x),
            Self::InvertedResidualV2(m) => t.scope(name, |t| m.trace(t, x)),
            Self::InvertedResidualV3(m) => t.scope(name, |t| m.trace(t, x)),
        }
    }
}

/// `nn.Sequential.forward` of `modules` in the scope `name`.
pub(crate) fn sequence(t: &mut Tracer, name: &str, modules: &[MobileModule], x: NodeId) -> NodeId {
    t.scope(name, |t| {
        modules
            .iter()
            .enumerate()
            .fold(x, |x, (i, m)| m.trace(t, &i.to_string(), x))
    })
}

/// MobileNetV2's `InvertedResidual`: `conv` (1x1 expansion, depthwise 3x3, 1x1 projection and
/// BatchNorm), plus the input when the shape is kept.
#[derive(Module, Debug)]
pub struct InvertedResidualV2 {
    conv: Vec<MobileModule>,
    #[module(skip)]
    use_res_connect: bool,
}

impl InvertedResidualV2 {
    fn new(inp: usize, oup: usize, stride: usize, expand_ratio: usize, device: &Device) -> Self {
        let hidden = inp * expand_ratio;
        let relu6 = Some(Activation::Relu6);
        let mut conv = Vec::new();
        if expand_ratio != 1 {
            conv.push(MobileModule::ConvNormActivation(
                ConvNormConfig::new([inp, hidden], 1, 1, relu6).init(device),
            ));
        }
        conv.push(MobileModule::ConvNormActivation(
            ConvNormConfig::new([hidden, hidden], 3, stride, relu6)
                .with_groups(hidden)
                .init(device),
        ));
        conv.push(MobileModule::Conv2d(
            Conv2dConfig::new([hidden, oup], [1, 1])
                .with_bias(false)
                .init(device),
        ));
        conv.push(MobileModule::BatchNorm2d(
            BatchNormConfig::new(oup).init(device),
        ));
        Self {
            conv,
            use_res_connect: stride == 1 && inp == oup,
        }
    }

    /// `InvertedResidual.forward`: `x + self.conv(x)` or `self.conv(x)`.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let out = sequence(t, "conv", &self.conv, x);
        if self.use_res_connect {
            t.add(x, out)
        } else {
            out
        }
    }
}

/// MobileNetV3's `InvertedResidual`: `block` (1x1 expansion unless the width is kept,
/// depthwise, optional squeeze-excitation, 1x1 projection), plus the input when the shape is
/// kept.
#[derive(Module, Debug)]
pub struct InvertedResidualV3 {
    block: Vec<MobileModule>,
    #[module(skip)]
    use_res_connect: bool,
}

/// One row of MobileNetV3's table (`bneck_conf`): input, kernel, expanded and output
/// channels, squeeze-excitation, Hardswish (else ReLU), stride.
type Bneck = (usize, usize, usize, usize, bool, bool, usize);

impl InvertedResidualV3 {
    fn new((input, kernel, expanded, out, use_se, use_hs, stride): Bneck, device: &Device) -> Self {
        let eps = 0.001;
        let act = Some(if use_hs {
            Activation::Hardswish
        } else {
            Activation::Relu
        });
        let mut block = Vec::new();
        if expanded != input {
            block.push(MobileModule::ConvNormActivation(
                ConvNormConfig::new([input, expanded], 1, 1, act)
                    .with_eps(eps)
                    .init(device),
            ));
        }
        block.push(MobileModule::ConvNormActivation(
            ConvNormConfig::new([expanded, expanded], kernel, stride, act)
                .with_groups(expanded)
                .with_eps(eps)
                .init(device),
        ));
        if use_se {
            let squeeze = make_divisible((expanded / 4) as f64, 8);
            block.push(MobileModule::SqueezeExcitation(SqueezeExcitation::new(
                expanded,
                squeeze,
                Activation::Relu,
                Activation::Hardsigmoid,
                device,
            )));
        }
        block.push(MobileModule::ConvNormActivation(
            ConvNormConfig::new([expanded, out], 1, 1, None)
                .with_eps(eps)
                .init(device),
        ));
        Self {
            block,
            use_res_connect: stride == 1 && input == out,
        }
    }

    /// `InvertedResidual.forward`: `result = self.block(input); result += input`.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let out = sequence(t, "block", &self.block, x);
        if self.use_res_connect {
            t.add(out, x)
        } else {
            out
        }
    }
}

/// torchvision's MobileNetV2.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    features: Vec<MobileModule>,
    classifier: (Dropout, Linear),
}

/// Configuration of a [`MobileNetV2`] (width multiplier 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileNetV2Config {
    /// Classifier outputs.
    pub num_classes: usize,
}

impl MobileNetV2Config {
    /// torchvision's `mobilenet_v2`.
    pub fn new(num_classes: usize) -> Self {
        Self { num_classes }
    }

    /// Builds the model with fresh weights on `device` (torchvision's `MobileNetV2.__init__`).
    pub fn init(&self, device: &Device) -> MobileNetV2 {
        const SETTING: [[usize; 4]; 7] = [
            [1, 16, 1, 1],
            [6, 24, 2, 2],
            [6, 32, 3, 2],
            [6, 64, 4, 2],
            [6, 96, 3, 1],
            [6, 160, 3, 2],
            [6, 320, 1, 1],
        ];
        let relu6 = Some(Activation::Relu6);
        let mut input = 32;
        let last = 1280;
        let mut features = vec![MobileModule::ConvNormActivation(
            ConvNormConfig::new([3, input], 3, 2, relu6).init(device),
        )];
        for [t, c, n, s] in SETTING {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                features.push(MobileModule::InvertedResidualV2(InvertedResidualV2::new(
                    input, c, stride, t, device,
                )));
                input = c;
            }
        }
        features.push(MobileModule::ConvNormActivation(
            ConvNormConfig::new([input, last], 1, 1, relu6).init(device),
        ));
        MobileNetV2 {
            features,
            classifier: (
                Dropout { p: 0.2 },
                LinearConfig::new(last, self.num_classes).init(device),
            ),
        }
    }
}

impl FeatureModel for MobileNetV2 {
    fn name(&self) -> &str {
        "mobilenet_v2"
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = sequence(t, "features", &self.features, x);
        let x = t.functional_adaptive_avg_pool2d([1, 1], x);
        let x = t.flatten(x, 1);
        t.scope("classifier", |t| {
            let x = t.dropout("0", self.classifier.0.p, x);
            t.linear("1", &self.classifier.1, x)
        })
    }
}

/// torchvision's MobileNetV3 (large or small).
#[derive(Module, Debug)]
pub struct MobileNetV3 {
    features: Vec<MobileModule>,
    classifier: (Linear, ActivationLayer, Dropout, Linear),
    #[module(skip)]
    name: String,
}

/// Which MobileNetV3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MobileNetV3Size {
    /// `mobilenet_v3_large`.
    Large,
    /// `mobilenet_v3_small`.
    Small,
}

/// Configuration of a [`MobileNetV3`] (width multiplier 1, no dilation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileNetV3Config {
    /// Large or small.
    pub size: MobileNetV3Size,
    /// Classifier outputs.
    pub num_classes: usize,
}

impl MobileNetV3Config {
    /// torchvision's `mobilenet_v3_large`.
    pub fn large(num_classes: usize) -> Self {
        Self {
            size: MobileNetV3Size::Large,
            num_classes,
        }
    }

    /// torchvision's `mobilenet_v3_small`.
    pub fn small(num_classes: usize) -> Self {
        Self {
            size: MobileNetV3Size::Small,
            num_classes,
        }
    }

    /// Builds the model with fresh weights on `device` (torchvision's `_mobilenet_v3_conf`
    /// and `MobileNetV3.__init__`).
    pub fn init(&self, device: &Device) -> MobileNetV3 {
        const LARGE: [Bneck; 15] = [
            (16, 3, 16, 16, false, false, 1),
            (16, 3, 64, 24, false, false, 2),
            (24, 3, 72, 24, false, false, 1),
            (24, 5, 72, 40, true, false, 2),
            (40, 5, 120, 40, true, false, 1),
            (40, 5, 120, 40, true, false, 1),
            (40, 3, 240, 80, false, true, 2),
            (80, 3, 200, 80, false, true, 1),
            (80, 3, 184, 80, false, true, 1),
            (80, 3, 184, 80, false, true, 1),
            (80, 3, 480, 112, true, true, 1),
            (112, 3, 672, 112, true, true, 1),
            (112, 5, 672, 160, true, true, 2),
            (160, 5, 960, 160, true, true, 1),
            (160, 5, 960, 160, true, true, 1),
        ];
        const SMALL: [Bneck; 11] = [
            (16, 3, 16, 16, true, false, 2),
            (16, 3, 72, 24, false, false, 2),
            (24, 3, 88, 24, false, false, 1),
            (24, 5, 96, 40, true, true, 2),
            (40, 5, 240, 40, true, true, 1),
            (40, 5, 240, 40, true, true, 1),
            (40, 5, 120, 48, true, true, 1),
            (48, 5, 144, 48, true, true, 1),
            (48, 5, 288, 96, true, true, 2),
            (96, 5, 576, 96, true, true, 1),
            (96, 5, 576, 96, true, true, 1),
        ];
        let (setting, last_channel, name): (&[Bneck], usize, &str) = match self.size {
            MobileNetV3Size::Large => (&LARGE, 1280, "mobilenet_v3_large"),
            MobileNetV3Size::Small => (&SMALL, 1024, "mobilenet_v3_small"),
        };
        let hs = Some(Activation::Hardswish);
        let first = setting[0].0;
        let mut features = vec![MobileModule::ConvNormActivation(
            ConvNormConfig::new([3, first], 3, 2, hs)
                .with_eps(0.001)
                .init(device),
        )];
        for &cnf in setting {
            features.push(MobileModule::InvertedResidualV3(InvertedResidualV3::new(
                cnf, device,
            )));
        }
        let last_in = setting[setting.len() - 1].3;
        let last_out = 6 * last_in;
        features.push(MobileModule::ConvNormActivation(
            ConvNormConfig::new([last_in, last_out], 1, 1, hs)
                .with_eps(0.001)
                .init(device),
        ));
        MobileNetV3 {
            features,
            classifier: (
                LinearConfig::new(last_out, last_channel).init(device),
                ActivationLayer {
                    activation: Activation::Hardswish,
                },
                Dropout { p: 0.2 },
                LinearConfig::new(last_channel, self.num_classes).init(device),
            ),
            name: name.into(),
        }
    }
}

impl FeatureModel for MobileNetV3 {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = sequence(t, "features", &self.features, x);
        let x = t.adaptive_avg_pool2d("avgpool", [1, 1], x);
        let x = t.flatten(x, 1);
        let (fc1, act, dropout, fc2) = &self.classifier;
        t.scope("classifier", |t| {
            let x = t.linear("0", fc1, x);
            let x = t.activation("1", act.activation, x);
            let x = t.dropout("2", dropout.p, x);
            t.linear("3", fc2, x)
        })
    }
}

/// A row of the MobileNet family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "MobileNet", about)
}

/// The MobileNet rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("mobilenet_v2", "torchvision's MobileNetV2 (inverted residuals, ReLU6)")
        .weights("MobileNet_V2_Weights.IMAGENET1K_V2", "mobilenet_v2-7ebf99e0.pth")
        .resize(232)
        .model(&Init::new(|d, a| MobileNetV2Config::new(a.classes()).init(d))),
    row("mobilenet_v3_large", "torchvision's MobileNetV3 large (squeeze-excitation, Hardswish)")
        .weights("MobileNet_V3_Large_Weights.IMAGENET1K_V2", "mobilenet_v3_large-5c1a4163.pth")
        .resize(232)
        .model(&Init::new(|d, a| MobileNetV3Config::large(a.classes()).init(d))),
    row("mobilenet_v3_small", "torchvision's MobileNetV3 small (squeeze-excitation, Hardswish)")
        .weights("MobileNet_V3_Small_Weights.IMAGENET1K_V1", "mobilenet_v3_small-047dcff4.pth")
        .model(&Init::new(|d, a| MobileNetV3Config::small(a.classes()).init(d))),
];
