//! Passes over the planes (`[H, W]` maps) of an NCHW buffer, spread over the thread pool in
//! tasks of whole planes: the shared loop of the per-channel kernels (BatchNorm,
//! squeeze-excitation).

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use super::matmul::filled;
use super::tensor::flex_f32;

/// Elements below which one task does the whole buffer: a hand-off costs more than the pass.
const SERIAL_BELOW: usize = 1 << 14;

/// Planes per task for planes of `plane` values: at least [`SERIAL_BELOW`] values a task.
fn planes_per_task(plane: usize) -> usize {
    SERIAL_BELOW.div_ceil(plane.max(1)).max(1)
}

/// A new buffer the size of `input` whose plane `p` (of `plane` values) is `f(p, input's
/// plane p, out)`; `f` writes every value of `out`.
pub(super) fn map_planes(
    input: &[f32],
    plane: usize,
    f: impl Fn(usize, &[f32], &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let plane = plane.max(1);
    let per_task = planes_per_task(plane);
    let task = |t: usize, out: &mut [MaybeUninit<f32>]| {
        for (k, out) in out.chunks_mut(plane).enumerate() {
            let p = t * per_task + k;
            f(p, &input[p * plane..][..out.len()], out);
        }
    };
    let Ok(values) = filled(input.len(), |out| {
        if out.len() <= SERIAL_BELOW {
            task(0, out);
        } else {
            out.par_chunks_mut(per_task * plane)
                .enumerate()
                .for_each(|(t, out)| task(t, out));
        }
        Ok::<(), std::convert::Infallible>(())
    });
    values
}

/// `x` (float32 on the flex device) with `f(p, values)` applied to each plane `p` of `plane`
/// values: in place when nothing else holds `x`'s buffer (its last reader took it), else on a
/// copy made plane by plane; `x` back for another device or dtype.
// `Err` hands the input back for the general path; it is no error, so its size is moot.
#[allow(clippy::result_large_err)]
pub(super) fn update_planes<const D: usize>(
    x: Tensor<D>,
    plane: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) -> std::result::Result<Tensor<D>, Tensor<D>> {
    if x.device() != Device::flex() || x.dtype() != DType::F32 {
        return Err(x);
    }
    let plane = plane.max(1);
    let Ok(mut tensor) = x.clone().try_into_primitive::<Flex>() else {
        return Err(x);
    };
    drop(x);
    if let Some((start, end)) = tensor.layout().contiguous_offsets()
        && let Some(storage) = tensor.try_storage_mut::<f32>()
    {
        let values = &mut storage[start..end];
        if values.len() <= SERIAL_BELOW {
            values
                .chunks_mut(plane)
                .enumerate()
                .for_each(|(p, v)| f(p, v));
        } else {
            values
                .par_chunks_mut(plane)
                .with_min_len(planes_per_task(plane))
                .enumerate()
                .for_each(|(p, v)| f(p, v));
        }
        return Ok(Tensor::from_primitive::<Flex>(tensor));
    }
    let x = Tensor::<D>::from_primitive::<Flex>(tensor);
    let shape: [usize; D] = x.dims();
    let data = flex_f32(x)?;
    let values = map_planes(data.as_slice(), plane, |p, x, out| {
        f(p, out.write_copy_of_slice(x));
    });
    Ok(Tensor::from_data(
        burn::tensor::TensorData::new(values, shape),
        &Device::flex(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer held elsewhere is copied, not changed; one held alone is updated in place.
    #[test]
    fn planes_update_in_place_only_when_nothing_else_holds_them() {
        let values: Vec<f32> = (0..2 * 3 * 40 * 40).map(|i| (i % 13) as f32).collect();
        let x = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(values.clone(), [2, 3, 40, 40]),
            &Device::flex(),
        );
        let double = |p: usize, v: &mut [f32]| v.iter_mut().for_each(|v| *v *= (p + 1) as f32);
        let expected: Vec<f32> = values
            .iter()
            .enumerate()
            .map(|(i, v)| v * (i / 1600 + 1) as f32)
            .collect();
        let kept = x.clone();
        let shared = update_planes(x, 40 * 40, double).expect("flex float32");
        assert_eq!(shared.to_data().try_to_vec::<f32>().unwrap(), expected);
        assert_eq!(kept.to_data().try_to_vec::<f32>().unwrap(), values);
        let alone = update_planes(kept, 40 * 40, double).expect("flex float32");
        assert_eq!(alone.into_data().try_to_vec::<f32>().unwrap(), expected);
    }

    #[test]
    fn every_plane_is_mapped() {
        for plane in [1, 7, 3000] {
            let input: Vec<f32> = (0..plane * 12).map(|i| (i % 97) as f32 * 0.5).collect();
            let out = map_planes(&input, plane, |p, x, out| {
                for (y, &x) in out.iter_mut().zip(x) {
                    y.write(x * p as f32);
                }
            });
            let expected: Vec<f32> = input
                .iter()
                .enumerate()
                .map(|(i, x)| x * (i / plane) as f32)
                .collect();
            assert_eq!(out, expected);
        }
    }
}
