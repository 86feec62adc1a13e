use burn::prelude::*;
use burn::tensor::Distribution;
use serde::Serialize;

use super::args::{same_shape, train_only};
use super::{Cx, OpDef};
use crate::{Feature, TensorFn, Value};

/// `nn.Dropout(p)`: identity in eval mode; in train mode inverted dropout (zero with
/// probability `p`, scale the rest by `1 / (1 - p)`).
///
/// # Shapes
/// Any shape to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dropout {
    /// Probability of zeroing an element in train mode.
    pub p: f64,
}

impl OpDef for Dropout {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        same_shape(inputs)
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        train_only(cx, inputs, self)
    }
}

impl TensorFn for &Dropout {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        let p = self.p;
        if p <= 0.0 {
            return t;
        }
        let keep = 1.0 - p;
        let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
        let mask = t.random_like(Distribution::Bernoulli(keep));
        t * mask * scale
    }
}
