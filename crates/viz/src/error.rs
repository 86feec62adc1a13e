use std::path::PathBuf;

use thiserror::Error;

/// Why a picture could not be made or saved.
#[derive(Debug, Error)]
pub enum VizError {
    /// The tensor cannot be shown this way (a vector as a heatmap, an empty tensor, ...).
    #[error("cannot draw a {kind} of a tensor of shape {shape:?}: {reason}")]
    Shape {
        /// The picture kind.
        kind: &'static str,
        /// The tensor's shape.
        shape: Vec<usize>,
        /// Why, and what to use instead.
        reason: String,
    },
    /// Drawing failed inside plotters.
    #[error("drawing failed: {0}")]
    Render(String),
    /// The PNG could not be written.
    #[error("cannot write {path}: {reason}")]
    Save {
        /// The destination.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl VizError {
    pub(crate) fn render(e: impl std::fmt::Display) -> Self {
        VizError::Render(e.to_string())
    }
}

/// `Result` with [`VizError`].
pub type Result<T> = std::result::Result<T, VizError>;
