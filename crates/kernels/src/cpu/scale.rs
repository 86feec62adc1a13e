//! A tensor times a vector along one of its axes (ConvNeXt's layer scale, `gamma * x` with
//! `gamma` of `[C, 1, 1]` and `x` of `[N, C, H, W]`) for the CPU (flex) device.
//!
//! burn-flex multiplies a broadcast operand on one thread and walks a strided operand value by
//! value, which is what ConvNeXt's layer scale reads when the block's Linear output (stored
//! NHWC) is requested and cannot take the scale into its weights: the NCHW view through the
//! permute. Here the product keeps the operand's memory order (the same strides, a permute's
//! view again), so one pass over every core reads and writes memory in order, each value's
//! factor found from the axis' stride.

use std::convert::Infallible;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

use super::matmul::filled;
use super::tensor::own_flex;

/// Values per task on the thread pool.
const TASK: usize = 1 << 15;

/// `x * factors` broadcast along `axis` (`factors[i]` multiplies every value whose index on
/// `axis` is `i`), for a float32 tensor on the flex device whose strides order its values
/// densely (row-major, or a permutation of it). In place where nothing else holds `x`'s
/// buffer. `x` back if it does not fit (another device or dtype, a slice, a broadcast view, a
/// factor count other than the axis' length).
// `Err` hands the input back for the general path; it is no error, so its size is moot.
#[allow(clippy::result_large_err)]
pub fn scale<const D: usize>(
    x: Tensor<D>,
    axis: usize,
    factors: &[f32],
) -> Result<Tensor<D>, Tensor<D>> {
    let dims = x.dims();
    if dims.get(axis) != Some(&factors.len()) {
        return Err(x);
    }
    let mut tensor = own_flex(x)?;
    let Some(order) = dense_order(&dims, tensor.layout().strides()) else {
        return Err(Tensor::from_primitive::<Flex>(tensor));
    };
    let len: usize = dims.iter().product();
    let start = tensor.layout().start_offset();
    // An axis of length 1 may have any stride (0 after a broadcast): one factor for all.
    let stride = match factors.len() {
        1 => len.max(1),
        _ => tensor.layout().strides()[axis].unsigned_abs(),
    };
    let run = Run {
        stride,
        factors,
        period: stride * factors.len(),
    };
    if let Some(values) = tensor
        .try_storage_mut::<f32>()
        .and_then(|s| s.get_mut(start..start + len))
    {
        values
            .par_chunks_mut(TASK)
            .enumerate()
            .for_each(|(task, piece)| run.apply(task * TASK, piece));
        return Ok(Tensor::from_primitive::<Flex>(tensor));
    }
    let Some(input) = tensor.storage::<f32>().get(start..start + len) else {
        return Err(Tensor::from_primitive::<Flex>(tensor));
    };
    let Ok(values) = filled(len, |out| {
        out.par_chunks_mut(TASK)
            .zip(input.par_chunks(TASK))
            .enumerate()
            .for_each(|(task, (out, input))| {
                for (o, &v) in out.iter_mut().zip(input) {
                    o.write(v);
                }
                // SAFETY: every value of this piece was written just above.
                let out = unsafe { &mut *(out as *mut [_] as *mut [f32]) };
                run.apply(task * TASK, out);
            });
        Ok::<(), Infallible>(())
    });
    // Stored in `x`'s memory order: the axes from the largest stride to the smallest, then
    // permuted back to `x`'s order (a view with `x`'s strides).
    let stored: [usize; D] = std::array::from_fn(|i| dims[order[i]]);
    let mut back = [0; D];
    for (position, &axis) in order.iter().enumerate() {
        back[axis] = position;
    }
    let out = Tensor::<D>::from_data(TensorData::new(values, stored), &Device::flex());
    Ok(out.permute(back))
}

/// Which stored value each factor multiplies: runs of `stride` values share one factor, and
/// the factors repeat every `period` values.
struct Run<'a> {
    stride: usize,
    factors: &'a [f32],
    period: usize,
}

