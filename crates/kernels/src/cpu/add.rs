//! `a + b` of two float32 tensors of one shape, on all cores, reading an operand that is a
//! transposed view in square tiles.
//!
//! burn-flex adds on one thread, and reads an operand that is not row-major one element at a
//! time through its strides. ConvNeXt's residual add is such a case: it adds its block's last
//! Linear output, stored `[N, H, W, C]` and viewed `[N, C, H, W]` by the permute after it, to
//! the block's input (ConvNeXt-T's 18 adds took 21 ms at batch 8). Here both operands are seen
//! as `[batches, rows, columns]`, each either row-major or transposed within a batch; a
//! transposed one is read a tile at a time ([`super::transpose`]).

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::matmul::filled;
use super::transpose::{Order, Shape3, TASK, collapse, over_bands, transposed_tiles};

/// `a + b` for float32 tensors of one shape on the flex device: in place when one row-major
/// operand's buffer is held by nothing else, else into a new buffer. Both back when either is
/// of another device or dtype, their shapes differ, or their strides are neither row-major nor
/// a transpose of two groups of axes (broadcasts, slices, both transposed): burn's add takes
/// those.
// `Err` hands the inputs back for the general path; it is no error.
#[allow(clippy::result_large_err)]
pub fn add<const D: usize>(
    a: Tensor<D>,
    b: Tensor<D>,
) -> std::result::Result<Tensor<D>, (Tensor<D>, Tensor<D>)> {
    let shape = a.dims();
    let flex = |x: &Tensor<D>| {
        (x.device() == Device::flex() && x.dtype() == DType::F32)
            .then(|| x.clone().try_into_primitive::<Flex>().ok())
            .flatten()
    };
    let (Some(mut fa), Some(mut fb)) = (flex(&a), flex(&b)) else {
        return Err((a, b));
    };
    if b.dims() != shape {
        return Err((a, b));
    }
    let Some((dims, mut order_a, mut order_b)) =
        collapse(&shape, fa.layout().strides(), fb.layout().strides())
    else {
        return Err((a, b));
    };
    // The tensors' buffers now held by `fa` and `fb` alone where nothing else holds them.
    drop((a, b));
    // Addition commutes (exactly, in floating point): put the row-major operand first.
    if order_a == Order::Columns {
        std::mem::swap(&mut fa, &mut fb);
        std::mem::swap(&mut order_a, &mut order_b);
    }
    if order_a == Order::Columns {
        return Err(back(fa, fb));
    }
    let len = dims.batches * dims.rows * dims.columns;
    // In place: into whichever row-major operand nothing else holds.
    if order_b == Order::Rows && !fa.is_unique() && fb.is_unique() {
        std::mem::swap(&mut fa, &mut fb);
    }
    let (start_a, start_b) = (fa.layout().start_offset(), fb.layout().start_offset());
    if let Some(values) = fa
        .try_storage_mut::<f32>()
        .and_then(|s| s.get_mut(start_a..start_a + len))
        && let Some(other) = fb.storage::<f32>().get(start_b..start_b + len)
    {
        add_in_place(values, other, order_b, dims);
        return Ok(Tensor::from_primitive::<Flex>(fa));
    }
    let (Some(va), Some(vb)) = (
        fa.storage::<f32>().get(start_a..start_a + len),
        fb.storage::<f32>().get(start_b..start_b + len),
    ) else {
        return Err(back(fa, fb));
    };
    let Ok(values) = filled(len, |out| {
        sum_into(out, va, vb, order_b, dims);
        Ok::<(), std::convert::Infallible>(())
    });
    Ok(Tensor::from_data(
        TensorData::new(values, shape),
        &Device::flex(),
    ))
}

/// The two operands back as tensors (their order may have been swapped; `add` commutes, and
/// the caller only adds them).
fn back<const D: usize>(a: FlexTensor, b: FlexTensor) -> (Tensor<D>, Tensor<D>) {
    (
        Tensor::from_primitive::<Flex>(a),
        Tensor::from_primitive::<Flex>(b),
    )
}

