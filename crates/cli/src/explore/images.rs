//! The images a session shows: the ones given on the command line and the ones uploaded, each
//! under an opaque id. A request names an id, never a path; uploads are checked and written
//! to a private temporary folder that is removed on exit.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::RwLock;

use image::{ImageFormat, ImageReader, Limits};
use serde::Serialize;

/// One image of the session.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ImageItem {
    /// The opaque id requests use.
    pub id: String,
    /// What the page shows: the file name.
    pub name: String,
    /// Where it is read from (never sent to a client).
    #[serde(skip)]
    pub path: PathBuf,
}

/// Why an upload is refused.
#[derive(Debug)]
pub(crate) enum UploadError {
    /// Over the size cap, or too many uploads: 413.
    TooLarge(String),
    /// Not an image, truncated, or over the pixel cap: 400.
    Invalid(String),
}

/// The session's images.
pub(crate) struct Images {
    items: RwLock<Vec<ImageItem>>,
    /// The upload folder, removed by [`Images::close`].
    folder: std::sync::Mutex<Option<tempfile::TempDir>>,
    folder_path: PathBuf,
    /// Largest upload, in bytes.
    pub max_bytes: usize,
    max_pixels: u64,
    max_uploads: usize,
}

/// Formats featx decodes (the `image` crate is built with these only).
const FORMATS: [(ImageFormat, &str); 4] = [
    (ImageFormat::Jpeg, "jpg"),
    (ImageFormat::Png, "png"),
    (ImageFormat::WebP, "webp"),
    (ImageFormat::Bmp, "bmp"),
];

impl Images {
    /// The command line's images (`i0`, `i1`, ...) and an empty upload folder.
    pub(crate) fn new(
        paths: Vec<PathBuf>,
        max_bytes: usize,
        max_pixels: u64,
    ) -> std::io::Result<Self> {
        let items = paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| ImageItem {
                id: format!("i{i}"),
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("image {i}")),
                path,
            })
            .collect();
        let folder = tempfile::Builder::new()
            .prefix("featx-explore-")
            .tempdir()?;
        Ok(Images {
            items: RwLock::new(items),
            folder_path: folder.path().to_path_buf(),
            folder: std::sync::Mutex::new(Some(folder)),
            max_bytes,
            max_pixels,
            max_uploads: 256,
        })
    }

    /// Removes the upload folder and everything in it; later uploads fail.
    pub(crate) fn close(&self) {
        if let Ok(mut folder) = self.folder.lock() {
            folder.take();
        }
    }

    /// Every image, in the order they came.
    pub(crate) fn list(&self) -> Vec<ImageItem> {
        self.items.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// The image with `id`.
    pub(crate) fn get(&self, id: &str) -> Option<ImageItem> {
        self.items
            .read()
            .ok()?
            .iter()
            .find(|item| item.id == id)
            .cloned()
    }

    /// Checks `bytes` as an image (format, size in pixels before decoding, a full decode under
    /// a memory limit) and keeps it under a new id.
    pub(crate) fn upload(&self, bytes: &[u8]) -> Result<ImageItem, UploadError> {
        if bytes.len() > self.max_bytes {
            return Err(UploadError::TooLarge(format!(
                "the upload is {} bytes; the limit is {}",
                bytes.len(),
                self.max_bytes
            )));
        }
        let reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| UploadError::Invalid(e.to_string()))?;
        let Some((format, ext)) = reader
            .format()
            .and_then(|f| FORMATS.iter().find(|(g, _)| *g == f).copied())
        else {
            return Err(UploadError::Invalid(
                "not an image featx reads (JPEG, PNG, WebP, BMP)".into(),
            ));
        };
        let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
            .into_dimensions()
            .map_err(|e| UploadError::Invalid(format!("cannot read the image's size: {e}")))?;
        if u64::from(w) * u64::from(h) > self.max_pixels {
            return Err(UploadError::Invalid(format!(
                "the image is {w}x{h} pixels; the limit is {} pixels",
                self.max_pixels
            )));
        }
        let mut limits = Limits::default();
        limits.max_alloc = Some(self.max_pixels.saturating_mul(16));
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        reader.limits(limits);
        reader
            .decode()
            .map_err(|e| UploadError::Invalid(format!("cannot decode the image: {e}")))?;
        let mut items = self
            .items
            .write()
            .map_err(|_| UploadError::Invalid("the image list is unavailable".into()))?;
        let uploads = items.iter().filter(|i| i.id.starts_with('u')).count();
        if uploads >= self.max_uploads {
            return Err(UploadError::TooLarge(format!(
                "{uploads} images were uploaded; the limit is {}",
                self.max_uploads
            )));
        }
        let name = format!("upload-{uploads}.{ext}");
        let path = self.folder_path.join(&name);
        std::fs::write(&path, bytes)
            .map_err(|e| UploadError::Invalid(format!("cannot keep the upload: {e}")))?;
        let item = ImageItem {
            id: format!("u{uploads}"),
            name,
            path,
        };
        items.push(item.clone());
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image::RgbImage::new(w, h)
            .write_to(&mut out, ImageFormat::Png)
            .expect("encode");
        out.into_inner()
    }

    #[test]
    fn uploads_are_checked_before_they_are_kept() {
        let images = Images::new(vec![PathBuf::from("/data/cat.jpg")], 10_000, 10_000).unwrap();
        assert_eq!(images.list()[0].name, "cat.jpg");
        let item = images.upload(&png(8, 8)).expect("a small PNG");
        assert_eq!(item.id, "u0");
        assert!(item.path.starts_with(&images.folder_path));
        assert!(matches!(
            images.upload(b"not an image"),
            Err(UploadError::Invalid(_))
        ));
        let good = png(8, 8);
        assert!(matches!(
            images.upload(&good[..good.len() / 2]),
            Err(UploadError::Invalid(_))
        ));
        // 200x200 is 40,000 pixels, over the cap of 10,000.
        assert!(matches!(
            images.upload(&png(200, 200)),
            Err(UploadError::Invalid(_))
        ));
        assert!(matches!(
            images.upload(&vec![0u8; 10_001]),
            Err(UploadError::TooLarge(_))
        ));
        assert_eq!(images.list().len(), 2);
        images.close();
        assert!(!images.folder_path.exists());
    }
}
