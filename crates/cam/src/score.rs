//! ScoreCAM's channel weights (pytorch-grad-cam's `ScoreCAM.get_cam_weights`): every channel
//! of the layer, upsampled to the input and scaled to [0, 1], masks the input; the masked
//! inputs' target logits, softmaxed over channels, are the weights.

use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use featx_extract::FeatureExtractor;

use crate::Result;

/// How many masked inputs run through the model at once. pytorch-grad-cam runs 16; the
/// weights do not depend on it (eval mode treats every image alone), so featx takes larger
/// batches, which its CPU kernels run faster.
const BATCH: usize = 32;

/// The weights `[N * C]` (image-major) for `maps` (`[N, C, h, w]`) of `input` (`[N, 3, H, W]`),
/// scoring image `i` by its logit of class `targets[i]` with `classifier`.
pub(crate) fn weights(
    classifier: &FeatureExtractor,
    input: &Tensor<4>,
    maps: Tensor<4>,
    targets: &[usize],
) -> Result<Vec<f64>> {
    let [n, c, _, _] = maps.dims();
    let [_, channels, h, w] = input.dims();
    let device = classifier.device().clone();
    let input = input.clone().to_device(&device);
    let maps = maps.to_device(&device);
    let mut out = Vec::with_capacity(n * c);
    for (i, &target) in targets.iter().enumerate().take(n) {
        // `UpsamplingBilinear2d`: bilinear with aligned corners.
        let options = InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(true)
            .with_output_size([h, w]);
        let up = interpolate(maps.clone().narrow(0, i, 1), options).reshape([c, h * w]);
        let max = up.clone().max_dim(1);
        let min = up.clone().min_dim(1);
        let masks = ((up - min.clone()) / (max - min + 1e-8)).reshape([c, 1, h, w]);
        let image = input.clone().narrow(0, i, 1);
        let mut scores = Vec::with_capacity(c);
        for start in (0..c).step_by(BATCH) {
            let end = (start + BATCH).min(c);
            let batch = image.clone() * masks.clone().narrow(0, start, end - start);
            let batch = batch.reshape([end - start, channels, h, w]);
            let logits = classifier.forward(batch)?;
            let Some((_, logits)) = logits.iter().next() else {
                continue;
            };
            let dims = logits.dims();
            let classes = dims.last().copied().unwrap_or(1);
            let values = logits.to_vec_f32()?;
            scores.extend(values.chunks(classes).map(|row| f64::from(row[target])));
        }
        out.extend(softmax(&scores));
    }
    Ok(out)
}

/// `softmax(scores)`, shifted by the maximum for stability.
fn softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let s = softmax(&[1.0, 2.0, 3.0]);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(s[0] < s[1] && s[1] < s[2]);
        // e / (1 + e + e^2) for the middle one.
        let e = std::f64::consts::E;
        assert!((s[1] - e / (1.0 + e + e * e)).abs() < 1e-12);
    }
}
