use burn::module::Module;
use burn::nn::LayerNorm;
use burn::tensor::module::layer_norm;
use serde::Serialize;

use super::args::{first_shape, single, tensor};
use super::{Conv2d, Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, Value};

/// ConvNeXt's stem, torchvision's `Conv2dNormActivation` leaf with `LayerNorm2d`: a
/// convolution with bias, then LayerNorm over channels, no activation.
///
/// # Shapes
/// As its convolution's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvLayerNorm2d {
    /// The convolution.
    pub conv: Conv2d,
    /// Added to the variance before the square root.
    pub eps: f64,
}

/// The parameters of a [`ConvLayerNorm2d`]: torchvision's `0` and `1`.
#[derive(Module, Debug)]
pub struct ConvLayerNormParams {
    /// The convolution (`0`).
    pub conv: burn::nn::conv::Conv2d,
    /// The LayerNorm over channels (`1`).
    pub norm: LayerNorm,
}

impl OpDef for ConvLayerNorm2d {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        tensor(self.conv.output_shape(first_shape(inputs)?)?)
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::ConvLayerNorm(params)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        let x = self.conv.convolve(single(inputs)?, &params.conv);
        let norm = &params.norm;
        let beta = norm.beta.as_ref().map(|b| b.val());
        let x = layer_norm(x.permute([0, 2, 3, 1]), norm.gamma.val(), beta, self.eps);
        Ok(x.permute([0, 3, 1, 2]).into())
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::ConvLayerNorm(_)))
    }
}
