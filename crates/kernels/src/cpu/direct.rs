//! A direct convolution (no im2col matrix, no Winograd transform) for the CPU (flex) device:
//! dense `groups == 1` layers with a window larger than 1x1, any stride, padding and dilation.
//!
//! Each image is copied once into a zero-padded scratch buffer, split into stride phases (as
//! `depthwise.rs` does), so that every tap of the window reads consecutive values: output
//! pixel `(oy, ox)` is position `q = oy * W' + ox` of a virtual `OH x W'` map (`W'` is a
//! phase's padded width; the `W' - OW` positions past each row's end are computed and
//! dropped), and tap `(ky, kx)` of position `q` is value `q + offset(ky, kx)` of one phase
//! plane. A register tile of 8 output channels by 2-3 vectors of positions is accumulated over
//! every input channel and tap: the positions are loaded once per tap and each weight is
//! broadcast to two or three accumulators (AVX2's 16 registers sum the tile as two halves).
//!
//! The tile's weights are summed a slice of input channels at a time over a run of positions
//! (of one image or several), so that each slice comes from memory once, with the next slice
//! prefetched meanwhile.
//!
//! Used for an image's first layer when its windows overlap (VGG's 3x3, ResNet's 7x7 stride
//! 2, AlexNet's 11x11 stride 4), whose im2col matrix is shallow and packed from many reads of
//! each value, and for deep 3x3 layers on calls with few tiles (`conv.rs` says what was
//! measured, and on which layers the form lost). Written by hand: no crate offers a direct
//! convolution over plain NCHW slices. Vectors are the widest the CPU has (AVX-512, AVX2,
//! NEON), picked at run time by rten-simd.

use std::cell::RefCell;

use featx_graph::Window2d;
use rayon::prelude::*;
use rten_simd::ops::{BitOps, NumOps};
use rten_simd::{Isa, SimdOp};

use super::conv::Epilogue;
use super::winograd::Shared;

/// Output channels per register tile.
const MR: usize = 8;

/// Tasks per thread of the pool: enough to even out, few enough that each block of weights
/// serves many positions.
const TASKS_PER_THREAD: usize = 4;

/// (Image, positions) units of one task: their slice of the input stays in the level-2 cache
/// while every block of the task's output channels is summed over it.
const UNITS_PER_TASK: usize = 16;

/// Channel-taps of one block's weights summed over every unit of a task before the next
/// (`MR` values each: 8 KiB), which stay in the level-1 cache meanwhile.
const SLICE_STEPS: usize = 256;

/// Values of padded images one call holds at once (64 MiB): a batch's images are padded
/// together up to this, one at a time beyond it.
const SCRATCH_VALUES: usize = 16 << 20;

thread_local! {
    /// Each thread's padded image, kept from call to call (a fresh one would be page faults
    /// on every call).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A dense convolution's weights packed for the direct kernel.
#[derive(Debug, Clone)]
pub(super) struct Direct {
    /// `[ceil(C_out / MR), C_in, kh * kw, MR]`, the channels past `C_out` zero.
    packed: Vec<f32>,
    out_channels: usize,
    in_channels: usize,
    window: Window2d,
    /// Vector lanes of the CPU's widest float vectors.
    lanes: usize,
    /// Whether a tile is summed as two halves of [`HALF`] channels ([`halves`]).
    split: bool,
}

/// The CPU's float vector width, in lanes.
struct Lanes;

impl SimdOp for Lanes {
    type Output = usize;

    #[inline(always)]
    fn eval<I: Isa>(self, isa: I) -> usize {
        isa.f32().len()
    }
}

/// Whether the CPU's vectors are AVX2's (8 lanes, 16 registers), too few for a tile of 8
/// channels by 3 vectors of positions (24 accumulators, as with AVX-512's and NEON's 32): a
/// tile is then 2 vectors by 8 channels summed as two halves of [`HALF`] channels (8
/// accumulators each, every tap 6 loads for 8 multiply-adds). Measured on a 2-core AMD EPYC
/// (Zen 3), against one vector by 8 channels at once (9 loads for 8): ResNet18's 7x7 stem
/// 0.77-0.80x its time at batch 1 and 8, the whole model 0.89-0.94x at batch 1; 3 vectors by 4
/// channels (12 accumulators and all 16 registers) made LLVM shuffle the accumulators between
/// registers, 1.35x slower.
fn halves(lanes: usize) -> bool {
    lanes == 8
}

/// Vectors of positions per register tile, whether it is summed in halves or whole.
fn vectors(split: bool) -> usize {
    if split { 2 } else { 3 }
}

/// Channels of a half tile.
const HALF: usize = MR / 2;

/// One call's sizes.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    sh: usize,
    sw: usize,
    top: usize,
    left: usize,
    /// Rows and columns of one stride phase of the padded image.
    hph: usize,
    wph: usize,
    /// Values per input channel in the scratch buffer (every phase).
    plane: usize,
}

