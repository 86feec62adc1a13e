use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use clap::Args;
use featx_extract::FeatureExtractor;
use featx_models::registry::{Interpolation, Preprocessing};
use featx_preprocess::{Filter, Preprocess, batch_tensor, load_rgb};
use image::RgbImage;

use crate::error::CliError;
use crate::npy;

/// How images are turned into model inputs: by default the preprocessing of the model's
/// published weights (torchvision's `ImageClassification` transform: `Resize(256)` or, for
/// the V2 weights, `Resize(232)`, then `CenterCrop(224)`, ImageNet mean and std).
#[derive(Args, Debug, Clone)]
pub struct PreprocessArgs {
    /// Resize so the shorter side has this many pixels (0: keep the size)
    /// [default: the model's, e.g. 256; 232 for resnet50]
    #[arg(long)]
    pub resize: Option<u32>,
    /// Center-crop to this square size (0: no crop) [default: the model's, 224]
    #[arg(long)]
    pub crop: Option<u32>,
    /// Per-channel mean, `r,g,b` [default: the model's, 0.485,0.456,0.406]
    #[arg(long, value_delimiter = ',', num_args = 3)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation, `r,g,b` [default: the model's, 0.229,0.224,0.225]
    #[arg(long, value_delimiter = ',', num_args = 3)]
    pub std: Option<Vec<f32>>,
}

impl PreprocessArgs {
    /// The pipeline these flags describe over a model's defaults (`published`): each flag not
    /// given is the model's.
    pub fn pipeline(&self, published: Preprocessing) -> Preprocess {
        let triple = |v: &Option<Vec<f32>>, d: [f32; 3]| {
            v.as_deref()
                .and_then(|v| <[f32; 3]>::try_from(v).ok())
                .unwrap_or(d)
        };
        let size = |flag: Option<u32>, d: u32| Some(flag.unwrap_or(d)).filter(|&s| s > 0);
        Preprocess {
            resize: size(self.resize, published.resize),
            crop: size(self.crop, published.crop),
            filter: match published.interpolation {
                Interpolation::Bilinear => Filter::Bilinear,
                Interpolation::Bicubic => Filter::Bicubic,
            },
            mean: triple(&self.mean, published.mean),
            std: triple(&self.std, published.std),
        }
    }
}

/// A model input batch and, for image inputs, the 8-bit images the model saw.
pub struct Batch {
    /// `[N, 3, H, W]` on the model's device.
    pub tensor: Tensor<4>,
    /// The cropped images, in batch order (empty for `.npy` input).
    pub images: Vec<RgbImage>,
}

fn is_npy(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("npy")
}

/// Reads one `.npy` batch, or several images preprocessed into one batch, checking the shape
/// against `extractor` before any tensor is built.
pub fn load_batch(
    inputs: &[PathBuf],
    pre: &Preprocess,
    extractor: &FeatureExtractor,
    device: &Device,
) -> Result<Batch, CliError> {
    let (shape, values, images) = match inputs {
        [] => return Err(CliError::Usage("no --input given".into())),
        [one] if is_npy(one) => {
            let (shape, values) = npy::read_f32(one)?;
            (shape, values, Vec::new())
        }
        many => {
            if let Some(npy) = many.iter().find(|p| is_npy(p)) {
                return Err(CliError::Input {
                    path: npy.clone(),
                    reason: "a .npy input is a whole batch and cannot be mixed with others".into(),
                });
            }
            let mut items = Vec::with_capacity(many.len());
            for path in many {
                let fail = |e: featx_preprocess::PreprocessError| CliError::Input {
                    path: path.clone(),
                    reason: e.to_string(),
                };
                items.push(pre.apply(&load_rgb(path).map_err(fail)?).map_err(fail)?);
            }
            let tensor = batch_tensor(&items, device).map_err(|e| CliError::Input {
                path: many[0].clone(),
                reason: e.to_string(),
            })?;
            let shape = tensor.dims().to_vec();
            extractor.check_input(&shape)?;
            let images = items.into_iter().map(|p| p.image).collect();
            return Ok(Batch { tensor, images });
        }
    };
    extractor.check_input(&shape)?;
    let dims: [usize; 4] = shape
        .clone()
        .try_into()
        .map_err(|_| CliError::Usage(format!("expected a rank-4 input, got shape {shape:?}")))?;
    let tensor = Tensor::<4>::from_data(TensorData::new(values, dims), device);
    Ok(Batch { tensor, images })
}
