//! Kernels for burn's flex (CPU) device, on float32 NCHW tensors.

mod add;
mod attention;
mod batch_norm;
mod cache;
mod conv;
mod depthwise;
mod direct;
mod elementwise;
mod layer_norm;
mod linear;
mod matmul;
mod mlp;
mod planes;
mod pool;
mod scale;
mod squeeze_excitation;
mod tensor;
mod threads;
mod transpose;
mod winograd;

pub use add::add;
pub use attention::PackedAttention;
pub use batch_norm::PackedBatchNorm;
pub use conv::PackedConv2d;
pub use depthwise::PackedDepthwise;
pub use elementwise::{Elementwise, map, softmax_rows};
pub use layer_norm::PackedLayerNorm;
pub use linear::PackedLinear;
pub use mlp::PackedMlp;
pub use pool::MaxPool2d;
pub use scale::scale;
pub use squeeze_excitation::PackedSqueezeExcitation;
pub use threads::{PIN_THREADS_ENV, PoolInit, init_pool, pinned_workers, pool_workers};
pub use transpose::contiguous;
