//! torchvision's MaxViT (MaxViT: Multi-Axis Vision Transformer, Tu et al., 2022), `maxvit_t`:
//! a convolutional stem, then four blocks of layers that each run an MBConv (pre-norm
//! BatchNorm, expansion, depthwise convolution, squeeze-excitation, projection), attention
//! inside 7x7 windows ("block" attention) and attention across a 7x7 grid spanning the map
//! ("grid" attention), each attention with a relative position bias; a LayerNorm, Linear,
//! Tanh, Linear head.
//!
//! FX traces into MaxViT's own modules (only `torch.nn` and torchvision.ops modules are
//! leaves): each window partition is `x.shape`, its `getitem`s, `floordiv`s, a `reshape`, a
//! `permute` and another `reshape`; grid attention's `SwapAxes` is a `torch.swapaxes` call;
//! attention is `torch.chunk`, `reshape`s, `permute`s, two `torch.einsum`s and the bias looked
//! up in its table. Each is a node here, named as FX names it. The attention windows are sized
//! for a 224x224 input at build time, so the model takes only that size.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
    PaddingConfig2d,
};
use burn::prelude::*;
use featx_graph::{Activation, NodeId, Window2d};

use crate::misc::{ConvNormActivation, ConvNormConfig, SqueezeExcitation};
use crate::registry::{Architecture, Init, Interpolation, Preprocessing, Row};
use crate::vit::NoParams;
use crate::{FeatureModel, InputSpec, ParamTensor, Size, Tracer};

/// The `eps` of MaxViT's BatchNorms (torchvision follows the original's `1e-3`).
const BN_EPS: f64 = 1e-3;

/// The `eps` of its LayerNorms (`nn.LayerNorm`'s default).
const LN_EPS: f64 = 1e-5;

/// The input height and width `maxvit_t` is built for (its weights' `min_size`).
const INPUT_SIZE: usize = 224;

/// torchvision's `MaxVit`: `stem`, `blocks`, `classifier`.
#[derive(Module, Debug)]
pub struct MaxVit {
    /// `Conv2dNormActivation(3, stem, 3, stride 2)` with GELU, then a 3x3
    /// `Conv2dNormActivation` with neither norm nor activation (only `1.0`, with a bias).
    stem: (ConvNormActivation, (Conv2d, NoParams)),
    blocks: Vec<MaxVitBlock>,
    /// `AdaptiveAvgPool2d(1)`, `Flatten`, `LayerNorm` (`2`), `Linear` (`3`), `Tanh`, a
    /// bias-free `Linear` (`5`).
    classifier: (NoParams, NoParams, LayerNorm, Linear, NoParams, Linear),
}

/// torchvision's `MaxVitBlock`: its `layers`, the first halving the map.
#[derive(Module, Debug)]
pub struct MaxVitBlock {
    layers: Vec<MaxVitLayer>,
}

/// torchvision's `MaxVitLayer`: an `nn.Sequential` named `layers` of an MBConv and the two
/// attentions.
#[derive(Module, Debug)]
pub struct MaxVitLayer {
    layers: LayerParts,
}

pub use parts::LayerParts;

/// [`LayerParts`] alone, where the lint on torchvision's field name `MBconv` (a state-dict
/// path, so spelled as torchvision spells it) is off: Burn's derive repeats the name in the
/// code it generates.
#[allow(non_snake_case)]
mod parts {
    use burn::prelude::*;

    use super::{MBConv, PartitionAttention};

    /// The modules of a [`super::MaxVitLayer`], named as torchvision's `OrderedDict` names
    /// them.
    #[derive(Module, Debug)]
    pub struct LayerParts {
        pub(super) MBconv: MBConv,
        pub(super) window_attention: PartitionAttention,
        pub(super) grid_attention: PartitionAttention,
    }
}

