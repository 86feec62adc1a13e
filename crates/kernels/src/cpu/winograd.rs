//! Winograd F(2x2, 3x3) convolution for 3x3, stride-1, padding-1 layers on the CPU.
//!
//! Every 2x2 block of output pixels ("tile") is computed from a 4x4 input patch with 16
//! products per channel pair instead of 36 (2.25x fewer multiplications): the patch is
//! transformed (`Bᵀ d B`), multiplied elementwise with the transformed kernel (`G g Gᵀ`, done
//! once when packing), summed over input channels, and transformed back (`Aᵀ m A`). The sum
//! over channels is 16 independent gemms `[C_out, C_in] x [C_in, tiles]`, one per position of
//! the 4x4 transform. ResNet's 3x3 layers are 83% of its multiplications. The transform
//! matrices hold only 0, ±1 and ±½ (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016), so results stay within 2e-6 of the output's scale of a direct sum (the
//! tests in `conv.rs` check every path against burn's conv2d).
//! Written by hand: no Rust crate offers a Winograd convolution.

use std::cell::RefCell;

use rayon::prelude::*;
use rten_gemm::GemmError;

use super::cache;
use super::conv::Epilogue;
use super::elementwise::Elementwise;
use super::matmul::{PackedLhs, Rhs, View, as_uninit, filled};

/// Bytes of transformed input and products one block of tiles may use: the level-2 caches of
/// the threads that share the block, so that both stay in cache between the transforms and
/// the products instead of a whole batch's worth streaming through memory. On the 2-core Xeon
/// measured (2 MiB of L2 each, so 4 MiB), ResNet18 at batch 8 took the same time with blocks
/// of 4 to 16 MiB and 1.1-1.25x as long with 1-2 MiB.
fn block_bytes() -> usize {
    cache::l2_bytes() * rayon::current_num_threads()
}

