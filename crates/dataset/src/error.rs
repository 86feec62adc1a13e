use std::path::PathBuf;

use thiserror::Error;

/// Everything a dataset run can fail with. A single unreadable image is not an error: it is
/// recorded in the index and the run goes on.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// An input (folder, glob pattern, list file) could not be listed.
    #[error("cannot list input {path}: {reason}")]
    Listing {
        /// The folder, pattern or list file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The inputs named no image at all.
    #[error("no images found in {inputs}")]
    NoImages {
        /// The inputs as given.
        inputs: String,
    },
    /// `--shard I/N` was malformed or out of range.
    #[error("invalid shard {spec:?}: {reason}")]
    Shard {
        /// The spec as given.
        spec: String,
        /// Why.
        reason: String,
    },
    /// `--shard auto` found no usable scheduler environment.
    #[error("--shard auto: {reason}; it looks for {looked_for}")]
    Scheduler {
        /// What was missing or inconsistent.
        reason: String,
        /// The variables it reads, by scheduler.
        looked_for: &'static str,
    },
    /// An option cannot be used as given.
    #[error("{0}")]
    Options(String),
    /// The output folder already holds parts written with other settings, so resuming would
    /// mix two runs.
    #[error(
        "{path} belongs to a different run ({reason}); resume with the same settings, or write to another folder"
    )]
    Conflict {
        /// The part manifest that disagrees.
        path: PathBuf,
        /// The first setting that differs.
        reason: String,
    },
    /// A folder given to `featx dataset` does not hold a dataset run.
    #[error("{dir} is not a featx dataset: {reason}")]
    NotADataset {
        /// The folder.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A dataset folder holds parts of runs that do not belong together (other settings, or
    /// another number of shards).
    #[error("{other} and {first} belong to different runs ({reason}): keep one run per folder")]
    Mixed {
        /// A part of the first run found.
        first: PathBuf,
        /// A part that does not belong to it.
        other: PathBuf,
        /// The first setting that differs.
        reason: String,
    },
    /// Not every listed image is in a committed part yet, so the dataset cannot be merged.
    #[error(
        "{dir} is incomplete: {missing} of {listed} listed images are in no committed part yet \
         (`featx dataset status` says how to finish it)"
    )]
    Incomplete {
        /// The dataset folder.
        dir: PathBuf,
        /// Images in no committed part.
        missing: usize,
        /// Images in the whole list.
        listed: usize,
    },
    /// A part, the index or the summary could not be written.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Resolving nodes or running the model failed.
    #[error(transparent)]
    Extract(#[from] featx_extract::ExtractError),
}

impl From<featx_output::OutputError> for DatasetError {
    fn from(e: featx_output::OutputError) -> Self {
        output_error(e.path(), e.reason())
    }
}

/// `Result` with [`DatasetError`].
pub type Result<T> = std::result::Result<T, DatasetError>;

/// An [`DatasetError::Output`] for `path`.
pub(crate) fn output_error(path: impl Into<PathBuf>, reason: impl ToString) -> DatasetError {
    DatasetError::Output {
        path: path.into(),
        reason: reason.to_string(),
    }
}
