use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, ImageReader, Limits, RgbImage};

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
    if reader.format() == Some(ImageFormat::Jpeg) {
        check_jpeg_complete(&bytes).map_err(decode_error)?;
        #[cfg(feature = "libjpeg")]
        return decode_jpeg_like_pil(&bytes, width, height).map_err(decode_error);
    }
    let mut decode_limits = Limits::default();
    decode_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decode_limits);
    let image = reader.decode().map_err(|e| decode_error(e.to_string()))?;
    Ok(image.to_rgb8())
}

/// Rejects JPEGs cut short, which decoders otherwise pad with grey (PIL refuses them too):
/// the end-of-image marker must follow the last start-of-scan marker. Entropy-coded data
/// cannot contain `FF D9`, so the check is exact.
fn check_jpeg_complete(bytes: &[u8]) -> std::result::Result<(), String> {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let last_end = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    match (last_scan, last_end) {
        (Some(scan), Some(end)) if end > scan => Ok(()),
        _ => Err("truncated JPEG: the image data ends before its end marker".into()),
    }
}

/// libjpeg-turbo's decoder with PIL's settings (ISLOW IDCT, fancy upsampling): the same
/// pixels PIL gives torchvision.
#[cfg(feature = "libjpeg")]
fn decode_jpeg_like_pil(
    bytes: &[u8],
    width: u32,
    height: u32,
) -> std::result::Result<RgbImage, String> {
    let decompress = mozjpeg::Decompress::new_mem(bytes).map_err(|e| e.to_string())?;
    let mut started = decompress.rgb().map_err(|e| e.to_string())?;
    let pixels: Vec<[u8; 3]> = started.read_scanlines().map_err(|e| e.to_string())?;
    started.finish().map_err(|e| e.to_string())?;
    let raw: Vec<u8> = pixels.into_iter().flatten().collect();
    RgbImage::from_raw(width, height, raw)
        .ok_or_else(|| "decoded size differs from the header".into())
}
