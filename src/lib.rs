//! featx: torchvision-style feature extraction for CNNs, in pure Rust on Burn.
//!
//! List every named node of a model's forward pass with [`get_graph_node_names`], build an
//! extractor for any set of them with [`create_feature_extractor`], and run it on CPU or GPU.
//! Node names, parameter keys and values match torchvision's.
//!
//! ```no_run
//! use featx::burn::prelude::*;
//! use featx::models::ResNetConfig;
//! use featx::{create_feature_extractor, ReturnNodes};
//!
//! let device = Device::flex();
//! let model = ResNetConfig::resnet18(1000).init(&device);
//! let model = featx::weights::load_state_dict(model, "resnet18.pth".as_ref()).unwrap();
//! let extractor = create_feature_extractor(&model, ["layer3", "fc"]).unwrap();
//! let x = Tensor::<4>::zeros([1, 3, 224, 224], &device);
//! let features = extractor.forward(x).unwrap();
//! assert_eq!(features.get("layer3").unwrap().dims(), [1, 256, 14, 14]);
//! ```
//!
//! Every architecture featx ships is in [`models::MODELS`], by torchvision's name, with its
//! published weights and preprocessing:
//!
//! ```no_run
//! use featx::burn::prelude::*;
//! use featx::{FeatureExtractor, ReturnNodes};
//!
//! let device = Device::flex();
//! let vgg = featx::models::find("vgg16_bn").unwrap();
//! assert_eq!(vgg.weights.unwrap().file_name, "vgg16_bn-6c64b313.pth");
//! let traced = vgg.load(&device, "vgg16_bn-6c64b313.pth".as_ref()).unwrap();
//! let extractor = FeatureExtractor::new(traced, &ReturnNodes::from(["features"])).unwrap();
//! let features = extractor.forward(Tensor::<4>::zeros([1, 3, 224, 224], &device)).unwrap();
//! assert_eq!(features.get("features").unwrap().dims(), [1, 512, 7, 7]);
//! ```
//!
//! Gradients flow through an extractor ([`FeatureExtractor::backward`]), and [`cam`] turns a
//! layer and its gradients into a class activation map, as pytorch-grad-cam does:
//!
//! ```no_run
//! use featx::burn::prelude::*;
//! use featx::cam::{Cam, Target, find};
//!
//! let device = Device::flex();
//! let traced = featx::models::find("resnet18").unwrap().random(&device);
//! let cam = Cam::new(traced, &["layer4"]).unwrap();
//! let x = Tensor::<4>::zeros([1, 3, 224, 224], &device);
//! let out = cam.run(find("gradcam").unwrap(), x, Target::Top).unwrap();
//! assert_eq!(out.maps.shape, [1, 224, 224]);
//! ```

pub use burn;
pub use featx_cam as cam;
/// Feature extraction over image folders: batched, sharded, resumable runs with an index.
pub use featx_dataset as dataset;
pub use featx_extract::*;
pub use featx_graph as graph;
pub use featx_models as models;
/// ONNX files as models: `featx::onnx::load(path)?.traced` goes wherever a traced zoo model
/// does.
pub use featx_onnx as onnx;
pub use featx_preprocess as preprocess;
pub use featx_viz as viz;
pub use featx_weights as weights;
