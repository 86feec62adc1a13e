use std::io::Cursor;
use std::path::Path;

use image::{ImageReader, Limits, RgbImage};

use crate::{PreprocessError, Result};

/// Limits applied before decoding, against decompression bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted `width * height`. PIL warns above 89,478,485 pixels and refuses
    /// twice that; featx refuses above PIL's warning threshold.
    pub max_pixels: u64,
    /// Largest allocation the decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_pixels: 89_478_485,
            max_alloc: 1 << 30,
        }
    }
}

/// Decodes a JPEG, PNG, WebP or BMP file to 8-bit RGB with the default limits.
///
/// Grey images are replicated to three channels, alpha is dropped (as PIL's
/// `convert("RGB")` does) and 16-bit samples are scaled to 8 bits.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    load_rgb_with(path, DecodeLimits::default())
}

/// [`load_rgb`] with explicit limits.
pub fn load_rgb_with(path: &Path, limits: DecodeLimits) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|source| PreprocessError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let decode_error = |reason: String| PreprocessError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let reader = || {
        ImageReader::new(Cursor::new(&bytes[..]))
            .with_guessed_format()
            .map_err(|e| decode_error(e.to_string()))
    };
    let probe = reader()?;
    if probe.format().is_none() {
        return Err(decode_error("not a JPEG, PNG, WebP or BMP image".into()));
    }
    let (width, height) = probe
        .into_dimensions()
        .map_err(|e| decode_error(e.to_string()))?;
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(PreprocessError::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    let mut reader = reader()?;
    let mut decode_limits = Limits::default();
    decode_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decode_limits);
    let image = reader.decode().map_err(|e| decode_error(e.to_string()))?;
    Ok(image.to_rgb8())
}
