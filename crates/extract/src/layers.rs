//! What the extractor does to a model's layers as a whole: find their device, size their
//! tensors, move them, cast them. A [`Layer`] is a burn `Module`, so each is one of burn's own
//! traversals, whatever the layer holds.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use featx_models::{Layer, TracedModel};

use crate::Precision;

/// The device of the model's first parameter.
pub(crate) fn model_device(model: &TracedModel) -> Option<Device> {
    model
        .layers
        .iter()
        .flatten()
        .find_map(|layer| layer.devices().into_iter().next())
}

/// Each float tensor of `layer` as `(its path in the layer, float32 bytes)`. Shapes are read
/// without initialising lazy parameters, so this check never changes the order random weights
/// are drawn in.
pub(crate) fn tensor_bytes(layer: &Layer) -> Vec<(String, u64)> {
    #[derive(Default)]
    struct Sizes {
        path: Vec<String>,
        out: Vec<(String, u64)>,
    }
    impl ModuleVisitor for Sizes {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            // A variant of `Layer` (or `ParamTensor`) is no part of a parameter's path.
            if !container_type.starts_with("Enum:") {
                self.path.push(name.to_string());
            }
        }

        fn exit_module(&mut self, _: &str, container_type: &str) {
            if !container_type.starts_with("Enum:") {
                self.path.pop();
            }
        }

        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let elements: usize = param.lazy_shape().as_slice().iter().product();
            let name = match self.path.is_empty() {
                true => "value".to_string(),
                false => self.path.join("."),
            };
            self.out.push((name, 4 * elements as u64));
        }
    }
    let mut sizes = Sizes::default();
    layer.visit(&mut sizes);
    sizes.out
}

/// Initialises `layer`'s lazy parameters (random weights are drawn on first read), leaving
/// initialised ones as they are.
pub(crate) fn materialize(layer: &Layer) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            // The value is shared with the layer's parameter: reading it once initialises it.
            drop(param.val());
        }
    }
    layer.visit(&mut Touch);
}

/// `layer` with its parameters on `device`.
pub(crate) fn move_layer(layer: Layer, device: &Device) -> Layer {
    layer.to_device(device)
}

/// `layer` with its float parameters and buffers in `precision`.
pub(crate) fn cast_layer(layer: Layer, precision: Precision) -> Layer {
    precision.cast_module(layer)
}
