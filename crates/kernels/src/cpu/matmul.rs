//! Matrix products for the CPU kernels, on `rten-gemm` (the matrix-multiplication crate of
//! the rten inference engine).
//!
//! A layer's weights are constant, so they are packed into the microkernel's panel layout
//! once, when the layer's kernel is built, instead of on every call as the `gemm` crate does;
//! the image side of a convolution is packed straight from the NCHW input (a virtual im2col
//! matrix), so no `[C_in*kh*kw, H*W]` matrix is written and read back. Measured on a 2-core
//! AVX-512 Xeon against `gemm` 0.19 on the shapes of ResNet, MobileNetV3 and ViT layers, with
//! the bias in both: 0.34-0.94 of its time (MobileNet's 16-channel 1x1 layers 0.34, ResNet's
//! 3x3 stage-1 layer 0.90). The microkernel is picked at run time (AVX-512, AVX2+FMA, NEON, or
//! a generic one), and its blocking is sized for the smallest L1 and L2 caches of current
//! CPUs, so one build suits every x86 machine.

use std::fmt;
use std::mem::MaybeUninit;

use rayon::prelude::*;
use rten_gemm::{
    BiasVector, ColOffsets, GemmError, GemmExecutor, GemmInputA, GemmInputB, GemmUninitOptions,
    Im2Col, PackedAMatrix, PackedBMatrix, RowOffsets,
};
use rten_tensor::NdTensorView;

use featx_graph::Window2d;

thread_local! {
    /// The executor, which picks the microkernel for this CPU (every thread picks the same).
    /// One per thread: it is not `Send`, so it cannot be one static.
    static EXECUTOR: GemmExecutor<f32> = GemmExecutor::new();
}

/// Runs `f` with this thread's executor.
fn with_executor<R>(f: impl FnOnce(&GemmExecutor<f32>) -> R) -> R {
    EXECUTOR.with(f)
}

/// A buffer of `len` values that `fill` writes every one of (as a matrix product does):
/// no pass zeroes it first.
pub(super) fn filled<E>(
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<f32>]) -> Result<(), E>,
) -> Result<Vec<f32>, E> {
    let mut values = Vec::with_capacity(len);
    fill(&mut values.spare_capacity_mut()[..len])?;
    // SAFETY: `fill` succeeded, and every caller's `fill` writes all `len` values (a matrix
    // product writes each output element).
    unsafe { values.set_len(len) };
    Ok(values)
}

/// A filled `f32` buffer as the uninitialised memory a product writes into (it only writes).
pub(super) fn as_uninit(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and the products write only initialised
    // values, so `values` stays initialised.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// A constant `[M, K]` matrix (a layer's weights) packed once as the left operand.
#[derive(Clone)]
pub(super) struct PackedLhs {
    packed: PackedAMatrix<f32>,
    rows: usize,
    depth: usize,
}

impl fmt::Debug for PackedLhs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackedLhs [{}, {}]", self.rows, self.depth)
    }
}

/// What the left operand multiplies: a matrix read in place or an image's im2col.
pub(super) enum Rhs<'a> {
    /// `[K, N]`.
    Matrix(View<'a>),
    /// The im2col matrix of one image, read from the image as it is packed.
    Im2Col(&'a Im2Col<'a, f32>),
}

impl PackedLhs {
    /// Packs `values`, a row-major `[rows, depth]` matrix (`None` if it is not that long).
    pub(super) fn new(values: &[f32], [rows, depth]: [usize; 2]) -> Option<Self> {
        let view = NdTensorView::try_from_data([rows, depth], values).ok()?;
        Some(PackedLhs {
            packed: with_executor(|e| e.prepack_a(view)),
            rows,
            depth,
        })
    }

    /// `out = self @ rhs + bias` (`bias` one value per row), `out` row-major `[M, N]`.
    pub(super) fn multiply(
        &self,
        rhs: Rhs,
        bias: Option<&[f32]>,
        out: &mut [MaybeUninit<f32>],
    ) -> Result<(), GemmError> {
        let options = GemmUninitOptions {
            bias: bias.map(BiasVector::Column),
            ..Default::default()
        };
        let a = GemmInputA::Packed(&self.packed);
        match rhs {
            Rhs::Matrix(b) => {
                let b = GemmInputB::Unpacked(b.tensor()?);
                with_executor(|e| e.gemm_uninit(out, a, b, options))?;
            }
            Rhs::Im2Col(im2col) => {
                with_executor(|e| e.gemm_uninit(out, a, GemmInputB::Im2Col(im2col), options))?;
            }
        }
        Ok(())
    }
}

