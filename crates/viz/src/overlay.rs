use image::imageops::{FilterType, resize};
use image::{ImageBuffer, Luma, RgbImage};

use crate::canvas::{PanelLayout, panel_figure, viridis};
use crate::reduce::range;
use crate::{FeatureMap, Figure, Reduce, Result, VizError};

/// The reduced map upsampled (bilinear) to `base`'s size and blended over it with weight
/// `alpha` (0 shows only the image, 1 only the heatmap).
pub fn overlay(
    map: &FeatureMap<'_>,
    reduce: Reduce,
    base: &RgbImage,
    alpha: f32,
    label: &str,
) -> Result<Figure> {
    let [c, h, w] = map.shape;
    let (bw, bh) = base.dimensions();
    if bw == 0 || bh == 0 {
        return Err(VizError::Shape {
            kind: "overlay",
            shape: vec![bh as usize, bw as usize],
            reason: "the base image is empty".into(),
        });
    }
    let plane = reduce.apply(map);
    let (lo, hi) = range(&plane);
    // `image` treats f32 pixels as normalised to [0, 1] and clamps when resizing: scale first.
    let plane: Vec<f32> = plane.iter().map(|v| (v - lo) / (hi - lo)).collect();
    let small: ImageBuffer<Luma<f32>, Vec<f32>> = ImageBuffer::from_raw(w as u32, h as u32, plane)
        .ok_or_else(|| VizError::Shape {
            kind: "overlay",
            shape: vec![c, h, w],
            reason: "values do not fill the map".into(),
        })?;
    let up = resize(&small, bw, bh, FilterType::Triangle);
    let alpha = alpha.clamp(0.0, 1.0);
    let title = format!(
        "{label}  [{c}, {h}, {w}]  {} over {c} channels, on the input",
        reduce.label()
    );
    let layout = PanelLayout {
        title: &title,
        map_size: (bw as usize, bh as usize),
        range: (lo, hi),
        colors: viridis,
    };
    panel_figure(&layout, |fx, fy| {
        let x = (fx as u32).min(bw - 1);
        let y = (fy as u32).min(bh - 1);
        let heat = viridis(up.get_pixel(x, y).0[0], 0.0, 1.0);
        let under = base.get_pixel(x, y).0;
        std::array::from_fn(|i| {
            (f32::from(heat[i]) * alpha + f32::from(under[i]) * (1.0 - alpha)).round() as u8
        })
    })
}
