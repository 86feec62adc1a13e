//! A float32 depthwise convolution (one filter per channel: MobileNet's, EfficientNet's,
//! MNASNet's and ConvNeXt's `groups == channels` layers) for the CPU (flex) device.
//!
//! burn-flex 0.22 computes a depthwise convolution plane by plane, tap by tap over the whole
//! plane, in the vector width the crate was compiled for (SSE2 on a portable x86-64 build),
//! one rayon task per channel: MobileNetV3-Large's depthwise layers took over a third of its
//! forward pass. Here each plane is copied once into a zero-padded scratch buffer (split into
//! stride phases, so a stride-2 window still reads consecutive values), and four output rows
//! at a time are accumulated tap by tap in registers of the widest vectors the CPU has
//! (AVX-512, AVX2 or NEON, picked at run time by rten-simd), with the bias in the accumulator
//! and the ReLU before the store. Written by hand because no crate offers a depthwise
//! convolution over plain NCHW slices.

use std::mem::MaybeUninit;

use burn::prelude::*;
use featx_graph::Window2d;
use rayon::prelude::*;
use rten_simd::ops::{BitOps, NumOps};
use rten_simd::{Isa, SimdOp};

use super::tensor::{flex_f32, flex_tensor, weight_and_bias};

/// Multiply-adds per task on the thread pool: a task outweighs its hand-off, and a batch-1
/// layer of a few hundred small planes still spreads over every core.
const TASK_MACS: usize = 1 << 17;

/// Output rows accumulated together: four independent chains hide the latency of the fused
/// multiply-add.
const ROWS: usize = 4;

/// The largest window taken (`kh * kw`): 7x7 is the largest depthwise window in torchvision;
/// a larger one keeps burn's path.
const MAX_TAPS: usize = 81;

/// A depthwise convolution's weights, kept for [`PackedDepthwise::forward`].
#[derive(Debug, Clone)]
pub struct PackedDepthwise {
    /// `[C, kh * kw]`: torch's `[C, 1, kh, kw]` as it is.
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    channels: usize,
    window: Window2d,
}

/// One plane's sizes, the same for every plane of a call.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    /// Zero rows above and columns left of the image.
    top: usize,
    left: usize,
}

impl Geometry {
    /// Padded rows a plane's output reads.
    fn rows(&self) -> usize {
        (self.oh - 1) * self.sh + self.kh
    }

    /// Values per row of one stride phase in the scratch buffer, for `lanes`-wide vectors:
    /// room for the last (partly used) vector of an output row and the window behind it.
    fn phase_width(&self, lanes: usize) -> usize {
        self.ow.div_ceil(lanes) * lanes + (self.kw - 1) / self.sw + 1
    }
}

impl PackedDepthwise {
    /// Keeps `weight` (`[C, 1, kh, kw]`, its kernel size equal to `window`'s) and `bias` of a
    /// convolution with `groups == C` input and output channels; declines (`None`) any other
    /// convolution, dilated windows, and weights that are not float32 on the flex device.
    pub fn new(
        weight: &Tensor<4>,
        bias: Option<&Tensor<1>>,
        window: Window2d,
        groups: usize,
    ) -> Option<Self> {
        let [channels, per_group, kh, kw] = weight.dims();
        if groups != channels
            || per_group != 1
            || channels == 0
            || window.kernel != [kh, kw]
            || window.dilation != [1, 1]
            || window.stride.contains(&0)
            || kh * kw > MAX_TAPS
            || weight.device() != Device::flex()
        {
            return None;
        }
        let (weight, bias) = weight_and_bias(weight, bias)?;
        Some(Self {
            weight,
            bias,
            channels,
            window,
        })
    }

    /// The convolution of `x` (`[N, C, H, W]` on the flex device), through ReLU when `relu`,
    /// or `x` back if it does not fit (other device, dtype or channel count, or a window
    /// larger than the padded input), so the caller can fall back.
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward(&self, x: Tensor<4>, relu: bool) -> std::result::Result<Tensor<4>, Tensor<4>> {
        let [n, c, h, w] = x.dims();
        let Ok([oh, ow]) = self.window.output_size([h, w], false) else {
            return Err(x);
        };
        if c != self.channels || oh == 0 || ow == 0 {
            return Err(x);
        }
        let data = flex_f32(x)?;
        let input = data.as_slice();
        let [kh, kw] = self.window.kernel;
        let geometry = Geometry {
            h,
            w,
            oh,
            ow,
            kh,
            kw,
            sh: self.window.stride[0],
            sw: self.window.stride[1],
            top: self.window.padding[0].0,
            left: self.window.padding[1].0,
        };
        let out = self.run(input, n, geometry, relu);
        Ok(flex_tensor(out, [n, c, oh, ow]))
    }

