use burn::prelude::*;
use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, TensorFn, Value, lazy_dims};

/// `nn.Linear` over the last dimension.
///
/// # Shapes
/// `[..., in_features]` to `[..., out_features]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Linear {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Whether a bias is added.
    pub bias: bool,
}

impl Linear {
    /// The op of burn's linear module (weights `[in, out]`).
    pub fn of(linear: &burn::nn::Linear) -> Self {
        let [in_features, out_features] = lazy_dims(&linear.weight);
        Linear {
            in_features,
            out_features,
            bias: linear.bias.is_some(),
        }
    }
}

impl OpDef for Linear {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        match first_shape(inputs)?.split_last() {
            Some((last, rest)) if *last == self.in_features => {
                let mut out = rest.to_vec();
                out.push(self.out_features);
                tensor(out)
            }
            _ => Err(format!("expected a last dimension of {}", self.in_features)),
        }
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::Linear(linear)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        Ok(single_any(inputs)?.map_float(linear))
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::Linear(_)))
    }
}

impl TensorFn for &burn::nn::Linear {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        self.forward(t)
    }
}
