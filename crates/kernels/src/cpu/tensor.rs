//! Moving values between burn's flex tensors and the plain slices the CPU kernels work on.

use std::ops::Range;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};

use super::transpose::contiguous_flex;

/// The float32 values of a flex tensor, read in place: the buffer is shared with whoever else
/// holds the tensor (a requested output, a later reader), not copied. burn's `into_data`
/// copies a buffer that is shared, which in an every-node extraction is every kernel's input.
pub(super) struct FlexValues {
    tensor: FlexTensor,
    range: Range<usize>,
}

impl FlexValues {
    /// The values, row-major.
    pub(super) fn as_slice(&self) -> &[f32] {
        &self.tensor.storage::<f32>()[self.range.clone()]
    }

    /// The tensor back (contiguous), its buffer still shared with whoever held it.
    pub(super) fn into_tensor<const D: usize>(self) -> Tensor<D> {
        Tensor::from_primitive::<Flex>(self.tensor)
    }
}

/// The values of `x` when it is a float32 tensor on the flex device (a strided view is made
/// contiguous first, [`contiguous_flex`]), or `x` back.
#[allow(clippy::result_large_err)] // `Err` hands the input back; it is no error.
pub(super) fn flex_f32<const D: usize>(x: Tensor<D>) -> std::result::Result<FlexValues, Tensor<D>> {
    let tensor = own_flex(x)?;
    let tensor = match tensor.layout().contiguous_offsets() {
        Some(_) => tensor,
        None => contiguous_flex(tensor),
    };
    match tensor.layout().contiguous_offsets() {
        Some((start, end)) => Ok(FlexValues {
            tensor,
            range: start..end,
        }),
        None => Err(Tensor::from_primitive::<Flex>(tensor)),
    }
}

/// `x`'s flex primitive, when it is a float32 tensor on the flex device (an autodiff tensor
/// is not), holding `x`'s buffer alone where nothing else holds it (so a kernel may write in
/// place); `x` back otherwise.
#[allow(clippy::result_large_err)] // `Err` hands the input back; it is no error.
pub(super) fn own_flex<const D: usize>(x: Tensor<D>) -> std::result::Result<FlexTensor, Tensor<D>> {
    if x.device() != Device::flex() || x.dtype() != DType::F32 {
        return Err(x);
    }
    // The conversion consumes what it fails on: it gets a handle, and `x` goes once it worked.
    let Ok(tensor) = x.clone().try_into_primitive::<Flex>() else {
        return Err(x);
    };
    drop(x);
    Ok(tensor)
}

/// A layer's weight and bias as float32 values, when both are float32 (`None` otherwise).
pub(super) fn weight_and_bias<const D: usize>(
    weight: &Tensor<D>,
    bias: Option<&Tensor<1>>,
) -> Option<(Vec<f32>, Option<Vec<f32>>)> {
    let weight = weight.to_data().try_into_vec::<f32>().ok()?;
    let bias = match bias {
        Some(b) => Some(b.to_data().try_into_vec::<f32>().ok()?),
        None => None,
    };
    Some((weight, bias))
}

/// A float32 tensor on the flex device holding `values` (moved, not copied).
pub(super) fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), &Device::flex())
}