/// A constant `[K, N]` matrix (a Linear layer's weight) packed once as the right operand.
///
/// Only the packed form is kept: a single-row product reads it about 1.2-1.6x slower than an
/// unpacked `[N, K]` copy would be (a classifier head at batch 1, a tenth of a millisecond),
/// and keeping that copy as well cost ViT-B/16 a third of a gigabyte.
#[derive(Clone)]
pub(super) struct PackedRhs {
    packed: PackedBMatrix<f32>,
    depth: usize,
    cols: usize,
}

impl fmt::Debug for PackedRhs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackedRhs [{}, {}]", self.depth, self.cols)
    }
}

impl PackedRhs {
    /// Packs `values`, a row-major `[depth, cols]` matrix (`None` if it is not that long).
    pub(super) fn new(values: &[f32], [depth, cols]: [usize; 2]) -> Option<Self> {
        let view = NdTensorView::try_from_data([depth, cols], values).ok()?;
        Some(PackedRhs {
            packed: with_executor(|e| e.prepack_b(view)),
            depth,
            cols,
        })
    }

    /// `out = then(lhs @ self + bias)` (`bias` one value per column) for a row-major `[M, K]`
    /// `lhs`, `out` row-major `[M, N]`. `then` (an activation) runs on pieces of whole rows of
    /// the output, each right after its product while it is in cache, where a pass of its own
    /// over a large output would read it back from memory.
    pub(super) fn multiply(
        &self,
        lhs: &[f32],
        rows: usize,
        bias: Option<&[f32]>,
        out: &mut [MaybeUninit<f32>],
        then: Option<&Then>,
    ) -> Result<(), GemmError> {
        let lhs = lhs
            .get(..rows * self.depth)
            .ok_or(GemmError::KSizeMismatch)?;
        let out = out
            .get_mut(..rows * self.cols)
            .ok_or(GemmError::OutputSizeMismatch)?;
        let threads = rayon::current_num_threads();
        let Some(share) = row_share(rows, self.cols, threads) else {
            self.multiply_rows(lhs, bias, out)?;
            if let Some(then) = then {
                // SAFETY: the product wrote every value.
                let out = unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) };
                out.par_chunks_mut(then_values().max(self.cols))
                    .for_each(then);
            }
            return Ok(());
        };
        // With an activation, pieces of about `then_values()`, as many for each thread.
        let piece = match then {
            None => share,
            Some(_) => {
                let cap = (then_values() / self.cols).max(ROW_BLOCK);
                let pieces = rows.div_ceil(cap).next_multiple_of(threads);
                rows.div_ceil(pieces).next_multiple_of(ROW_TILE).min(share)
            }
        };
        out.par_chunks_mut(piece * self.cols)
            .zip(lhs.par_chunks(piece * self.depth))
            .try_for_each(|(out, lhs)| {
                self.multiply_rows(lhs, bias, out)?;
                if let Some(then) = then {
                    // SAFETY: the product wrote every value of this piece.
                    then(unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) });
                }
                Ok(())
            })
    }

    /// One product of all of `lhs`'s rows, split over the pool by rten-gemm's own blocks.
    fn multiply_rows(
        &self,
        lhs: &[f32],
        bias: Option<&[f32]>,
        out: &mut [MaybeUninit<f32>],
    ) -> Result<(), GemmError> {
        let rows = lhs.len() / self.depth;
        let a = NdTensorView::try_from_data([rows, self.depth], lhs)
            .map_err(|_| GemmError::KSizeMismatch)?;
        let options = GemmUninitOptions {
            bias: bias.map(BiasVector::Row),
            ..Default::default()
        };
        let b = GemmInputB::Packed(&self.packed);
        with_executor(|e| e.gemm_uninit(out, GemmInputA::Unpacked(a), b, options))?;
        Ok(())
    }
}

