use crate::canvas::{PanelLayout, panel_figure, viridis};
use crate::reduce::range;
use crate::{FeatureMap, Figure, Reduce, Result};

/// The article's picture: `map` reduced over channels, in viridis, with a colour bar from the
/// map's minimum to its maximum. `label` names the node (shown with the shape and reduction).
pub fn heatmap(map: &FeatureMap<'_>, reduce: Reduce, label: &str) -> Result<Figure> {
    heatmap_in(map, reduce, label, None)
}

/// [`heatmap`] on the colour scale `scale` (`(lo, hi)`) instead of the map's own range, so two
/// maps drawn on one scale compare by colour; `None` is the map's own.
pub fn heatmap_in(
    map: &FeatureMap<'_>,
    reduce: Reduce,
    label: &str,
    scale: Option<(f32, f32)>,
) -> Result<Figure> {
    let [c, h, w] = map.shape;
    let plane = reduce.apply(map);
    let (lo, hi) = scale.unwrap_or_else(|| range(&plane));
    let title = format!(
        "{label}  [{c}, {h}, {w}]  {} over {c} channels",
        reduce.label()
    );
    let layout = PanelLayout {
        title: &title,
        map_size: (w, h),
        range: (lo, hi),
        colors: viridis,
    };
    panel_figure(&layout, |fx, fy| {
        let x = (fx as usize).min(w - 1);
        let y = (fy as usize).min(h - 1);
        viridis(plane[y * w + x], lo, hi)
    })
}
