//! What the extractor does to a model's layers as a whole: find their device, size their
//! tensors, move them, cast them. Each is one pass over the [`Layer`] variants.

use burn::module::Module;
use burn::prelude::*;
use featx_models::{Layer, ParamTensor, TracedModel};

use crate::Precision;

/// The device of the model's first parameter.
pub(crate) fn model_device(model: &TracedModel) -> Option<Device> {
    model
        .layers
        .iter()
        .flatten()
        .next()
        .map(|layer| match layer {
            Layer::Conv2d(c) => c.weight.device(),
            Layer::BatchNorm(b) => b.gamma.device(),
            Layer::Linear(l) => l.weight.device(),
            // Mobile nets (MobileNet, EfficientNet, RegNet).
            Layer::ConvNorm(c, _) | Layer::SqueezeExcitation(c, _) => c.weight.device(),
            // DenseNet, ConvNeXt, ViT.
            Layer::Parameter(ParamTensor::R1(p)) => p.device(),
            Layer::Parameter(ParamTensor::R3(p)) => p.device(),
            Layer::LayerNorm(n) | Layer::ConvLayerNorm(_, n) => n.gamma.device(),
            Layer::Attention(a) => a.in_proj_weight.device(),
            Layer::Mlp(l, _) => l.weight.device(),
        })
}

/// Each parameter tensor of `layer` as `(name, float32 bytes)`.
pub(crate) fn tensor_bytes(layer: &Layer) -> Vec<(&'static str, u64)> {
    let bytes = |dims: &[usize]| 4 * dims.iter().product::<usize>() as u64;
    match layer {
        Layer::Conv2d(c) => {
            let mut out = vec![("weight", bytes(&c.weight.dims()))];
            out.extend(c.bias.as_ref().map(|b| ("bias", bytes(&b.dims()))));
            out
        }
        Layer::BatchNorm(b) => vec![("weight", bytes(&b.gamma.dims()))],
        Layer::Linear(l) => {
            let mut out = vec![("weight", bytes(&l.weight.dims()))];
            out.extend(l.bias.as_ref().map(|b| ("bias", bytes(&b.dims()))));
            out
        }
        // Mobile nets (MobileNet, EfficientNet, RegNet).
        Layer::ConvNorm(c, b) => vec![
            ("0.weight", bytes(&c.weight.dims())),
            ("1.weight", bytes(&b.gamma.dims())),
        ],
        Layer::SqueezeExcitation(fc1, fc2) => vec![
            ("fc1.weight", bytes(&fc1.weight.dims())),
            ("fc2.weight", bytes(&fc2.weight.dims())),
        ],
        // DenseNet, ConvNeXt, ViT. Shapes are read without initialising lazy parameters, so
        // this check never changes the order random weights are drawn in.
        Layer::Parameter(p) => vec![("value", bytes(&p.dims()))],
        Layer::LayerNorm(n) => vec![("weight", bytes(n.gamma.lazy_shape().as_slice()))],
        Layer::ConvLayerNorm(c, _) => vec![("weight", bytes(c.weight.lazy_shape().as_slice()))],
        Layer::Attention(a) => vec![
            (
                "in_proj_weight",
                bytes(a.in_proj_weight.lazy_shape().as_slice()),
            ),
            (
                "out_proj.weight",
                bytes(a.out_proj.weight.lazy_shape().as_slice()),
            ),
        ],
        Layer::Mlp(fc1, fc2) => vec![
            ("0.weight", bytes(fc1.weight.lazy_shape().as_slice())),
            ("3.weight", bytes(fc2.weight.lazy_shape().as_slice())),
        ],
    }
}

/// Something done to every module of a layer, whatever its type (what a closure cannot be in
/// Rust: generic over the module type).
trait ModuleFn {
    /// `f(module)`.
    fn apply<M: Module>(&self, module: M) -> M;
}

/// `layer` with `f` applied to each of its modules.
fn map_modules(layer: Layer, f: &impl ModuleFn) -> Layer {
    match layer {
        Layer::Conv2d(c) => Layer::Conv2d(f.apply(c)),
        Layer::BatchNorm(b) => Layer::BatchNorm(f.apply(b)),
        Layer::Linear(l) => Layer::Linear(f.apply(l)),
        // Mobile nets (MobileNet, EfficientNet, RegNet).
        Layer::ConvNorm(c, b) => Layer::ConvNorm(f.apply(c), f.apply(b)),
        Layer::SqueezeExcitation(fc1, fc2) => Layer::SqueezeExcitation(f.apply(fc1), f.apply(fc2)),
        // DenseNet, ConvNeXt, ViT.
        Layer::Parameter(ParamTensor::R1(p)) => Layer::Parameter(ParamTensor::R1(f.apply(p))),
        Layer::Parameter(ParamTensor::R3(p)) => Layer::Parameter(ParamTensor::R3(f.apply(p))),
        Layer::LayerNorm(n) => Layer::LayerNorm(f.apply(n)),
        Layer::ConvLayerNorm(c, n) => Layer::ConvLayerNorm(f.apply(c), f.apply(n)),
        Layer::Attention(a) => Layer::Attention(f.apply(a)),
        Layer::Mlp(a, b) => Layer::Mlp(f.apply(a), f.apply(b)),
    }
}

/// `layer` with its parameters on `device`.
pub(crate) fn move_layer(layer: Layer, device: &Device) -> Layer {
    struct ToDevice<'a>(&'a Device);
    impl ModuleFn for ToDevice<'_> {
        fn apply<M: Module>(&self, module: M) -> M {
            module.to_device(self.0)
        }
    }
    map_modules(layer, &ToDevice(device))
}

/// `layer` with its float parameters and buffers in `precision`.
pub(crate) fn cast_layer(layer: Layer, precision: Precision) -> Layer {
    map_modules(layer, &precision)
}

impl ModuleFn for Precision {
    fn apply<M: Module>(&self, module: M) -> M {
        self.cast_module(module)
    }
}
