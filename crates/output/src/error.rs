use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a result file could not be written.
#[derive(Debug, Error)]
pub enum OutputError {
    /// The file or folder could not be created, written or renamed into place.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The values could not be encoded (a shape that does not match its values, ...).
    #[error("cannot encode {path} as {format}: {reason}")]
    Encode {
        /// The destination.
        path: PathBuf,
        /// `safetensors` or `npy`.
        format: &'static str,
        /// What the encoder said.
        reason: String,
    },
}

impl OutputError {
    /// The file or folder that was being written.
    pub fn path(&self) -> &Path {
        match self {
            OutputError::Write { path, .. } | OutputError::Encode { path, .. } => path,
        }
    }

    /// Why, without the path: for callers that report the path in their own words.
    pub fn reason(&self) -> String {
        match self {
            OutputError::Write { source, .. } => source.to_string(),
            OutputError::Encode { format, reason, .. } => format!("{format}: {reason}"),
        }
    }

    pub(crate) fn write(path: &Path, source: std::io::Error) -> Self {
        OutputError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `Result` with [`OutputError`].
pub type Result<T> = std::result::Result<T, OutputError>;
