//! torchvision.ops' `SqueezeExcitation` (MobileNetV3's and EfficientNet's channel attention)
//! for the CPU (flex) device.
//!
//! The block scales each channel by a function of the whole image: average every channel,
//! two tiny 1x1 convolutions between activations, then one multiply per value. burn's path
//! runs that as six ops, each a fresh tensor, with its generic convolution on a 1x1 image;
//! MobileNetV3-Large spent 15% of its forward pass in these blocks. Here it is two passes over
//! the image (the means, then the scaling, in place when nothing else holds the input) and two
//! small matrix-vector products. Written by hand: the products are a few thousand
//! multiply-adds, below what a gemm call's set-up costs.

use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use super::elementwise::Elementwise;
use super::layer_norm::lane_sum;
use super::tensor::{flex_tensor, weight_and_bias};

/// A squeeze-excitation block's two layers, for [`PackedSqueezeExcitation::forward`].
#[derive(Debug, Clone)]
pub struct PackedSqueezeExcitation {
    /// `[squeeze, channels]`, row-major, and its bias.
    fc1: (Vec<f32>, Vec<f32>),
    /// `[channels, squeeze]`, row-major, and its bias.
    fc2: (Vec<f32>, Vec<f32>),
    channels: usize,
    squeeze: usize,
    activation: Elementwise,
    scale_activation: Elementwise,
}

impl PackedSqueezeExcitation {
    /// The block of the 1x1 convolutions `fc1` (`[squeeze, channels, 1, 1]`) and `fc2`
    /// (`[channels, squeeze, 1, 1]`), both with bias, `activation` after the first and
    /// `scale_activation` after the second; declines (`None`) what is not float32 on the
    /// flex device or not so shaped.
    pub fn new(
        fc1: (&Tensor<4>, &Tensor<1>),
        fc2: (&Tensor<4>, &Tensor<1>),
        activation: Elementwise,
        scale_activation: Elementwise,
    ) -> Option<Self> {
        let [squeeze, channels, 1, 1] = fc1.0.dims() else {
            return None;
        };
        if fc2.0.dims() != [channels, squeeze, 1, 1] || fc1.0.device() != Device::flex() {
            return None;
        }
        let (w1, b1) = weight_and_bias(fc1.0, Some(fc1.1))?;
        let (w2, b2) = weight_and_bias(fc2.0, Some(fc2.1))?;
        let (b1, b2) = (b1?, b2?);
        if b1.len() != squeeze || b2.len() != channels {
            return None;
        }
        Some(PackedSqueezeExcitation {
            fc1: (w1, b1),
            fc2: (w2, b2),
            channels,
            squeeze,
            activation,
            scale_activation,
        })
    }

    /// `x * scale(x)` for `x` (`[N, C, H, W]`, float32 on the flex device), `None` if it is
    /// not that. The input's buffer becomes the output's when nothing else holds it.
    pub fn forward(&self, x: Tensor<4>) -> Option<Tensor<4>> {
        let [n, c, h, w] = x.dims();
        if c != self.channels
            || h * w == 0
            || x.device() != Device::flex()
            || x.dtype() != DType::F32
        {
            return None;
        }
        // Moved out without a copy when nothing else holds the buffer.
        let mut values = x.into_data().try_into_vec::<f32>().ok()?;
        values.par_chunks_mut(c * h * w).for_each(|image| {
            let scale = self.scale(image, h * w);
            for (plane, s) in image.chunks_exact_mut(h * w).zip(scale) {
                plane.iter_mut().for_each(|v| *v *= s);
            }
        });
        Some(flex_tensor(values, [n, c, h, w]))
    }

    /// Each channel's factor for one `[C, P]` image.
    fn scale(&self, image: &[f32], pixels: usize) -> Vec<f32> {
        let means: Vec<f32> = image
            .chunks_exact(pixels)
            .map(|p| lane_sum(p, |v| v) / pixels as f32)
            .collect();
        let mut hidden = matvec(&self.fc1, &means, self.channels);
        self.activation.apply(&mut hidden);
        let mut scale = matvec(&self.fc2, &hidden, self.squeeze);
        self.scale_activation.apply(&mut scale);
        scale
    }
}

/// `weight @ x + bias` for a row-major weight of rows of `width`.
fn matvec((weight, bias): &(Vec<f32>, Vec<f32>), x: &[f32], width: usize) -> Vec<f32> {
    weight
        .chunks_exact(width)
        .zip(bias)
        .map(|(row, b)| b + row.iter().zip(x).map(|(w, x)| w * x).sum::<f32>())
        .collect()
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::activation::{hard_sigmoid, relu, sigmoid, silu};
    use burn::tensor::module::{adaptive_avg_pool2d, conv2d};
    use burn::tensor::ops::ConvOptions;

    use super::*;

    #[test]
    fn equals_burns_ops() {
        let device = Device::flex();
        let random =
            |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Normal(0.0, 0.5), &device);
        let bias = |n: usize| Tensor::<1>::random([n], Distribution::Normal(0.0, 0.5), &device);
        for ([n, c, h, w], sq, mobilenet) in
            [([2, 24, 7, 9], 8, true), ([1, 40, 28, 28], 10, false)]
        {
            let (w1, b1, w2, b2) = (
                random([sq, c, 1, 1]),
                bias(sq),
                random([c, sq, 1, 1]),
                bias(c),
            );
            let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let options = || ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
            let pooled = adaptive_avg_pool2d(x.clone(), [1, 1]);
            let hidden = conv2d(pooled, w1.clone(), Some(b1.clone()), options());
            let hidden = if mobilenet {
                relu(hidden)
            } else {
                silu(hidden)
            };
            let scale = conv2d(hidden, w2.clone(), Some(b2.clone()), options());
            let scale = if mobilenet {
                hard_sigmoid(scale, 1.0 / 6.0, 0.5)
            } else {
                sigmoid(scale)
            };
            let want = x.clone() * scale;
            let (a, s) = if mobilenet {
                (Elementwise::Relu, Elementwise::Hardsigmoid)
            } else {
                (Elementwise::Silu, Elementwise::Sigmoid)
            };
            let packed = PackedSqueezeExcitation::new((&w1, &b1), (&w2, &b2), a, s).expect("fits");
            let got = packed.forward(x).expect("fits");
            let diff = (got - want.clone()).abs().max().into_scalar::<f32>();
            let scale = want.abs().max().into_scalar::<f32>();
            assert!(diff < 2e-6 * scale.max(1.0), "{diff} of {scale}");
        }
    }
}
