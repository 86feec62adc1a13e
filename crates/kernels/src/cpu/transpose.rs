//! Reading a tensor that is a transposed view (a permute's) without walking its strides one
//! value at a time: its axes collapsed to `[batches, rows, columns]`, and a transposed batch
//! read in square tiles, each transposed in registers, so every cache line brought in is used
//! whole. The shared part of the residual add ([`super::add`]) and of [`contiguous`], which
//! featx's kernels use in place of burn-flex's single-threaded copy of such a view (ConvNeXt's
//! LayerNorm and Linear layers read its depthwise convolution's NCHW output as NHWC).

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use super::matmul::filled;

/// Side of the square tiles a transposed operand is read in: 16 float32 values are one
/// 64-byte cache line on either side of the transpose.
pub(super) const TILE: usize = 16;

/// Values per task on the thread pool: a task outweighs its hand-off, and a batch-1 feature
/// map still spreads over every core.
pub(super) const TASK: usize = 1 << 15;

/// How an operand's values lie against the output's `[batches, rows, columns]` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// Row-major, as the output.
    Rows,
    /// Each batch transposed: `[batches, columns, rows]` row-major.
    Columns,
}

/// A tensor's shape with its axes collapsed to `[batches, rows, columns]` ([`collapse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape3 {
    pub(super) batches: usize,
    pub(super) rows: usize,
    pub(super) columns: usize,
}

/// `x` with its values in row-major order: a transposed view copied a tile at a time over the
/// pool, any other strided view by burn-flex's copy, a row-major one as it is.
pub fn contiguous<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.device() != Device::flex() || x.dtype() != DType::F32 {
        return x;
    }
    match x.clone().try_into_primitive::<Flex>() {
        Ok(tensor) if !tensor.is_contiguous() => {
            drop(x);
            Tensor::from_primitive::<Flex>(contiguous_flex(tensor))
        }
        _ => x,
    }
}

/// A float32 flex tensor whose axes collapse to `[batches, rows, columns]` with each batch
/// stored transposed: read a band of whole rows at a time.
pub(super) struct TransposedRows {
    tensor: FlexTensor,
    dims: Shape3,
}

impl TransposedRows {
    /// `x` when it is such a view (a float32 tensor on the flex device), else `None`.
    pub(super) fn of<const D: usize>(x: &Tensor<D>) -> Option<Self> {
        if x.device() != Device::flex() {
            return None;
        }
        Self::of_flex(x.clone().try_into_primitive::<Flex>().ok()?).ok()
    }

    /// `tensor` when it is such a view, else `tensor` back.
    // `Err` hands the tensor back; it is no error.
    #[allow(clippy::result_large_err)]
    fn of_flex(tensor: FlexTensor) -> Result<Self, FlexTensor> {
        let layout = tensor.layout();
        let shape: Vec<usize> = layout.shape().iter().copied().collect();
        let Some((dims, Order::Columns, _)) = collapse(&shape, layout.strides(), layout.strides())
        else {
            return Err(tensor);
        };
        let end = layout.start_offset() + dims.batches * dims.rows * dims.columns;
        match tensor.dtype() == DType::F32 && end <= tensor.storage::<f32>().len() {
            true => Ok(Self { tensor, dims }),
            false => Err(tensor),
        }
    }

    /// Its values in the view's order.
    fn stored(&self) -> &[f32] {
        let start = self.tensor.layout().start_offset();
        let len = self.dims.batches * self.dims.rows * self.dims.columns;
        &self.tensor.storage::<f32>()[start..start + len]
    }

    /// Its shape as `[batches, rows, columns]`.
    pub(super) fn dims(&self) -> Shape3 {
        self.dims
    }

