//! Every architecture featx ships, in one table: what the command line, the dataset runner and
//! the weights command offer, and nothing outside this crate lists architectures by hand.

use std::path::Path;

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use burn::store::ModuleSnapshot;
use featx_weights::{RemoteWeights, expected_keys, load_state_dict, load_state_dict_renamed};

use crate::{
    AlexNetConfig, EfficientNetConfig, FeatureModel, InputSpec, MobileNetV2Config,
    MobileNetV3Config, RegNetConfig, ResNetConfig, TorchvisionAlexNetConfig, TracedModel,
    VggConfig,
};
// DenseNet, ConvNeXt, ViT.
use crate::densenet::{DenseNetConfig, legacy_key};
use crate::{ConvNeXtConfig, VitConfig};

/// One architecture: its name, how to build it, and what torchvision publishes for it.
pub struct Architecture {
    /// The name `--model` takes: torchvision's builder name (`resnet50`, `vgg16_bn`), except
    /// `alexnet` (the seed article's model) and `tv_alexnet` (torchvision's `alexnet`).
    pub name: &'static str,
    /// The family (`ResNet`, `VGG`, ...).
    pub family: &'static str,
    /// One line about it.
    pub about: &'static str,
    /// torchvision's DEFAULT ImageNet weights, if there are any.
    pub weights: Option<Published>,
    /// Builds the model, type-erased.
    model: &'static dyn Constructor,
}

/// Published weights: torchvision's DEFAULT weights of an architecture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Published {
    /// torchvision's name for them (`ResNet50_Weights.IMAGENET1K_V2`).
    pub name: &'static str,
    /// The file under torchvision's download URL (`resnet50-11ad3fa6.pth`); the hex after
    /// its last `-` is the start of its SHA-256.
    pub file_name: &'static str,
    /// The preprocessing the weights were evaluated with.
    pub preprocess: Preprocessing,
}

/// How images are prepared for a model: `Resize(resize) -> CenterCrop(crop) -> ToTensor ->
/// Normalize(mean, std)`, as torchvision's `ImageClassification` transform does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// The shorter side is resized to this many pixels.
    pub resize: u32,
    /// Then a centred square of this size is cut out.
    pub crop: u32,
    /// The resampling filter.
    pub interpolation: Interpolation,
    /// Per-channel mean subtracted (RGB, on [0, 1] values).
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

/// A resampling filter of torchvision's `Resize` (on PIL images, antialiased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// `InterpolationMode.BILINEAR`.
    Bilinear,
    /// `InterpolationMode.BICUBIC` (EfficientNet's published weights).
    Bicubic,
}

impl Interpolation {
    /// torchvision's spelling (`bilinear`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
        }
    }
}

impl Preprocessing {
    /// `Resize(256) -> CenterCrop(224)`, bilinear, ImageNet mean and std: torchvision's
    /// `ImageClassification(crop_size=224)` and what the older weights use.
    pub const IMAGENET: Preprocessing = Preprocessing {
        resize: 256,
        crop: 224,
        interpolation: Interpolation::Bilinear,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// The same with the shorter side resized to `resize` (the V2 weights' 232).
    pub const fn resized(resize: u32) -> Preprocessing {
        Preprocessing {
            resize,
            ..Self::IMAGENET
        }
    }

    /// ImageNet's mean and std with `resize`, `crop` and `interpolation` (EfficientNet's
    /// published sizes and bicubic filter).
    pub const fn sized(resize: u32, crop: u32, interpolation: Interpolation) -> Preprocessing {
        Preprocessing {
            resize,
            crop,
            interpolation,
            ..Self::IMAGENET
        }
    }
}

/// The 1000 ImageNet-1k class names in torchvision's order and spelling (its weights'
/// `meta["categories"]`), one per line: every published file classifies into them.
const IMAGENET_CLASSES: &str = include_str!("imagenet_classes.txt");

impl Published {
    /// The name of class `index` (`281` is `tabby`), if the weights have that many classes.
    pub fn class_name(&self, index: usize) -> Option<&'static str> {
        IMAGENET_CLASSES.lines().nth(index)
    }

    /// The download: file name and expected SHA-256 prefix.
    pub fn remote(&self) -> RemoteWeights {
        RemoteWeights {
            file_name: self.file_name.into(),
            sha256_prefix: self.sha256_prefix().into(),
        }
    }