impl Direct {
    /// Packs OIHW `weight` (`[C_out, C_in, kh, kw]` values, `kh, kw` = `window.kernel`);
    /// `None` if it is shorter than that.
    pub fn new(
        weight: &[f32],
        out_channels: usize,
        in_channels: usize,
        window: Window2d,
    ) -> Option<Self> {
        let taps = window.kernel[0] * window.kernel[1];
        if weight.len() < out_channels * in_channels * taps || taps == 0 {
            return None;
        }
        let blocks = out_channels.div_ceil(MR);
        let mut packed = vec![0.0f32; blocks * in_channels * taps * MR];
        for (o, filter) in weight
            .chunks_exact(in_channels * taps)
            .take(out_channels)
            .enumerate()
        {
            let (block, m) = (o / MR, o % MR);
            for (i, value) in filter.iter().enumerate() {
                packed[(block * in_channels * taps + i) * MR + m] = *value;
            }
        }
        let lanes = Lanes.dispatch();
        Some(Direct {
            packed,
            out_channels,
            in_channels,
            window,
            lanes,
            split: halves(lanes),
        })
    }

    /// The convolution of `input` (`[n, C_in, h, w]`) through `epilogue`, into `out`
    /// (`[n, C_out, oh, ow]`, every value written).
    pub fn forward(
        &self,
        input: &[f32],
        [n, h, w]: [usize; 3],
        [oh, ow]: [usize; 2],
        epilogue: Epilogue,
        out: &mut [std::mem::MaybeUninit<f32>],
    ) {
        let [(top, bottom), (left, right)] = self.window.padding;
        let [sh, sw] = self.window.stride;
        let (hph, wph) = (
            (h + top + bottom).div_ceil(sh),
            (w + left + right).div_ceil(sw),
        );
        let g = Geometry {
            h,
            w,
            oh,
            ow,
            sh,
            sw,
            top,
            left,
            hph,
            wph,
            plane: sh * sw * hph * wph,
        };
        let cin = self.in_channels;
        let cout = self.out_channels;
        let (kh, kw) = (self.window.kernel[0], self.window.kernel[1]);
        let [dh, dw] = self.window.dilation;
        // Where tap (ky, kx) of position 0 reads in one channel's phases.
        let taps: Vec<usize> = (0..kh * kw)
            .map(|tap| {
                let (ey, ex) = ((tap / kw) * dh, (tap % kw) * dw);
                ((ey % sh) * sw + ex % sw) * hph * wph + (ey / sh) * wph + ex / sw
            })
            .collect();
        let max_tap = taps.iter().copied().max().unwrap_or(0);
        let positions = vectors(self.split) * self.lanes;
        let q_blocks = (oh * wph).div_ceil(positions);
        // One image's padded channels, and how far past them its last block reads.
        let image_len = cin * g.plane;
        let reach = (cin.saturating_sub(1) * g.plane + max_tap + q_blocks * positions)
            .saturating_sub(image_len);
        // Images padded at once: all of a small batch, so that each block of weights is read
        // once for every image, within a bound on the scratch buffer for large ones.
        let group = (SCRATCH_VALUES / image_len.max(1)).clamp(1, n.max(1));
        let blocks = cout.div_ceil(MR);
        let threads = rayon::current_num_threads();
        // Input channels per slice: about `SLICE_STEPS` channel-taps of weights.
        let chunk = (SLICE_STEPS / taps.len()).clamp(1, cin);
        let (plane_in, plane_out) = (h * w, oh * ow);
        let dst = Shared(out.as_mut_ptr().cast::<f32>());
        SCRATCH.with(|scratch| {
            let mut fresh = Vec::new();
            let mut held = scratch.try_borrow_mut();
            // A rayon thread waiting in one call may run another's job: a fresh buffer then.
            let scratch: &mut Vec<f32> = match held.as_deref_mut() {
                Ok(buffer) => buffer,
                Err(_) => &mut fresh,
            };
            for first in (0..n).step_by(group) {
                let images = group.min(n - first);
                let len = images * image_len + reach;
                if scratch.len() < len {
                    scratch.resize(len, 0.0);
                }
                let (planes, tail) = scratch[..len].split_at_mut(images * image_len);
                tail.fill(0.0);
                let input = &input[first * cin * plane_in..(first + images) * cin * plane_in];
                planes
                    .par_chunks_mut(g.plane)
                    .zip(input.par_chunks(plane_in))
                    .for_each(|(phases, channel)| pad(channel, phases, g));
                let padded = &scratch[..len];
                let units = images * q_blocks;
                // A task: a run of consecutive (image, positions) units by a run of output
                // channel blocks, summed one slice of input channels at a time: each block's
                // slice of weights serves every unit from the level-1 cache, and the units'
                // slice of the input serves every block from level 2.
                let unit_run = units.min(UNITS_PER_TASK);
                let unit_runs = units.div_ceil(unit_run);
                let block_runs = (TASKS_PER_THREAD * threads)
                    .div_ceil(unit_runs)
                    .clamp(1, blocks);
                let block_run = blocks.div_ceil(block_runs);
                let block_runs = blocks.div_ceil(block_run);
                let tile_len = MR * positions;
                (0..unit_runs * block_runs).into_par_iter().for_each_init(
                    Vec::new,
                    |sums: &mut Vec<f32>, task| {
                        let (ur, br) = (task / block_runs, task % block_runs);
                        let my_units = ur * unit_run..((ur + 1) * unit_run).min(units);
                        let my_blocks = br * block_run..((br + 1) * block_run).min(blocks);
                        let tiles = my_units.len() * my_blocks.len();
                        // The last block of an image computes only the vectors that hold
                        // positions.
                        let vectors = |unit: usize| {
                            let q0 = (unit % q_blocks) * positions;
                            (oh * wph - q0).min(positions).div_ceil(self.lanes)
                        };
                        let bias = |block: usize| {
                            let mut bias = [0.0f32; MR];
                            let channels = block * MR..((block + 1) * MR).min(cout);
                            if let Some(b) = epilogue.bias {
                                bias[..channels.len()].copy_from_slice(&b[channels]);
                            }
                            bias
                        };
                        sums.clear();
                        sums.resize(tiles * tile_len, 0.0);
                        let steps = taps.len() * MR;
                        for c0 in (0..cin).step_by(chunk) {
                            let depth = chunk.min(cin - c0);
                            for (j, block) in my_blocks.clone().enumerate() {
                                let weights = &self.packed[block * cin * steps..][..cin * steps];
                                let (from, to) = (c0 * steps, (c0 + depth) * steps);
                                // The next slice's weights are on their way from memory while
                                // this one is summed (the hardware prefetcher alone left the
                                // cores waiting on them: ResNet18's last layers ran at half
                                // their speed with warm weights).
                                for line in weights[to..(2 * to - from).min(weights.len())]
                                    .iter()
                                    .step_by(16)
                                {
                                    prefetch(line);
                                }
                                let weights = &weights[from..to];
                                for (k, unit) in my_units.clone().enumerate() {
                                    let at = (j * my_units.len() + k) * tile_len;
                                    Tile {
                                        input: &padded
                                            [(unit / q_blocks) * image_len + c0 * g.plane..],
                                        q0: (unit % q_blocks) * positions,
                                        plane: g.plane,
                                        cin: depth,
                                        taps: &taps,
                                        weights,
                                        bias: bias(block),
                                        vectors: vectors(unit),
                                        split: self.split,
                                        accumulate: c0 > 0,
                                        out: &mut sums[at..at + tile_len],
                                    }
                                    .dispatch();
                                }
                            }
                        }
                        // With nothing to add or clamp first, the activation goes over all
                        // the task's sums in one call rather than over each stored run (a
                        // run can be a few values: a dispatch each).
                        let early = epilogue.residual.is_none() && !epilogue.relu;
                        let late = match (early, epilogue.activation) {
                            (true, Some(activation)) => {
                                activation.apply_serial(sums);
                                Epilogue {
                                    activation: None,
                                    ..epilogue
                                }
                            }
                            _ => epilogue,
                        };
                        for (j, block) in my_blocks.enumerate() {
                            let channels = block * MR..((block + 1) * MR).min(cout);
                            for (k, unit) in my_units.clone().enumerate() {
                                let img = first + unit / q_blocks;
                                let q0 = (unit % q_blocks) * positions;
                                let width = vectors(unit) * self.lanes;
                                let at = (j * my_units.len() + k) * tile_len;
                                let tile = &sums[at..at + tile_len];
                                for (m, oc) in channels.clone().enumerate() {
                                    let at = (img * cout + oc) * plane_out;
                                    let values = &tile[m * width..(m + 1) * width];
                                    // SAFETY: plane `oc` of image `img` has `plane_out` values
                                    // in `out`; only this task writes its positions of it.
                                    let plane = unsafe {
                                        std::slice::from_raw_parts_mut(dst.at(at), plane_out)
                                    };
                                    let residual =
                                        epilogue.residual.map(|r| &r[at..at + plane_out]);
                                    store(values, q0, g, plane, residual, late);
                                }
                            }
                        }
                    },
                );
            }
        });
    }
}

