//! LayerNorm over the last axis (`nn.LayerNorm`) for the CPU (flex) device.
//!
//! burn's `layer_norm` runs it as eight tensor ops (mean, subtract, square, mean, add, square
//! root, divide, then scale and shift), each a pass over the whole tensor into a fresh one:
//! ConvNeXt-T spent 7% of its forward pass there at batch 8. Here each row is read into cache
//! once and normalised in three short loops over it (mean, variance about the mean, scale and
//! shift), rows spread over the pool. Written by hand: it is those loops over plain rows,
//! which no crate offers over burn's tensors; the compiler vectorises them.

use std::convert::Infallible;
use std::ops::Range;

use burn::prelude::*;
use rayon::prelude::*;

use super::matmul::filled;
use super::tensor::{flex_f32, flex_tensor, weight_and_bias};
use super::transpose::{TransposedRows, contiguous};
use super::winograd::Shared;

/// Values of rows one task of the pool normalises.
const TASK_VALUES: usize = 1 << 14;

/// Partial sums per row: the compiler keeps them in vector registers, and summing in this
/// many interleaved parts rounds less than one running sum.
const LANES: usize = 16;

/// A LayerNorm's scale, shift and epsilon, kept for [`PackedLayerNorm::forward`].
#[derive(Debug, Clone)]
pub struct PackedLayerNorm {
    gamma: Vec<f32>,
    beta: Option<Vec<f32>>,
    eps: f32,
}

impl PackedLayerNorm {
    /// Keeps `gamma` and `beta` (`[features]`); declines (`None`) what is not float32 on the
    /// flex device, or differs in length.
    pub fn new(gamma: &Tensor<1>, beta: Option<&Tensor<1>>, eps: f64) -> Option<Self> {
        if gamma.device() != Device::flex() {
            return None;
        }
        let (gamma, beta) = weight_and_bias(gamma, beta)?;
        if gamma.is_empty() || beta.as_ref().is_some_and(|b| b.len() != gamma.len()) {
            return None;
        }
        Some(Self {
            gamma,
            beta,
            eps: eps as f32,
        })
    }

    /// The size of the last axis it normalises.
    pub fn features(&self) -> usize {
        self.gamma.len()
    }

    /// Every row of `x` (`[rows, features]` on the flex device) normalised, scaled and
    /// shifted; `x` back if it does not fit.
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward(&self, x: Tensor<2>) -> std::result::Result<Tensor<2>, Tensor<2>> {
        let [rows, features] = x.dims();
        if features != self.features() || rows == 0 {
            return Err(x);
        }
        let values = flex_f32(x)?;
        let input = values.as_slice();
        let task = (TASK_VALUES / features).max(1) * features;
        let out = filled(rows * features, |out| {
            out.par_chunks_mut(task)
                .zip(input.par_chunks(task))
                .for_each(|(out, input)| {
                    for (out, row) in out.chunks_exact_mut(features).zip(input.chunks(features)) {
                        self.row(row, out);
                    }
                });
            Ok::<(), Infallible>(())
        });
        let Ok(out) = out;
        Ok(flex_tensor(out, [rows, features]))
    }

    /// Every row of `x` (any rank, its last axis the features, on the flex device)
    /// normalised as [`PackedLayerNorm::forward`] does, written row-major; `x` back if it does
    /// not fit. A transposed view (ConvNeXt's NHWC view of its depthwise convolution's NCHW
    /// output) is read a band of rows at a time into a buffer that stays in cache, instead of
    /// being copied whole first.
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward_rows<const D: usize>(
        &self,
        x: Tensor<D>,
    ) -> std::result::Result<Tensor<D>, Tensor<D>> {
        let shape = x.dims();
        let features = self.features();
        if shape.last() != Some(&features) || x.device() != Device::flex() {
            return Err(x);
        }
        let rows = shape.iter().product::<usize>() / features;
        if let Some(view) = TransposedRows::of(&x).filter(|v| v.dims().columns == features) {
            drop(x);
            let out = view.map_bands(|band, out| {
                for (row, out) in band
                    .chunks_exact(features)
                    .zip(out.chunks_exact_mut(features))
                {
                    self.row(row, out);
                }
            });
            return Ok(flex_tensor(out, shape));
        }
        // Any other strided view is made row-major by the tiled copy where it can be, before
        // the reshape (which would copy it with burn-flex's).
        match self.forward(contiguous(x).reshape([rows, features])) {
            Ok(out) => Ok(out.reshape(shape)),
            Err(back) => Err(back.reshape(shape)),
        }
    }