/// Rows per thread of a product with packed weights that is better run as one product per
/// thread on its share of the rows (each reading all the weights), or `None` to run it whole.
///
/// rten-gemm splits a product over the pool by blocks of 128 to 1024 columns, one parallel
/// pass per 256-deep slice, and by blocks of 64 rows inside each: ViT-B/16's `197 x 768 ->
/// 3072` layer at batch 1 is three column blocks of three row blocks for two threads, and
/// ConvNeXt-T's last stage (`49 x 768 -> 3072`) three blocks in all, one thread idle a third
/// of the time. Measured on a 2-core AVX-512 Xeon with the weights cycled through memory as a
/// model reads them, one product per thread took 0.81-0.94 of the whole product's time on
/// ViT-B/16's and ConvNeXt-T's Linear layers at batch 1 and 8 (ViT's `197 x 768 -> 3072`
/// 0.83, ConvNeXt's `49 x 768 -> 3072` 0.83, `784 x 768 -> 192` 0.81), but 1.11-1.16 where
/// few rows meet blocks that already share out evenly (`49 x 3072 -> 768`): there reading
/// the weights once matters more. Those are left whole.
fn row_share(rows: usize, cols: usize, threads: usize) -> Option<usize> {
    // Two tiles each at least: fewer rows than that are not worth a product of their own.
    if threads < 2 || rows < 2 * ROW_TILE * threads {
        return None;
    }
    // rten-gemm's column blocks for this pool (its `col_block_size`, less the rounding).
    let width = (cols / threads).clamp(128.min(cols), 1024).max(1);
    let uneven = cols.div_ceil(width) % threads != 0;
    (uneven || rows >= ROW_BLOCK * threads)
        .then(|| rows.div_ceil(threads).next_multiple_of(ROW_TILE))
}

/// What [`PackedRhs::multiply`] applies to its output piece by piece (an activation).
pub(super) type Then = dyn Fn(&mut [f32]) + Sync;

/// Values of one piece of a product's output that its activation runs on right after the
/// product: as many as fill a core's level-2 cache (read at run time), so the piece is still
/// there when the activation reads it. On a 2-core Xeon (2 MiB of L2 each), ConvNeXt-T's GELU
/// after its `56x56x96 -> 384` layers at batch 8 took 7.6 ms as a pass of its own over the 37
/// MiB output; in 1 MiB pieces the whole model ran 1.01-1.04x slower than in 2 MiB ones, as
/// more, smaller products (ViT-B/16 at batch 1: up to 1.08x). On a Zen 3 EPYC (512 KiB of L2
/// each) pieces of its L2 against 2 MiB: ConvNeXt-T within noise (0.94-1.10x, b1 and b8).
fn then_values() -> usize {
    super::cache::l2_bytes() / size_of::<f32>()
}

/// rten-gemm's row block: fewer rows per thread than this are one block of the whole product.
const ROW_BLOCK: usize = 64;

/// The height of rten-gemm's x86 microkernel tiles: a thread's share of rows is cut at a
/// multiple of it, so only the last share ends in a partial tile. (Other CPUs' kernels have
/// other heights; a share then ends mid-tile, which costs a partial tile, not a wrong value.)
const ROW_TILE: usize = 6;