/// One input channel (`h x w`) into its zero-padded stride phases (`sh * sw` planes of
/// `hph x wph`).
fn pad(channel: &[f32], phases: &mut [f32], g: Geometry) {
    phases.fill(0.0);
    let (hph, wph) = (g.hph, g.wph);
    for py in 0..g.sh {
        for px in 0..g.sw {
            let phase = &mut phases[(py * g.sw + px) * hph * wph..][..hph * wph];
            // Padded column `j * sw + px` is image column `j * sw + px - left`.
            let first = g.left.saturating_sub(px).div_ceil(g.sw);
            let end = (g.w + g.left).saturating_sub(px).div_ceil(g.sw).min(wph);
            if first >= end {
                continue;
            }
            for r in 0..hph {
                let Some(iy) = (r * g.sh + py).checked_sub(g.top).filter(|&iy| iy < g.h) else {
                    continue;
                };
                let row = &channel[iy * g.w..(iy + 1) * g.w];
                let dst = &mut phase[r * wph..][first..end];
                let start = first * g.sw + px - g.left;
                if g.sw == 1 {
                    dst.copy_from_slice(&row[start..start + dst.len()]);
                } else {
                    dst.iter_mut()
                        .zip(row[start..].iter().step_by(g.sw))
                        .for_each(|(d, &v)| *d = v);
                }
            }
        }
    }
}

