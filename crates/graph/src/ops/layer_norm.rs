use burn::prelude::*;
use burn::tensor::module::layer_norm;
use serde::Serialize;

use super::args::{first_shape, tensor};
use super::{Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, TensorFn, Value};

/// LayerNorm over the last dimension: `nn.LayerNorm` (its parameters in the node's layer), or
/// `F.layer_norm(x, (features,), weight, bias, eps)` (weight and bias its second and third
/// inputs, `get_attr` nodes).
///
/// # Shapes
/// `[..., features]` to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerNorm {
    /// Size of the last dimension.
    pub features: usize,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl OpDef for LayerNorm {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        match shape.last() {
            Some(last) if *last == self.features => tensor(shape.to_vec()),
            _ => Err(format!("expected a last dimension of {}", self.features)),
        }
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let mut inputs = inputs.into_iter();
        let Some(x) = inputs.next() else {
            return Err("no input value".into());
        };
        let vector = |f: Feature| {
            f.into_rank::<1>()
                .map_err(|f| format!("expected a vector, got {:?}", f.dims()))
        };
        let f = match (inputs.next(), inputs.next(), cx.layer) {
            (Some(w), Some(b), _) => Normalize {
                gamma: vector(w)?,
                beta: Some(vector(b)?),
                eps: self.eps,
            },
            (None, None, Some(Layer::LayerNorm(norm))) => Normalize {
                gamma: norm.gamma.val(),
                beta: norm.beta.as_ref().map(|b| b.val()),
                eps: self.eps,
            },
            (None, None, _) => return Err(NO_PARAMETERS.into()),
            _ => return Err("layer_norm takes an input, a weight and a bias".into()),
        };
        Ok(x.map_float(f))
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        // The functional form reads its parameters from its inputs.
        matches!(layer, None | Some(Layer::LayerNorm(_)))
    }
}

/// LayerNorm over the last dimension, as `F.layer_norm`, at any rank.
struct Normalize {
    gamma: Tensor<1>,
    beta: Option<Tensor<1>>,
    eps: f64,
}

impl TensorFn for Normalize {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        layer_norm(t, self.gamma.clone(), self.beta.clone(), self.eps)
    }
}