/// MaxViT's `MBConv`: `proj(x) + stochastic_depth(layers(x))`.
#[derive(Module, Debug)]
pub struct MBConv {
    /// At a block's first layer (stride 2, new width): `AvgPool2d(3, 2, 1)` (`0`) and a 1x1
    /// convolution with a bias (`1`); elsewhere `nn.Identity`.
    proj: Option<(NoParams, Conv2d)>,
    layers: MBConvLayers,
    /// Stochastic depth's probability; at 0 torchvision uses `nn.Identity` instead.
    #[module(skip)]
    p_stochastic: f64,
}

/// MBConv's `layers`: BatchNorm first (pre-norm), then expansion, depthwise convolution,
/// squeeze-excitation and projection.
#[derive(Module, Debug)]
pub struct MBConvLayers {
    pre_norm: BatchNorm,
    /// 1x1 expansion to four times the width, BatchNorm, GELU.
    conv_a: ConvNormActivation,
    /// 3x3 depthwise convolution (the layer's stride), BatchNorm, GELU.
    conv_b: ConvNormActivation,
    /// SiLU squeeze to a quarter of the output width, sigmoid scale.
    squeeze_excitation: SqueezeExcitation,
    /// 1x1 projection with a bias.
    conv_c: Conv2d,
}

/// torchvision's `PartitionAttentionLayer`: the map cut into windows (block attention) or
/// strided grid cells (grid attention), pre-norm attention and MLP on each, each added back
/// through stochastic depth, and the map put together again.
#[derive(Module, Debug)]
pub struct PartitionAttention {
    /// `LayerNorm` (`0`), the attention (`1`), `Dropout(0)` (`2`, no parameters).
    attn_layer: (LayerNorm, RelativeAttention),
    /// `LayerNorm` (`0`), `Linear` (`1`), GELU, `Linear` (`3`), `Dropout(0)`.
    mlp_layer: (LayerNorm, Linear, NoParams, Linear),
    #[module(skip)]
    partition: Partition,
}

/// How a [`PartitionAttention`] cuts its map (torchvision's `p`, `gh`, `gw` and swaps).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Partition {
    /// `partition_op`'s `p`: the side of the tiles the map is cut into: the window side
    /// (block attention), or the map side over the partition size (grid attention, which
    /// then attends across the tiles, one position from each).
    p: usize,
    /// The map side over `p`: `departition_op`'s `h_partitions` and `w_partitions`.
    g: usize,
    /// Grid attention: the window and position axes are swapped around the attention.
    grid: bool,
    /// Stochastic depth's probability.
    p_stochastic: f64,
}

/// torchvision's `RelativePositionalMultiHeadAttention` over `[B, G, P, D]` windows of
/// `P = size^2` positions: heads of `head_dim`, scores plus a learned bias per relative
/// offset.
#[derive(Module, Debug)]
pub struct RelativeAttention {
    to_qkv: Linear,
    merge: Linear,
    /// `[(2 size - 1)^2, heads]`: one bias per head and relative offset.
    relative_position_bias_table: Param<Tensor<2>>,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    head_dim: usize,
    /// The window side (`sqrt(max_seq_len)`).
    #[module(skip)]
    size: usize,
}

/// Configuration of a [`MaxVit`], as torchvision's `_maxvit` takes it for `maxvit_t` (the only
/// size it publishes): widths and depths of the four blocks, head width, partition size.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxVitConfig {
    /// Stem width.
    pub stem_channels: usize,
    /// Output width of each block.
    pub block_channels: Vec<usize>,
    /// Layers of each block.
    pub block_layers: Vec<usize>,
    /// Width of an attention head.
    pub head_dim: usize,
    /// Window side of block attention, and grid side of grid attention.
    pub partition_size: usize,
    /// Stochastic depth's probability at the last layer (from 0 at the first, linearly).
    pub stochastic_depth_prob: f64,
    /// Classifier outputs.
    pub num_classes: usize,
}

/// torchvision's `_get_conv_output_shape` of a 3x3, stride-2, padding-1 convolution.
fn halved(size: usize) -> usize {
    (size + 2 - 3) / 2 + 1
}