    /// The hex after the file name's last `-` (torch hub's `check_hash` convention).
    pub fn sha256_prefix(&self) -> &'static str {
        let stem = self.file_name.split('.').next().unwrap_or(self.file_name);
        stem.rsplit('-').next().unwrap_or(stem)
    }
}

impl Architecture {
    /// The model with fresh random weights on `device`, traced.
    pub fn random(&self, device: &Device) -> TracedModel {
        self.model.random(device)
    }

    /// The model with the torchvision state dict at `path` (`.pth`, `.safetensors`) loaded,
    /// traced.
    pub fn load(&self, device: &Device, path: &Path) -> featx_weights::Result<TracedModel> {
        self.model.load(device, path)
    }

    /// The torchvision `state_dict` keys and shapes the model expects.
    pub fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        self.model.expected_keys()
    }

    /// How many parameters the model has, as torchvision counts them (BatchNorm's running
    /// statistics are buffers, not parameters), without allocating them.
    pub fn num_params(&self) -> usize {
        self.model.num_params()
    }

    /// The input the model accepts.
    pub fn input_spec(&self) -> InputSpec {
        self.model.input_spec()
    }

    /// The state-dict key `key` of a weights file as this model names it: torchvision's
    /// published DenseNet files use keys older than its module names (`norm.1.weight` for
    /// `norm1.weight`), renamed on load as torchvision renames them. Other keys are kept.
    pub fn current_key(&self, key: &str) -> String {
        self.model
            .current_key(key)
            .unwrap_or_else(|| key.to_string())
    }

    /// The preprocessing for images: the published weights', else [`Preprocessing::IMAGENET`].
    pub fn preprocess(&self) -> Preprocessing {
        self.weights
            .map_or(Preprocessing::IMAGENET, |w| w.preprocess)
    }
}

impl std::fmt::Debug for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Architecture")
            .field("name", &self.name)
            .field("family", &self.family)
            .field("weights", &self.weights)
            .finish_non_exhaustive()
    }
}

/// The architecture called `name`, if featx has it.
pub fn find(name: &str) -> Option<&'static Architecture> {
    MODELS.iter().find(|a| a.name == name)
}

/// What an [`Architecture`] needs from a concrete model type, object-safe: each entry holds
/// one [`Init`] whose methods are compiled for its model type.
trait Constructor: Sync {
    fn random(&self, device: &Device) -> TracedModel;
    fn load(&self, device: &Device, path: &Path) -> featx_weights::Result<TracedModel>;
    fn expected_keys(&self) -> Vec<(String, Vec<usize>)>;
    fn num_params(&self) -> usize;
    fn input_spec(&self) -> InputSpec;
    #[cfg(test)]
    fn model_name(&self) -> String;
    // DenseNet, ConvNeXt, ViT.
    /// A key of a published file as the model names it now (DenseNet's legacy keys).
    fn current_key(&self, _key: &str) -> Option<String> {
        None
    }
}

/// A model constructor (`|device| ResNetConfig::resnet50(1000).init(device)`).
struct Init<M>(fn(&Device) -> M);

impl<M: FeatureModel + ModuleSnapshot> Constructor for Init<M> {
    fn random(&self, device: &Device) -> TracedModel {
        (self.0)(device).trace()
    }

    fn load(&self, device: &Device, path: &Path) -> featx_weights::Result<TracedModel> {
        Ok(load_state_dict((self.0)(device), path)?.trace())
    }

    // Burn initialises parameters lazily: building a model only to read its shapes never
    // draws its random weights.
    fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        expected_keys(&(self.0)(&Device::flex()))
    }

    fn num_params(&self) -> usize {
        let mut count = ParamCount::default();
        (self.0)(&Device::flex()).visit(&mut count);
        count.params
    }

    fn input_spec(&self) -> InputSpec {
        (self.0)(&Device::flex()).input_spec()
    }

    #[cfg(test)]
    fn model_name(&self) -> String {
        (self.0)(&Device::flex()).name().to_string()
    }
}

// DenseNet, ConvNeXt, ViT.

/// A model constructor whose published files need their keys renamed on load
/// (DenseNet's legacy `norm.1` keys, see [`crate::densenet::legacy_key`]).
struct Renamed<M>(fn(&Device) -> M, fn(&str) -> Option<String>);

