use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, GroupNorm, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::Feature;
use crate::ops::{
    Attention, BufferLinearParams, ConvLayerNormParams, ConvNormParams, MlpParams,
    SqueezeExcitationParams,
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
    /// GroupNorm's (or InstanceNorm's, one channel a group) per-channel scale and shift.
    GroupNorm(GroupNorm),
    /// A Linear layer and the buffer it reads (Swin V2's `cpb_mlp.0` on
    /// `relative_coords_table`).
    BufferLinear(BufferLinearParams),
}

/// A parameter tensor of rank 1 to [`crate::MAX_RANK`], as a model holds it (lazily
/// initialised), or a constant of an imported graph.
#[derive(Module, Debug)]
pub enum ParamTensor {
    /// A vector (a LayerNorm's weight read by `F.layer_norm`).
    R1(Param<Tensor<1>>),
    /// A matrix.
    R2(Param<Tensor<2>>),
    /// A rank-3 tensor (`layer_scale`, `class_token`, `pos_embedding`).
    R3(Param<Tensor<3>>),
    /// A rank-4 tensor.
    R4(Param<Tensor<4>>),
    /// A rank-5 tensor.
    R5(Param<Tensor<5>>),
    /// A rank-6 tensor.
    R6(Param<Tensor<6>>),
}

impl ParamTensor {
    /// Its shape, without initialising it.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            ParamTensor::R1(p) => lazy_dims(p).to_vec(),
            ParamTensor::R2(p) => lazy_dims(p).to_vec(),
            ParamTensor::R3(p) => lazy_dims(p).to_vec(),
            ParamTensor::R4(p) => lazy_dims(p).to_vec(),
            ParamTensor::R5(p) => lazy_dims(p).to_vec(),
            ParamTensor::R6(p) => lazy_dims(p).to_vec(),
        }
    }

    /// A constant of `shape` holding `values` (row-major) on `device`, as a parameter (an
    /// imported graph's initializer); `None` when the rank is 0 or above [`crate::MAX_RANK`],
    /// or the values do not fill the shape.
    pub fn from_f32(values: Vec<f32>, shape: &[usize], device: &Device) -> Option<ParamTensor> {
        if values.len() != shape.iter().product::<usize>() {
            return None;
        }
        fn param<const D: usize>(
            values: Vec<f32>,
            shape: &[usize],
            device: &Device,
        ) -> Param<Tensor<D>> {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(values, shape.to_vec()),
                device,
            ))
        }
        Some(match shape.len() {
            1 => ParamTensor::R1(param(values, shape, device)),
            2 => ParamTensor::R2(param(values, shape, device)),
            3 => ParamTensor::R3(param(values, shape, device)),
            4 => ParamTensor::R4(param(values, shape, device)),
            5 => ParamTensor::R5(param(values, shape, device)),
            6 => ParamTensor::R6(param(values, shape, device)),
            _ => return None,
        })
    }

    /// Its value, initialising it if it is lazy.
    pub fn val(&self) -> Feature {
        match self {
            ParamTensor::R1(p) => p.val().into(),
            ParamTensor::R2(p) => p.val().into(),
            ParamTensor::R3(p) => p.val().into(),
            ParamTensor::R4(p) => p.val().into(),
            ParamTensor::R5(p) => p.val().into(),
            ParamTensor::R6(p) => p.val().into(),
        }
    }
}

/// A parameter's shape without initialising it: burn fills a fresh parameter with random
/// values on first use, and tracing (listing nodes, say) needs only the shapes.
pub fn lazy_dims<const D: usize>(param: &Param<Tensor<D>>) -> [usize; D] {
    <[usize; D]>::try_from(param.lazy_shape().as_slice()).unwrap_or_else(|_| param.dims())
}