/// `_get_relative_position_index(size, size)`, flattened: for positions `i` and `j` of a
/// `size` x `size` window (row-major), the table row of their offset,
/// `(hi - hj + size - 1) * (2 size - 1) + (wi - wj + size - 1)`.
fn relative_position_index(size: usize) -> Vec<usize> {
    let positions = size * size;
    let mut index = Vec::with_capacity(positions * positions);
    for i in 0..positions {
        let (hi, wi) = (i / size, i % size);
        for j in 0..positions {
            let (hj, wj) = (j / size, j % size);
            index.push((hi + size - 1 - hj) * (2 * size - 1) + (wi + size - 1 - wj));
        }
    }
    index
}

impl MaxVitConfig {
    /// torchvision's `maxvit_t`.
    pub fn maxvit_t(num_classes: usize) -> Self {
        Self {
            stem_channels: 64,
            block_channels: vec![64, 128, 256, 512],
            block_layers: vec![2, 2, 5, 2],
            head_dim: 32,
            partition_size: 7,
            stochastic_depth_prob: 0.2,
            num_classes,
        }
    }

    /// Builds the model with freshly initialised weights on `device`, for 224x224 inputs.
    pub fn init(&self, device: &Device) -> MaxVit {
        let gelu = Some(Activation::Gelu);
        let stem = self.stem_channels;
        let stem_0 = ConvNormConfig::new([3, stem], 3, 2, gelu)
            .with_eps(BN_EPS)
            .init(device);
        let stem_1 = Conv2dConfig::new([stem, stem], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        // np.linspace(0, stochastic_depth_prob, layers in all).
        let total: usize = self.block_layers.iter().sum();
        let p_at = |i: usize| match total {
            0 | 1 => 0.0,
            _ => self.stochastic_depth_prob * i as f64 / (total - 1) as f64,
        };
        let mut grid = halved(INPUT_SIZE);
        let mut in_channels = stem;
        let mut layer_index = 0;
        let mut blocks = Vec::new();
        for (&out, &depth) in self.block_channels.iter().zip(&self.block_layers) {
            grid = halved(grid);
            let layers = (0..depth)
                .map(|i| {
                    let first = i == 0;
                    let layer = MaxVitLayer {
                        layers: LayerParts {
                            MBconv: self.mbconv(
                                [if first { in_channels } else { out }, out],
                                first,
                                p_at(layer_index),
                                device,
                            ),
                            window_attention: self.attention(
                                out,
                                grid,
                                false,
                                p_at(layer_index),
                                device,
                            ),
                            grid_attention: self.attention(
                                out,
                                grid,
                                true,
                                p_at(layer_index),
                                device,
                            ),
                        },
                    };
                    layer_index += 1;
                    layer
                })
                .collect();
            blocks.push(MaxVitBlock { layers });
            in_channels = out;
        }
        let last = in_channels;
        MaxVit {
            stem: (stem_0, (stem_1, NoParams)),
            blocks,
            classifier: (
                NoParams,
                NoParams,
                LayerNormConfig::new(last).with_epsilon(LN_EPS).init(device),
                LinearConfig::new(last, last).init(device),
                NoParams,
                LinearConfig::new(last, self.num_classes)
                    .with_bias(false)
                    .init(device),
            ),
        }
    }

    /// An `MBConv(in, out, expansion 4, squeeze 0.25)`, strided and projected at a block's
    /// first layer (the only one whose width changes).
    fn mbconv(&self, [cin, out]: [usize; 2], first: bool, p: f64, device: &Device) -> MBConv {
        let gelu = Some(Activation::Gelu);
        let stride = if first { 2 } else { 1 };
        let (mid, squeeze) = (out * 4, out / 4);
        let conv_1x1 = |channels| Conv2dConfig::new(channels, [1, 1]).init(device);
        MBConv {
            proj: first.then(|| (NoParams, conv_1x1([cin, out]))),
            layers: MBConvLayers {
                pre_norm: BatchNormConfig::new(cin).with_epsilon(BN_EPS).init(device),
                conv_a: ConvNormConfig::new([cin, mid], 1, 1, gelu)
                    .with_eps(BN_EPS)
                    .init(device),
                conv_b: ConvNormConfig::new([mid, mid], 3, stride, gelu)
                    .with_groups(mid)
                    .with_eps(BN_EPS)
                    .init(device),
                squeeze_excitation: SqueezeExcitation::new(
                    mid,
                    squeeze,
                    Activation::Silu,
                    Activation::Sigmoid,
                    device,
                ),
                conv_c: conv_1x1([mid, out]),
            },
            p_stochastic: p,
        }
    }

    /// A `PartitionAttentionLayer` of width `channels` on a `grid` x `grid` map, block
    /// (window) or grid partitioned.
    fn attention(
        &self,
        channels: usize,
        grid: usize,
        grid_type: bool,
        p: f64,
        device: &Device,
    ) -> PartitionAttention {
        let size = self.partition_size.max(1);
        let grid_tile = grid / size;
        let p_side = match grid_type {
            false => size,
            true => grid_tile,
        };
        let heads = channels / self.head_dim.max(1);
        let norm = || {
            LayerNormConfig::new(channels)
                .with_epsilon(LN_EPS)
                .init(device)
        };
        let table = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        }
        .init([(2 * size - 1) * (2 * size - 1), heads], device);
        PartitionAttention {
            attn_layer: (
                norm(),
                RelativeAttention {
                    to_qkv: LinearConfig::new(channels, 3 * heads * self.head_dim).init(device),
                    merge: LinearConfig::new(heads * self.head_dim, channels).init(device),
                    relative_position_bias_table: table,
                    heads,
                    head_dim: self.head_dim,
                    size,
                },
            ),
            mlp_layer: (
                norm(),
                LinearConfig::new(channels, 4 * channels).init(device),
                NoParams,
                LinearConfig::new(4 * channels, channels).init(device),
            ),
            partition: Partition {
                p: p_side,
                g: grid / p_side.max(1),
                grid: grid_type,
                p_stochastic: p,
            },
        }
    }
}

