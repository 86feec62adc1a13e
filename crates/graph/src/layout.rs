//! Where a node's value keeps its channels, told from the graph, and how pictures and class
//! activation maps read a value as a feature map `[N, C, h, w]`.
//!
//! A rank-4 value is `[N, C, H, W]` or `[N, H, W, C]`, and its shape cannot say which (Swin's
//! `[1, 56, 56, 96]`, or `[1, 7, 7, 768]` where 7 channels of 7x768 would fit as well). The
//! graph can: a value is channels-last from a permute of a channels-first map by
//! `[0, 2, 3, 1]` (Swin's `features.0.1`, ConvNeXt's block permutes), through the ops that
//! work position by position on the last axis or elementwise (LayerNorm, Linear, MLPs,
//! additions, activations, dropout) and Swin's window attention and patch merging, until a
//! permute by `[0, 3, 1, 2]` puts the channels first again.

use crate::ops::Op;
use crate::{Feature, Graph, NodeId, TokenGrid};

/// Where a value keeps its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `[N, C, H, W]`, and every value that is no channels-last map.
    #[default]
    ChannelsFirst,
    /// `[N, H, W, C]`.
    ChannelsLast,
}

impl Graph {
    /// Every node's [`Layout`], in node order.
    pub fn layouts(&self) -> Vec<Layout> {
        let mut layouts: Vec<Layout> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let inputs: Vec<Layout> = node
                .inputs
                .iter()
                .map(|i| layouts.get(i.0).copied().unwrap_or_default())
                .collect();
            layouts.push(layout_of(&node.op, &inputs));
        }
        layouts
    }

    /// Node `id`'s [`Layout`].
    pub fn layout(&self, id: NodeId) -> Layout {
        self.layouts().get(id.0).copied().unwrap_or_default()
    }

    /// How node `id`'s value, of `shape`, reads as a feature map (see [`MapView::of`]).
    pub fn map_view(&self, id: NodeId, shape: &[usize]) -> Option<MapView> {
        MapView::of(shape, self.layout(id))
    }
}

/// The layout of an op's value from its inputs' layouts.
fn layout_of(op: &Op, inputs: &[Layout]) -> Layout {
    let first = inputs.first().copied().unwrap_or_default();
    let any_last = inputs.contains(&Layout::ChannelsLast);
    match op {
        Op::Permute(p) => match (p.dims.as_slice(), first) {
            ([0, 2, 3, 1], Layout::ChannelsFirst) => Layout::ChannelsLast,
            _ => Layout::ChannelsFirst,
        },
        // Swin's ops take and give channels-last maps.
        Op::ShiftedWindowAttention(_) | Op::PatchMergingPad(_) => Layout::ChannelsLast,
        // The last axis position by position: the input's layout.
        Op::LayerNorm(_) | Op::Linear(_) | Op::Mlp(_) => first,
        // Elementwise: channels-last when a channels-last map takes part.
        Op::Add(_)
        | Op::Mul(_)
        | Op::Binary(_)
        | Op::Activation(_)
        | Op::Unary(_)
        | Op::Dropout(_)
        | Op::StochasticDepth(_)
        | Op::Identity(_)
            if any_last =>
        {
            Layout::ChannelsLast
        }
        _ => Layout::ChannelsFirst,
    }
}

/// How a value reads as a feature map `[N, C, h, w]`: what pictures draw and class activation
/// maps weigh, as pytorch-grad-cam's `reshape_transform` reads transformer layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapView {
    /// `[N, C, H, W]` as it is.
    Map,
    /// `[N, H, W, C]` with its channels put first: `tensor.permute(0, 3, 1, 2)`, the
    /// `reshape_transform` for torchvision's Swin Transformer.
    ChannelsLast,
    /// A token sequence `[N, T, C]` on its patch grid (ViT's).
    Tokens(TokenGrid),
}

impl MapView {
    /// The view of a value of `shape` laid out as `layout`: a rank-4 value by its layout, a
    /// rank-3 one when it is tokens on a grid ([`TokenGrid::of`]); `None` for anything else.
    pub fn of(shape: &[usize], layout: Layout) -> Option<MapView> {
        match (shape.len(), layout) {
            (4, Layout::ChannelsFirst) => Some(MapView::Map),
            (4, Layout::ChannelsLast) => Some(MapView::ChannelsLast),
            (3, _) => TokenGrid::of(shape).map(MapView::Tokens),
            _ => None,
        }
    }

    /// The map's shape `[N, C, h, w]` for a value of `shape` (`None` if it does not fit).
    pub fn map_shape(&self, shape: &[usize]) -> Option<[usize; 4]> {
        match (*self, shape) {
            (MapView::Map, &[n, c, h, w]) => Some([n, c, h, w]),
            (MapView::ChannelsLast, &[n, h, w, c]) => Some([n, c, h, w]),
            (MapView::Tokens(g), &[n, t, c]) if t == g.skip + g.h * g.w && c == g.channels => {
                Some([n, c, g.h, g.w])
            }
            _ => None,
        }
    }