impl Run<'_> {
    /// Multiplies `piece`, the stored values from position `first` on.
    fn apply(&self, first: usize, piece: &mut [f32]) {
        if self.stride == 1 {
            // The factors' axis is the innermost: whole periods multiply elementwise.
            let mut at = first % self.period;
            let mut rest = piece;
            while !rest.is_empty() {
                let n = (self.period - at).min(rest.len());
                let (head, tail) = rest.split_at_mut(n);
                for (v, f) in head.iter_mut().zip(&self.factors[at..at + n]) {
                    *v *= f;
                }
                rest = tail;
                at = 0;
            }
            return;
        }
        let mut position = first;
        let mut rest = piece;
        while !rest.is_empty() {
            let in_run = position % self.stride;
            let n = (self.stride - in_run).min(rest.len());
            let factor = self.factors[(position / self.stride) % self.factors.len()];
            let (head, tail) = rest.split_at_mut(n);
            head.iter_mut().for_each(|v| *v *= factor);
            rest = tail;
            position += n;
        }
    }
}

/// The axes of `dims` from the largest stride to the smallest, where the strides lay the
/// values out densely (each stride the product of the lengths inside it); `None` for a slice,
/// a broadcast, a reversed or an overlapping view.
fn dense_order<const D: usize>(dims: &[usize; D], strides: &[isize]) -> Option<[usize; D]> {
    if strides.len() != D || strides.iter().any(|&s| s < 0) {
        return None;
    }
    let mut order: [usize; D] = std::array::from_fn(|i| i);
    // Ties (axes of length 1) keep their order, so a row-major tensor is its own order.
    order.sort_by(|&a, &b| strides[b].cmp(&strides[a]));
    let mut expected = 1usize;
    for &axis in order.iter().rev() {
        if dims[axis] != 1 && strides[axis].unsigned_abs() != expected {
            return None;
        }
        expected *= dims[axis];
    }
    Some(order)
}

#[cfg(test)]
// Closures hand the kernel's `Result` back, whose `Err` is the input tensor.
#[allow(clippy::result_large_err)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;

    fn values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
        x.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn equals_burns_broadcast_product_on_row_major_and_permuted_operands() {
        let device = Device::flex();
        // ConvNeXt-T's first stage at batch 2 (the NHWC Linear output seen NCHW), a ragged
        // shape over several tasks, and a row-major map scaled along its channels and rows.
        let cases: [([usize; 4], bool, usize); 4] = [
            ([2, 96, 56, 56], true, 1),
            ([3, 37, 29, 31], true, 1),
            ([2, 24, 40, 40], false, 1),
            ([2, 24, 40, 40], false, 2),
        ];
        for (dims, permuted, axis) in cases {
            let x = if permuted {
                let [n, c, h, w] = dims;
                Tensor::<4>::random([n, h, w, c], Distribution::Default, &device)
                    .permute([0, 3, 1, 2])
            } else {
                Tensor::<4>::random(dims, Distribution::Default, &device)
            };
            let factors: Vec<f32> = (0..dims[axis]).map(|i| 0.5 + i as f32 * 0.01).collect();
            let mut shape = [1; 4];
            shape[axis] = dims[axis];
            let f = Tensor::<4>::from_data(TensorData::new(factors.clone(), shape), &device);
            let want = values(x.clone() * f);
            // Held twice (out of place), then held once (in place).
            let held = x.clone();
            let got = scale(x, axis, &factors).expect("fits");
            assert_eq!(got.dims(), dims);
            assert_eq!(
                values(got),
                want,
                "{dims:?} permuted {permuted} axis {axis}"
            );
            let got = scale(held, axis, &factors).expect("fits");
            assert_eq!(values(got), want, "{dims:?} in place");
        }
    }

    #[test]
    fn hands_back_what_it_cannot_take() {
        let device = Device::flex();
        let x = Tensor::<3>::random([4, 6, 8], Distribution::Default, &device);
        // A factor count that is not the axis' length.
        assert!(scale(x.clone(), 1, &[1.0; 5]).is_err());
        assert!(scale(x.clone(), 3, &[1.0; 6]).is_err());
        // A slice: its strides skip values.
        assert!(scale(x.clone().narrow(2, 0, 4), 1, &[1.0; 6]).is_err());
        assert!(scale(x, 1, &[1.0; 6]).is_ok());
        // An axis of length 1: one factor multiplies every value.
        let y = Tensor::<3>::random([4, 1, 8], Distribution::Default, &device);
        let want = values(y.clone() * 2.0);
        assert_eq!(values(scale(y, 1, &[2.0]).expect("fits")), want);
    }
}