impl MBConv {
    /// `MBConv.forward`: `proj(x) + stochastic_depth(layers(x))`.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let res = match &self.proj {
            Some((_, conv)) => t.scope("proj", |t| {
                let pooled = t.avg_pool2d("0", Window2d::square(3, 2, 1), false, x);
                t.conv2d("1", conv, pooled)
            }),
            None => t.identity_module("proj", x),
        };
        let l = &self.layers;
        let y = t.scope("layers", |t| {
            let y = t.batch_norm("pre_norm", &l.pre_norm, x);
            let y = t.conv_norm_activation("conv_a", &l.conv_a, y);
            let y = t.conv_norm_activation("conv_b", &l.conv_b, y);
            let y = t.squeeze_excitation("squeeze_excitation", &l.squeeze_excitation, y);
            t.conv2d("conv_c", &l.conv_c, y)
        });
        let y = match self.p_stochastic > 0.0 {
            true => t.stochastic_depth("stochastic_depth", self.p_stochastic, true, y),
            false => t.identity_module("stochastic_depth", y),
        };
        t.add(res, y)
    }
}

/// `x.shape` unpacked into four names (`B, C, H, W = x.shape`): the `getattr` node, then a
/// `getitem` per entry.
fn unpack_shape(t: &mut Tracer, x: NodeId) -> [NodeId; 4] {
    let shape = t.shape(x);
    [0, 1, 2, 3].map(|i| t.get_item(shape, i))
}

impl Partition {
    /// `WindowPartition.forward(x, p)`: `[B, C, H, W]` to `[B, (H/p)(W/p), p*p, C]`.
    fn partition(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let p = self.p as i64;
        let [b, c, h, w] = unpack_shape(t, x);
        let (hp, wp) = (t.floordiv(h, p), t.floordiv(w, p));
        let x = t.reshape(
            x,
            &[
                Size::Node(b),
                Size::Node(c),
                Size::Node(hp),
                Size::Const(p),
                Size::Node(wp),
                Size::Const(p),
            ],
        );
        let x = t.permute(x, &[0, 2, 4, 3, 5, 1]);
        let (hp, wp) = (t.floordiv(h, p), t.floordiv(w, p));
        let cells = t.mul(hp, wp);
        let sizes = [
            Size::Node(b),
            Size::Node(cells),
            Size::Const(p * p),
            Size::Node(c),
        ];
        t.reshape(x, &sizes)
    }