    /// Every position of `x` (`[N, C, H, W]` on the flex device, `C` its features)
    /// normalised over its channels, scaled and shifted, as `LayerNorm2d` does (ConvNeXt's
    /// stem) without permuting to channels last and back; `x` back if it does not fit.
    /// Positions are the vector lanes here: each channel's plane is read in order.
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward_channels(&self, x: Tensor<4>) -> std::result::Result<Tensor<4>, Tensor<4>> {
        let [n, c, h, w] = x.dims();
        let hw = h * w;
        if c != self.features() || n * hw == 0 {
            return Err(x);
        }
        let values = flex_f32(x)?;
        let input = values.as_slice();
        // Runs of positions of one image: all its channels' values for them stay in cache.
        let run = (TASK_VALUES / c).clamp(1, hw);
        let runs = hw.div_ceil(run);
        let out = filled(n * c * hw, |out| {
            let shared = Shared(out.as_mut_ptr().cast::<f32>());
            (0..n * runs).into_par_iter().for_each(|task| {
                let (i, start) = (task / runs, task % runs * run);
                let image = &input[i * c * hw..(i + 1) * c * hw];
                // SAFETY: image `i`'s output starts at `i * c * hw` within `out`; tasks cover
                // disjoint (image, positions) pairs, so no two write one value.
                unsafe {
                    let out = shared.at(i * c * hw);
                    self.positions(image, out, hw, start..(start + run).min(hw));
                }
            });
            Ok::<(), Infallible>(())
        });
        let Ok(out) = out;
        Ok(flex_tensor(out, [n, c, h, w]))
    }

    /// [`PackedLayerNorm::forward_channels`] for one run of positions of one `[C, H*W]` image.
    ///
    /// # Safety
    /// `out` points at the image's `C * hw` output values, and no other thread writes
    /// `positions` of any channel meanwhile.
    unsafe fn positions(&self, image: &[f32], out: *mut f32, hw: usize, positions: Range<usize>) {
        let (c, len) = (self.features() as f32, positions.len());
        let mut mean = vec![0.0f32; len];
        for plane in image.chunks_exact(hw) {
            for (m, &v) in mean.iter_mut().zip(&plane[positions.clone()]) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= c);
        let mut rstd = vec![0.0f32; len];
        for plane in image.chunks_exact(hw) {
            for ((r, &m), &v) in rstd.iter_mut().zip(&mean).zip(&plane[positions.clone()]) {
                *r += (v - m) * (v - m);
            }
        }
        rstd.iter_mut()
            .for_each(|r| *r = 1.0 / (*r / c + self.eps).sqrt());
        for (ch, plane) in image.chunks_exact(hw).enumerate() {
            let (g, b) = (self.gamma[ch], self.beta.as_ref().map_or(0.0, |b| b[ch]));
            // SAFETY: within the image's output, and these positions are this task's.
            let dst =
                unsafe { std::slice::from_raw_parts_mut(out.add(ch * hw + positions.start), len) };
            let src = &plane[positions.clone()];
            for (((d, &v), &m), &r) in dst.iter_mut().zip(src).zip(&mean).zip(&rstd) {
                *d = (v - m) * r * g + b;
            }
        }
    }

    /// One row, as torch computes it: the mean, the variance about it, then
    /// `(x - mean) / sqrt(var + eps) * gamma + beta`.
    fn row(&self, x: &[f32], out: &mut [std::mem::MaybeUninit<f32>]) {
        let n = x.len() as f32;
        let mean = sum(x, |v| v) / n;
        let var = sum(x, |v| (v - mean) * (v - mean)) / n;
        let rstd = 1.0 / (var + self.eps).sqrt();
        match &self.beta {
            Some(beta) => {
                for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(&self.gamma).zip(beta) {
                    o.write((v - mean) * rstd * g + b);
                }
            }
            None => {
                for ((o, &v), &g) in out.iter_mut().zip(x).zip(&self.gamma) {
                    o.write((v - mean) * rstd * g);
                }
            }
        }
    }
}