impl<M: FeatureModel + ModuleSnapshot> Constructor for Renamed<M> {
    fn random(&self, device: &Device) -> TracedModel {
        Init(self.0).random(device)
    }

    fn load(&self, device: &Device, path: &Path) -> featx_weights::Result<TracedModel> {
        Ok(load_state_dict_renamed((self.0)(device), path, self.1)?.trace())
    }

    fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        Init(self.0).expected_keys()
    }

    fn num_params(&self) -> usize {
        Init(self.0).num_params()
    }

    fn input_spec(&self) -> InputSpec {
        Init(self.0).input_spec()
    }

    #[cfg(test)]
    fn model_name(&self) -> String {
        Init(self.0).model_name()
    }

    fn current_key(&self, key: &str) -> Option<String> {
        (self.1)(key)
    }
}

/// Counts parameters as torchvision does: BatchNorm's running statistics, which Burn visits
/// like parameters, are buffers there. Reads shapes only, so nothing is initialised.
#[derive(Default)]
struct ParamCount {
    path: Vec<String>,
    params: usize,
}

impl ModuleVisitor for ParamCount {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let buffer = matches!(
            self.path.last().map(String::as_str),
            Some("running_mean" | "running_var")
        );
        if !buffer {
            self.params += param.lazy_shape().num_elements();
        }
    }
}

const fn published(name: &'static str, file_name: &'static str, resize: u32) -> Option<Published> {
    Some(Published {
        name,
        file_name,
        preprocess: Preprocessing::resized(resize),
    })
}

const RESNET: &str = "ResNet";
const RESNEXT: &str = "ResNeXt";
const WIDE: &str = "Wide ResNet";
const VGG: &str = "VGG";
const ALEXNET: &str = "AlexNet";
const MOBILENET: &str = "MobileNet";
const EFFICIENTNET: &str = "EfficientNet";
const REGNET: &str = "RegNet";
// DenseNet, ConvNeXt, ViT.
const DENSENET: &str = "DenseNet";
const CONVNEXT: &str = "ConvNeXt";
const VIT: &str = "ViT";

