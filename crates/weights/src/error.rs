use std::path::PathBuf;

use thiserror::Error;

/// Why a weights file could not be loaded.
#[derive(Debug, Error)]
pub enum WeightsError {
    /// The file could not be opened or read.
    #[error("cannot read weights file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Weights could not be downloaded.
    #[error(
        "cannot download {url}: {reason}\nDownload it by hand and place it at {}, or run with --weights random (random initialisation).",
        .place_at.display()
    )]
    Download {
        /// What was fetched.
        url: String,
        /// What failed.
        reason: String,
        /// Where the file is expected.
        place_at: PathBuf,
    },
    /// A downloaded file is not the published one; nothing was kept.
    #[error(
        "{url}: SHA-256 {found} does not start with {expected_prefix}; the download was discarded"
    )]
    Checksum {
        /// What was fetched.
        url: String,
        /// The published hash prefix.
        expected_prefix: String,
        /// The downloaded file's hash.
        found: String,
    },
    /// The file extension names no supported format.
    #[error("{path}: unsupported weights format (expected .pth, .pt or .safetensors)")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a readable state dict (truncated, corrupt, or another kind of file).
    #[error("{path} is not a readable state dict: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the reader reported.
        reason: String,
    },
    /// The file parses but holds no state dict for this model (another kind of checkpoint,
    /// a bare tensor, a list...).
    #[error("{path} is not a state dict for this model: {reason}")]
    NotAStateDict {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Parameters the model needs are not in the file.
    #[error("{path} lacks {} parameter(s) the model needs: {}", .keys.len(), .keys.join(", "))]
    MissingKeys {
        /// The file.
        path: PathBuf,
        /// Missing keys, in torchvision naming.
        keys: Vec<String>,
    },
    /// The file holds tensors the model has no place for.
    #[error("{path} holds {} tensor(s) the model does not have: {}", .keys.len(), .keys.join(", "))]
    UnexpectedKeys {
        /// The file.
        path: PathBuf,
        /// Unexpected keys, as spelled in the file.
        keys: Vec<String>,
    },
    /// A tensor has the wrong shape or type for its parameter.
    #[error("{path}: tensor '{key}' does not fit the model: {reason}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The key, in torchvision naming.
        key: String,
        /// Expected and found shapes or dtypes.
        reason: String,
    },
}

/// `Result` with [`WeightsError`].
pub type Result<T> = std::result::Result<T, WeightsError>;