    /// A new row-major buffer of `f(rows, out)` over bands of whole rows, spread over the
    /// pool: `rows` are the band's values in row-major order, gathered into a buffer that
    /// stays in cache, and `f` writes every value of `out`, the band's place in the result.
    pub(super) fn map_bands(&self, f: impl Fn(&[f32], &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
        thread_local! {
            static BAND: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let dims = self.dims;
        let plane = dims.rows * dims.columns;
        let stored = self.stored();
        let Ok(values) = filled(dims.batches * plane, |out| {
            over_bands(out, dims, |n, first, out| {
                BAND.with_borrow_mut(|band| {
                    band.resize(out.len(), 0.0);
                    transposed_tiles(
                        &stored[n * plane..],
                        dims,
                        first,
                        out.len(),
                        |at, tile, len| {
                            band[at..at + len].copy_from_slice(&tile[..len]);
                        },
                    );
                    f(band, out);
                });
            });
            Ok::<(), std::convert::Infallible>(())
        });
        values
    }
}

/// [`contiguous`] on a float32 flex primitive.
pub(super) fn contiguous_flex(tensor: FlexTensor) -> FlexTensor {
    let view = match TransposedRows::of_flex(tensor) {
        Ok(view) => view,
        Err(tensor) => return tensor.to_contiguous(),
    };
    let (dims, stored) = (view.dims, view.stored());
    let plane = dims.rows * dims.columns;
    let Ok(values) = filled(dims.batches * plane, |out| {
        over_bands(out, dims, |n, first, band| {
            let at_batch = &stored[n * plane..];
            transposed_tiles(at_batch, dims, first, band.len(), |at, tile, len| {
                for (o, &t) in band[at..at + len].iter_mut().zip(tile) {
                    o.write(t);
                }
            });
        });
        Ok::<(), std::convert::Infallible>(())
    });
    let shape: Vec<usize> = view.tensor.layout().shape().iter().copied().collect();
    FlexTensor::from_data(burn::tensor::TensorData::new(values, shape))
}

/// `shape` as `[batches, rows, columns]` and the order of operands with strides `a` and `b`
/// in it: axes of length 1 dropped, neighbouring axes merged where both operands step over
/// them as one, then at most three groups left, each operand row-major or transposed within
/// a batch. `None` otherwise.
pub(super) fn collapse(
    shape: &[usize],
    a: &[isize],
    b: &[isize],
) -> Option<(Shape3, Order, Order)> {
    // Groups from the innermost out: (length, stride in a, stride in b).
    let mut groups: Vec<(usize, isize, isize)> = Vec::new();
    for ((&n, &sa), &sb) in shape.iter().zip(a).zip(b).rev() {
        if n == 1 {
            continue;
        }
        match groups.last_mut() {
            Some((len, ga, gb)) if sa == *ga * *len as isize && sb == *gb * *len as isize => {
                *len *= n;
            }
            _ => groups.push((n, sa, sb)),
        }
    }
    if groups.len() > 3 {
        return None;
    }
    groups.resize(3, (1, 0, 0));
    let [(columns, a2, b2), (rows, a1, b1), (batches, a0, b0)] = groups[..] else {
        return None;
    };
    let dims = Shape3 {
        batches,
        rows,
        columns,
    };
    let order = |s0: isize, s1: isize, s2: isize| {
        let plane = (rows * columns) as isize;
        let batch_ok = batches == 1 || s0 == plane;
        // A group of length 1 (padding) steps nowhere: its stride is moot.
        let rows_ok = (columns == 1 || s2 == 1) && (rows == 1 || s1 == columns as isize);
        let columns_ok = (rows == 1 || s1 == 1) && (columns == 1 || s2 == rows as isize);
        match (batch_ok, rows_ok, columns_ok) {
            (true, true, _) => Some(Order::Rows),
            (true, false, true) => Some(Order::Columns),
            _ => None,
        }
    };
    Some((dims, order(a0, a1, a2)?, order(b0, b1, b2)?))
}

/// Rows of the output per task: whole tiles, at least [`TASK`] values.
pub(super) fn rows_per_task(dims: Shape3) -> usize {
    TASK.div_ceil(dims.columns.max(1)).next_multiple_of(TILE)
}

/// `f(batch, first row, band)` over bands of whole rows of `out` (`[batches, rows, columns]`),
/// one band per task, never across batches.
pub(super) fn over_bands<T: Send>(
    out: &mut [T],
    dims: Shape3,
    f: impl Fn(usize, usize, &mut [T]) + Sync,
) {
    let plane = dims.rows * dims.columns;
    let band = rows_per_task(dims) * dims.columns;
    if plane == 0 {
        return;
    }
    out.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(n, plane)| {
            plane
                .par_chunks_mut(band)
                .enumerate()
                .for_each(|(k, rows)| f(n, k * band / dims.columns, rows));
        });
}

/// Reads the rows `first..` (`len / columns` of them) of a batch stored transposed
/// (`[columns, rows]`) a tile at a time, and hands each output row's piece to `f(offset in
/// the band, values, length)` in row-major order of the band.
pub(super) fn transposed_tiles(
    stored: &[f32],
    dims: Shape3,
    first: usize,
    len: usize,
    mut f: impl FnMut(usize, &[f32], usize),
) {
    let columns = dims.columns;
    let rows = len / columns.max(1);
    let mut tile = [[0f32; TILE]; TILE];
    for r0 in (0..rows).step_by(TILE) {
        let tr = TILE.min(rows - r0);
        for c0 in (0..columns).step_by(TILE) {
            let tc = TILE.min(columns - c0);
            if tr == TILE && tc == TILE {
                // A whole tile: copied in whole cache lines, then transposed in registers.
                let mut src = [[0f32; TILE]; TILE];
                for (c, s) in src.iter_mut().enumerate() {
                    s.copy_from_slice(&stored[(c0 + c) * dims.rows + first + r0..][..TILE]);
                }
                transpose16(&src, &mut tile);
            } else {
                for c in 0..tc {
                    let from = &stored[(c0 + c) * dims.rows + first + r0..][..tr];
                    for (r, &v) in from.iter().enumerate() {
                        tile[r][c] = v;
                    }
                }
            }
            for (r, row) in tile.iter().enumerate().take(tr) {
                f((r0 + r) * columns + c0, &row[..tc], tc);
            }
        }
    }
}

/// `to[r][c] = from[c][r]`, in 4x4 blocks of SSE shuffles (every x86-64 has SSE2).
#[cfg(target_arch = "x86_64")]
fn transpose16(from: &[[f32; TILE]; TILE], to: &mut [[f32; TILE]; TILE]) {
    use std::arch::x86_64::*;
    for bc in (0..TILE).step_by(4) {
        for br in (0..TILE).step_by(4) {
            // SAFETY: SSE2 is part of x86-64; every load and store is of 4 values inside a
            // 16-value row.
            unsafe {
                let v0 = _mm_loadu_ps(from[bc].as_ptr().add(br));
                let v1 = _mm_loadu_ps(from[bc + 1].as_ptr().add(br));
                let v2 = _mm_loadu_ps(from[bc + 2].as_ptr().add(br));
                let v3 = _mm_loadu_ps(from[bc + 3].as_ptr().add(br));
                let t0 = _mm_unpacklo_ps(v0, v1);
                let t1 = _mm_unpacklo_ps(v2, v3);
                let t2 = _mm_unpackhi_ps(v0, v1);
                let t3 = _mm_unpackhi_ps(v2, v3);
                _mm_storeu_ps(to[br].as_mut_ptr().add(bc), _mm_movelh_ps(t0, t1));
                _mm_storeu_ps(to[br + 1].as_mut_ptr().add(bc), _mm_movehl_ps(t1, t0));
                _mm_storeu_ps(to[br + 2].as_mut_ptr().add(bc), _mm_movelh_ps(t2, t3));
                _mm_storeu_ps(to[br + 3].as_mut_ptr().add(bc), _mm_movehl_ps(t3, t2));
            }
        }
    }
}

/// `to[r][c] = from[c][r]`.
#[cfg(not(target_arch = "x86_64"))]
fn transpose16(from: &[[f32; TILE]; TILE], to: &mut [[f32; TILE]; TILE]) {
    for (r, t) in to.iter_mut().enumerate() {
        for (c, t) in t.iter_mut().enumerate() {
            *t = from[c][r];
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;

    #[test]
    fn axes_collapse_to_batches_rows_and_columns() {
        // NCHW against a permuted NHWC buffer: [N, C, H*W], the second transposed.
        let dims = Shape3 {
            batches: 2,
            rows: 3,
            columns: 20,
        };
        assert_eq!(
            collapse(&[2, 3, 4, 5], &[60, 20, 5, 1], &[60, 1, 15, 3]),
            Some((dims, Order::Rows, Order::Columns))
        );
        // Both row-major: one group.
        let flat = Shape3 {
            batches: 1,
            rows: 1,
            columns: 120,
        };
        assert_eq!(
            collapse(&[2, 3, 4, 5], &[60, 20, 5, 1], &[60, 20, 5, 1]),
            Some((flat, Order::Rows, Order::Rows))
        );
        // A broadcast axis (stride 0) fits neither order.
        assert_eq!(collapse(&[2, 3], &[3, 1], &[0, 1]), None);
    }

    /// Permuted views (whole tiles and ragged edges) copied to row-major order equal burn's
    /// copy; a row-major tensor is returned as it is.
    #[test]
    fn a_transposed_view_is_copied_as_burn_copies_it() {
        for [n, h, w, c] in [
            [2, 5, 7, 37],
            [1, 56, 56, 96],
            [3, 1, 1, 16],
            [1, 16, 16, 32],
        ] {
            let len = n * h * w * c;
            let values: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let x = Tensor::<4>::from_data(TensorData::new(values, [n, h, w, c]), &Device::flex());
            let view = x.permute([0, 3, 1, 2]);
            let expected = view.clone().into_data().convert::<f32>();
            let copied = contiguous(view);
            assert_eq!(copied.dims(), [n, c, h, w]);
            let copied = copied.into_data();
            assert_eq!(
                copied.as_slice::<f32>().expect("f32"),
                expected.as_slice::<f32>().expect("f32"),
                "{n}x{h}x{w}x{c}"
            );
        }
    }
}
