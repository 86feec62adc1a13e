use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::module::{adaptive_avg_pool2d, conv2d};
use burn::tensor::ops::ConvOptions;
use serde::Serialize;

use super::args::{first_shape, rank4, single, tensor};
use super::{Activation, Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, Value};

/// torchvision.ops' `SqueezeExcitation`: `input * scale_activation(fc2(activation(fc1(
/// avgpool(input)))))`, with 1x1 convolutions `fc1`, `fc2`. One node, as FX keeps it.
///
/// # Shapes
/// `[N, channels, H, W]` to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqueezeExcitation {
    /// Input (and output) channels.
    pub channels: usize,
    /// Channels between `fc1` and `fc2`.
    pub squeeze: usize,
    /// After `fc1`.
    pub activation: Activation,
    /// After `fc2`.
    pub scale_activation: Activation,
}

/// The parameters of a [`SqueezeExcitation`]: 1x1 convolutions with bias.
#[derive(Module, Debug)]
pub struct SqueezeExcitationParams {
    /// Channels to the squeezed width.
    pub fc1: Conv2d,
    /// Back to the channels.
    pub fc2: Conv2d,
}

impl OpDef for SqueezeExcitation {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        let [_, c, _, _] = rank4(shape)?;
        if c != self.channels {
            return Err(format!("expected {} channels, got {c}", self.channels));
        }
        tensor(shape.to_vec())
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::SqueezeExcitation(params)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        let pointwise = |x: Tensor<4>, conv: &Conv2d| {
            let bias = conv.bias.as_ref().map(|b| b.val());
            let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
            conv2d(x, conv.weight.val(), bias, options)
        };
        let x: Tensor<4> = single(inputs)?;
        let scale = adaptive_avg_pool2d(x.clone(), [1, 1]);
        let scale = self.activation.apply(pointwise(scale, &params.fc1));
        let scale = self.scale_activation.apply(pointwise(scale, &params.fc2));
        Ok((x * scale).into())
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::SqueezeExcitation(_)))
    }
}