/// Every architecture, in the order `featx models` lists them.
pub static MODELS: &[Architecture] = &[
    Architecture {
        name: "resnet18",
        family: RESNET,
        about: "torchvision's ResNet18 (BasicBlock)",
        weights: published(
            "ResNet18_Weights.IMAGENET1K_V1",
            "resnet18-f37072fd.pth",
            256,
        ),
        model: &Init(|d| ResNetConfig::resnet18(1000).init(d)),
    },
    Architecture {
        name: "resnet34",
        family: RESNET,
        about: "torchvision's ResNet34 (BasicBlock)",
        weights: published(
            "ResNet34_Weights.IMAGENET1K_V1",
            "resnet34-b627a593.pth",
            256,
        ),
        model: &Init(|d| ResNetConfig::resnet34(1000).init(d)),
    },
    Architecture {
        name: "resnet50",
        family: RESNET,
        about: "torchvision's ResNet50 (Bottleneck)",
        weights: published(
            "ResNet50_Weights.IMAGENET1K_V2",
            "resnet50-11ad3fa6.pth",
            232,
        ),
        model: &Init(|d| ResNetConfig::resnet50(1000).init(d)),
    },
    Architecture {
        name: "resnet101",
        family: RESNET,
        about: "torchvision's ResNet101 (Bottleneck)",
        weights: published(
            "ResNet101_Weights.IMAGENET1K_V2",
            "resnet101-cd907fc2.pth",
            232,
        ),
        model: &Init(|d| ResNetConfig::resnet101(1000).init(d)),
    },
    Architecture {
        name: "resnet152",
        family: RESNET,
        about: "torchvision's ResNet152 (Bottleneck)",
        weights: published(
            "ResNet152_Weights.IMAGENET1K_V2",
            "resnet152-f82ba261.pth",
            232,
        ),
        model: &Init(|d| ResNetConfig::resnet152(1000).init(d)),
    },
    Architecture {
        name: "resnext50_32x4d",
        family: RESNEXT,
        about: "torchvision's ResNeXt50 32x4d (grouped Bottleneck)",
        weights: published(
            "ResNeXt50_32X4D_Weights.IMAGENET1K_V2",
            "resnext50_32x4d-1a0047aa.pth",
            232,
        ),
        model: &Init(|d| ResNetConfig::resnext50_32x4d(1000).init(d)),
    },
    Architecture {
        name: "resnext101_32x8d",
        family: RESNEXT,
        about: "torchvision's ResNeXt101 32x8d (grouped Bottleneck)",
        weights: published(
            "ResNeXt101_32X8D_Weights.IMAGENET1K_V2",
            "resnext101_32x8d-110c445d.pth",
            232,
        ),
        model: &Init(|d| ResNetConfig::resnext101_32x8d(1000).init(d)),
    },
    Architecture {
        name: "resnext101_64x4d",
        family: RESNEXT,
        about: "torchvision's ResNeXt101 64x4d (grouped Bottleneck)",
        weights: published(
            "ResNeXt101_64X4D_Weights.IMAGENET1K_V1",
            "resnext101_64x4d-173b62eb.pth",
            232,
        ),
        model: &Init(|d| ResNetConfig::resnext101_64x4d(1000).init(d)),
    },
    Architecture {
        name: "wide_resnet50_2",
        family: WIDE,
        about: "torchvision's Wide ResNet50-2 (Bottleneck twice as wide)",
        weights: published(
            "Wide_ResNet50_2_Weights.IMAGENET1K_V2",
            "wide_resnet50_2-9ba9bcbe.pth",
            232,
        ),
        model: &Init(|d| ResNetConfig::wide_resnet50_2(1000).init(d)),
    },
    Architecture {
        name: "wide_resnet101_2",
        family: WIDE,
        about: "torchvision's Wide ResNet101-2 (Bottleneck twice as wide)",
        weights: published(
            "Wide_ResNet101_2_Weights.IMAGENET1K_V2",
            "wide_resnet101_2-d733dc28.pth",
            232,
        ),
        model: &Init(|d| ResNetConfig::wide_resnet101_2(1000).init(d)),
    },
    Architecture {
        name: "vgg11",
        family: VGG,
        about: "torchvision's VGG11",
        weights: published("VGG11_Weights.IMAGENET1K_V1", "vgg11-8a719046.pth", 256),
        model: &Init(|d| VggConfig::vgg11(1000).init(d)),
    },
    Architecture {
        name: "vgg11_bn",
        family: VGG,
        about: "torchvision's VGG11 with BatchNorm",
        weights: published(
            "VGG11_BN_Weights.IMAGENET1K_V1",
            "vgg11_bn-6002323d.pth",
            256,
        ),
        model: &Init(|d| VggConfig::vgg11_bn(1000).init(d)),
    },
    Architecture {
        name: "vgg13",
        family: VGG,
        about: "torchvision's VGG13",
        weights: published("VGG13_Weights.IMAGENET1K_V1", "vgg13-19584684.pth", 256),
        model: &Init(|d| VggConfig::vgg13(1000).init(d)),
    },
    Architecture {
        name: "vgg13_bn",
        family: VGG,
        about: "torchvision's VGG13 with BatchNorm",
        weights: published(
            "VGG13_BN_Weights.IMAGENET1K_V1",
            "vgg13_bn-abd245e5.pth",
            256,
        ),
        model: &Init(|d| VggConfig::vgg13_bn(1000).init(d)),
    },
    Architecture {
        name: "vgg16",
        family: VGG,
        about: "torchvision's VGG16",
        weights: published("VGG16_Weights.IMAGENET1K_V1", "vgg16-397923af.pth", 256),
        model: &Init(|d| VggConfig::vgg16(1000).init(d)),
    },
    Architecture {
        name: "vgg16_bn",
        family: VGG,
        about: "torchvision's VGG16 with BatchNorm",
        weights: published(
            "VGG16_BN_Weights.IMAGENET1K_V1",
            "vgg16_bn-6c64b313.pth",
            256,
        ),
        model: &Init(|d| VggConfig::vgg16_bn(1000).init(d)),
    },
    Architecture {
        name: "vgg19",
        family: VGG,
        about: "torchvision's VGG19",
        weights: published("VGG19_Weights.IMAGENET1K_V1", "vgg19-dcbb9e9d.pth", 256),
        model: &Init(|d| VggConfig::vgg19(1000).init(d)),
    },
    Architecture {
        name: "vgg19_bn",
        family: VGG,
        about: "torchvision's VGG19 with BatchNorm",
        weights: published(
            "VGG19_BN_Weights.IMAGENET1K_V1",
            "vgg19_bn-c79401a0.pth",
            256,
        ),
        model: &Init(|d| VggConfig::vgg19_bn(1000).init(d)),
    },
    Architecture {
        name: "alexnet",
        family: ALEXNET,
        about: "the seed article's AlexNet, 100 classes, 224x224 only (torchvision's: tv_alexnet)",
        weights: None,
        model: &Init(|d| AlexNetConfig::new().init(d)),
    },
    Architecture {
        name: "tv_alexnet",
        family: ALEXNET,
        about: "torchvision's alexnet",
        weights: published(
            "AlexNet_Weights.IMAGENET1K_V1",
            "alexnet-owt-7be5be79.pth",
            256,
        ),
        model: &Init(|d| TorchvisionAlexNetConfig::new().init(d)),
    },
    // Mobile nets (MobileNet, EfficientNet, RegNet).
    Architecture {
        name: "mobilenet_v2",
        family: MOBILENET,
        about: "torchvision's MobileNetV2 (inverted residuals, ReLU6)",
        weights: published(
            "MobileNet_V2_Weights.IMAGENET1K_V2",
            "mobilenet_v2-7ebf99e0.pth",
            232,
        ),
        model: &Init(|d| MobileNetV2Config::new(1000).init(d)),
    },
    Architecture {
        name: "mobilenet_v3_large",
        family: MOBILENET,
        about: "torchvision's MobileNetV3 large (squeeze-excitation, Hardswish)",
        weights: published(
            "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
            "mobilenet_v3_large-5c1a4163.pth",
            232,
        ),
        model: &Init(|d| MobileNetV3Config::large(1000).init(d)),
    },
    Architecture {
        name: "mobilenet_v3_small",
        family: MOBILENET,
        about: "torchvision's MobileNetV3 small (squeeze-excitation, Hardswish)",
        weights: published(
            "MobileNet_V3_Small_Weights.IMAGENET1K_V1",
            "mobilenet_v3_small-047dcff4.pth",
            256,
        ),
        model: &Init(|d| MobileNetV3Config::small(1000).init(d)),
    },
    Architecture {
        name: "efficientnet_b0",
        family: EFFICIENTNET,
        about: "torchvision's EfficientNet-B0 (MBConv, squeeze-excitation, SiLU)",
        weights: Some(Published {
            name: "EfficientNet_B0_Weights.IMAGENET1K_V1",
            file_name: "efficientnet_b0_rwightman-7f5810bc.pth",
            preprocess: Preprocessing::sized(256, 224, Interpolation::Bicubic),
        }),
        model: &Init(|d| EfficientNetConfig::b(0, 1000).init(d)),
    },
    Architecture {
        name: "efficientnet_b1",
        family: EFFICIENTNET,
        about: "torchvision's EfficientNet-B1 (MBConv, squeeze-excitation, SiLU)",
        weights: Some(Published {
            name: "EfficientNet_B1_Weights.IMAGENET1K_V2",
            file_name: "efficientnet_b1-c27df63c.pth",
            preprocess: Preprocessing::sized(255, 240, Interpolation::Bilinear),
        }),
        model: &Init(|d| EfficientNetConfig::b(1, 1000).init(d)),
    },
    Architecture {
        name: "efficientnet_b2",
        family: EFFICIENTNET,
        about: "torchvision's EfficientNet-B2 (MBConv, squeeze-excitation, SiLU)",
        weights: Some(Published {
            name: "EfficientNet_B2_Weights.IMAGENET1K_V1",
            file_name: "efficientnet_b2_rwightman-c35c1473.pth",
            preprocess: Preprocessing::sized(288, 288, Interpolation::Bicubic),
        }),
        model: &Init(|d| EfficientNetConfig::b(2, 1000).init(d)),
    },
    Architecture {
        name: "efficientnet_b3",
        family: EFFICIENTNET,
        about: "torchvision's EfficientNet-B3 (MBConv, squeeze-excitation, SiLU)",
        weights: Some(Published {
            name: "EfficientNet_B3_Weights.IMAGENET1K_V1",
            file_name: "efficientnet_b3_rwightman-b3899882.pth",
            preprocess: Preprocessing::sized(320, 300, Interpolation::Bicubic),
        }),
        model: &Init(|d| EfficientNetConfig::b(3, 1000).init(d)),
    },
    Architecture {
        name: "efficientnet_b4",
        family: EFFICIENTNET,
        about: "torchvision's EfficientNet-B4 (MBConv, squeeze-excitation, SiLU)",
        weights: Some(Published {
            name: "EfficientNet_B4_Weights.IMAGENET1K_V1",
            file_name: "efficientnet_b4_rwightman-23ab8bcd.pth",
            preprocess: Preprocessing::sized(384, 380, Interpolation::Bicubic),
        }),
        model: &Init(|d| EfficientNetConfig::b(4, 1000).init(d)),
    },
    Architecture {
        name: "efficientnet_b5",
        family: EFFICIENTNET,
        about: "torchvision's EfficientNet-B5 (MBConv, squeeze-excitation, SiLU)",
        weights: Some(Published {
            name: "EfficientNet_B5_Weights.IMAGENET1K_V1",
            file_name: "efficientnet_b5_lukemelas-1a07897c.pth",
            preprocess: Preprocessing::sized(456, 456, Interpolation::Bicubic),
        }),
        model: &Init(|d| EfficientNetConfig::b(5, 1000).init(d)),
    },
    Architecture {
        name: "efficientnet_b6",
        family: EFFICIENTNET,
        about: "torchvision's EfficientNet-B6 (MBConv, squeeze-excitation, SiLU)",
        weights: Some(Published {
            name: "EfficientNet_B6_Weights.IMAGENET1K_V1",
            file_name: "efficientnet_b6_lukemelas-24a108a5.pth",
            preprocess: Preprocessing::sized(528, 528, Interpolation::Bicubic),
        }),
        model: &Init(|d| EfficientNetConfig::b(6, 1000).init(d)),
    },
    Architecture {
        name: "efficientnet_b7",
        family: EFFICIENTNET,
        about: "torchvision's EfficientNet-B7 (MBConv, squeeze-excitation, SiLU)",
        weights: Some(Published {
            name: "EfficientNet_B7_Weights.IMAGENET1K_V1",
            file_name: "efficientnet_b7_lukemelas-c5b4e57e.pth",
            preprocess: Preprocessing::sized(600, 600, Interpolation::Bicubic),
        }),
        model: &Init(|d| EfficientNetConfig::b(7, 1000).init(d)),
    },
    Architecture {
        name: "regnet_y_400mf",
        family: REGNET,
        about: "torchvision's RegNetY 400MF (squeeze-excitation bottlenecks)",
        weights: published(
            "RegNet_Y_400MF_Weights.IMAGENET1K_V2",
            "regnet_y_400mf-e6988f5f.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_y_400mf")),
    },
    Architecture {
        name: "regnet_y_800mf",
        family: REGNET,
        about: "torchvision's RegNetY 800MF (squeeze-excitation bottlenecks)",
        weights: published(
            "RegNet_Y_800MF_Weights.IMAGENET1K_V2",
            "regnet_y_800mf-58fc7688.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_y_800mf")),
    },
    Architecture {
        name: "regnet_y_1_6gf",
        family: REGNET,
        about: "torchvision's RegNetY 1.6GF (squeeze-excitation bottlenecks)",
        weights: published(
            "RegNet_Y_1_6GF_Weights.IMAGENET1K_V2",
            "regnet_y_1_6gf-0d7bc02a.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_y_1_6gf")),
    },
    Architecture {
        name: "regnet_y_3_2gf",
        family: REGNET,
        about: "torchvision's RegNetY 3.2GF (squeeze-excitation bottlenecks)",
        weights: published(
            "RegNet_Y_3_2GF_Weights.IMAGENET1K_V2",
            "regnet_y_3_2gf-9180c971.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_y_3_2gf")),
    },
    Architecture {
        name: "regnet_y_8gf",
        family: REGNET,
        about: "torchvision's RegNetY 8GF (squeeze-excitation bottlenecks)",
        weights: published(
            "RegNet_Y_8GF_Weights.IMAGENET1K_V2",
            "regnet_y_8gf-dc2b1b54.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_y_8gf")),
    },
    Architecture {
        name: "regnet_y_16gf",
        family: REGNET,
        about: "torchvision's RegNetY 16GF (squeeze-excitation bottlenecks)",
        weights: published(
            "RegNet_Y_16GF_Weights.IMAGENET1K_V2",
            "regnet_y_16gf-3e4a00f9.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_y_16gf")),
    },
    Architecture {
        name: "regnet_y_32gf",
        family: REGNET,
        about: "torchvision's RegNetY 32GF (squeeze-excitation bottlenecks)",
        weights: published(
            "RegNet_Y_32GF_Weights.IMAGENET1K_V2",
            "regnet_y_32gf-8db6d4b5.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_y_32gf")),
    },
    Architecture {
        name: "regnet_x_400mf",
        family: REGNET,
        about: "torchvision's RegNetX 400MF (grouped bottlenecks)",
        weights: published(
            "RegNet_X_400MF_Weights.IMAGENET1K_V2",
            "regnet_x_400mf-62229a5f.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_x_400mf")),
    },
    Architecture {
        name: "regnet_x_800mf",
        family: REGNET,
        about: "torchvision's RegNetX 800MF (grouped bottlenecks)",
        weights: published(
            "RegNet_X_800MF_Weights.IMAGENET1K_V2",
            "regnet_x_800mf-94a99ebd.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_x_800mf")),
    },
    Architecture {
        name: "regnet_x_1_6gf",
        family: REGNET,
        about: "torchvision's RegNetX 1.6GF (grouped bottlenecks)",
        weights: published(
            "RegNet_X_1_6GF_Weights.IMAGENET1K_V2",
            "regnet_x_1_6gf-a12f2b72.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_x_1_6gf")),
    },
    Architecture {
        name: "regnet_x_3_2gf",
        family: REGNET,
        about: "torchvision's RegNetX 3.2GF (grouped bottlenecks)",
        weights: published(
            "RegNet_X_3_2GF_Weights.IMAGENET1K_V2",
            "regnet_x_3_2gf-7071aa85.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_x_3_2gf")),
    },
    Architecture {
        name: "regnet_x_8gf",
        family: REGNET,
        about: "torchvision's RegNetX 8GF (grouped bottlenecks)",
        weights: published(
            "RegNet_X_8GF_Weights.IMAGENET1K_V2",
            "regnet_x_8gf-2b70d774.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_x_8gf")),
    },
    Architecture {
        name: "regnet_x_16gf",
        family: REGNET,
        about: "torchvision's RegNetX 16GF (grouped bottlenecks)",
        weights: published(
            "RegNet_X_16GF_Weights.IMAGENET1K_V2",
            "regnet_x_16gf-ba3796d7.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_x_16gf")),
    },
    Architecture {
        name: "regnet_x_32gf",
        family: REGNET,
        about: "torchvision's RegNetX 32GF (grouped bottlenecks)",
        weights: published(
            "RegNet_X_32GF_Weights.IMAGENET1K_V2",
            "regnet_x_32gf-6eb8fdc6.pth",
            232,
        ),
        model: &Init(|d| regnet(d, "regnet_x_32gf")),
    },
    // DenseNet, ConvNeXt, ViT.
    Architecture {
        name: "densenet121",
        family: DENSENET,
        about: "torchvision's DenseNet121 (growth 32)",
        weights: published(
            "DenseNet121_Weights.IMAGENET1K_V1",
            "densenet121-a639ec97.pth",
            256,
        ),
        model: &Renamed(|d| DenseNetConfig::densenet121(1000).init(d), legacy_key),
    },
    Architecture {
        name: "densenet161",
        family: DENSENET,
        about: "torchvision's DenseNet161 (growth 48)",
        weights: published(
            "DenseNet161_Weights.IMAGENET1K_V1",
            "densenet161-8d451a50.pth",
            256,
        ),
        model: &Renamed(|d| DenseNetConfig::densenet161(1000).init(d), legacy_key),
    },
    Architecture {
        name: "densenet169",
        family: DENSENET,
        about: "torchvision's DenseNet169 (growth 32)",
        weights: published(
            "DenseNet169_Weights.IMAGENET1K_V1",
            "densenet169-b2777c0a.pth",
            256,
        ),
        model: &Renamed(|d| DenseNetConfig::densenet169(1000).init(d), legacy_key),
    },
    Architecture {
        name: "densenet201",
        family: DENSENET,
        about: "torchvision's DenseNet201 (growth 32)",
        weights: published(
            "DenseNet201_Weights.IMAGENET1K_V1",
            "densenet201-c1103571.pth",
            256,
        ),
        model: &Renamed(|d| DenseNetConfig::densenet201(1000).init(d), legacy_key),
    },
    Architecture {
        name: "convnext_tiny",
        family: CONVNEXT,
        about: "torchvision's ConvNeXt-Tiny",
        weights: published(
            "ConvNeXt_Tiny_Weights.IMAGENET1K_V1",
            "convnext_tiny-983f1562.pth",
            236,
        ),
        model: &Init(|d| ConvNeXtConfig::convnext_tiny(1000).init(d)),
    },
    Architecture {
        name: "convnext_small",
        family: CONVNEXT,
        about: "torchvision's ConvNeXt-Small",
        weights: published(
            "ConvNeXt_Small_Weights.IMAGENET1K_V1",
            "convnext_small-0c510722.pth",
            230,
        ),
        model: &Init(|d| ConvNeXtConfig::convnext_small(1000).init(d)),
    },
    Architecture {
        name: "convnext_base",
        family: CONVNEXT,
        about: "torchvision's ConvNeXt-Base",
        weights: published(
            "ConvNeXt_Base_Weights.IMAGENET1K_V1",
            "convnext_base-6075fbad.pth",
            232,
        ),
        model: &Init(|d| ConvNeXtConfig::convnext_base(1000).init(d)),
    },
    Architecture {
        name: "convnext_large",
        family: CONVNEXT,
        about: "torchvision's ConvNeXt-Large",
        weights: published(
            "ConvNeXt_Large_Weights.IMAGENET1K_V1",
            "convnext_large-ea097f82.pth",
            232,
        ),
        model: &Init(|d| ConvNeXtConfig::convnext_large(1000).init(d)),
    },
    Architecture {
        name: "vit_b_16",
        family: VIT,
        about: "torchvision's ViT-B/16 (224x224 only)",
        weights: published(
            "ViT_B_16_Weights.IMAGENET1K_V1",
            "vit_b_16-c867db91.pth",
            256,
        ),
        model: &Init(|d| VitConfig::vit_b_16(1000).init(d)),
    },
    Architecture {
        name: "vit_b_32",
        family: VIT,
        about: "torchvision's ViT-B/32 (224x224 only)",
        weights: published(
            "ViT_B_32_Weights.IMAGENET1K_V1",
            "vit_b_32-d86f8d99.pth",
            256,
        ),
        model: &Init(|d| VitConfig::vit_b_32(1000).init(d)),
    },
    Architecture {
        name: "vit_l_16",
        family: VIT,
        about: "torchvision's ViT-L/16 (224x224 only)",
        weights: published(
            "ViT_L_16_Weights.IMAGENET1K_V1",
            "vit_l_16-852ce7e3.pth",
            242,
        ),
        model: &Init(|d| VitConfig::vit_l_16(1000).init(d)),
    },
];

