//! Kernels for burn's flex (CPU) device, on float32 NCHW tensors.

mod conv;
mod pool;
mod tensor;
mod winograd;

pub use conv::PackedConv2d;
pub use pool::MaxPool2d;