    /// `WindowDepartition.forward(x, p, g, g)`: `[B, g*g, p*p, C]` back to `[B, C, g*p, g*p]`.
    fn departition(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let (p, g) = (self.p as i64, self.g as i64);
        let [b, _, _, c] = unpack_shape(t, x);
        let x = t.reshape(
            x,
            &[
                Size::Node(b),
                Size::Const(g),
                Size::Const(g),
                Size::Const(p),
                Size::Const(p),
                Size::Node(c),
            ],
        );
        let x = t.permute(x, &[0, 5, 1, 3, 2, 4]);
        let sizes = [
            Size::Node(b),
            Size::Node(c),
            Size::Const(g * p),
            Size::Const(g * p),
        ];
        t.reshape(x, &sizes)
    }

    /// `partition_swap` or `departition_swap` at `name`: grid attention's `SwapAxes(-2, -3)`
    /// of the rank-4 windows (traced into `torch.swapaxes`), block attention's `nn.Identity`.
    fn swap(&self, t: &mut Tracer, name: &str, x: NodeId) -> NodeId {
        match self.grid {
            true => t.scope(name, |t| t.swapaxes(x, 4, 2, 1)),
            false => t.identity_module(name, x),
        }
    }
}

impl RelativeAttention {
    /// `RelativePositionalMultiHeadAttention.forward` of `[B, G, P, D]` windows.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let [b, g, p, d] = unpack_shape(t, x);
        let qkv = t.linear("to_qkv", &self.to_qkv, x);
        let [q, k, v] = t.chunk_function::<3>(qkv, 3);
        let (heads, head_dim) = (self.heads as i64, self.head_dim as i64);
        let mut split_heads = |y| {
            let y = t.reshape(
                y,
                &[
                    Size::Node(b),
                    Size::Node(g),
                    Size::Node(p),
                    Size::Const(heads),
                    Size::Const(head_dim),
                ],
            );
            t.permute(y, &[0, 1, 3, 2, 4])
        };
        let (q, k, v) = (split_heads(q), split_heads(k), split_heads(v));
        // `k * self.scale_factor`, `feat_dim ** -0.5` (the full width, not a head's).
        let feat_dim = self.heads * self.head_dim;
        let k = t.mul_scalar(k, (feat_dim as f64).powf(-0.5));
        let scores = t.einsum("B G H I D, B G H J D -> B G H I J", q, k);
        // `get_relative_positional_bias()`.
        let table = ParamTensor::R2(self.relative_position_bias_table.clone());
        let table = t.parameter("relative_position_bias_table", table);
        let positions = self.size * self.size;
        let index = relative_position_index(self.size);
        let bias = t.index_rows(table, index, vec![positions * positions]);
        let side = positions as i64;
        let bias = t.view(bias, &[side, side, -1]);
        let bias = t.permute(bias, &[2, 0, 1]);
        let bias = t.contiguous(bias);
        let bias = t.unsqueeze_method(bias, 0);
        let scores = t.add(scores, bias);
        let weights = t.softmax(scores, 4);
        let out = t.einsum("B G H I J, B G H J D -> B G H I D", weights, v);
        let out = t.permute(out, &[0, 1, 3, 2, 4]);
        let out = t.reshape(
            out,
            &[Size::Node(b), Size::Node(g), Size::Node(p), Size::Node(d)],
        );
        t.linear("merge", &self.merge, out)
    }
}