/// `f` summed over `x`, in [`LANES`] interleaved partial sums.
#[inline(always)]
fn sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut parts = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (p, &v) in parts.iter_mut().zip(chunk) {
            *p += f(v);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    parts.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;

    #[test]
    fn equals_burns_layer_norm() {
        let device = Device::flex();
        // ConvNeXt's widths (a multiple of the partial sums) and odd ones (a tail).
        for (rows, features) in [(49, 768), (3136, 96), (5, 37), (1, 1)] {
            let gamma = Tensor::<1>::random([features], Distribution::Normal(1.0, 0.5), &device);
            let beta = Tensor::<1>::random([features], Distribution::Normal(0.0, 0.5), &device);
            // An offset mean, as real activations have: a one-pass variance would lose digits.
            let x = Tensor::<2>::random([rows, features], Distribution::Normal(3.0, 2.0), &device);
            let want = burn::tensor::module::layer_norm(
                x.clone(),
                gamma.clone(),
                Some(beta.clone()),
                1e-6,
            );
            let packed = PackedLayerNorm::new(&gamma, Some(&beta), 1e-6).expect("float32");
            let got = packed.forward(x).expect("fits");
            let diff = (got - want.clone()).abs().max().into_scalar::<f32>();
            let scale = want.abs().max().into_scalar::<f32>();
            assert!(
                diff <= 2e-6 * scale.max(1.0),
                "[{rows}, {features}]: {diff} of {scale}"
            );
        }
        let packed = PackedLayerNorm::new(&Tensor::<1>::ones([4], &device), None, 1e-5).unwrap();
        assert!(packed.forward(Tensor::<2>::zeros([2, 5], &device)).is_err());
    }

    #[test]
    fn normalises_channels_as_layer_norm_2d() {
        let device = Device::flex();
        // ConvNeXt's stem at batch 2 (several runs of positions per image), and an odd one.
        for [n, c, h, w] in [[2, 96, 56, 56], [3, 5, 7, 3]] {
            let gamma = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.5), &device);
            let beta = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &device);
            let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(3.0, 2.0), &device);
            // torchvision's `LayerNorm2d`: permute, layer_norm, permute back.
            let want = burn::tensor::module::layer_norm(
                x.clone().permute([0, 2, 3, 1]),
                gamma.clone(),
                Some(beta.clone()),
                1e-6,
            )
            .permute([0, 3, 1, 2]);
            let packed = PackedLayerNorm::new(&gamma, Some(&beta), 1e-6).expect("float32");
            let got = packed.forward_channels(x).expect("fits");
            let diff = (got - want.clone()).abs().max().into_scalar::<f32>();
            let scale = want.abs().max().into_scalar::<f32>();
            assert!(
                diff <= 2e-6 * scale.max(1.0),
                "{:?}: {diff} of {scale}",
                [n, c, h, w]
            );
        }
    }

    /// ConvNeXt's block LayerNorm as the model reads it: the NHWC view of an NCHW buffer,
    /// read band by band, equals the same view made row-major and normalised; so do a
    /// row-major input of rank 3 and a view whose rows are not whole tiles.
    #[test]
    fn a_permuted_view_normalises_as_its_copy() {
        let device = Device::flex();
        for [n, c, h, w] in [[2, 96, 56, 56], [1, 37, 5, 9], [1, 768, 7, 7]] {
            let gamma = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.5), &device);
            let beta = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &device);
            let packed = PackedLayerNorm::new(&gamma, Some(&beta), 1e-6).expect("float32");
            let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(3.0, 2.0), &device);
            let view = x.permute([0, 2, 3, 1]);
            let rows = view.clone().reshape([n * h * w, c]);
            let want = packed.forward(rows).expect("fits").reshape([n, h, w, c]);
            let got = packed.forward_rows(view).expect("fits");
            assert_eq!(got.into_data(), want.into_data(), "{:?}", [n, c, h, w]);
        }
        let tokens = Tensor::<3>::random([2, 5, 37], Distribution::Default, &device);
        let gamma = Tensor::<1>::ones([37], &device);
        let packed = PackedLayerNorm::new(&gamma, None, 1e-6).expect("float32");
        let want = packed
            .forward(tokens.clone().reshape([10, 37]))
            .expect("fits");
        let got = packed.forward_rows(tokens).expect("fits");
        assert_eq!(got.reshape([10, 37]).into_data(), want.into_data());
        assert!(
            packed
                .forward_rows(Tensor::<3>::zeros([2, 5, 4], &device))
                .is_err()
        );
    }
}
