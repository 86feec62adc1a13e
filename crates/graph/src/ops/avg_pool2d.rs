use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use serde::Serialize;

use super::args::{first_shape, rank4, single, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value, Window2d};

/// `nn.AvgPool2d` (ONNX `AveragePool`): zero padding counted in the average or not.
///
/// # Shapes
/// `[N, C, H, W]` to `[N, C, OH, OW]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AvgPool2d {
    /// Window, stride and zero padding.
    pub window: Window2d,
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
    /// Whether zero padding counts in the divisor (PyTorch's default; ONNX's is not).
    pub count_include_pad: bool,
}

impl OpDef for AvgPool2d {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let [n, c, h, w] = rank4(first_shape(inputs)?)?;
        let [oh, ow] = self.window.output_size([h, w], self.ceil_mode)?;
        tensor(vec![n, c, oh, ow])
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let options = AvgPoolOptions {
            kernel_size: self.window.kernel,
            stride: self.window.stride,
            padding: self.window.padding,
            count_include_pad: self.count_include_pad,
            ceil_mode: self.ceil_mode,
        };
        Ok(avg_pool2d(single(inputs)?, options).into())
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::TensorData;

    use super::*;

    #[test]
    fn padding_counts_in_the_average() {
        let pool = AvgPool2d {
            window: Window2d::square(2, 2, 1),
            ceil_mode: false,
            count_include_pad: true,
        };
        let x = Tensor::<4>::from_data(TensorData::new(vec![4.0f32; 4], [1, 1, 2, 2]), &Device::flex());
        let cx = Cx {
            layer: None,
            mode: crate::Mode::Eval,
            out_shape: &[1, 1, 2, 2],
        };
        // Each 2x2 window holds one 4 and three zeros of padding.
        let out = pool.eval(&cx, vec![x.into()]).unwrap();
        assert_eq!(out.to_vec_f32().unwrap(), [1.0; 4]);
    }
}
