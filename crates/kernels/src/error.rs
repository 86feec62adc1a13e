//! Why a kernel refused its operands.

/// A kernel's operands do not fit the layer it was built for. Planning checks shapes first,
/// so in featx this means a bug; a direct caller gets the offending shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// The input is not `[N, C, H, W]` with the layer's `C`, on the layer's device.
    #[error(
        "the convolution takes [N, {expected_channels}, H, W] on its weights' device, got {shape:?}"
    )]
    Input {
        /// The layer's input channels.
        expected_channels: usize,
        /// The input's shape.
        shape: Vec<usize>,
    },
    /// The window does not fit the input.
    #[error("the convolution's window does not fit an input of shape {shape:?}: {reason}")]
    Window {
        /// The input's shape.
        shape: Vec<usize>,
        /// What does not fit.
        reason: String,
    },
    /// An operand is not in the layer's float type (the kernel reads all in one type).
    #[error("the convolution's weights are {expected}, an operand is {got}")]
    DType {
        /// The weights' type.
        expected: String,
        /// The operand's type.
        got: String,
    },
    /// The residual is not shaped as the output (or not on its device).
    #[error("the residual must have the output's shape {expected:?}, got {shape:?}")]
    Residual {
        /// The output's shape.
        expected: Vec<usize>,
        /// The residual's shape.
        shape: Vec<usize>,
    },
}

/// A kernel's result.
pub type Result<T> = std::result::Result<T, KernelError>;