    /// Every plane of `input` (`[N, C, H, W]` values) convolved, as `[N, C, OH, OW]` values.
    fn run(&self, input: &[f32], n: usize, g: Geometry, relu: bool) -> Vec<f32> {
        let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
        let per_task = (TASK_MACS / (plane_out * g.kh * g.kw).max(1)).max(1);
        // Every output value is stored once, below: no pass zeroes the buffer first.
        let mut out = Vec::with_capacity(n * self.channels * plane_out);
        out.spare_capacity_mut()[..n * self.channels * plane_out]
            .par_chunks_mut(plane_out * per_task)
            .enumerate()
            .for_each_init(Vec::new, |scratch, (task, planes)| {
                let first = task * per_task;
                for (i, out) in planes.chunks_mut(plane_out).enumerate() {
                    let plane = first + i;
                    let channel = plane % self.channels;
                    let taps = g.kh * g.kw;
                    Plane {
                        input: &input[plane * plane_in..(plane + 1) * plane_in],
                        out,
                        weight: &self.weight[channel * taps..(channel + 1) * taps],
                        bias: self.bias.as_ref().map_or(0.0, |b| b[channel]),
                        relu,
                        g,
                        scratch: &mut *scratch,
                    }
                    .dispatch();
                }
            });
        // SAFETY: the planes above cover the buffer, and `Block::rows` stores every value of
        // each plane's rows (whole vectors, then the masked tail of each row).
        unsafe { out.set_len(n * self.channels * plane_out) };
        out
    }
}

/// One channel's plane, convolved in the widest vectors the CPU has.
struct Plane<'a> {
    input: &'a [f32],
    out: &'a mut [MaybeUninit<f32>],
    weight: &'a [f32],
    bias: f32,
    relu: bool,
    g: Geometry,
    scratch: &'a mut Vec<f32>,
}

impl SimdOp for Plane<'_> {
    type Output = ();

    #[inline(always)]
    fn eval<I: Isa>(self, isa: I) {
        let ops = isa.f32();
        let lanes = ops.len();
        let g = self.g;
        let (rows, width) = (g.rows(), g.phase_width(lanes));
        // Phase `p` of padded row `r` holds padded columns `p, p + sw, p + 2 sw, ...`: tap `kx`
        // of output column `ox` is value `ox + kx / sw` of phase `kx % sw`.
        let phase_len = rows * width;
        self.scratch.clear();
        self.scratch.resize(g.sw * phase_len, 0.0);
        let scratch = &mut self.scratch[..];
        for r in g.top..(g.top + g.h).min(rows) {
            let row = &self.input[(r - g.top) * g.w..(r - g.top + 1) * g.w];
            if g.sw == 1 {
                let start = r * width + g.left;
                scratch[start..start + g.w].copy_from_slice(row);
                continue;
            }
            for phase in 0..g.sw {
                // Padded column `j * sw + phase` is image column `j * sw + phase - left`.
                let first = g.left.saturating_sub(phase).div_ceil(g.sw);
                let end = (g.w + g.left)
                    .saturating_sub(phase)
                    .div_ceil(g.sw)
                    .min(width);
                if first >= end {
                    continue;
                }
                let src = &row[first * g.sw + phase - g.left..];
                let dst = &mut scratch[phase * phase_len + r * width..][first..end];
                if g.sw == 2 {
                    // Whole pairs first (a loop the compiler turns into shuffles), then the
                    // last value when the row ends on a phase's column.
                    let pairs = dst.len().min(src.len() / 2);
                    dst.iter_mut()
                        .zip(src.chunks_exact(2))
                        .for_each(|(d, pair)| *d = pair[0]);
                    if let (Some(d), Some(&v)) = (dst.get_mut(pairs), src.get(2 * pairs)) {
                        *d = v;
                    }
                } else {
                    dst.iter_mut()
                        .zip(src.iter().step_by(g.sw))
                        .for_each(|(d, &v)| *d = v);
                }
            }
        }
        let scratch = &scratch[..];
        // Where tap `(ky, kx)` of the first output column of output row 0 reads.
        let mut taps = [0usize; MAX_TAPS];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                taps[ky * g.kw + kx] = (kx % g.sw) * phase_len + kx / g.sw + ky * width;
            }
        }
        let taps = &taps[..g.kh * g.kw];
        let max_tap = taps.iter().copied().max().unwrap_or(0);
        let block = Block {
            scratch,
            taps,
            max_tap,
            weight: self.weight,
            bias: self.bias,
            relu: self.relu,
            g,
            width,
        };
        let mut oy = 0;
        while oy < g.oh {
            let out = &mut self.out[oy * g.ow..];
            oy += match g.oh - oy {
                1 => block.rows::<_, 1>(ops, oy, out),
                2 => block.rows::<_, 2>(ops, oy, out),
                3 => block.rows::<_, 3>(ops, oy, out),
                _ => block.rows::<_, ROWS>(ops, oy, out),
            };
        }
    }
}

