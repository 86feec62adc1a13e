use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, LayerNorm, Linear};
use burn::prelude::*;

use crate::ops::{
    Attention, ConvLayerNormParams, ConvNormParams, MlpParams, SqueezeExcitationParams,
};

/// The parameters of one node, captured while tracing: the modules a parameter op reads
/// (each op's file says which, in its `fits`).
///
/// A burn [`Module`], so moving, casting and sizing layers are burn's own traversals. Burn
/// tensors are reference-counted, so capturing a layer shares its weights rather than copying
/// them.
#[derive(Module, Debug)]
pub enum Layer {
    /// Convolution weights and bias.
    Conv2d(Conv2d),
    /// Affine parameters and running statistics.
    BatchNorm(BatchNorm),
    /// Fully connected weights (`[in, out]`, Burn layout) and bias.
    Linear(Linear),
    /// A `Conv2dNormActivation`'s convolution and BatchNorm.
    ConvNorm(ConvNormParams),
    /// A `SqueezeExcitation`'s `fc1` and `fc2`.
    SqueezeExcitation(SqueezeExcitationParams),
    /// A parameter read directly in `forward` (a `get_attr` node).
    Parameter(ParamTensor),
    /// LayerNorm's scale and shift (Burn's `gamma` and `beta`).
    LayerNorm(LayerNorm),
    /// A convolution and the LayerNorm over its channels (ConvNeXt's stem).
    ConvLayerNorm(ConvLayerNormParams),
    /// Self attention's projections.
    Attention(Attention),
    /// An MLP block's two fully connected layers.
    Mlp(MlpParams),
}

/// A parameter tensor of rank 1 or 3, as a model holds it (lazily initialised).
#[derive(Module, Debug)]
pub enum ParamTensor {
    /// A vector (a LayerNorm's weight read by `F.layer_norm`).
    R1(Param<Tensor<1>>),
    /// A rank-3 tensor (`layer_scale`, `class_token`, `pos_embedding`).
    R3(Param<Tensor<3>>),
}

impl ParamTensor {
    /// Its shape, without initialising it.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            ParamTensor::R1(p) => lazy_dims(p).to_vec(),
            ParamTensor::R3(p) => lazy_dims(p).to_vec(),
        }
    }
}

/// A parameter's shape without initialising it: burn fills a fresh parameter with random
/// values on first use, and tracing (listing nodes, say) needs only the shapes.
pub fn lazy_dims<const D: usize>(param: &Param<Tensor<D>>) -> [usize; D] {
    <[usize; D]>::try_from(param.lazy_shape().as_slice()).unwrap_or_else(|_| param.dims())
}