impl PartitionAttention {
    /// `PartitionAttentionLayer.forward`.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let part = self.partition;
        let x = t.scope("partition_op", |t| part.partition(t, x));
        let x = part.swap(t, "partition_swap", x);
        let (norm, attention) = &self.attn_layer;
        let y = t.scope("attn_layer", |t| {
            let y = t.layer_norm("0", norm, LN_EPS, x);
            let y = t.scope("1", |t| attention.trace(t, y));
            t.dropout("2", 0.0, y)
        });
        let y = t.stochastic_depth("stochastic_dropout", part.p_stochastic, true, y);
        let x = t.add(x, y);
        let (norm, fc1, _, fc2) = &self.mlp_layer;
        let y = t.scope("mlp_layer", |t| {
            let y = t.layer_norm("0", norm, LN_EPS, x);
            let y = t.linear("1", fc1, y);
            let y = t.gelu("2", y);
            let y = t.linear("3", fc2, y);
            t.dropout("4", 0.0, y)
        });
        // The same `stochastic_dropout` module, called again: FX names it `_1`.
        let y = t.stochastic_depth("stochastic_dropout", part.p_stochastic, true, y);
        let x = t.add(x, y);
        let x = part.swap(t, "departition_swap", x);
        t.scope("departition_op", |t| part.departition(t, x))
    }
}

impl MaxVitLayer {
    /// `MaxVitLayer.forward`: MBConv, block attention, grid attention.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let l = &self.layers;
        t.scope("layers", |t| {
            let x = t.scope("MBconv", |t| l.MBconv.trace(t, x));
            let x = t.scope("window_attention", |t| l.window_attention.trace(t, x));
            t.scope("grid_attention", |t| l.grid_attention.trace(t, x))
        })
    }
}

impl FeatureModel for MaxVit {
    fn name(&self) -> &str {
        "maxvit_t"
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: 3,
            size: Some([INPUT_SIZE, INPUT_SIZE]),
            nominal_size: [INPUT_SIZE, INPUT_SIZE],
        }
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let (stem_0, (stem_1, _)) = &self.stem;
        let x = t.scope("stem", |t| {
            let x = t.conv_norm_activation("0", stem_0, x);
            t.conv_without_norm("1", stem_1, x)
        });
        let x = t.scope("blocks", |t| {
            self.blocks.iter().enumerate().fold(x, |x, (i, block)| {
                t.scope(&i.to_string(), |t| {
                    t.scope("layers", |t| {
                        block.layers.iter().enumerate().fold(x, |x, (j, layer)| {
                            t.scope(&j.to_string(), |t| layer.trace(t, x))
                        })
                    })
                })
            })
        });
        let (_, _, norm, fc, _, head) = &self.classifier;
        t.scope("classifier", |t| {
            let x = t.adaptive_avg_pool2d("0", [1, 1], x);
            let x = t.flatten_module("1", 1, x);
            let x = t.layer_norm("2", norm, LN_EPS, x);
            let x = t.linear("3", fc, x);
            let x = t.tanh("4", x);
            t.linear("5", head, x)
        })
    }
}

/// The MaxViT rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    Row::new("maxvit_t", "MaxViT", "torchvision's MaxViT-T (MBConv, block and grid attention; 224x224)")
        .weights("MaxVit_T_Weights.IMAGENET1K_V1", "maxvit_t-bc5ab103.pth")
        .preprocess(Preprocessing::sized(224, 224, Interpolation::Bicubic))
        .model(&Init::new(|d, a| MaxVitConfig::maxvit_t(a.classes()).init(d))),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The index's structure, as `_get_relative_position_index` builds it: a position and
    /// itself are offset 0 (the table's middle row); swapping two positions mirrors the
    /// offset about it; every row of the table is used.
    #[test]
    fn relative_position_index_mirrors_offsets_about_the_middle_row() {
        for size in [1, 2, 7] {
            let index = relative_position_index(size);
            let positions = size * size;
            let rows = (2 * size - 1) * (2 * size - 1);
            let middle = rows / 2;
            assert_eq!(index.len(), positions * positions);
            for i in 0..positions {
                assert_eq!(index[i * positions + i], middle);
                for j in 0..positions {
                    assert_eq!(
                        index[i * positions + j] + index[j * positions + i],
                        2 * middle
                    );
                }
            }
            let mut used = index.clone();
            used.sort_unstable();
            used.dedup();
            assert_eq!(used, (0..rows).collect::<Vec<_>>(), "size {size}");
        }
    }
}