/// One tile's values (`[MR, positions]`, from virtual position `q0`) into an output plane:
/// the positions past each row's end dropped, the residual added, ReLU and the activation
/// applied.
fn store(
    values: &[f32],
    q0: usize,
    g: Geometry,
    plane: &mut [f32],
    residual: Option<&[f32]>,
    epilogue: Epilogue,
) {
    let relu = epilogue.relu;
    let end = (q0 + values.len()).min(g.oh * g.wph);
    let mut q = q0;
    while q < end {
        let (oy, ox) = (q / g.wph, q % g.wph);
        let row_end = (oy * g.wph + g.ow).min(end);
        if q < row_end {
            let src = &values[q - q0..row_end - q0];
            let at = oy * g.ow + ox;
            let dst = &mut plane[at..at + src.len()];
            match residual {
                Some(r) => {
                    for ((d, &v), &r) in dst.iter_mut().zip(src).zip(&r[at..at + src.len()]) {
                        let v = v + r;
                        *d = if relu { v.max(0.0) } else { v };
                    }
                }
                None if relu => {
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d = v.max(0.0);
                    }
                }
                None => dst.copy_from_slice(src),
            }
            if let Some(activation) = epilogue.activation {
                activation.apply_serial(dst);
            }
        }
        q = (oy + 1) * g.wph;
    }
}

