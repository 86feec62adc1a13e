//! Device kernels that featx runs instead of burn's generic ops where they are measurably
//! faster. Each kernel is built once from a layer's parameters (packing its weights) and
//! declines — returns `None`, or hands its input back — where it does not apply, so the caller
//! keeps burn's op there. Choosing between them is the extractor's planner's job, not theirs.
//!
//! - [`cpu`]: the flex (CPU) device: im2col + gemm and Winograd F(2x2, 3x3) convolutions with
//!   a fused bias and ReLU, and max pooling without argmax indices.
//! - `gpu` (feature `wgpu`): CubeCL devices: a tiled implicit-GEMM convolution with the bias,
//!   residual add and ReLU fused into its epilogue.

pub mod cpu;
mod error;
#[cfg(feature = "wgpu")]
pub mod gpu;

pub use error::{KernelError, Result};