/// The im2col matrix of one `[C, H, W]` image for `window`, as offsets into the image that
/// `rten-gemm` gathers from while packing (zero outside the image).
pub(super) fn im2col<'a>(
    image: &'a [f32],
    [c, h, w]: [usize; 3],
    window: &Window2d,
    [oh, ow]: [usize; 2],
) -> Option<Im2Col<'a, f32>> {
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [(ph, _), (pw, _)] = window.padding;
    let [dh, dw] = window.dilation;
    // Offsets are 32-bit in the packing code.
    let fits = |v: usize| i32::try_from(v).ok();
    fits(image.len())?;
    let (rows, cols) = (c * kh * kw, oh * ow);
    let (row_step, col_step) =
        with_executor(|e| (e.im2col_row_count_step(), e.im2col_col_count_step()));
    // Padding rows and columns (to the microkernel's steps) point nowhere valid.
    let mut row_offsets = RowOffsets {
        chan: Vec::with_capacity(rows.next_multiple_of(row_step)),
        y: Vec::with_capacity(rows.next_multiple_of(row_step)),
        x: Vec::with_capacity(rows.next_multiple_of(row_step)),
    };
    for r in 0..rows {
        let (ci, ki, kj) = (r / (kh * kw), (r / kw) % kh, r % kw);
        row_offsets.chan.push(fits(ci * h * w)?);
        row_offsets.y.push(fits(ki * dh * w)?);
        row_offsets.x.push(fits(kj * dw)?);
    }
    for _ in rows..rows.next_multiple_of(row_step) {
        row_offsets.chan.push(i32::MAX);
        row_offsets.y.push(i32::MAX);
        row_offsets.x.push(i32::MAX);
    }
    let mut col_offsets = ColOffsets {
        y: Vec::with_capacity(cols.next_multiple_of(col_step)),
        x: Vec::with_capacity(cols.next_multiple_of(col_step)),
    };
    let (w_i, ph_i, pw_i) = (fits(w)?, fits(ph)?, fits(pw)?);
    for oy in 0..oh {
        let y = (fits(oy * sh)? - ph_i).checked_mul(w_i)?;
        for ox in 0..ow {
            col_offsets.y.push(y);
            col_offsets.x.push(fits(ox * sw)? - pw_i);
        }
    }
    for _ in cols..cols.next_multiple_of(col_step) {
        col_offsets.y.push(i32::MAX);
        col_offsets.x.push(i32::MAX);
    }
    Some(Im2Col {
        image: NdTensorView::try_from_data([c, h, w], image.get(..c * h * w)?).ok()?,
        row_offsets,
        col_offsets,
        n_cols: cols,
        n_rows: rows,
        max_y_offset: fits(h.checked_sub(1)? * w)?,
        max_x_offset: fits(w.checked_sub(1)?)?,
    })
}

/// A matrix read in place: `rows x cols`, element `(i, j)` at `i * row_stride + j *
/// col_stride` (a transpose is the same values with the strides swapped).
#[derive(Debug, Clone, Copy)]
pub(super) struct View<'a> {
    pub values: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// `rows x cols` values, row `i` starting at `i * row_stride`.
    pub(super) fn rows(values: &'a [f32], [rows, cols]: [usize; 2], row_stride: usize) -> Self {
        View {
            values,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The same values, transposed.
    pub(super) fn transposed(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// The values as rten's view (a shape mismatch for what they are too short for).
    fn tensor(self) -> Result<NdTensorView<'a, f32, 2>, GemmError> {
        NdTensorView::from_slice_with_strides(
            [self.rows, self.cols],
            self.values,
            [self.row_stride, self.col_stride],
        )
        .map_err(|_| GemmError::KSizeMismatch)
    }
}

/// `out = alpha * a @ b` for matrices read in place, `out` row-major `[a.rows, b.cols]`.
pub(super) fn multiply_views(
    a: View,
    b: View,
    alpha: f32,
    out: &mut [MaybeUninit<f32>],
) -> Result<(), GemmError> {
    let (a, b) = (a.tensor()?, b.tensor()?);
    let options = GemmUninitOptions {
        alpha,
        ..Default::default()
    };
    with_executor(|e| {
        e.gemm_uninit(
            out,
            GemmInputA::Unpacked(a),
            GemmInputB::Unpacked(b),
            options,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_rows_where_the_products_blocks_share_out_unevenly() {
        // ViT-B/16's MLP at batch 1: many rows, a share per thread cut at the tile height.
        assert_eq!(row_share(197, 3072, 2), Some(102));
        assert_eq!(row_share(197, 768, 3), Some(66));
        // ConvNeXt-T's last stage: three column blocks for two threads.
        assert_eq!(row_share(49, 3072, 2), Some(30));
        // Two column blocks for two threads and few rows: whole.
        assert_eq!(row_share(49, 768, 2), None);
        // One thread, or too few rows to share.
        assert_eq!(row_share(197, 3072, 1), None);
        assert_eq!(row_share(20, 3072, 2), None);
    }
}
