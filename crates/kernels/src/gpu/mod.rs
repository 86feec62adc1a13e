//! Kernels for CubeCL devices (wgpu), on NCHW tensors of any float type burn stores there
//! (accumulating in float32):
//!
//! - `tiled.rs`: the convolution as a tiled implicit GEMM in CubeCL, with the folded
//!   BatchNorm's bias, a ResNet block's residual add and the ReLU in its epilogue;
//! - `cooperative.rs`: the same on cooperative matrices (tensor cores), for float16 and
//!   bfloat16 where the device has them;
//! - `extension.rs`: the burn backend extension that picks between them and launches on
//!   burn's tensors, fused streams included;
//! - `tune.rs`: the cooperative kernel's block per layer, timed on the device (`autotune`);
//! - `conv.rs`: [`PackedConv2d`], weights packed once and shapes checked before each launch.

mod conv;
mod cooperative;
mod extension;
mod tiled;
#[cfg(feature = "autotune")]
mod tune;

pub use conv::{PackedConv2d, cooperative, cooperative_blocks, supports};
