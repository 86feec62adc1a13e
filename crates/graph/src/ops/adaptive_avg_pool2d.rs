use burn::tensor::module::adaptive_avg_pool2d;
use serde::Serialize;

use super::args::{first_shape, rank4, single, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// `nn.AdaptiveAvgPool2d(output)`, or `F.adaptive_avg_pool2d(x, output)`.
///
/// # Shapes
/// `[N, C, H, W]` to `[N, C, output[0], output[1]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdaptiveAvgPool2d {
    /// Output size `[oh, ow]`.
    pub output: [usize; 2],
}

impl OpDef for AdaptiveAvgPool2d {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let [n, c, _, _] = rank4(first_shape(inputs)?)?;
        tensor(vec![n, c, self.output[0], self.output[1]])
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        Ok(adaptive_avg_pool2d(single(inputs)?, self.output).into())
    }
}
