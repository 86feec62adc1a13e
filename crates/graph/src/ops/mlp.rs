use burn::module::Module;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::gelu;
use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, TensorFn, Value, lazy_dims};

/// torchvision's `MLPBlock` leaf: Linear, GELU, Dropout, Linear, Dropout (its dropouts are
/// identities at the probability torchvision's ViTs use, 0).
///
/// # Shapes
/// `[..., in_features]` to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mlp {
    /// Input (and output) features.
    pub in_features: usize,
    /// Hidden features.
    pub hidden_features: usize,
}

/// The parameters of an [`Mlp`]: torchvision's `0` and `3`.
#[derive(Module, Debug)]
pub struct MlpParams {
    /// To the hidden width (`0`).
    pub fc1: Linear,
    /// Back (`3`).
    pub fc2: Linear,
}

impl Mlp {
    /// The op of these layers.
    pub fn of(fc1: &Linear) -> Self {
        let [in_features, hidden_features] = lazy_dims(&fc1.weight);
        Mlp {
            in_features,
            hidden_features,
        }
    }
}

impl OpDef for Mlp {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        match shape.last() {
            Some(last) if *last == self.in_features => tensor(shape.to_vec()),
            _ => Err(format!("expected a last dimension of {}", self.in_features)),
        }
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::Mlp(params)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        Ok(single_any(inputs)?.map_float(params))
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::Mlp(_)))
    }
}

/// `fc2(gelu(fc1(x)))`.
impl TensorFn for &MlpParams {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        self.fc2.forward(gelu(self.fc1.forward(t)))
    }
}
