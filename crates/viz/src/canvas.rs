use std::path::Path;
use std::sync::Once;

use image::RgbImage;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::{FontStyle, register_font};

use crate::{Result, VizError};

/// The font every label uses, embedded so pictures look the same everywhere.
pub(crate) const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

pub(crate) fn ensure_font() {
    REGISTER.call_once(|| {
        // The embedded font is valid; should registration fail anyway, plotters falls back to
        // drawing no text rather than failing.
        let _ = register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// A pixel rectangle inside a [`Figure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// A rendered picture and where its data panels are (one for a heatmap, one per tile for a
/// grid), so callers and tests can relate pixels to feature positions.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The RGB picture.
    pub image: RgbImage,
    /// Data panels, in drawing order.
    pub panels: Vec<Rect>,
    /// The colour bar, if the picture has one.
    pub colorbar: Option<Rect>,
}

impl Figure {
    /// The picture encoded as PNG: the bytes [`Figure::save_png`] writes.
    pub fn png_bytes(&self) -> Result<Vec<u8>> {
        let mut png = std::io::Cursor::new(Vec::new());
        self.image
            .write_to(&mut png, image::ImageFormat::Png)
            .map_err(|e| VizError::Save {
                path: "PNG".into(),
                reason: e.to_string(),
            })?;
        Ok(png.into_inner())
    }

    /// Writes the picture as PNG (atomically: a temporary file renamed into place).
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let png = self.png_bytes().map_err(|e| match e {
            VizError::Save { reason, .. } => VizError::Save {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })?;
        featx_output::write_atomic(path, &png).map_err(|e| VizError::Save {
            path: path.to_path_buf(),
            reason: e.reason(),
        })
    }
}

/// The viridis colour of `v` on the scale `lo..hi`.
pub(crate) fn viridis(v: f32, lo: f32, hi: f32) -> [u8; 3] {
    let t = if hi > lo {
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let c = ViridisRGB.get_color(t);
    [c.0, c.1, c.2]
}

/// Layout of a one-panel figure with a title, axes in feature coordinates and a colour bar.
pub(crate) struct PanelLayout<'a> {
    pub title: &'a str,
    /// Feature-map size `(width, height)`, for axis labels and aspect ratio.
    pub map_size: (usize, usize),
    /// The colour bar's scale.
    pub range: (f32, f32),
    /// The colour bar's colours: `colors(v, lo, hi)` ([`viridis`] for feature maps).
    pub colors: fn(f32, f32, f32) -> [u8; 3],
}

/// Renders title, axes and colour bar, then fills the panel pixel by pixel: `pixel(fx, fy)`
/// gets the position in feature-map coordinates (`0..width`, `0..height`, top-left origin).
pub(crate) fn panel_figure(
    layout: &PanelLayout<'_>,
    pixel: impl Fn(f32, f32) -> [u8; 3],
) -> Result<Figure> {
    ensure_font();
    let (mw, mh) = layout.map_size;
    let long = mw.max(mh).max(1) as f32;
    let plot_w = ((512.0 * mw as f32 / long).round() as u32).max(16);
    let plot_h = ((512.0 * mh as f32 / long).round() as u32).max(16);
    let (left_axis, bottom_axis, title_h, bar_w, margin) = (50u32, 40u32, 50u32, 110u32, 15u32);
    let width = margin + left_axis + plot_w + bar_w + margin;
    let height = title_h + plot_h + bottom_axis + margin;
    let mut buf = vec![255u8; (width * height * 3) as usize];
    let (lo, hi) = layout.range;
    let (panel, bar) = {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(VizError::render)?;
        let body = root
            .titled(layout.title, (FONT, 18))
            .map_err(VizError::render)?;
        let (left, right) = body.split_horizontally(margin + left_axis + plot_w);
        let mut chart = ChartBuilder::on(&left)
            .margin_left(margin)
            .margin_top(title_h - 40)
            .x_label_area_size(bottom_axis)
            .y_label_area_size(left_axis)
            // y runs from -height (bottom) to 0 (top) so ticks count rows down from the top.
            .build_cartesian_2d(0f32..mw as f32, -(mh as f32)..0f32)
            .map_err(VizError::render)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(6)
            .y_labels(6)
            .y_label_formatter(&|v| format!("{:.0}", -v + 0.0))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 13))
            .draw()
            .map_err(VizError::render)?;
        let panel = chart.plotting_area().get_pixel_range();

        let mut bar_chart = ChartBuilder::on(&right)
            .margin_top(title_h - 40)
            .margin_left(12)
            .margin_bottom(bottom_axis)
            .right_y_label_area_size(70)
            .build_cartesian_2d(0f32..1f32, lo..hi)
            .map_err(VizError::render)?;
        bar_chart
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(6)
            .y_label_formatter(&|v| format_value(*v))
            .label_style((FONT, 13))
            .draw()
            .map_err(VizError::render)?;
        let steps = 256;
        bar_chart
            .draw_series((0..steps).map(|i| {
                let a = lo + (hi - lo) * i as f32 / steps as f32;
                let b = lo + (hi - lo) * (i + 1) as f32 / steps as f32;
                let [r, g, bl] = (layout.colors)((a + b) / 2.0, lo, hi);
                Rectangle::new([(0.0, a), (1.0, b)], RGBColor(r, g, bl).filled())
            }))
            .map_err(VizError::render)?;
        let bar = bar_chart.plotting_area().get_pixel_range();
        root.present().map_err(VizError::render)?;
        (panel, bar)
    };
    let mut image = RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| VizError::Render("buffer size mismatch".into()))?;
    let rect = to_rect(&panel);
    for py in 0..rect.height {
        for px in 0..rect.width {
            let fx = (px as f32 + 0.5) / rect.width as f32 * mw as f32;
            let fy = (py as f32 + 0.5) / rect.height as f32 * mh as f32;
            image.put_pixel(rect.x + px, rect.y + py, image::Rgb(pixel(fx, fy)));
        }
    }
    Ok(Figure {
        image,
        panels: vec![rect],
        colorbar: Some(to_rect(&bar)),
    })
}

pub(crate) fn to_rect(range: &(std::ops::Range<i32>, std::ops::Range<i32>)) -> Rect {
    let (xs, ys) = range;
    Rect {
        x: xs.start.max(0) as u32,
        y: ys.start.max(0) as u32,
        width: (xs.end - xs.start).max(0) as u32,
        height: (ys.end - ys.start).max(0) as u32,
    }
}

/// Short labels for values of any magnitude.
pub(crate) fn format_value(v: f32) -> String {
    let a = v.abs();
    if a != 0.0 && !(0.01..10_000.0).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
