//! The pictures of one node's output: what `featx viz` writes and `featx explore` serves, drawn
//! by one function so both give the same bytes for the same request.

use clap::ValueEnum;
use featx_graph::{Layout, MapView};
use featx_viz::{Channels, FeatureMap, Figure, Reduce, bars, grid, heatmap_in, overlay, range};
use image::RgbImage;

use crate::error::CliError;

/// `--kind`: which picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Heatmaps for feature maps, bars for vectors.
    Auto,
    /// The map summed (or averaged, or maxed) over channels, in viridis.
    Heatmap,
    /// One tile per channel.
    Grid,
    /// The heatmap blended over the input image.
    Overlay,
    /// The largest entries of a vector.
    Bars,
}

/// `--reduce`: how heatmaps and overlays combine channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReduceArg {
    /// Sum over channels.
    Sum,
    /// Mean over channels.
    Mean,
    /// Maximum over channels.
    Max,
}

impl From<ReduceArg> for Reduce {
    fn from(r: ReduceArg) -> Reduce {
        match r {
            ReduceArg::Sum => Reduce::Sum,
            ReduceArg::Mean => Reduce::Mean,
            ReduceArg::Max => Reduce::Max,
        }
    }
}

/// `--select`: which channels a grid shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Select {
    /// The most active channels.
    Top,
    /// The first channels.
    First,
}

/// Everything that chooses a picture besides the values.
#[derive(Debug, Clone, Copy)]
pub struct PictureOptions {
    /// Which picture.
    pub kind: Kind,
    /// How heatmaps and overlays combine channels.
    pub reduce: ReduceArg,
    /// Grid: channels per picture.
    pub channels: usize,
    /// Grid: most active or first channels.
    pub select: Select,
    /// Grid: which page of `channels` channels (0: the first, what `featx viz` draws).
    pub page: usize,
    /// Bars: how many of the largest values.
    pub top_k: usize,
    /// Overlay: the heatmap's weight over the image.
    pub alpha: f32,
    /// Heatmap: a colour scale shared with another map (`None`: the map's own range).
    pub scale: Option<(f32, f32)>,
}

/// The label a picture's title gives a node: the query as asked, with the node it resolved to
/// when that is another name (`layer1 (layer1.1.relu_1)`).
pub fn label(key: &str, node_name: &str) -> String {
    if node_name == key {
        key.to_string()
    } else {
        format!("{key} ({node_name})")
    }
}

/// The picture of the first sample of a node's output `values` of `shape`, laid out as
/// `layout` (the graph's [`featx_graph::Graph::layout`] of the node); `image` is the
/// preprocessed input an overlay is drawn over.
pub fn draw(
    options: &PictureOptions,
    shape: &[usize],
    layout: Layout,
    values: &[f32],
    label: &str,
    image: Option<&RgbImage>,
) -> Result<Figure, CliError> {
    // Transformer tokens `[N, 1 + h*w, C]` are drawn on their patch grid and channels-last
    // maps `[N, H, W, C]` with their channels first, as a CAM reads them.
    let (shape, values, label) = as_map(shape, layout, values, label);
    let (shape, values, label) = (&shape[..], &values[..], &label[..]);
    let map = FeatureMap::sample(values, shape, 0)?;
    let is_vector = map.shape[1] == 1 && map.shape[2] == 1;
    let reduce = options.reduce.into();
    let figure = match (options.kind, is_vector) {
        (Kind::Bars, _) | (Kind::Auto, true) => bars(map.values, options.top_k, label, shape),
        (Kind::Heatmap, _) | (Kind::Auto, false) => heatmap_in(&map, reduce, label, options.scale),
        (Kind::Grid, _) => {
            let start = options.page.saturating_mul(options.channels);
            let channels = match (options.select, options.page) {
                (Select::Top, 0) => Channels::Top(options.channels),
                (Select::First, 0) => Channels::First(options.channels),
                (Select::Top, _) => Channels::TopFrom(start, options.channels),
                (Select::First, _) => Channels::FirstFrom(start, options.channels),
            };
            grid(&map, channels, label)
        }
        (Kind::Overlay, _) => match image {
            Some(base) => overlay(&map, reduce, base, options.alpha, label),
            None => return Err(CliError::Usage("overlay needs an image input".into())),
        },
    };
    Ok(figure?)
}

/// The first sample of `values` of `shape` as the feature map it is drawn as (tokens on their
/// grid, channels first), with what the title says about that; other values as they are.
fn as_map<'a>(
    shape: &[usize],
    layout: Layout,
    values: &'a [f32],
    label: &str,
) -> (Vec<usize>, std::borrow::Cow<'a, [f32]>, String) {
    let view = MapView::of(shape, layout).filter(|v| *v != MapView::Map);
    let read = view.and_then(|v| {
        let [_, c, h, w] = v.map_shape(shape)?;
        Some((v, vec![1, c, h, w], v.map_values(shape, values, 1)?))
    });
    match read {
        Some((view, map_shape, map)) => {
            let label = match view.note() {
                Some(note) => format!("{label} ({note})"),
                None => label.to_string(),
            };
            (map_shape, map.into(), label)
        }
        None => (shape.to_vec(), values.into(), label.to_string()),
    }
}

