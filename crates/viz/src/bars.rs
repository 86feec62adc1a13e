use image::RgbImage;
use plotters::prelude::*;

use crate::canvas::{FONT, ensure_font, format_value, to_rect};
use crate::{Figure, Result, VizError};

/// The `top_k` largest entries of one sample's vector (`fc`, `avgpool`, `flatten`), as bars
/// labelled with their indices, largest first. `shape` is the batch tensor's shape, for the
/// title.
pub fn bars(values: &[f32], top_k: usize, label: &str, shape: &[usize]) -> Result<Figure> {
    if values.is_empty() || top_k == 0 {
        return Err(VizError::Shape {
            kind: "bar chart",
            shape: shape.to_vec(),
            reason: "nothing to show".into(),
        });
    }
    ensure_font();
    let mut order: Vec<(f32, usize)> = values.iter().copied().zip(0..).collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    order.truncate(top_k);
    let k = order.len();
    let lo = order.iter().map(|v| v.0).fold(0f32, f32::min);
    let hi = order.iter().map(|v| v.0).fold(0f32, f32::max);
    let pad = (hi - lo).max(1e-6) * 0.08;
    let (width, height) = ((140 + 48 * k as u32).max(560), 480u32);
    let mut buf = vec![255u8; (width * height * 3) as usize];
    let panel = {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(VizError::render)?;
        let title = format!("{label}  {shape:?}  top {k} of {} values", values.len());
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((0..k as i32 - 1).into_segmented(), (lo - pad)..(hi + pad))
            .map_err(VizError::render)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(k)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => order
                    .get(*i as usize)
                    .map(|(_, idx)| idx.to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| format_value(*v))
            .x_desc("index")
            .y_desc("value")
            .label_style((FONT, 13))
            .draw()
            .map_err(VizError::render)?;
        chart
            .draw_series(order.iter().enumerate().map(|(i, (v, _))| {
                let (a, b) = (
                    SegmentValue::Exact(i as i32),
                    SegmentValue::Exact(i as i32 + 1),
                );
                let mut bar = Rectangle::new([(a, 0.0), (b, *v)], RGBColor(59, 82, 139).filled());
                bar.set_margin(0, 0, 6, 6);
                bar
            }))
            .map_err(VizError::render)?;
        let panel = chart.plotting_area().get_pixel_range();
        root.present().map_err(VizError::render)?;
        panel
    };
    let image = RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| VizError::Render("buffer size mismatch".into()))?;
    Ok(Figure {
        image,
        panels: vec![to_rect(&panel)],
        colorbar: None,
    })
}