thread_local! {
    /// Each thread's transformed inputs and products, kept from call to call: allocating and
    /// zeroing them anew (up to the block size, every call) was 5% of ResNet18's every-node
    /// extraction at batch 1.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Positions of the 4x4 transform.
const POSITIONS: usize = 16;

/// The transformed kernel of one convolution.
#[derive(Debug, Clone)]
pub(super) struct Winograd {
    /// `u[ξ]` for the 16 positions ξ: each a `[C_out, C_in]` matrix, packed.
    u: Vec<PackedLhs>,
    out_channels: usize,
    in_channels: usize,
}

/// A raw pointer that rayon jobs may share: each job writes a region no other job touches.
#[derive(Clone, Copy)]
pub(super) struct Shared(pub(super) *mut f32);
// SAFETY: only used to hand disjoint regions of one buffer to parallel jobs (see each use).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer; a method so closures capture the whole `Shared` (which is `Send`).
    pub(super) fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

impl Winograd {
    /// Transforms OIHW 3x3 `weight` (`[C_out, C_in, 3, 3]`, row-major); computed in f64 so
    /// the packed kernel carries a single rounding.
    /// `None` if `weight` is shorter than the shape says.
    pub fn new(weight: &[f32], out_channels: usize, in_channels: usize) -> Option<Self> {
        let pairs = out_channels * in_channels;
        let mut u = vec![0.0f32; POSITIONS * pairs];
        for (pair, g) in weight.chunks_exact(9).enumerate().take(pairs) {
            let g: [f64; 9] = std::array::from_fn(|i| g[i] as f64);
            // G g: rows of the 4x3 intermediate, G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1].
            let mut gg = [[0.0f64; 3]; 4];
            for col in 0..3 {
                let (a, b, c) = (g[col], g[3 + col], g[6 + col]);
                gg[0][col] = a;
                gg[1][col] = (a + b + c) / 2.0;
                gg[2][col] = (a - b + c) / 2.0;
                gg[3][col] = c;
            }
            for (row, r) in gg.iter().enumerate() {
                let (a, b, c) = (r[0], r[1], r[2]);
                let out = [a, (a + b + c) / 2.0, (a - b + c) / 2.0, c];
                for (col, v) in out.into_iter().enumerate() {
                    u[(row * 4 + col) * pairs + pair] = v as f32;
                }
            }
        }
        let u = u
            .chunks_exact(pairs.max(1))
            .map(|u| PackedLhs::new(u, [out_channels, in_channels]))
            .collect::<Option<Vec<_>>>()?;
        Some(Winograd {
            u,
            out_channels,
            in_channels,
        })
    }

    /// The convolution of `input` (`[n, C_in, h, w]`, row-major) with padding 1, through
    /// `epilogue`; returns `[n, C_out, h, w]`.
    pub fn forward(
        &self,
        input: &[f32],
        [n, h, w]: [usize; 3],
        epilogue: Epilogue,
    ) -> Result<Vec<f32>, GemmError> {
        // Every output pixel lies in one tile, whose job writes it once: no pass zeroes it.
        filled(n * self.out_channels * h * w, |out| {
            self.forward_into(input, [n, h, w], epilogue, out.as_mut_ptr().cast::<f32>())
        })
    }

    /// [`Winograd::forward`] into `out`, which has room for `[n, C_out, h, w]` values.
    fn forward_into(
        &self,
        input: &[f32],
        [n, h, w]: [usize; 3],
        epilogue: Epilogue,
        out: *mut f32,
    ) -> Result<(), GemmError> {
        // Blocks of whole tile rows (of any image), sized to `block_bytes`.
        let per_tile =
            POSITIONS * (self.in_channels + self.out_channels) * std::mem::size_of::<f32>();
        let rows_per_block = (block_bytes() / (per_tile * w.div_ceil(2))).max(1);
        // This thread's buffers from its last call, or fresh ones while they are in use (a
        // rayon thread waiting in one call may run another's job).
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buffers) => {
                let (v, m) = &mut *buffers;
                self.blocks(input, [n, h, w], epilogue, out, rows_per_block, v, m)
            }
            Err(_) => self.blocks(
                input,
                [n, h, w],
                epilogue,
                out,
                rows_per_block,
                &mut Vec::new(),
                &mut Vec::new(),
            ),
        })
    }

    /// [`Winograd::forward_into`]'s work, `rows_per_block` tile rows at a time, with `v` and
    /// `m` as the transformed inputs' and products' buffers (grown as needed, never cleared:
    /// every value a block reads it has written first).
    #[allow(clippy::too_many_arguments)]
    fn blocks(
        &self,
        input: &[f32],
        [n, h, w]: [usize; 3],
        epilogue: Epilogue,
        out: *mut f32,
        rows_per_block: usize,
        v: &mut Vec<f32>,
        m: &mut Vec<f32>,
    ) -> Result<(), GemmError> {
        let (cin, cout) = (self.in_channels, self.out_channels);
        let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
        let total_rows = n * th;
        let dst = Shared(out);
        for first in (0..total_rows).step_by(rows_per_block) {
            let rows = first..(first + rows_per_block).min(total_rows);
            let tiles = rows.len() * tw;
            let (v_len, m_len) = (cin * POSITIONS * tiles, cout * POSITIONS * tiles);
            if v.len() < v_len {
                v.resize(v_len, 0.0);
            }
            if m.len() < m_len {
                m.resize(m_len, 0.0);
            }
            let (v, m) = (&mut v[..v_len], &mut m[..m_len]);
            // v[c][ξ][t]: the transformed input patches, one channel per job.
            v.par_chunks_mut(POSITIONS * tiles)
                .enumerate()
                .for_each(|(c, v)| {
                    let mut scratch = vec![0.0f32; 8 * (tw + 1)];
                    for (k, row) in rows.clone().enumerate() {
                        let (img, ty) = (row / th, row % th);
                        let plane = &input[(img * cin + c) * h * w..][..h * w];
                        transform_input(plane, [h, w], ty, &mut scratch, v, tiles, k * tw);
                    }
                });
            // m[ξ][o][t] = Σ_c u[ξ][o][c] v[c][ξ][t]: one product per position.
            let v = &v;
            m.par_chunks_mut(cout * tiles)
                .zip(&self.u)
                .enumerate()
                .try_for_each(|(xi, (m, u))| {
                    let rhs = Rhs::Matrix(View::rows(
                        &v[xi * tiles..],
                        [cin, tiles],
                        POSITIONS * tiles,
                    ));
                    u.multiply(rhs, None, as_uninit(m))
                })?;
            let m = &m;
            (0..cout).into_par_iter().for_each(|o| {
                let plane_epilogue = |img: usize| PlaneEpilogue {
                    bias: epilogue.bias.map_or(0.0, |b| b[o]),
                    residual: epilogue
                        .residual
                        .map(|r| &r[(img * cout + o) * h * w..][..h * w]),
                    relu: epilogue.relu,
                    activation: epilogue.activation,
                };
                let mut scratch = vec![0.0f32; 4 * tw];
                for (k, row) in rows.clone().enumerate() {
                    let (img, ty) = (row / th, row % th);
                    // SAFETY: rows 2ty..2ty+2 of plane (img, o) of `out` (which has room for
                    // every plane): this job is the only one writing output channel o, blocks
                    // run one after another, and it only writes.
                    let plane = unsafe {
                        std::slice::from_raw_parts_mut(dst.at((img * cout + o) * h * w), h * w)
                    };
                    transform_output(
                        &m[o * tiles..],
                        cout * tiles,
                        k * tw,
                        plane,
                        [h, w],
                        ty,
                        plane_epilogue(img),
                        &mut scratch,
                    );
                }
            });
        }
        Ok(())
    }
}