/// One colour scale for the heatmaps of several outputs of a node (each `(shape, values)`,
/// laid out as `layout`): the range of all their reduced maps together.
pub fn shared_scale(
    reduce: ReduceArg,
    layout: Layout,
    outputs: &[(&[usize], &[f32])],
) -> Result<(f32, f32), CliError> {
    let mut all = Vec::new();
    for (shape, values) in outputs {
        let (shape, values, _) = as_map(shape, layout, values, "");
        let map = FeatureMap::sample(&values, &shape, 0)?;
        all.extend(Reduce::from(reduce).apply(&map));
    }
    Ok(range(&all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(kind: Kind) -> PictureOptions {
        PictureOptions {
            kind,
            reduce: ReduceArg::Sum,
            channels: 4,
            select: Select::First,
            page: 0,
            top_k: 5,
            alpha: 0.5,
            scale: None,
        }
    }

    #[test]
    fn tokens_are_drawn_as_their_patch_grid() {
        // ViT-like tokens: a class token and a 4x4 grid of 8 channels.
        let values: Vec<f32> = (0..17 * 8).map(|v| (v % 13) as f32).collect();
        let first = Layout::ChannelsFirst;
        let tokens = draw(
            &options(Kind::Heatmap),
            &[1, 17, 8],
            first,
            &values,
            "ln",
            None,
        )
        .unwrap();
        // The same values laid out by hand as a [1, 8, 4, 4] map give the same picture, but
        // for the title that says where the map came from.
        let grid = featx_graph::TokenGrid::of(&[1, 17, 8]).unwrap();
        let map = grid.map_values(&values, 1);
        let by_hand = draw(
            &options(Kind::Heatmap),
            &[1, 8, 4, 4],
            first,
            &map,
            "ln (4x4 tokens)",
            None,
        )
        .unwrap();
        assert!(tokens.image == by_hand.image);
        // A channel grid works on tokens too; other 3-D shapes are refused.
        assert!(
            draw(
                &options(Kind::Grid),
                &[1, 17, 8],
                first,
                &values,
                "ln",
                None
            )
            .is_ok()
        );
        assert!(
            draw(
                &options(Kind::Heatmap),
                &[1, 11, 8],
                first,
                &values[..88],
                "x",
                None
            )
            .is_err()
        );
    }

    #[test]
    fn channels_last_maps_are_drawn_with_their_channels_first() {
        // Swin-like `[1, 3, 3, 5]` (rows, columns, channels): a 5-channel 3x3 map.
        let values: Vec<f32> = (0..45).map(|v| ((v * 7) % 11) as f32).collect();
        let last = Layout::ChannelsLast;
        let map: Vec<f32> = (0..5)
            .flat_map(|c| (0..9).map(move |p| (p, c)))
            .map(|(p, c)| values[p * 5 + c])
            .collect();
        for kind in [Kind::Heatmap, Kind::Grid] {
            let swin = draw(&options(kind), &[1, 3, 3, 5], last, &values, "norm", None).unwrap();
            let by_hand = draw(
                &options(kind),
                &[1, 5, 3, 3],
                Layout::ChannelsFirst,
                &map,
                "norm (channels last)",
                None,
            )
            .unwrap();
            assert!(swin.image == by_hand.image, "{kind:?}");
        }
        // Read channels-first, the same values are another picture.
        let first = draw(
            &options(Kind::Heatmap),
            &[1, 3, 3, 5],
            Layout::ChannelsFirst,
            &values,
            "norm (channels last)",
            None,
        )
        .unwrap();
        let swin = draw(
            &options(Kind::Heatmap),
            &[1, 3, 3, 5],
            last,
            &values,
            "norm",
            None,
        )
        .unwrap();
        assert!(first.image != swin.image);
        let scale = shared_scale(ReduceArg::Sum, last, &[(&[1, 3, 3, 5], &values)]).unwrap();
        let sums: Vec<f32> = values.chunks(5).map(|p| p.iter().sum()).collect();
        assert_eq!(scale, range(&sums));
    }

    #[test]
    fn a_shared_scale_spans_both_maps() {
        let a = [0.0f32, 1.0, 2.0, 3.0];
        let b = [-4.0f32, 0.0, 0.0, 8.0];
        let first = Layout::ChannelsFirst;
        let scale = shared_scale(
            ReduceArg::Sum,
            first,
            &[(&[1, 1, 2, 2], &a), (&[1, 1, 2, 2], &b)],
        );
        assert_eq!(scale.unwrap(), (-4.0, 8.0));
    }
}
