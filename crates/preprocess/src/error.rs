use std::path::PathBuf;

use thiserror::Error;

/// Why an image could not be turned into a model input.
#[derive(Debug, Error)]
pub enum PreprocessError {
    /// The file could not be read.
    #[error("cannot read image {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a decodable image (unknown format, truncated, corrupt).
    #[error("cannot decode image {path}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// The image is larger than the decoding limits allow (decompression-bomb guard).
    #[error("image {path} is {width}x{height}, more than the {max_pixels}-pixel limit")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit in pixels.
        max_pixels: u64,
    },
    /// The image is smaller than the crop after resizing.
    #[error("image of {width}x{height} is smaller than the {crop}x{crop} crop")]
    TooSmall {
        /// Width after resizing.
        width: u32,
        /// Height after resizing.
        height: u32,
        /// Crop size.
        crop: u32,
    },
    /// Images of one batch have different sizes after preprocessing.
    #[error("cannot batch images of different sizes: {first:?} and {other:?}")]
    MixedSizes {
        /// Size `[H, W]` of the first image.
        first: [usize; 2],
        /// A different size in the batch.
        other: [usize; 2],
    },
}

/// `Result` with [`PreprocessError`].
pub type Result<T> = std::result::Result<T, PreprocessError>;