/// The RegNet `name` (a name from the table above, so always found).
fn regnet(device: &Device, name: &str) -> crate::RegNet {
    RegNetConfig::named(name)
        .unwrap_or_else(|| unreachable!("{name} is in RegNetConfig::named"))
        .init(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_each_model_reports_its_own() {
        for (i, arch) in MODELS.iter().enumerate() {
            assert!(
                MODELS[..i].iter().all(|a| a.name != arch.name),
                "{} twice",
                arch.name
            );
            assert_eq!(arch.model.model_name(), arch.name);
        }
    }

    #[test]
    fn hash_prefix_is_the_file_name_after_the_last_dash() {
        let alexnet = find("tv_alexnet").unwrap().weights.unwrap();
        assert_eq!(alexnet.sha256_prefix(), "7be5be79");
        for arch in MODELS {
            if let Some(w) = arch.weights {
                let prefix = w.sha256_prefix();
                assert!(
                    prefix.len() >= 8 && prefix.chars().all(|c| c.is_ascii_hexdigit()),
                    "{}: {prefix}",
                    w.file_name
                );
                assert!(w.file_name.starts_with(arch.name.trim_start_matches("tv_")));
            }
        }
    }

    // DenseNet, ConvNeXt, ViT.

    #[test]
    fn only_densenet_renames_legacy_keys() {
        let legacy = "features.denseblock1.denselayer1.norm.1.weight";
        for name in ["densenet121", "densenet161", "densenet169", "densenet201"] {
            assert_eq!(
                find(name).unwrap().current_key(legacy),
                "features.denseblock1.denselayer1.norm1.weight"
            );
        }
        assert_eq!(find("convnext_tiny").unwrap().current_key(legacy), legacy);
    }
}
