//! CNNs written as Burn modules whose forward pass is recorded op by op into a
//! [`featx_graph::Graph`], named exactly as torchvision's FX tracer names them, and the
//! [`registry`] of every architecture featx ships.
//!
//! Field names are parameter paths, so a model's parameter keys equal torchvision's
//! `state_dict` keys (`layer2.0.downsample.0.weight`, `features.3.weight`) and a torchvision
//! checkpoint loads without remapping. A model implements [`FeatureModel::forward_trace`] once,
//! in terms of [`Tracer`] calls that read like torchvision's `forward`; execution is the
//! extractor's job.
//!
//! One file per family: [`ResNet`] (ResNet, ResNeXt, Wide ResNet), [`Vgg`], and [`AlexNet`]
//! (the seed article's) beside [`TorchvisionAlexNet`]; [`MobileNetV2`], [`MobileNetV3`],
//! [`EfficientNet`] and [`RegNet`], built from torchvision.ops' blocks in [`misc`]; [`DenseNet`],
//! [`ConvNeXt`] and [`VisionTransformer`]; [`SwinTransformer`] (V1 and V2). Each family's
//! file ends with its rows of the [`registry`].

mod alexnet;
pub mod convnext;
pub mod densenet;
mod efficientnet;
pub mod googlenet;
pub mod inception;
pub mod maxvit;
pub mod misc;
pub mod mnasnet;
mod mobilenet;
mod model;
pub mod registry;
mod regnet;
mod resnet;
mod sequential;
pub mod shufflenet;
pub mod squeezenet;
pub mod swin;
mod tracer;
pub mod vgg;
pub mod vit;

pub use alexnet::{AlexNet, AlexNetConfig, TorchvisionAlexNet, TorchvisionAlexNetConfig};
pub use convnext::{ConvNeXt, ConvNeXtConfig};
pub use densenet::{DenseNet, DenseNetConfig};
pub use efficientnet::{
    EfficientNet, EfficientNetConfig, EfficientNetFeature, MBConv, MBConvKind, StageConfig,
};
pub use featx_graph::ops::Attention;
pub use featx_graph::{Layer, ParamTensor};
pub use googlenet::{GoogLeNet, GoogLeNetConfig};
pub use inception::{Inception3, Inception3Config};
pub use maxvit::{MaxVit, MaxVitConfig};
pub use mnasnet::{MnasNet, MnasNetConfig};
pub use mobilenet::{
    InvertedResidualV2, InvertedResidualV3, MobileModule, MobileNetV2, MobileNetV2Config,
    MobileNetV3, MobileNetV3Config, MobileNetV3Size,
};
pub use model::{FeatureModel, InputSpec, TracedModel};
pub use registry::{Architecture, BuildArgs, MODELS, find};
pub use regnet::{
    AnyStage, BottleneckTransform, RegNet, RegNetConfig, ResBottleneckBlock, TrunkOutput,
};
pub use resnet::{BasicBlock, Block, BlockKind, Bottleneck, ResNet, ResNetConfig};
pub use sequential::{Dropout, MaxPool, SeqModule, sequential};
pub use shufflenet::{ShuffleNetV2, ShuffleNetV2Config};
pub use squeezenet::{SqueezeNet, SqueezeNetConfig, SqueezeNetVersion};
pub use swin::{SwinConfig, SwinTransformer};
pub use tracer::{Size, Tracer};
pub use vgg::{Vgg, VggConfig};
pub use vit::{VisionTransformer, VitConfig};
