use burn::module::Module;
use burn::nn::BatchNorm;
use serde::Serialize;

use super::args::{first_shape, single, tensor};
use super::{Activation, BatchNorm2d, Conv2d, Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, Value};

/// torchvision.ops' `Conv2dNormActivation` (and subclasses such as RegNet's `SimpleStemIN`):
/// convolution, BatchNorm, optional activation. FX feature extraction keeps torchvision.ops
/// modules as leaves, so this is one node.
///
/// # Shapes
/// As its convolution's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvNormActivation {
    /// The convolution.
    pub conv: Conv2d,
    /// The BatchNorm after it.
    pub norm: BatchNorm2d,
    /// The activation after the BatchNorm, if any.
    pub activation: Option<Activation>,
}

/// The parameters of a [`ConvNormActivation`]: torchvision's `0` and `1`.
#[derive(Module, Debug)]
pub struct ConvNormParams {
    /// The convolution (`0`).
    pub conv: burn::nn::conv::Conv2d,
    /// The BatchNorm (`1`).
    pub norm: BatchNorm,
}

/// Which class a [`ConvNormActivation`] node reports as its FX module type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConvNormClass {
    /// `Conv2dNormActivation`.
    Conv2dNormActivation,
    /// RegNet's `SimpleStemIN` (a 3x3 stride-2 `Conv2dNormActivation`).
    SimpleStemIn,
}

impl ConvNormClass {
    /// The class name FX reports.
    pub fn name(self) -> &'static str {
        match self {
            ConvNormClass::Conv2dNormActivation => "Conv2dNormActivation",
            ConvNormClass::SimpleStemIn => "SimpleStemIN",
        }
    }
}

impl ConvNormActivation {
    /// The op of these modules.
    pub fn of(conv: &burn::nn::conv::Conv2d, bn: &BatchNorm, activation: Option<Activation>) -> Self {
        ConvNormActivation {
            conv: Conv2d::of(conv),
            norm: BatchNorm2d::of(bn),
            activation,
        }
    }

    /// The eval-mode rewrite: one convolution with the BatchNorm folded in, and the activation
    /// to apply after it.
    pub fn fold(&self, params: &ConvNormParams) -> (Conv2d, burn::nn::conv::Conv2d) {
        self.norm.fold(&self.conv, &params.conv, &params.norm)
    }
}

impl OpDef for ConvNormActivation {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        tensor(self.conv.output_shape(first_shape(inputs)?)?)
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::ConvNorm(params)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        let x = self.conv.convolve(single(inputs)?, &params.conv);
        let x = self.norm.normalize(x, &params.norm, cx.mode);
        Ok(match self.activation {
            Some(a) => a.apply(x).into(),
            None => x.into(),
        })
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::ConvNorm(_)))
    }
}