/// What every block of output rows of a plane reads.
struct Block<'a> {
    /// The padded plane, in stride phases.
    scratch: &'a [f32],
    /// Where each tap of output `(0, 0)` reads in `scratch`.
    taps: &'a [usize],
    /// The largest of `taps`.
    max_tap: usize,
    weight: &'a [f32],
    bias: f32,
    relu: bool,
    g: Geometry,
    /// Values per padded row of a phase.
    width: usize,
}

impl Block<'_> {
    /// Output rows `oy..oy + R` (a constant, so that the accumulators stay in registers),
    /// written to the front of `out`; returns `R`.
    #[inline(always)]
    fn rows<O: NumOps<f32>, const R: usize>(
        &self,
        ops: O,
        oy: usize,
        out: &mut [MaybeUninit<f32>],
    ) -> usize {
        let g = self.g;
        let lanes = ops.len();
        let bias = ops.splat(self.bias);
        let zero = ops.zero();
        for ox in (0..g.ow).step_by(lanes) {
            let base: [usize; R] = std::array::from_fn(|r| ((oy + r) * g.sh) * self.width + ox);
            // Every read below is at `base[r] + tap + 0..lanes`, within the padded plane by
            // construction (`Geometry::rows`, `Geometry::phase_width`): checked once here.
            assert!(base[R - 1] + self.max_tap + lanes <= self.scratch.len());
            let ptr = self.scratch.as_ptr();
            let mut acc = [bias; R];
            for (&tap, &wv) in self.taps.iter().zip(self.weight) {
                let wv = ops.splat(wv);
                for r in 0..R {
                    // SAFETY: in bounds, asserted above for the largest offset.
                    let x = unsafe { ops.load_ptr(ptr.add(base[r] + tap)) };
                    acc[r] = ops.mul_add(x, wv, acc[r]);
                }
            }
            let valid = lanes.min(g.ow - ox);
            // The last vector of a row stores only the row's values: a masked store, as a
            // 7-wide row (MobileNet's last layers) is shorter than one 16-lane vector.
            let mask = ops.first_n_mask(valid);
            assert!((R - 1) * g.ow + ox + valid <= out.len());
            let dst = out.as_mut_ptr().cast::<f32>();
            for (r, acc) in acc.into_iter().enumerate() {
                let acc = if self.relu { ops.max(acc, zero) } else { acc };
                let at = r * g.ow + ox;
                // SAFETY: `at + valid <= out.len()`, asserted above for the last row.
                unsafe {
                    if valid == lanes {
                        ops.store_ptr(acc, dst.add(at));
                    } else {
                        ops.store_ptr_mask(acc, dst.add(at), mask);
                    }
                }
            }
        }
        R
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Depthwise convolution in float64, the definition (zero padding), as `[N, C, OH, OW]`.
    fn reference(
        input: &[f32],
        [n, c, h, w]: [usize; 4],
        weight: &[f32],
        bias: Option<&[f32]>,
        window: Window2d,
        relu: bool,
    ) -> Vec<f32> {
        let [oh, ow] = window.output_size([h, w], false).unwrap();
        let [kh, kw] = window.kernel;
        let mut out = Vec::with_capacity(n * c * oh * ow);
        for p in 0..n * c {
            let ch = p % c;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |b| b[ch] as f64);
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * window.stride[0] + ky) as isize
                                - window.padding[0].0 as isize;
                            let ix = (ox * window.stride[1] + kx) as isize
                                - window.padding[1].0 as isize;
                            if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                                let v = input[p * h * w + iy as usize * w + ix as usize];
                                acc += v as f64 * weight[ch * kh * kw + ky * kw + kx] as f64;
                            }
                        }
                    }
                    out.push(if relu { acc.max(0.0) } else { acc } as f32);
                }
            }
        }
        out
    }

    /// `len` values spread over [-1, 1], the same for the same `seed`.
    pub(in crate::cpu) fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let x = i
                    .wrapping_mul(2654435761)
                    .wrapping_add(seed.wrapping_mul(97))
                    >> 8;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn check(shape: [usize; 4], window: Window2d, with_bias: bool, relu: bool) {
        let [n, c, h, w] = shape;
        let [kh, kw] = window.kernel;
        let input = values(n * c * h * w, 1);
        let weight = values(c * kh * kw, 2);
        let bias = values(c, 3);
        let bias = with_bias.then_some(bias.as_slice());
        let device = Device::flex();
        let packed = PackedDepthwise::new(
            &Tensor::<1>::from_floats(weight.as_slice(), &device).reshape([c, 1, kh, kw]),
            bias.map(|b| Tensor::<1>::from_floats(b, &device)).as_ref(),
            window,
            c,
        )
        .expect("a depthwise convolution");
        let x = Tensor::<1>::from_floats(input.as_slice(), &device).reshape(shape);
        let out = packed.forward(x, relu).expect("it fits");
        let got = out.to_data().try_into_vec::<f32>().unwrap();
        let want = reference(&input, shape, &weight, bias, window, relu);
        assert_eq!(got.len(), want.len(), "{shape:?} {window:?}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{shape:?} {window:?} value {i}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn matches_the_definition() {
        // MobileNetV3/EfficientNet/ConvNeXt windows, planes narrower and wider than a vector,
        // odd sizes, asymmetric (TF "same") padding, several planes per task and across tasks.
        for (shape, window) in [
            ([1, 16, 112, 112], Window2d::square(3, 1, 1)),
            ([1, 24, 56, 56], Window2d::square(3, 2, 1)),
            ([2, 40, 28, 28], Window2d::square(5, 1, 2)),
            ([1, 72, 56, 56], Window2d::square(5, 2, 2)),
            ([2, 96, 7, 7], Window2d::square(7, 1, 3)),
            ([1, 3, 9, 13], Window2d::square(3, 2, 0)),
            ([1, 5, 33, 17], Window2d::square(3, 1, 0)),
            ([3, 7, 15, 15], Window2d::square(5, 2, 2)),
            (
                [1, 4, 10, 11],
                Window2d {
                    kernel: [3, 3],
                    stride: [2, 2],
                    padding: [(0, 1), (0, 1)],
                    dilation: [1, 1],
                },
            ),
            (
                [1, 2, 8, 9],
                Window2d {
                    kernel: [3, 5],
                    stride: [1, 3],
                    padding: [(1, 1), (2, 2)],
                    dilation: [1, 1],
                },
            ),
        ] {
            check(shape, window, true, false);
            check(shape, window, false, true);
        }
    }

    #[test]
    fn declines_other_convolutions() {
        let device = Device::flex();
        let w = Tensor::<4>::zeros([8, 1, 3, 3], &device);
        assert!(PackedDepthwise::new(&w, None, Window2d::square(3, 1, 1), 4).is_none());
        let grouped = Tensor::<4>::zeros([8, 2, 3, 3], &device);
        assert!(PackedDepthwise::new(&grouped, None, Window2d::square(3, 1, 1), 8).is_none());
        let mut dilated = Window2d::square(3, 1, 2);
        dilated.dilation = [2, 2];
        assert!(PackedDepthwise::new(&w, None, dilated, 8).is_none());
        let packed = PackedDepthwise::new(&w, None, Window2d::square(3, 1, 1), 8).unwrap();
        // Another channel count is handed back for the general path.
        assert!(
            packed
                .forward(Tensor::<4>::zeros([1, 4, 5, 5], &device), false)
                .is_err()
        );
    }
}
