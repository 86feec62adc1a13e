//! CNNs written as Burn modules whose forward pass is recorded op by op into a
//! [`featx_graph::Graph`], named exactly as torchvision's FX tracer names them.
//!
//! Field names are parameter paths, so a model's parameter keys equal torchvision's
//! `state_dict` keys (`layer2.0.downsample.0.weight`, `fc.6.bias`) and a torchvision checkpoint
//! loads without remapping. A model implements [`FeatureModel::forward_trace`] once, in terms of
//! [`Tracer`] calls; execution is the extractor's job.

mod alexnet;
mod model;
mod resnet;
mod tracer;

pub use alexnet::{AlexNet, AlexNetConfig};
pub use model::{FeatureModel, InputSpec, TracedModel};
pub use resnet::{BasicBlock, ResNet, ResNetConfig};
pub use tracer::{Layer, Tracer};
