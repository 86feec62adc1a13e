//! torchvision's `SqueezeExcitation` block (MobileNetV3, EfficientNet, RegNet) for the CPU
//! (flex) device: `x * scale_activation(fc2(activation(fc1(mean(x)))))` per image.
//!
//! burn runs it as ten ops: the pooling, two 1x1 convolutions on `[N, C, 1, 1]` (each through
//! its general convolution, im2col and a threaded matrix product for a few thousand
//! multiply-adds), the activations and a broadcast multiply, each with a fresh output. Here the
//! means are one pass, the two tiny products are plain dot products on one thread, and the
//! rescale is one pass. Written by hand because the block is a handful of loops over plain
//! slices, which no crate offers as one.

use burn::prelude::*;

use super::Elementwise;
use super::planes::{plane_means, update_planes};
use super::tensor::{flex_f32, weight_and_bias};

/// A squeeze-excitation block's two 1x1 layers, as `[out, in]` matrices.
#[derive(Debug, Clone)]
pub struct PackedSqueezeExcitation {
    channels: usize,
    squeeze: usize,
    fc1: Vec<f32>,
    fc1_bias: Vec<f32>,
    fc2: Vec<f32>,
    fc2_bias: Vec<f32>,
    activation: Elementwise,
    scale_activation: Elementwise,
}

impl PackedSqueezeExcitation {
    /// From `fc1`'s `[S, C, 1, 1]` and `fc2`'s `[C, S, 1, 1]` float32 weights with their
    /// biases, or `None` where they are not such.
    pub fn new(
        (fc1, fc1_bias): (&Tensor<4>, &Tensor<1>),
        (fc2, fc2_bias): (&Tensor<4>, &Tensor<1>),
        activation: Elementwise,
        scale_activation: Elementwise,
    ) -> Option<Self> {
        let [squeeze, channels, 1, 1] = fc1.dims() else {
            return None;
        };
        if fc2.dims() != [channels, squeeze, 1, 1] {
            return None;
        }
        let (fc1, fc1_bias) = weight_and_bias(fc1, Some(fc1_bias))?;
        let (fc2, fc2_bias) = weight_and_bias(fc2, Some(fc2_bias))?;
        let (fc1_bias, fc2_bias) = (fc1_bias?, fc2_bias?);
        if fc1_bias.len() != squeeze || fc2_bias.len() != channels {
            return None;
        }
        Some(PackedSqueezeExcitation {
            channels,
            squeeze,
            fc1,
            fc1_bias,
            fc2,
            fc2_bias,
            activation,
            scale_activation,
        })
    }

    /// The block applied to `x`, or `x` back for another device, dtype or channel count.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`
    /// - output: `[N, C, H, W]`
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward(&self, x: Tensor<4>) -> std::result::Result<Tensor<4>, Tensor<4>> {
        let [n, c, h, w] = x.dims();
        if c != self.channels {
            return Err(x);
        }
        let data = flex_f32(x)?;
        let means = plane_means(data.as_slice(), h * w);
        let mut scales = Vec::with_capacity(n * c);
        for image in means.chunks(c) {
            let mut squeezed = dense(&self.fc1, &self.fc1_bias, image, self.squeeze);
            self.activation.apply(&mut squeezed);
            let mut scale = dense(&self.fc2, &self.fc2_bias, &squeezed, c);
            self.scale_activation.apply(&mut scale);
            scales.extend(scale);
        }
        // In place where this is the input's last reader (burn's multiply does the same).
        let x = data.into_tensor();
        update_planes(x, h * w, |p, values| {
            let scale = scales[p];
            values.iter_mut().for_each(|v| *v *= scale);
        })
    }
}

/// `weight · x + bias` for a row-major `[outputs, x.len()]` weight.
fn dense(weight: &[f32], bias: &[f32], x: &[f32], outputs: usize) -> Vec<f32> {
    weight
        .chunks(x.len().max(1))
        .take(outputs)
        .zip(bias)
        .map(|(row, b)| dot(row, x) + b)
        .collect()
}

/// A dot product in eight interleaved partial sums, which the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in a8.zip(b8) {
        for ((lane, a), b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += a * b;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation::{hard_sigmoid, relu, sigmoid, silu};
    use burn::tensor::module::{adaptive_avg_pool2d, conv2d};
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    fn random<const D: usize>(shape: [usize; D]) -> Tensor<D> {
        Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), &Device::flex())
    }

    /// burn's ops in torchvision's order are the reference: MobileNetV3's (ReLU, hardsigmoid)
    /// and EfficientNet's (SiLU, sigmoid) blocks, on one image and on a batch of large planes.
    #[test]
    fn equals_burns_ops() {
        for (shape, squeeze, mobilenet) in
            [([1, 72, 28, 28], 24, true), ([3, 16, 56, 60], 4, false)]
        {
            let c = shape[1];
            let (w1, b1) = (random([squeeze, c, 1, 1]), random([squeeze]));
            let (w2, b2) = (random([c, squeeze, 1, 1]), random([c]));
            let x = random(shape);
            let (activation, scale_activation) = match mobilenet {
                true => (Elementwise::Relu, Elementwise::Hardsigmoid),
                false => (Elementwise::Silu, Elementwise::Sigmoid),
            };
            let packed =
                PackedSqueezeExcitation::new((&w1, &b1), (&w2, &b2), activation, scale_activation)
                    .expect("float32 1x1 layers");
            let options = || ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
            let pooled = adaptive_avg_pool2d(x.clone(), [1, 1]);
            let hidden = conv2d(pooled, w1, Some(b1), options());
            let hidden = if mobilenet {
                relu(hidden)
            } else {
                silu(hidden)
            };
            let scale = conv2d(hidden, w2, Some(b2), options());
            let scale = if mobilenet {
                hard_sigmoid(scale, 1.0 / 6.0, 0.5)
            } else {
                sigmoid(scale)
            };
            let expected = x.clone() * scale;
            let got = packed.forward(x).expect("a flex float32 input");
            got.into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
        }
    }

    #[test]
    fn mismatched_layers_are_declined() {
        let (w1, b1) = (random([4, 16, 1, 1]), random([4]));
        let (w2, b2) = (random([16, 5, 1, 1]), random([16]));
        let none = PackedSqueezeExcitation::new(
            (&w1, &b1),
            (&w2, &b2),
            Elementwise::Relu,
            Elementwise::Sigmoid,
        );
        assert!(none.is_none());
        let w2 = random([16, 4, 1, 1]);
        let packed = PackedSqueezeExcitation::new(
            (&w1, &b1),
            (&w2, &b2),
            Elementwise::Relu,
            Elementwise::Sigmoid,
        )
        .expect("matching layers");
        assert!(packed.forward(random([1, 8, 3, 3])).is_err());
    }
}