/// Asks for the cache line holding `at` (a hint: it reads nothing).
#[inline(always)]
fn prefetch(at: &f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing; `at` is a valid address all the same.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((at as *const f32).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// One register tile: `MR` output channels by one block of positions, summed over every
/// input channel and tap.
struct Tile<'a> {
    /// The padded image, every channel's phases.
    input: &'a [f32],
    /// The tile's first position.
    q0: usize,
    /// Values per channel in `input`.
    plane: usize,
    cin: usize,
    /// Where each tap of position 0 reads in a channel's phases.
    taps: &'a [usize],
    /// `[C_in, taps, MR]`.
    weights: &'a [f32],
    bias: [f32; MR],
    /// Vectors of positions to compute: the full tile's, or fewer for a map's last positions.
    vectors: usize,
    /// Whether to sum the tile as two halves of [`HALF`] channels.
    split: bool,
    /// Whether to add to `out`'s sums (of earlier input channels) instead of the bias.
    accumulate: bool,
    /// `[MR, vectors * lanes]` sums, at the front.
    out: &'a mut [f32],
}

impl SimdOp for Tile<'_> {
    type Output = ();

    #[inline(always)]
    fn eval<I: Isa>(mut self, isa: I) {
        let ops = isa.f32();
        if self.split {
            for first in [0, HALF] {
                match self.vectors {
                    1 => self.sum::<_, 1, HALF>(ops, first),
                    _ => self.sum::<_, 2, HALF>(ops, first),
                }
            }
        } else {
            match self.vectors {
                1 => self.sum::<_, 1, MR>(ops, 0),
                2 => self.sum::<_, 2, MR>(ops, 0),
                _ => self.sum::<_, 3, MR>(ops, 0),
            }
        }
    }
}

