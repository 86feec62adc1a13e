//! An eval-mode BatchNorm for the CPU (flex) device: one pass of `x * scale + shift` per
//! channel.
//!
//! burn 0.22 computes `batch_norm` as separate broadcast subtract, divide, multiply and add,
//! each a full pass over the activations with a fresh output: profiling put it at a twentieth
//! of ResNet18's every-node extraction, where no BatchNorm can fold into its convolution
//! (the convolution's own output is asked for). PyTorch's CPU kernel computes the same two
//! per-channel constants and applies them in one pass (`batch_norm_cpu_collect_linear_and_constant_terms`),
//! which this follows, so the values are PyTorch's own arithmetic. Written by hand because it
//! is one fused multiply-add over plain slices.

use burn::prelude::*;

use super::planes::map_planes;
use super::tensor::{flex_f32, flex_tensor};

/// A BatchNorm's running statistics and affine parameters folded into one scale and shift
/// per channel.
#[derive(Debug, Clone)]
pub struct PackedBatchNorm {
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl PackedBatchNorm {
    /// Folds `gamma / sqrt(var + eps)` and `beta - mean * scale` once (float32, as PyTorch
    /// does), or `None` when the parameters are not float32 vectors of one length.
    pub fn new(
        gamma: &Tensor<1>,
        beta: &Tensor<1>,
        mean: &Tensor<1>,
        var: &Tensor<1>,
        eps: f64,
    ) -> Option<Self> {
        let values = |t: &Tensor<1>| t.to_data().try_into_vec::<f32>().ok();
        let (gamma, beta, mean, var) = (values(gamma)?, values(beta)?, values(mean)?, values(var)?);
        let c = gamma.len();
        if [beta.len(), mean.len(), var.len()] != [c; 3] {
            return None;
        }
        let eps = eps as f32;
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g * (1.0 / (v + eps).sqrt()))
            .collect();
        let shift = beta
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        Some(PackedBatchNorm { scale, shift })
    }

    /// The channel count.
    pub fn channels(&self) -> usize {
        self.scale.len()
    }

    /// Normalises `x` (`[N, C, H, W]` on the flex device, `C` its channel count), then
    /// applies ReLU if `relu`; gives `x` back for another device, dtype or channel count.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`
    /// - output: `[N, C, H, W]`
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward(&self, x: Tensor<4>, relu: bool) -> std::result::Result<Tensor<4>, Tensor<4>> {
        let [n, c, h, w] = x.dims();
        if c != self.channels() {
            return Err(x);
        }
        let data = flex_f32(x)?;
        let values = map_planes(data.as_slice(), h * w, |p, x, out| {
            let (scale, shift) = (self.scale[p % c], self.shift[p % c]);
            for (y, &x) in out.iter_mut().zip(x) {
                let v = x * scale + shift;
                y.write(if relu { v.max(0.0) } else { v });
            }
        });
        Ok(flex_tensor(values, [n, c, h, w]))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::batch_norm;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    fn random<const D: usize>(shape: [usize; D], lo: f64, hi: f64) -> Tensor<D> {
        Tensor::random(shape, Distribution::Uniform(lo, hi), &Device::flex())
    }

    /// burn's own batch_norm (the generic path) is the reference, on planes small enough for
    /// one task and large enough for many, with and without the ReLU.
    #[test]
    fn equals_burns_batch_norm() {
        for (shape, relu) in [
            ([2, 3, 5, 7], false),
            ([2, 24, 40, 40], true),
            ([1, 5, 1, 1], true),
        ] {
            let c = shape[1];
            let (gamma, beta) = (random([c], 0.5, 2.0), random([c], -1.0, 1.0));
            let (mean, var) = (random([c], -1.0, 1.0), random([c], 0.1, 3.0));
            let x = random(shape, -3.0, 3.0);
            let packed =
                PackedBatchNorm::new(&gamma, &beta, &mean, &var, 1e-5).expect("float32 vectors");
            let mut expected = batch_norm(x.clone(), gamma, beta, mean, var, 1e-5);
            if relu {
                expected = expected.clamp_min(0.0);
            }
            let got = packed.forward(x, relu).expect("a flex float32 input");
            assert_eq!(got.dims(), shape);
            got.into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
        }
    }

    #[test]
    fn another_channel_count_is_handed_back() {
        let ones = Tensor::<1>::ones([3], &Device::flex());
        let packed = PackedBatchNorm::new(&ones, &ones, &ones, &ones, 1e-5).expect("vectors");
        let x = random([1, 4, 2, 2], 0.0, 1.0);
        assert!(packed.forward(x, false).is_err());
        let short = Tensor::<1>::ones([2], &Device::flex());
        assert!(PackedBatchNorm::new(&ones, &short, &ones, &ones, 1e-5).is_none());
    }
}
