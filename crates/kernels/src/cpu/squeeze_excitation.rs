//! torchvision's `SqueezeExcitation` block (MobileNetV3, EfficientNet, RegNet) for the CPU
//! (flex) device: `x * scale_activation(fc2(activation(fc1(mean(x)))))` per image.
//!
//! burn runs it as ten ops: the pooling, two 1x1 convolutions on `[N, C, 1, 1]` (each through
//! its general convolution, im2col and a threaded matrix product for a few thousand
//! multiply-adds), the activations and a broadcast multiply, each with a fresh output. Here the
//! means and the two small layers are dot products in float64 (see [`dense`] for why), and the
//! rescale is one pass, in place. Written by hand because the block is a handful of loops over
//! plain slices, which no crate offers as one.

use burn::prelude::*;
use rayon::prelude::*;

use super::Elementwise;
use super::planes::update_planes;
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
        if fc2.dims() != [channels, squeeze, 1, 1]
            || activate(activation, 0.0).is_none()
            || activate(scale_activation, 0.0).is_none()
        {
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
        let plane = (h * w).max(1);
        let values = data.as_slice();
        let means: Vec<f64> = if values.len() <= TASK_MACS {
            values.chunks(plane).map(mean).collect()
        } else {
            values
                .par_chunks(plane)
                .with_min_len((TASK_MACS / plane).max(1))
                .map(mean)
                .collect()
        };
        let mut scales = Vec::with_capacity(n * c);
        // Both activations were checked by `new`.
        let (f, g) = (self.activation, self.scale_activation);
        for image in means.chunks(c) {
            let mut squeezed = dense(&self.fc1, &self.fc1_bias, image, self.squeeze);
            squeezed
                .iter_mut()
                .for_each(|v| *v = activate(f, *v).unwrap_or(*v));
            let scale = dense(&self.fc2, &self.fc2_bias, &squeezed, c);
            scales.extend(
                scale
                    .into_iter()
                    .map(|v| activate(g, v).unwrap_or(v) as f32),
            );
        }
        // In place where this is the input's last reader (burn's multiply does the same).
        let x = data.into_tensor();
        update_planes(x, h * w, |p, values| {
            let scale = scales[p];
            values.iter_mut().for_each(|v| *v *= scale);
        })
    }
}

/// Multiply-adds (or values summed) per task: below it, one thread does the work.
const TASK_MACS: usize = 1 << 15;

/// `weight · x + bias` for a row-major `[outputs, x.len()]` float32 weight, in float64.
///
/// The block's scale multiplies every value of its input, so its rounding reaches every later
/// layer: with float32 sums, MobileNetV3-Large's values drifted from torchvision's to 1.3-2.1x
/// the parity tolerance at features.14, where burn's ops stay well inside it. The weights come
/// from memory either way (a layer's 1-2 MB leave the caches between calls), so the wider sums
/// cost little; the rows of a large layer are spread over the pool.
fn dense(weight: &[f32], bias: &[f32], x: &[f64], outputs: usize) -> Vec<f64> {
    let depth = x.len().max(1);
    let rows = |weight: &[f32], bias: &[f32]| -> Vec<f64> {
        let mut out = vec![0.0; bias.len()];
        dot_rows(weight, x, &mut out);
        out.iter_mut()
            .zip(bias)
            .for_each(|(y, &b)| *y += f64::from(b));
        out
    };
    let (weight, bias) = (&weight[..outputs * depth], &bias[..outputs]);
    if outputs * depth <= TASK_MACS {
        return rows(weight, bias);
    }
    let per_task = (TASK_MACS / depth).max(1);
    weight
        .par_chunks(per_task * depth)
        .zip(bias.par_chunks(per_task))
        .flat_map_iter(|(weight, bias)| rows(weight, bias))
        .collect()
}

/// `out[r] = weight row r · x` for a row-major `[out.len(), x.len()]` weight.
fn dot_rows(weight: &[f32], x: &[f64], out: &mut [f64]) {
    for (y, row) in out.iter_mut().zip(weight.chunks(x.len().max(1))) {
        *y = dot(row, x);
    }
}

/// `a · b` in float64, in eight interleaved partial sums the compiler vectorises. (Built for
/// AVX-512 instead, the blocks ran no faster: the weights' reads from memory set the pace.)
fn dot(a: &[f32], b: &[f64]) -> f64 {
    const LANES: usize = 8;
    let mut lanes = [0.0f64; LANES];
    let (a8, b8) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(&a, &b)| f64::from(a) * b)
        .sum();
    for (a, b) in a8.zip(b8) {
        for ((lane, &a), &b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += f64::from(a) * b;
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// The mean of a plane in float64, as [`dot`] sums.
fn mean(values: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| f64::from(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(v);
        }
    }
    (lanes.iter().sum::<f64>() + tail) / values.len().max(1) as f64
}

/// `f(x)` in float64 for the activations a squeeze-excitation block takes (torchvision's
/// MobileNetV3, EfficientNet and RegNet use ReLU or SiLU, then hardsigmoid or sigmoid).
fn activate(f: Elementwise, x: f64) -> Option<f64> {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    Some(match f {
        Elementwise::Relu => x.max(0.0),
        Elementwise::Silu => x * sigmoid(x),
        Elementwise::Sigmoid => sigmoid(x),
        Elementwise::Hardsigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Elementwise::Hardswish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Elementwise::Relu6 => x.clamp(0.0, 6.0),
        Elementwise::Tanh => x.tanh(),
        Elementwise::Exp | Elementwise::Erf | Elementwise::Gelu | Elementwise::GeluTanh => {
            return None;
        }
    })
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
