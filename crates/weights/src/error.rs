use std::path::PathBuf;

use thiserror::Error;

use crate::KeyMismatch;
use crate::position::GridError;

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
        "cannot download {url}: {source}\nDownload it by hand and place it at {}, or use random weights.",
        .place_at.display()
    )]
    Download {
        /// What was fetched.
        url: String,
        /// What failed.
        #[source]
        source: DownloadError,
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
    #[error("{path} is not a readable state dict: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the reader reported.
        #[source]
        source: ReadError,
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
    /// The file holds no tensor the model has, at the top level or in any layout featx knows
    /// (a checkpoint without weights, another model's file, an unknown wrapper).
    #[error("{path} holds no state dict for this model: found {found}; expected {expected}")]
    UnknownLayout {
        /// The file.
        path: PathBuf,
        /// What the file holds: its top-level entries and first tensors with their shapes.
        found: String,
        /// What was looked for: the model's first keys, and the wrappers tried.
        expected: String,
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
    /// A model was asked for an input size its checkpoint's positional embedding cannot be
    /// interpolated to (a size that is no multiple of the patch size, an embedding that is no
    /// square grid).
    #[error("{path}: cannot interpolate '{key}' to a {image_size}x{image_size} input: {source}")]
    Interpolation {
        /// The file.
        path: PathBuf,
        /// The embedding's key, in torchvision naming.
        key: String,
        /// The input size asked for.
        image_size: usize,
        /// Why.
        #[source]
        source: GridError,
    },
    /// A tensor has the wrong shape or type for its parameter.
    #[error("{path}: tensor '{key}' does not fit the model: {reason}{}", also(.others))]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The key, in torchvision naming.
        key: String,
        /// Expected and found shapes or dtypes.
        reason: String,
        /// The other tensors that do not fit, each with its shapes: the whole fit report's
        /// mismatches, so one run shows everything to fix.
        others: Vec<KeyMismatch>,
    },
}

/// The other mismatches, for [`WeightsError::Mismatch`]'s message: the first few, and how
/// many there are.
fn also(others: &[KeyMismatch]) -> String {
    if others.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = others
        .iter()
        .take(8)
        .map(|m| format!("'{}': {}", m.key, m.reason))
        .collect();
    let more = others.len().saturating_sub(8);
    format!(
        "; also {}{}",
        shown.join("; "),
        if more > 0 {
            format!("; ... ({more} more)")
        } else {
            String::new()
        }
    )
}

/// Why a weights file could not be parsed.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The file has no bytes.
    #[error("the file is empty")]
    Empty,
    /// burn's PyTorch reader failed (truncated zip, damaged pickle, ...).
    #[error(transparent)]
    Pytorch(burn::store::PytorchStoreError),
    /// burn's SafeTensors reader failed (bad header, truncated data, ...).
    #[error(transparent)]
    Safetensors(burn::store::SafetensorsStoreError),
}

/// Why a download failed.
#[derive(Debug, Error)]
pub enum DownloadError {
    /// The cache folder could not be created.
    #[error("cannot create {path}: {source}")]
    CacheDir {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The request failed before an answer (no route, refused, timed out, TLS).
    #[error("request failed: {0}")]
    Request(#[source] Box<ureq::Error>),
    /// The server answered, but not with the file.
    #[error("server answered HTTP {0}")]
    Status(u16),
    /// The partial file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The partial file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The connection broke while reading the body.
    #[error("connection lost after {received} bytes: {source}")]
    Read {
        /// Bytes of the file received so far (with a resumed part).
        received: u64,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server closed the connection before the announced length.
    #[error("connection closed after {received} of {expected} bytes")]
    Truncated {
        /// Bytes of the file received.
        received: u64,
        /// Bytes announced.
        expected: u64,
    },
}

/// `Result` with [`WeightsError`].
pub type Result<T> = std::result::Result<T, WeightsError>;