/// `out = a + b`, `a` row-major.
fn sum_into(out: &mut [MaybeUninit<f32>], a: &[f32], b: &[f32], order_b: Order, dims: Shape3) {
    match order_b {
        Order::Rows => {
            out.par_chunks_mut(TASK)
                .zip(a.par_chunks(TASK).zip(b.par_chunks(TASK)))
                .for_each(|(out, (a, b))| {
                    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                        o.write(x + y);
                    }
                });
        }
        Order::Columns => over_bands(out, dims, |n, first, band| {
            let plane = dims.rows * dims.columns;
            let a = &a[n * plane + first * dims.columns..][..band.len()];
            transposed_tiles(&b[n * plane..], dims, first, band.len(), |at, tile, len| {
                for (k, (o, t)) in band[at..at + len].iter_mut().zip(tile).enumerate() {
                    o.write(a[at + k] + t);
                }
            });
        }),
    }
}

/// `values += b`.
fn add_in_place(values: &mut [f32], b: &[f32], order_b: Order, dims: Shape3) {
    match order_b {
        Order::Rows => values
            .par_chunks_mut(TASK)
            .zip(b.par_chunks(TASK))
            .for_each(|(v, b)| v.iter_mut().zip(b).for_each(|(v, b)| *v += b)),
        Order::Columns => over_bands(values, dims, |n, first, band| {
            let plane = dims.rows * dims.columns;
            transposed_tiles(&b[n * plane..], dims, first, band.len(), |at, tile, len| {
                band[at..at + len]
                    .iter_mut()
                    .zip(tile)
                    .for_each(|(v, t)| *v += t);
            });
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor<const D: usize>(shape: [usize; D], seed: usize) -> Tensor<D> {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|i| ((i * 7 + seed * 13) % 101) as f32 * 0.25 - 12.0)
            .collect();
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    fn values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().expect("float32")
    }

    /// ConvNeXt's case, at shapes whose rows and columns are not whole tiles: the transposed
    /// operand (a permuted NHWC buffer) on either side, shared or not, equals burn's add.
    #[test]
    fn a_transposed_operand_adds_as_burn_adds_it() {
        for [n, c, h, w] in [[2, 37, 5, 7], [1, 96, 56, 56], [3, 16, 1, 1], [1, 5, 3, 3]] {
            let x = tensor([n, c, h, w], 1);
            let y = tensor([n, h, w, c], 2).permute([0, 3, 1, 2]);
            let expected = values(x.clone() + y.clone());
            // Shared operands: a new buffer.
            let held = (x.clone(), y.clone());
            let sum = add(x.clone(), y.clone()).map_err(|_| ()).expect("taken");
            assert_eq!(values(sum), expected, "{n}x{c}x{h}x{w}");
            drop(held);
            // The transposed one first, the row-major one held by nothing else: in place.
            let sum = add(y, x).map_err(|_| ()).expect("taken");
            assert_eq!(values(sum), expected, "{n}x{c}x{h}x{w} in place");
        }
    }

    /// Row-major operands, large enough to split over the pool, shared and not.
    #[test]
    fn row_major_operands_add_as_burn_adds_them() {
        let (x, y) = (tensor([8, 16, 64, 64], 3), tensor([8, 16, 64, 64], 4));
        let expected = values(x.clone() + y.clone());
        let held = y.clone();
        let sum = add(x, y).map_err(|_| ()).expect("taken");
        assert_eq!(values(sum), expected);
        drop(held);
    }

    /// A broadcast, a slice and two transposed operands are handed back for burn's add.
    #[test]
    fn other_layouts_are_handed_back() {
        let x = tensor([2, 4, 6], 1);
        let broadcast = tensor([1, 4, 6], 2).expand([2, 4, 6]);
        assert!(add(x.clone(), broadcast).is_err());
        let slice = tensor([2, 4, 8], 2).slice([0..2, 0..4, 0..6]);
        assert!(add(x.clone(), slice).is_err());
        let t = |s| tensor([2, 6, 4], s).permute([0, 2, 1]);
        assert!(add(t(1), t(2)).is_err());
    }
}
