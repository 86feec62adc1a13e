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
    /// A dataset run could not start or finish.
    #[error(transparent)]
    Dataset(#[from] featx_dataset::DatasetError),
    /// A dataset run finished, but some images could not be used.
    #[error("{failed} of {images} images could not be used; their errors are in {index}")]
    Incomplete {
        /// Images that failed.
        failed: usize,
        /// Images in the run.
        images: usize,
        /// The index that lists them.
        index: PathBuf,
    },
    /// The results could not be written.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl From<featx_output::OutputError> for CliError {
    fn from(e: featx_output::OutputError) -> Self {
        CliError::Output {
            path: e.path().to_path_buf(),
            reason: e.reason(),
        }
    }
}

impl CliError {
    /// 2 for bad usage or bad input, 1 for failures after the work was done, 3 for a dataset
    /// run that finished with some images failed, or a dataset not complete yet.
    pub fn exit_code(&self) -> u8 {
        use featx_dataset::DatasetError;
        match self {
            CliError::Incomplete { .. } | CliError::Dataset(DatasetError::Incomplete { .. }) => 3,
            CliError::Output { .. } => 1,
            CliError::Dataset(DatasetError::Output { .. }) => 1,
            CliError::Extract(featx_extract::ExtractError::Internal { .. })
            | CliError::Dataset(DatasetError::Extract(featx_extract::ExtractError::Internal {
                ..
            })) => 1,
            _ => 2,
        }
    }
}