impl Tile<'_> {
    /// The sums of channels `first..first + CH` of the tile, with `NV` vectors of positions
    /// (constants, so the accumulators stay in registers).
    #[inline(always)]
    fn sum<O: NumOps<f32>, const NV: usize, const CH: usize>(&mut self, ops: O, first: usize) {
        let lanes = ops.len();
        let taps = self.taps.len();
        let max_tap = self.taps.iter().copied().max().unwrap_or(0);
        // Every read below is at `q0 + c * plane + tap + 0..NV * lanes`, and every weight
        // read within `weights`: checked once here.
        assert!(self.q0 + (self.cin - 1) * self.plane + max_tap + NV * lanes <= self.input.len());
        assert!(self.weights.len() >= self.cin * taps * MR);
        let positions = NV * lanes;
        assert!(self.out.len() >= MR * positions);
        assert!(first + CH <= MR);
        // SAFETY: rows `first..first + CH` of the `[MR, positions]` sums, asserted above.
        let out = unsafe { self.out.as_mut_ptr().add(first * positions) };
        let mut acc: [[O::Simd; NV]; CH] = std::array::from_fn(|m| {
            std::array::from_fn(|v| match self.accumulate {
                // SAFETY: within `out`, asserted above.
                true => unsafe { ops.load_ptr(out.add(m * positions + v * lanes)) },
                false => ops.splat(self.bias[first + m]),
            })
        });
        // SAFETY: `first < MR`, within the first step's weights.
        let mut w = unsafe { self.weights.as_ptr().add(first) };
        for c in 0..self.cin {
            // SAFETY: within `input`, asserted above.
            let base = unsafe { self.input.as_ptr().add(self.q0 + c * self.plane) };
            for &tap in self.taps {
                // SAFETY: within `input` and `weights`, asserted above.
                unsafe {
                    let x: [O::Simd; NV] =
                        std::array::from_fn(|v| ops.load_ptr(base.add(tap + v * lanes)));
                    for (m, acc) in acc.iter_mut().enumerate() {
                        let wv = ops.splat(*w.add(m));
                        for v in 0..NV {
                            acc[v] = ops.mul_add(x[v], wv, acc[v]);
                        }
                    }
                    w = w.add(MR);
                }
            }
        }
        for (m, acc) in acc.into_iter().enumerate() {
            for (v, acc) in acc.into_iter().enumerate() {
                // SAFETY: within `out`, asserted above.
                unsafe { ops.store_ptr(acc, out.add(m * positions + v * lanes)) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::depthwise::tests::values;
    use std::mem::MaybeUninit;

    /// The convolution by its definition, in float64.
    fn reference(
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        [n, cin, h, w]: [usize; 4],
        cout: usize,
        window: Window2d,
        [oh, ow]: [usize; 2],
    ) -> Vec<f64> {
        let [kh, kw] = window.kernel;
        let [sh, sw] = window.stride;
        let [(top, _), (left, _)] = window.padding;
        let [dh, dw] = window.dilation;
        let mut out = vec![0.0f64; n * cout * oh * ow];
        for (i, v) in out.iter_mut().enumerate() {
            let (img, o, oy, ox) = (
                i / (cout * oh * ow),
                i / (oh * ow) % cout,
                i / ow % oh,
                i % ow,
            );
            let mut sum = bias[o] as f64;
            for c in 0..cin {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let iy = (oy * sh + ky * dh) as isize - top as isize;
                        let ix = (ox * sw + kx * dw) as isize - left as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let x = input[((img * cin + c) * h + iy as usize) * w + ix as usize];
                        let k = weight[((o * cin + c) * kh + ky) * kw + kx];
                        sum += x as f64 * k as f64;
                    }
                }
            }
            *v = sum;
        }
        out
    }

    /// Strides, paddings, dilation, several input-channel slices, several runs of units over
    /// images, a partial block of output channels, the residual and ReLU: against the
    /// definition.
    #[test]
    fn matches_the_definition() {
        // (input [n, c, h, w], output channels, kernel, stride, padding, dilation)
        let cases = [
            ([1, 3, 40, 40], 16, 3, 1, 1, 1), // VGG's first layer, smaller
            ([3, 3, 64, 64], 20, 3, 1, 1, 1), // many units, a partial block
            ([2, 40, 9, 9], 11, 3, 1, 1, 1),  // 360 channel-taps: two slices
            ([2, 3, 23, 31], 7, 5, 2, 2, 1),  // strided
            ([1, 3, 33, 33], 9, 11, 4, 2, 1), // AlexNet's first layer, smaller
            ([2, 2, 17, 19], 3, 3, 1, 2, 2),  // dilated
            ([1, 5, 7, 7], 8, 3, 2, 0, 1),    // no padding
        ];
        for (i, (shape, cout, k, s, p, d)) in cases.into_iter().enumerate() {
            let [n, cin, h, w] = shape;
            let window = Window2d {
                dilation: [d, d],
                ..Window2d::square(k, s, p)
            };
            let [oh, ow] = window.output_size([h, w], false).expect("fits");
            let input = values(n * cin * h * w, 3 * i as u32);
            let weight = values(cout * cin * k * k, 3 * i as u32 + 1);
            let bias = values(cout, 3 * i as u32 + 2);
            let residual = values(n * cout * oh * ow, 7);
            let direct = Direct::new(&weight, cout, cin, window).expect("packs");
            let expected = reference(&input, &weight, &bias, shape, cout, window, [oh, ow]);
            // The tile as this CPU sums it and the other way (whole or in halves), so both
            // are checked on any machine.
            let other = Direct {
                split: !direct.split,
                ..direct.clone()
            };
            for (direct, (relu, with_residual)) in [&direct, &other]
                .into_iter()
                .flat_map(|d| [(d, (false, false)), (d, (true, true))])
            {
                let epilogue = Epilogue {
                    bias: Some(&bias),
                    residual: with_residual.then_some(&residual[..]),
                    relu,
                    activation: None,
                };
                let mut out = vec![MaybeUninit::new(f32::NAN); n * cout * oh * ow];
                direct.forward(&input, [n, h, w], [oh, ow], epilogue, &mut out);
                for (j, (got, want)) in out.iter().zip(&expected).enumerate() {
                    // SAFETY: initialised above (NaN where the kernel would leave a value out).
                    let got = unsafe { got.assume_init() } as f64;
                    let mut want = *want
                        + if with_residual {
                            residual[j] as f64
                        } else {
                            0.0
                        };
                    if relu {
                        want = want.max(0.0);
                    }
                    assert!(
                        (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                        "case {i} {shape:?} k{k} s{s} p{p} d{d} split {} at {j}: {got} against \
                         {want}",
                        direct.split
                    );
                }
            }
        }
    }
}
