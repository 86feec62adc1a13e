use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use serde::Serialize;

use super::args::{first_shape, rank4, single, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value, Window2d};

/// `nn.MaxPool2d`: the largest value in each window (padding never wins).
///
/// # Shapes
/// `[N, C, H, W]` to `[N, C, OH, OW]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaxPool2d {
    /// Window, stride, padding (with negative infinity) and dilation.
    pub window: Window2d,
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
}

impl OpDef for MaxPool2d {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let [n, c, h, w] = rank4(first_shape(inputs)?)?;
        let [oh, ow] = self.window.output_size([h, w], self.ceil_mode)?;
        tensor(vec![n, c, oh, ow])
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let window = &self.window;
        let options = MaxPoolOptions {
            kernel_size: window.kernel,
            stride: window.stride,
            padding: window.padding,
            dilation: window.dilation,
            ceil_mode: self.ceil_mode,
        };
        Ok(max_pool2d(single(inputs)?, options).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxpool_ceil_mode_drops_window_starting_in_padding() {
        let pool = |ceil_mode| MaxPool2d {
            window: Window2d::square(3, 2, 0),
            ceil_mode,
        };
        let x = Value::Tensor(vec![1, 1, 6, 6]);
        assert_eq!(pool(false).infer(&[&x]), Ok(Value::Tensor(vec![1, 1, 2, 2])));
        assert_eq!(pool(true).infer(&[&x]), Ok(Value::Tensor(vec![1, 1, 3, 3])));
    }
}
