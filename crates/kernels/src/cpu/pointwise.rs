//! A float32 1x1 stride-1 convolution with few input channels (MobileNet's and EfficientNet's
//! expansions and projections), one NCHW image at a time.
//!
//! With `K` input channels in the tens, a `gemm` call spends much of its time packing the
//! `[K, H*W]` input into its panels and streaming the `[C_out, H*W]` output through its
//! accumulator twice (the bias written first, then read back). Here the output is computed
//! in blocks of six channels by two vectors of pixels held in registers (the widest vectors
//! the CPU has, picked at run time by rten-simd), the input read straight from NCHW, the bias
//! in the accumulator and the ReLU before the one store. Written by hand because no crate
//! offers this small-`K` product over plain slices.

use rayon::prelude::*;
use rten_simd::ops::NumOps;
use rten_simd::{Isa, SimdOp};

/// The most input channels this kernel takes: above it, `gemm`'s blocking for cache wins
/// (ResNet50's 64-channel layers measured 1.09x slower here).
pub(super) const MAX_INPUTS: usize = 48;

/// Output channels per register block.
const CHANNELS: usize = 6;

/// Multiply-adds per task on the thread pool.
const TASK_MACS: usize = 1 << 18;

/// `out[co][p] = bias[co] + sum_k weight[co][k] * image[k][p]` (then ReLU when `relu`) for
/// one image: `weight` is `[C_out, K]`, `image` `[K, P]`, `out` `[C_out, P]`, row-major.
pub(super) fn pointwise(
    weight: &[f32],
    bias: Option<&[f32]>,
    image: &[f32],
    out: &mut [f32],
    [cout, k, pixels]: [usize; 3],
    relu: bool,
) {
    let rows = (TASK_MACS / (k * pixels).max(1)).max(1).div_ceil(CHANNELS) * CHANNELS;
    out.par_chunks_mut(rows * pixels)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * rows;
            let count = out.len() / pixels;
            Block {
                weight: &weight[first * k..(first + count) * k],
                bias: bias.map(|b| &b[first..first + count]),
                image,
                out,
                k,
                pixels,
                relu,
            }
            .dispatch()
        });
    debug_assert_eq!(out.len(), cout * pixels);
}

/// Some output channels of one image.
struct Block<'a> {
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    image: &'a [f32],
    out: &'a mut [f32],
    k: usize,
    pixels: usize,
    relu: bool,
}

impl SimdOp for Block<'_> {
    type Output = ();

    #[inline(always)]
    fn eval<I: Isa>(self, isa: I) {
        let ops = isa.f32();
        let channels = self.out.len() / self.pixels;
        let out = self.out.as_mut_ptr();
        let mut c = 0;
        while c < channels {
            c += match channels - c {
                1 => self.rows::<_, 1>(ops, c, out),
                2 => self.rows::<_, 2>(ops, c, out),
                3 => self.rows::<_, 3>(ops, c, out),
                4 => self.rows::<_, 4>(ops, c, out),
                5 => self.rows::<_, 5>(ops, c, out),
                _ => self.rows::<_, CHANNELS>(ops, c, out),
            };
        }
    }
}

impl Block<'_> {
    /// Output channels `c..c + R` (a constant, so that the accumulators stay in registers),
    /// written through `out` (this block's `[channels, P]` output); returns `R`.
    #[inline(always)]
    fn rows<O: NumOps<f32>, const R: usize>(&self, ops: O, c: usize, out: *mut f32) -> usize {
        let (k, pixels) = (self.k, self.pixels);
        let lanes = ops.len();
        let zero = ops.zero();
        let bias: [O::Simd; R] =
            std::array::from_fn(|r| ops.splat(self.bias.map_or(0.0, |b| b[c + r])));
        let weight = &self.weight[c * k..(c + R) * k];
        let image = self.image.as_ptr();
        let mut p = 0;
        while p < pixels {
            // Two vectors of pixels, the second (or both) partly used at the row's end.
            let valid = [
                lanes.min(pixels - p),
                lanes.min(pixels.saturating_sub(p + lanes)),
            ];
            let masks = valid.map(|v| ops.first_n_mask(v));
            let mut acc = [[zero; 2]; R];
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = [bias[r]; 2];
            }
            for kk in 0..k {
                // SAFETY: pixel `p + j * lanes + i` of input row `kk` for `i` below `valid[j]`
                // (a masked load reads no other lane; the address is only computed, with
                // `wrapping_add`, for a fully masked vector): within the `[K, P]` image.
                let x = std::array::from_fn::<_, 2, _>(|j| unsafe {
                    ops.load_ptr_mask(image.wrapping_add(kk * pixels + p + j * lanes), masks[j])
                });
                for r in 0..R {
                    let w = ops.splat(weight[r * k + kk]);
                    acc[r][0] = ops.mul_add(x[0], w, acc[r][0]);
                    acc[r][1] = ops.mul_add(x[1], w, acc[r][1]);
                }
            }
            for (r, acc) in acc.into_iter().enumerate() {
                for (j, v) in acc.into_iter().enumerate() {
                    let v = if self.relu { ops.max(v, zero) } else { v };
                    // SAFETY: as the loads, in output row `c + r` of this block's
                    // `[channels, P]` slice, which this task alone writes.
                    unsafe {
                        ops.store_ptr_mask(
                            v,
                            out.wrapping_add((c + r) * pixels + p + j * lanes),
                            masks[j],
                        )
                    };
                }
            }
            p += 2 * lanes;
        }
        R
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_definition() {
        for ([cout, k, pixels], relu) in [
            ([64, 16, 12544], false),
            ([40, 24, 784], true),
            ([7, 5, 49], false),
            ([13, 3, 33], true),
            ([1, 1, 1], false),
        ] {
            let value = |i: usize, s: usize| ((i * 7919 + s * 104729) % 2003) as f32 / 1001.0 - 1.0;
            let weight: Vec<f32> = (0..cout * k).map(|i| value(i, 1)).collect();
            let bias: Vec<f32> = (0..cout).map(|i| value(i, 2)).collect();
            let image: Vec<f32> = (0..k * pixels).map(|i| value(i, 3)).collect();
            let mut out = vec![f32::NAN; cout * pixels];
            pointwise(
                &weight,
                Some(&bias),
                &image,
                &mut out,
                [cout, k, pixels],
                relu,
            );
            for co in 0..cout {
                for p in 0..pixels {
                    let mut want = bias[co] as f64;
                    for kk in 0..k {
                        want += weight[co * k + kk] as f64 * image[kk * pixels + p] as f64;
                    }
                    let want = if relu { want.max(0.0) } else { want };
                    let got = out[co * pixels + p] as f64;
                    assert!(
                        (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "[{cout}, {k}, {pixels}] at ({co}, {p}): {got} vs {want}"
                    );
                }
            }
        }
    }
}
