use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use serde::Serialize;

use super::args::{first_shape, rank4, single, tensor};
use super::{Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, Value, Window2d, lazy_dims};

/// `nn.Conv2d`.
///
/// # Shapes
/// `[N, in_channels, H, W]` to `[N, out_channels, OH, OW]`, `OH, OW` from the [`Window2d`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conv2d {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel, stride, zero padding and dilation.
    pub window: Window2d,
    /// Channel groups.
    pub groups: usize,
    /// Whether a bias is added.
    pub bias: bool,
}

impl Conv2d {
    /// The op of burn's convolution module, read without initialising its lazy weights.
    pub fn of(conv: &burn::nn::conv::Conv2d) -> Self {
        let [out_channels, group_in, kh, kw] = lazy_dims(&conv.weight);
        let kernel = [kh, kw];
        Conv2d {
            in_channels: group_in * conv.groups,
            out_channels,
            window: Window2d {
                kernel,
                stride: conv.stride,
                padding: padding_pairs(&conv.padding, kernel, conv.dilation),
                dilation: conv.dilation,
            },
            groups: conv.groups,
            bias: conv.bias.is_some(),
        }
    }

    /// The output shape for an input shape (shared with the ops that start with a
    /// convolution).
    pub(crate) fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let [n, c, h, w] = rank4(input)?;
        if c != self.in_channels {
            return Err(format!("expected {} channels, got {c}", self.in_channels));
        }
        let [oh, ow] = self.window.output_size([h, w], false)?;
        Ok(vec![n, self.out_channels, oh, ow])
    }

    /// `x` convolved with `conv`'s parameters over this op's window.
    pub fn convolve(&self, x: Tensor<4>, conv: &burn::nn::conv::Conv2d) -> Tensor<4> {
        let window = &self.window;
        let options =
            ConvOptions::new_with_padding(window.stride, window.padding, window.dilation, self.groups);
        let bias = conv.bias.as_ref().map(|b| b.val());
        conv2d(x, conv.weight.val(), bias, options)
    }
}

impl OpDef for Conv2d {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        tensor(self.output_shape(first_shape(inputs)?)?)
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::Conv2d(conv)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        Ok(self.convolve(single(inputs)?, conv).into())
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::Conv2d(_)))
    }
}

/// burn's padding setting as `(before, after)` pairs. `Same` is PyTorch's `padding="same"`
/// (the window's span minus one, the odd element after), fixed ahead of any input as the IR's
/// geometry is.
fn padding_pairs(
    padding: &PaddingConfig2d,
    kernel: [usize; 2],
    dilation: [usize; 2],
) -> [(usize, usize); 2] {
    match *padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Same => Window2d::same_padding(kernel, dilation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(in_channels: usize, out_channels: usize, window: Window2d) -> Conv2d {
        Conv2d {
            in_channels,
            out_channels,
            window,
            groups: 1,
            bias: false,
        }
    }

    #[test]
    fn conv_output_matches_pytorch_formula() {
        let conv = conv(3, 64, Window2d::square(7, 2, 3));
        assert_eq!(conv.output_shape(&[2, 3, 224, 224]).unwrap(), vec![2, 64, 112, 112]);
        assert!(conv.output_shape(&[2, 4, 224, 224]).is_err());
    }

    #[test]
    fn window_larger_than_input_is_an_error() {
        let conv = conv(3, 8, Window2d::square(11, 4, 2));
        let err = conv.output_shape(&[1, 3, 4, 4]).unwrap_err();
        assert!(err.contains("smaller than the window"), "{err}");
    }

    #[test]
    fn eval_without_parameters_is_an_error_not_a_panic() {
        let op = conv(1, 1, Window2d::square(1, 1, 0));
        let x = Tensor::<4>::zeros([1, 1, 2, 2], &Device::flex());
        let cx = Cx {
            layer: None,
            mode: crate::Mode::Eval,
            out_shape: &[1, 1, 2, 2],
        };
        assert_eq!(op.eval(&cx, vec![x.into()]).unwrap_err(), NO_PARAMETERS);
        assert!(!op.fits(None));
    }
}