/// What one output channel's plane gets after the transform back: its bias, then the same
/// plane of the residual, then ReLU, then the activation.
#[derive(Clone, Copy)]
struct PlaneEpilogue<'a> {
    bias: f32,
    residual: Option<&'a [f32]>,
    relu: bool,
    activation: Option<Elementwise>,
}

impl PlaneEpilogue<'_> {
    /// Whether the ReLU can go with the bias, while the row is written: not when a residual
    /// is still to be added.
    fn relu_with_bias(&self) -> bool {
        self.relu && self.residual.is_none()
    }

    /// Adds output row `y` of the residual, then the ReLU, to `row` (written with the bias
    /// only, [`PlaneEpilogue::relu_with_bias`]), then applies the activation.
    fn finish_row(&self, row: &mut [f32], y: usize) {
        if let Some(residual) = self.residual {
            let residual = &residual[y * row.len()..(y + 1) * row.len()];
            for (v, r) in row.iter_mut().zip(residual) {
                let sum = *v + r;
                *v = if self.relu { sum.max(0.0) } else { sum };
            }
        }
        if let Some(activation) = self.activation {
            activation.apply_serial(row);
        }
    }
}

/// Writes `v[ξ][offset + tx]` (rows of length `tiles`) for tile row `ty` of one channel.
///
/// `Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]` is applied down the columns first (four
/// input rows, zero outside the image), then across, on even and odd columns split apart so
/// both passes run over contiguous slices.
fn transform_input(
    plane: &[f32],
    [h, w]: [usize; 2],
    ty: usize,
    scratch: &mut [f32],
    v: &mut [f32],
    tiles: usize,
    offset: usize,
) {
    let tw = w.div_ceil(2);
    let (even, odd) = scratch.split_at_mut(4 * (tw + 1));
    // Padded column p = x + 1: even[j][k] holds column p = 2k, odd[j][k] column p = 2k + 1.
    let row = |j: usize| -> Option<&[f32]> {
        let y = (2 * ty + j).checked_sub(1)?;
        (y < h).then(|| &plane[y * w..(y + 1) * w])
    };
    let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3));
    let at = |d: Option<&[f32]>, x: usize| d.map_or(0.0, |d| d[x]);
    for k in 0..=tw {
        for (parity, dst) in [(0usize, &mut *even), (1, &mut *odd)] {
            // Input column x = 2k + parity - 1.
            let Some(x) = (2 * k + parity).checked_sub(1).filter(|&x| x < w) else {
                for j in 0..4 {
                    dst[j * (tw + 1) + k] = 0.0;
                }
                continue;
            };
            let (a, b, c, d) = (at(d0, x), at(d1, x), at(d2, x), at(d3, x));
            dst[k] = a - c;
            dst[(tw + 1) + k] = b + c;
            dst[2 * (tw + 1) + k] = c - b;
            dst[3 * (tw + 1) + k] = b - d;
        }
    }
    for j in 0..4 {
        let e = &even[j * (tw + 1)..(j + 1) * (tw + 1)];
        let o = &odd[j * (tw + 1)..(j + 1) * (tw + 1)];
        let (e0, e1) = (&e[..tw], &e[1..]);
        let (o0, o1) = (&o[..tw], &o[1..]);
        let base = |i: usize| (4 * j + i) * tiles + offset;
        for (t, dst) in v[base(0)..][..tw].iter_mut().enumerate() {
            *dst = e0[t] - e1[t];
        }
        for (t, dst) in v[base(1)..][..tw].iter_mut().enumerate() {
            *dst = o0[t] + e1[t];
        }
        for (t, dst) in v[base(2)..][..tw].iter_mut().enumerate() {
            *dst = e1[t] - o0[t];
        }
        for (t, dst) in v[base(3)..][..tw].iter_mut().enumerate() {
            *dst = o0[t] - o1[t];
        }
    }
}

