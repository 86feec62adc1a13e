//! Kernels for burn's flex (CPU) device, on float32 NCHW tensors.

mod conv;
mod depthwise;
mod elementwise;
mod linear;
mod pointwise;
mod pool;
mod tensor;
mod winograd;

pub use conv::PackedConv2d;
pub use depthwise::PackedDepthwise;
pub use elementwise::{Elementwise, softmax_rows};
pub use linear::PackedLinear;
pub use pool::MaxPool2d;
