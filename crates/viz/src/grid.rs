use image::RgbImage;
use plotters::prelude::*;

use crate::canvas::{FONT, Rect, ensure_font, viridis};
use crate::reduce::range;
use crate::{FeatureMap, Figure, Result, VizError};

/// Which channels a grid shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// The first `n` channels, in order.
    First(usize),
    /// The `k` channels with the largest mean activation, most active first.
    Top(usize),
    /// `n` channels in order from channel `start`: a later page of a long [`Channels::First`].
    FirstFrom(usize, usize),
    /// The `start`-th to `start + k`-th most active channels: a later page of
    /// [`Channels::Top`].
    TopFrom(usize, usize),
}

impl Channels {
    /// Channel indices of `map` to show.
    pub fn select(self, map: &FeatureMap<'_>) -> Vec<usize> {
        let c = map.shape[0];
        match self {
            Channels::First(n) => (0..n.min(c)).collect(),
            Channels::FirstFrom(start, n) => {
                (start.min(c)..start.saturating_add(n).min(c)).collect()
            }
            Channels::Top(k) => Channels::TopFrom(0, k).select(map),
            Channels::TopFrom(start, k) => {
                let mut order: Vec<(f32, usize)> = (0..c)
                    .map(|i| {
                        let plane = map.channel(i);
                        (plane.iter().sum::<f32>() / plane.len().max(1) as f32, i)
                    })
                    .collect();
                order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                order
                    .into_iter()
                    .skip(start)
                    .take(k)
                    .map(|(_, i)| i)
                    .collect()
            }
        }
    }
}

/// One tile per selected channel, each normalised to its own range, labelled with its index.
pub fn grid(map: &FeatureMap<'_>, channels: Channels, label: &str) -> Result<Figure> {
    let [c, h, w] = map.shape;
    let picked = channels.select(map);
    if picked.is_empty() {
        return Err(VizError::Shape {
            kind: "grid",
            shape: vec![c, h, w],
            reason: "no channel selected".into(),
        });
    }
    ensure_font();
    let n = picked.len();
    let cols = (n as f64).sqrt().ceil() as u32;
    let rows = (n as u32).div_ceil(cols);
    let tile = (960 / cols).clamp(48, 160);
    let (tile_w, tile_h) = if w >= h {
        (tile, ((tile as usize * h / w.max(1)) as u32).max(1))
    } else {
        (((tile as usize * w / h.max(1)) as u32).max(1), tile)
    };
    let (gap, label_h, title_h, margin) = (8u32, 18u32, 44u32, 12u32);
    let width = margin * 2 + cols * (tile_w + gap) - gap;
    let height = title_h + rows * (label_h + tile_h + gap) + margin;
    let panels: Vec<Rect> = (0..n as u32)
        .map(|i| Rect {
            x: margin + (i % cols) * (tile_w + gap),
            y: title_h + (i / cols) * (label_h + tile_h + gap) + label_h,
            width: tile_w,
            height: tile_h,
        })
        .collect();
    let mut buf = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(VizError::render)?;
        let what = match channels {
            Channels::First(_) => format!("first {n} channels"),
            Channels::Top(_) => format!("most active {n} channels"),
            Channels::FirstFrom(start, _) => format!("channels {start}-{}", start + n - 1),
            Channels::TopFrom(start, _) => {
                format!("most active {}-{} of {c} channels", start + 1, start + n)
            }
        };
        let title = format!("{label}  [{c}, {h}, {w}]  {what}");
        root.draw_text(
            &title,
            &(FONT, 18).into_font().color(&BLACK),
            (margin as i32, 12),
        )
        .map_err(VizError::render)?;
        let style = (FONT, 13).into_font().color(&BLACK);
        for (rect, ch) in panels.iter().zip(&picked) {
            let pos = (rect.x as i32, (rect.y - label_h + 2) as i32);
            root.draw_text(&format!("#{ch}"), &style, pos)
                .map_err(VizError::render)?;
        }
        root.present().map_err(VizError::render)?;
    }
    let mut image = RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| VizError::Render("buffer size mismatch".into()))?;
    for (rect, &ch) in panels.iter().zip(&picked) {
        let plane = map.channel(ch);
        let (lo, hi) = range(plane);
        for py in 0..rect.height {
            for px in 0..rect.width {
                let x = (px as usize * w / rect.width as usize).min(w - 1);
                let y = (py as usize * h / rect.height as usize).min(h - 1);
                let color = viridis(plane[y * w + x], lo, hi);
                image.put_pixel(rect.x + px, rect.y + py, image::Rgb(color));
            }
        }
    }
    Ok(Figure {
        image,
        panels,
        colorbar: None,
    })
}