/// Writes output rows `2ty` and `2ty + 1` of one channel from `m[ξ * position_stride + offset + tx]`:
/// `Aᵀ = [1 1 1 0; 0 1 -1 -1]` down, then across, through `epilogue`;
/// `scratch` holds `4 * ceil(w / 2)` values.
#[allow(clippy::too_many_arguments)] // one tile row's coordinates; a struct would only rename them
fn transform_output(
    m: &[f32],
    position_stride: usize,
    offset: usize,
    plane: &mut [f32],
    [h, w]: [usize; 2],
    ty: usize,
    epilogue: PlaneEpilogue,
    scratch: &mut [f32],
) {
    let (bias, relu) = (epilogue.bias, epilogue.relu_with_bias());
    let tw = w.div_ceil(2);
    let p = |xi: usize| &m[xi * position_stride + offset..][..tw];
    let finish = |v: f32| if relu { v.max(0.0) } else { v };
    for half in 0..2 {
        let y = 2 * ty + half;
        if y >= h {
            break;
        }
        // Row `half` of Aᵀ applied down the four rows of m: s[b] for each column b.
        for (b, s) in scratch.chunks_exact_mut(tw).enumerate() {
            let (m0, m1, m2, m3) = (p(b), p(4 + b), p(8 + b), p(12 + b));
            for (t, s) in s.iter_mut().enumerate() {
                *s = if half == 0 {
                    m0[t] + m1[t] + m2[t]
                } else {
                    m1[t] - m2[t] - m3[t]
                };
            }
        }
        let (s0, rest) = scratch.split_at(tw);
        let (s1, rest) = rest.split_at(tw);
        let (s2, s3) = rest.split_at(tw);
        let out = &mut plane[y * w..(y + 1) * w];
        let mut pairs = out.chunks_exact_mut(2);
        for (t, pair) in (&mut pairs).enumerate() {
            pair[0] = finish(s0[t] + s1[t] + s2[t] + bias);
            pair[1] = finish(s1[t] - s2[t] - s3[t] + bias);
        }
        if let [last] = pairs.into_remainder() {
            let t = tw - 1;
            *last = finish(s0[t] + s1[t] + s2[t] + bias);
        }
        epilogue.finish_row(out, y);
    }
}
