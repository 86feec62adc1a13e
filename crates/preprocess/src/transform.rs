use burn::prelude::*;
use burn::tensor::TensorData;
use image::RgbImage;
use image::imageops::crop_imm;

use crate::{Filter, PreprocessError, Result, resize};

/// One image made ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessed {
    /// The resized and cropped 8-bit image: what the model sees, before normalisation.
    pub image: RgbImage,
    /// Its normalised values, channel-major `[3, H, W]`.
    pub values: Vec<f32>,
    /// `[H, W]` of `image` and `values`.
    pub size: [usize; 2],
}

/// A torchvision-style preprocessing pipeline on 8-bit RGB images.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// `Resize(n)`: scale so the shorter side is `n` (aspect kept), or leave the size.
    pub resize: Option<u32>,
    /// `CenterCrop(n)`, or no crop.
    pub crop: Option<u32>,
    /// The resize's filter (PIL's, antialiased when downscaling).
    pub filter: Filter,
    /// Per-channel mean subtracted after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

impl Default for Preprocess {
    fn default() -> Self {
        Self::imagenet()
    }
}

impl Preprocess {
    /// `Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize(ImageNet mean/std)`, the
    /// transform of torchvision's ImageNet classifiers.
    pub fn imagenet() -> Self {
        Self {
            resize: Some(256),
            crop: Some(224),
            filter: Filter::Bilinear,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    /// The size torchvision's `Resize(n)` gives an image of `width x height`: shorter side
    /// `n`, longer side `int(n * long / short)`.
    pub fn resized_size(&self, width: u32, height: u32) -> (u32, u32) {
        let Some(n) = self.resize else {
            return (width, height);
        };
        let (short, long) = if width <= height {
            (width, height)
        } else {
            (height, width)
        };
        let new_long = (f64::from(n) * f64::from(long) / f64::from(short)) as u32;
        if width <= height {
            (n, new_long)
        } else {
            (new_long, n)
        }
    }

    /// Resize and crop: the 8-bit image the model will see.
    pub fn geometry(&self, image: &RgbImage) -> Result<RgbImage> {
        let (w, h) = self.resized_size(image.width(), image.height());
        let resized = if (w, h) == image.dimensions() {
            image.clone()
        } else {
            resize(image, w, h, self.filter)
        };
        let Some(crop) = self.crop else {
            return Ok(resized);
        };
        if w < crop || h < crop {
            return Err(PreprocessError::TooSmall {
                width: w,
                height: h,
                crop,
            });
        }
        // torchvision: int(round((h - crop) / 2.0)), Python's round is half-to-even.
        let top = (f64::from(h - crop) / 2.0).round_ties_even() as u32;
        let left = (f64::from(w - crop) / 2.0).round_ties_even() as u32;
        Ok(crop_imm(&resized, left, top, crop, crop).to_image())
    }

    /// `ToTensor` then `Normalize`: channel-major `[3, H, W]` float32 values.
    pub fn normalize(&self, image: &RgbImage) -> Vec<f32> {
        let (w, h) = image.dimensions();
        let plane = (w * h) as usize;
        let mut out = vec![0f32; 3 * plane];
        for (i, pixel) in image.pixels().enumerate() {
            for c in 0..3 {
                let v = f32::from(pixel.0[c]) / 255.0;
                out[c * plane + i] = (v - self.mean[c]) / self.std[c];
            }
        }
        out
    }

    /// The whole pipeline: the cropped 8-bit image, its normalised values and their size.
    pub fn apply(&self, image: &RgbImage) -> Result<Preprocessed> {
        let image = self.geometry(image)?;
        let values = self.normalize(&image);
        let size = [image.height() as usize, image.width() as usize];
        Ok(Preprocessed {
            image,
            values,
            size,
        })
    }
}

/// Stacks preprocessed images of one size into an `[N, 3, H, W]` tensor on `device`.
pub fn batch_tensor(items: &[Preprocessed], device: &Device) -> Result<Tensor<4>> {
    let Some(first) = items.first().map(|p| p.size) else {
        return Ok(Tensor::zeros([0, 3, 0, 0], device));
    };
    if let Some(other) = items.iter().find(|p| p.size != first) {
        return Err(PreprocessError::MixedSizes {
            first,
            other: other.size,
        });
    }
    let values: Vec<f32> = items
        .iter()
        .flat_map(|p| p.values.iter().copied())
        .collect();
    let shape = [items.len(), 3, first[0], first[1]];
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}