    /// The feature as the map `[N, C, h, w]` (`None` if it does not fit).
    pub fn to_map(&self, feature: Feature) -> Option<Feature> {
        self.map_shape(&feature.dims())?;
        match self {
            MapView::Map => Some(feature),
            MapView::ChannelsLast => feature.permute(&[0, 3, 1, 2]),
            MapView::Tokens(grid) => grid.to_map(feature),
        }
    }

    /// The first `n` samples of a value of `shape` (row-major `values`) as the map's
    /// row-major values, `[n, C, h, w]` (`None` if the shape does not fit or the values are
    /// too few).
    pub fn map_values(&self, shape: &[usize], values: &[f32], n: usize) -> Option<Vec<f32>> {
        let [total, c, h, w] = self.map_shape(shape)?;
        let n = n.min(total);
        let per_sample: usize = shape[1..].iter().product();
        let values = values.get(..n * per_sample)?;
        Some(match self {
            MapView::Map => values.to_vec(),
            MapView::ChannelsLast => {
                let hw = h * w;
                let mut out = vec![0.0; n * c * hw];
                for i in 0..n {
                    for (p, pixel) in values[i * per_sample..][..per_sample]
                        .chunks_exact(c)
                        .enumerate()
                    {
                        for (ch, &v) in pixel.iter().enumerate() {
                            out[(i * c + ch) * hw + p] = v;
                        }
                    }
                }
                out
            }
            MapView::Tokens(grid) => grid.map_values(values, n),
        })
    }

    /// What a picture's title says about the reading, if anything (`4x4 tokens`,
    /// `channels last`).
    pub fn note(&self) -> Option<String> {
        match self {
            MapView::Map => None,
            MapView::ChannelsLast => Some("channels last".into()),
            MapView::Tokens(g) => Some(format!("{}x{} tokens", g.h, g.w)),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::TensorData;

    use super::*;
    use crate::GraphBuilder;
    use crate::ops::{self, Activation};

    #[test]
    fn channels_are_last_between_the_permutes() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", 3);
        let conv = b.call_module("conv", "Conv2d", ops::Identity, &[x]);
        let nhwc = b.call_module(
            "permute",
            "Permute",
            ops::Permute {
                dims: vec![0, 2, 3, 1],
            },
            &[conv],
        );
        let norm = ops::LayerNorm {
            features: 8,
            eps: 1e-5,
        };
        let norm = b.call_module("norm", "LayerNorm", norm, &[nhwc]);
        let act = b.call_module("act", "GELU", Activation::Gelu, &[norm]);
        let sum = b.call_function("add", "operator.add", ops::Add, &[nhwc, act]);
        let merged = b.call_function("pad", "f", ops::PatchMergingPad, &[sum]);
        let back = b.call_module(
            "back",
            "Permute",
            ops::Permute {
                dims: vec![0, 3, 1, 2],
            },
            &[merged],
        );
        let pool = b.call_module(
            "pool",
            "AdaptiveAvgPool2d",
            ops::AdaptiveAvgPool2d { output: [1, 1] },
            &[back],
        );
        let graph = b.finish(pool);
        use Layout::{ChannelsFirst as F, ChannelsLast as L};
        assert_eq!(graph.layouts(), [F, F, L, L, L, L, L, F, F]);
        assert_eq!(
            graph.map_view(sum, &[1, 7, 7, 8]),
            Some(MapView::ChannelsLast)
        );
        assert_eq!(graph.map_view(back, &[1, 8, 7, 7]), Some(MapView::Map));
        assert_eq!(graph.map_view(pool, &[1, 8]), None);
    }

    #[test]
    fn a_channels_last_map_is_read_with_its_channels_first() {
        // [1, 2, 3, 4]: value = 100 row + 10 column + channel.
        let values: Vec<f32> = (0..2)
            .flat_map(|r| {
                (0..3).flat_map(move |c| (0..4).map(move |ch| (100 * r + 10 * c + ch) as f32))
            })
            .collect();
        let view = MapView::of(&[1, 2, 3, 4], Layout::ChannelsLast).unwrap();
        assert_eq!(view.map_shape(&[1, 2, 3, 4]), Some([1, 4, 2, 3]));
        let map = view.map_values(&[1, 2, 3, 4], &values, 1).unwrap();
        // Channel 3, row 1, column 2.
        assert_eq!(map[3 * 6 + 3 + 2], 123.0);
        let feature = Feature::from(Tensor::<4>::from_data(
            TensorData::new(values, [1, 2, 3, 4]),
            &Device::flex(),
        ));
        let tensor = view.to_map(feature).unwrap();
        assert_eq!(tensor.dims(), [1, 4, 2, 3]);
        assert_eq!(tensor.to_vec_f32().unwrap(), map);
        assert_eq!(view.note().as_deref(), Some("channels last"));
        // Tokens keep their grid; other ranks are no map.
        assert!(matches!(
            MapView::of(&[1, 17, 8], Layout::ChannelsFirst),
            Some(MapView::Tokens(_))
        ));
        assert_eq!(MapView::of(&[1, 8], Layout::ChannelsLast), None);
        assert_eq!(view.map_shape(&[1, 2, 3]), None);
    }
}
