//! pytorch-grad-cam's post-processing, step for step: a layer's map is rectified, scaled to
//! [0, 1] per image and resized to the input (`scale_cam_image`); several layers' maps are
//! averaged and scaled again (`aggregate_multi_layers`).

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

/// Maps of shape `[N, H, W]`, float32, row-major: one per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Maps {
    /// The values, image after image.
    pub values: Vec<f32>,
    /// `[N, H, W]`.
    pub shape: [usize; 3],
}

impl Maps {
    /// Image `i`'s map, `H * W` values.
    pub fn image(&self, i: usize) -> &[f32] {
        let hw = self.shape[1] * self.shape[2];
        &self.values[i * hw..(i + 1) * hw]
    }

    fn images_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        let hw = (self.shape[1] * self.shape[2]).max(1);
        self.values.chunks_mut(hw)
    }
}

/// `max(x, 0)` everywhere.
pub(crate) fn relu(mut maps: Maps) -> Maps {
    maps.values.iter_mut().for_each(|v| *v = v.max(0.0));
    maps
}

/// `scale_cam_image`: each image minus its minimum, divided by `1e-7` plus its new maximum
/// (in float32, as numpy computes it), then resized to `size` (`[H, W]`) when given.
pub(crate) fn scale(mut maps: Maps, size: Option<[usize; 2]>) -> Maps {
    for image in maps.images_mut() {
        let min = image.iter().copied().fold(f32::INFINITY, f32::min);
        image.iter_mut().for_each(|v| *v -= min);
        let max = image.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let denominator = 1e-7f32 + max;
        image.iter_mut().for_each(|v| *v /= denominator);
    }
    match size {
        Some(size) if size != [maps.shape[1], maps.shape[2]] => resize(maps, size),
        _ => maps,
    }
}

/// `cv2.resize(map, (W, H))` with OpenCV's default `INTER_LINEAR`: half-pixel centres, edges
/// clamped, no antialiasing. That is exactly torch's `bilinear` with `align_corners=False`,
/// which burn's `interpolate` implements; it runs on the CPU, where the maps already are.
fn resize(maps: Maps, [h, w]: [usize; 2]) -> Maps {
    let [n, mh, mw] = maps.shape;
    let device = Device::flex();
    let x = Tensor::<4>::from_data(TensorData::new(maps.values, [n, 1, mh, mw]), &device);
    let options = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_align_corners(false)
        .with_output_size([h, w]);
    let values = interpolate(x, options)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    Maps {
        values,
        shape: [n, h, w],
    }
}

/// `aggregate_multi_layers`: every layer's (already scaled, equally sized) maps rectified,
/// averaged over layers, and scaled again.
pub(crate) fn aggregate(layers: Vec<Maps>) -> Maps {
    let count = layers.len().max(1) as f32;
    let mut layers = layers.into_iter();
    let Some(first) = layers.next() else {
        return Maps {
            values: Vec::new(),
            shape: [0, 0, 0],
        };
    };
    let mut sum = relu(first);
    for layer in layers {
        for (s, v) in sum.values.iter_mut().zip(layer.values) {
            *s += v.max(0.0);
        }
    }
    sum.values.iter_mut().for_each(|v| *v /= count);
    scale(sum, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_maps_each_image_to_zero_one() {
        let maps = Maps {
            values: vec![1.0, 3.0, 2.0, 5.0, -4.0, -4.0, 0.0, -2.0],
            shape: [2, 2, 2],
        };
        let scaled = scale(maps, None);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(scaled.image(0), &[0.0, 0.5, 0.25, 1.0]), "{scaled:?}");
        assert!(close(scaled.image(1), &[0.0, 0.0, 1.0, 0.5]), "{scaled:?}");
    }

    #[test]
    fn resizing_follows_opencv_half_pixel_bilinear() {
        // 2 -> 4 pixels: source positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped).
        let maps = Maps {
            values: vec![0.0, 1.0],
            shape: [1, 1, 2],
        };
        let out = resize(maps, [1, 4]);
        assert_eq!(out.shape, [1, 1, 4]);
        assert_eq!(out.values, [0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn layers_average_after_rectifying() {
        let a = Maps {
            values: vec![0.0, 1.0],
            shape: [1, 1, 2],
        };
        let b = Maps {
            values: vec![1.0, 0.0],
            shape: [1, 1, 2],
        };
        let c = Maps {
            values: vec![0.0, 1.0],
            shape: [1, 1, 2],
        };
        // Means 1/3 and 2/3, scaled: 0 and 1.
        let out = aggregate(vec![a, b, c]);
        assert!((out.values[0]).abs() < 1e-6 && (out.values[1] - 1.0).abs() < 1e-6);
    }
}
