//! Moving values between burn's flex tensors and the plain slices the CPU kernels work on.

use burn::prelude::*;
use burn::tensor::TensorData;

/// The values of `x` when it is a float32 tensor on the flex device (moved out without a copy
/// when nothing else holds its buffer), or `x` back.
#[allow(clippy::result_large_err)] // `Err` hands the input back; it is no error.
pub(super) fn flex_f32(x: Tensor<4>) -> std::result::Result<TensorData, Tensor<4>> {
    let device = x.device();
    if device != Device::flex() {
        return Err(x);
    }
    let data = x.into_data();
    if data.as_slice::<f32>().is_err() {
        return Err(Tensor::from_data(data, &device));
    }
    Ok(data)
}

/// A float32 tensor on the flex device holding `values` (moved, not copied).
pub(super) fn flex_tensor(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, shape), &Device::flex())
}
