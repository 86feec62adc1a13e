use std::path::PathBuf;

use thiserror::Error;

/// Everything the CLI reports; each variant knows its exit code.
#[derive(Debug, Error)]
pub enum CliError {
    /// Resolving nodes, checking the input or running the model failed.
    #[error(transparent)]
    Extract(#[from] featx_extract::ExtractError),
    /// The weights could not be downloaded or loaded.
    #[error(transparent)]
    Weights(#[from] featx_weights::WeightsError),
    /// The input file could not be read as a tensor.
    #[error("cannot use input {path}: {reason}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The request is well-formed but there is nothing to do.
    #[error("{0}")]
    Usage(String),
    /// The results could not be written.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl CliError {
    /// 2 for bad usage or bad input, 1 for failures after the work was done.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Output { .. } => 1,
            CliError::Extract(featx_extract::ExtractError::Internal { .. }) => 1,
            _ => 2,
        }
    }
}
