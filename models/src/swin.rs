//! torchvision's Swin Transformer (`swin_t`, `swin_s`, `swin_b`) and Swin Transformer V2
//! (`swin_v2_t`, `swin_v2_s`, `swin_v2_b`): 4x4 patches embedded by a strided convolution,
//! then four stages of blocks attending inside (shifted) windows, with patch merging between
//! them. Features are channels-last maps `[N, H, W, C]` from `features.0` on, until the final
//! `permute` back to `[N, C, H, W]`.
//!
//! torchvision wraps `shifted_window_attention`, `_get_relative_position_bias` and
//! `_patch_merging_pad` with `torch.fx.wrap`, so each is one FX node (one op here). The
//! attention's weights are `get_attr` nodes read by that node; its `relative_position_index`
//! buffer (and V2's `relative_coords_table`) FX reads without naming, so they are no nodes.

use burn::module::{Param, ParamId};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::{Shape, TensorData};
use featx_graph::NodeId;
use featx_graph::ops::ShiftedWindowAttention;

use crate::registry::{Architecture, Init, Interpolation, Preprocessing, Row};
use crate::vit::{MlpEntry, NoParams};
use crate::{FeatureModel, ParamTensor, Tracer};

/// The `eps` of every LayerNorm in torchvision's Swin Transformers.
const EPS: f64 = 1e-5;

/// torchvision's `SwinTransformer`: `features` (patch embedding, four stages of blocks with
/// patch merging between them), `norm`, `permute`, `avgpool`, `flatten`, `head`.
#[derive(Module, Debug)]
pub struct SwinTransformer {
    features: Vec<Feature>,
    norm: LayerNorm,
    head: Linear,
    /// The architecture's name, from its configuration.
    #[module(skip)]
    name: String,
}

/// One entry of Swin's `features` Sequential.
// Built once per model; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Feature {
    /// `features.0`: `Sequential(Conv2d(3, C, 4, stride 4), Permute([0, 2, 3, 1]),
    /// LayerNorm(C))`.
    Stem(Stem),
    /// A stage: a Sequential of `SwinTransformerBlock`s (`SwinTransformerBlockV2`s).
    Stage(Vec<SwinBlock>),
    /// `PatchMerging` (`PatchMergingV2`).
    Merge(PatchMerging),
}

/// The patch embedding: convolution (`0`), `Permute` (`1`), LayerNorm (`2`).
pub type Stem = (Conv2d, NoParams, LayerNorm);

/// torchvision's `PatchMerging` / `PatchMergingV2`: `_patch_merging_pad`, then LayerNorm over
/// the `4C` channels and the Linear to `2C` (V2: the Linear, then LayerNorm over `2C`).
#[derive(Module, Debug)]
pub struct PatchMerging {
    reduction: Linear,
    norm: LayerNorm,
    /// `PatchMergingV2`.
    #[module(skip)]
    v2: bool,
}

/// torchvision's `SwinTransformerBlock`: `x + sd(attn(norm1(x)))`, then
/// `+ sd(mlp(norm2(.)))`; V2 (`SwinTransformerBlockV2`) normalises after: `x + sd(norm1(attn(x)))`.
#[derive(Module, Debug)]
pub struct SwinBlock {
    norm1: LayerNorm,
    attn: WindowAttention,
    norm2: LayerNorm,
    /// torchvision.ops' `MLP`: Linear (`0`), GELU, Dropout, Linear (`3`), Dropout.
    mlp: Vec<MlpEntry>,
    /// Stochastic depth probability (train mode only).
    #[module(skip)]
    sd_prob: f64,
    /// `SwinTransformerBlockV2`.
    #[module(skip)]
    v2: bool,
}

/// torchvision's `ShiftedWindowAttention` (V1: a learned table of relative position biases)
/// or `ShiftedWindowAttentionV2` (a continuous position bias MLP on log-spaced relative
/// coordinates, and cosine attention with a learned `logit_scale`).
#[derive(Module, Debug)]
pub struct WindowAttention {
    qkv: Projection,
    proj: Projection,
    /// V1: `[(2 wh - 1) (2 ww - 1), heads]`.
    relative_position_bias_table: Option<Param<Tensor<2>>>,
    /// V2: `[heads, 1, 1]`.
    logit_scale: Option<Param<Tensor<3>>>,
    /// V2: Linear(2, 512) (`0`), ReLU, Linear(512, heads, no bias) (`2`); empty in V1.
    cpb_mlp: Vec<MlpEntry>,
    /// V2's buffer `[1, 2 wh - 1, 2 ww - 1, 2]` the bias MLP reads (a state-dict entry).
    relative_coords_table: Option<Param<Tensor<4>>>,
    #[module(skip)]
    window: [usize; 2],
    #[module(skip)]
    shift: [usize; 2],
    #[module(skip)]
    num_heads: usize,
}

/// An `nn.Linear` whose weight and bias `shifted_window_attention` reads as tensors
/// (`get_attr` nodes): kept in PyTorch's `[out, in]` layout, as those nodes' values are.
#[derive(Module, Debug)]
pub struct Projection {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

impl Projection {
    fn new(inputs: usize, outputs: usize, device: &Device) -> Self {
        Self {
            weight: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([outputs, inputs], device),
            bias: Initializer::Zeros.init([outputs], device),
        }
    }
}

/// Configuration of a [`SwinTransformer`], as torchvision's `SwinTransformer(patch_size,
/// embed_dim, depths, num_heads, window_size, stochastic_depth_prob, block,
/// downsample_layer)` takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SwinConfig {
    /// The architecture's name (`swin_t`), which the model reports.
    pub name: String,
    /// Patch height and width (the embedding convolution's kernel and stride).
    pub patch_size: usize,
    /// Channels of the first stage (doubled at each merge).
    pub embed_dim: usize,
    /// Blocks of each stage (torchvision's builders: four stages).
    pub depths: Vec<usize>,
    /// Attention heads of each stage.
    pub num_heads: Vec<usize>,
    /// Window height and width.
    pub window: usize,
    /// The last block's stochastic depth probability (linearly from 0 at the first).
    pub stochastic_depth_prob: f64,
    /// Swin Transformer V2's blocks and patch merging.
    pub v2: bool,
    /// Classifier outputs.
    pub num_classes: usize,
}

impl SwinConfig {
    fn named(
        name: &str,
        embed_dim: usize,
        depths: [usize; 4],
        num_heads: [usize; 4],
        sd: f64,
        v2: bool,
        num_classes: usize,
    ) -> Self {
        Self {
            name: name.into(),
            patch_size: 4,
            embed_dim,
            depths: depths.to_vec(),
            num_heads: num_heads.to_vec(),
            window: if v2 { 8 } else { 7 },
            stochastic_depth_prob: sd,
            v2,
            num_classes,
        }
    }

    /// torchvision's `swin_t`.
    pub fn swin_t(num_classes: usize) -> Self {
        Self::named(
            "swin_t",
            96,
            [2, 2, 6, 2],
            [3, 6, 12, 24],
            0.2,
            false,
            num_classes,
        )
    }

    /// torchvision's `swin_s`.
    pub fn swin_s(num_classes: usize) -> Self {
        Self::named(
            "swin_s",
            96,
            [2, 2, 18, 2],
            [3, 6, 12, 24],
            0.3,
            false,
            num_classes,
        )
    }

    /// torchvision's `swin_b`.
    pub fn swin_b(num_classes: usize) -> Self {
        Self::named(
            "swin_b",
            128,
            [2, 2, 18, 2],
            [4, 8, 16, 32],
            0.5,
            false,
            num_classes,
        )
    }

    /// torchvision's `swin_v2_t`.
    pub fn swin_v2_t(num_classes: usize) -> Self {
        Self::named(
            "swin_v2_t",
            96,
            [2, 2, 6, 2],
            [3, 6, 12, 24],
            0.2,
            true,
            num_classes,
        )
    }

    /// torchvision's `swin_v2_s`.
    pub fn swin_v2_s(num_classes: usize) -> Self {
        Self::named(
            "swin_v2_s",
            96,
            [2, 2, 18, 2],
            [3, 6, 12, 24],
            0.3,
            true,
            num_classes,
        )
    }

    /// torchvision's `swin_v2_b`.
    pub fn swin_v2_b(num_classes: usize) -> Self {
        Self::named(
            "swin_v2_b",
            128,
            [2, 2, 18, 2],
            [4, 8, 16, 32],
            0.5,
            true,
            num_classes,
        )
    }

    /// Builds the model with freshly initialised weights on `device` (V2's
    /// `relative_coords_table` is the buffer torchvision computes, not random).
    pub fn init(&self, device: &Device) -> SwinTransformer {
        let norm = |c: usize| LayerNormConfig::new(c).with_epsilon(EPS).init(device);
        let linear = |i: usize, o: usize, bias: bool| {
            LinearConfig::new(i, o)
                .with_bias(bias)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device)
        };
        let (dim, patch) = (self.embed_dim, self.patch_size);
        let stem = Conv2dConfig::new([3, dim], [patch, patch])
            .with_stride([patch, patch])
            .init(device);
        let mut features = vec![Feature::Stem((stem, NoParams, norm(dim)))];
        let total: usize = self.depths.iter().sum();
        let mut block_id = 0;
        let stages = self.depths.len();
        for (stage, &depth) in self.depths.iter().enumerate() {
            let dim = dim << stage;
            let heads = self.num_heads.get(stage).copied().unwrap_or(1);
            let blocks = (0..depth)
                .map(|i| {
                    let sd_prob = self.stochastic_depth_prob * block_id as f64
                        / (total.saturating_sub(1).max(1)) as f64;
                    block_id += 1;
                    let shift = if i % 2 == 0 { 0 } else { self.window / 2 };
                    SwinBlock {
                        norm1: norm(dim),
                        attn: self.attention(dim, heads, shift, device),
                        norm2: norm(dim),
                        mlp: vec![
                            MlpEntry::Linear(linear(dim, 4 * dim, true)),
                            MlpEntry::Stateless(NoParams),
                            MlpEntry::Stateless(NoParams),
                            MlpEntry::Linear(linear(4 * dim, dim, true)),
                            MlpEntry::Stateless(NoParams),
                        ],
                        sd_prob,
                        v2: self.v2,
                    }
                })
                .collect();
            features.push(Feature::Stage(blocks));
            if stage + 1 < stages {
                features.push(Feature::Merge(PatchMerging {
                    reduction: linear(4 * dim, 2 * dim, false),
                    norm: norm(if self.v2 { 2 * dim } else { 4 * dim }),
                    v2: self.v2,
                }));
            }
        }
        let last = dim << stages.saturating_sub(1);
        SwinTransformer {
            features,
            norm: norm(last),
            head: linear(last, self.num_classes, true),
            name: self.name.clone(),
        }
    }

    /// A block's attention of `dim` channels and `heads` heads, shifted by `shift`.
    fn attention(
        &self,
        dim: usize,
        heads: usize,
        shift: usize,
        device: &Device,
    ) -> WindowAttention {
        let w = self.window;
        let offsets = (2 * w).saturating_sub(1).pow(2);
        let (table, logit_scale, cpb_mlp, coords) = if self.v2 {
            let cpb_mlp = vec![
                MlpEntry::Linear(LinearConfig::new(2, 512).init(device)),
                MlpEntry::Stateless(NoParams),
                MlpEntry::Linear(LinearConfig::new(512, heads).with_bias(false).init(device)),
            ];
            let logit_scale =
                Initializer::Constant { value: 10f64.ln() }.init([heads, 1, 1], device);
            (
                None,
                Some(logit_scale),
                cpb_mlp,
                Some(relative_coords_table(w, device)),
            )
        } else {
            let table = Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([offsets, heads], device);
            (Some(table), None, Vec::new(), None)
        };
        WindowAttention {
            qkv: Projection::new(dim, 3 * dim, device),
            proj: Projection::new(dim, dim, device),
            relative_position_bias_table: table,
            logit_scale,
            cpb_mlp,
            relative_coords_table: coords,
            window: [w, w],
            shift: [shift, shift],
            num_heads: heads,
        }
    }
}

/// Swin V2's `relative_coords_table` buffer for a `w x w` window, as torchvision computes it:
/// every offset `(dy, dx)` scaled to `[-8, 8]` by `8 d / (w - 1)`, then `sign(v) log2(|v| + 1)
/// / 3`. Drawn lazily, as random parameters are.
fn relative_coords_table(w: usize, device: &Device) -> Param<Tensor<4>> {
    let side = (2 * w).saturating_sub(1);
    let scale = |d: usize| {
        let v = (d as f32 - (w as f32 - 1.0)) / (w as f32 - 1.0) * 8.0;
        // At 0 the logarithm is 0, whatever the sign says.
        v.signum() * (v.abs() + 1.0).log2() / 3.0
    };
    let values: Vec<f32> = (0..side)
        .flat_map(|dy| (0..side).flat_map(move |dx| [scale(dy), scale(dx)]))
        .collect();
    let shape = [1, side, side, 2];
    Param::uninitialized(
        ParamId::new(),
        move |device, _| Tensor::from_data(TensorData::new(values, shape), device),
        device.clone(),
        false,
        Shape::new(shape),
    )
}

/// The two Linears of a torchvision `MLP` or `cpb_mlp` Sequential, in order.
fn linears(entries: &[MlpEntry]) -> Vec<&Linear> {
    entries
        .iter()
        .filter_map(|e| match e {
            MlpEntry::Linear(l) => Some(l),
            MlpEntry::Stateless(_) => None,
        })
        .collect()
}

impl WindowAttention {
    /// `ShiftedWindowAttention.forward` (V2's), in the module's scope.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let heads = self.num_heads;
        let bias = match (
            &self.relative_position_bias_table,
            &self.relative_coords_table,
        ) {
            (Some(table), _) => {
                let table = t.parameter(
                    "relative_position_bias_table",
                    ParamTensor::R2(table.clone()),
                );
                t.relative_position_bias(table, self.window)
            }
            (None, Some(coords)) => {
                let layers = linears(&self.cpb_mlp);
                let table = t.scope("cpb_mlp", |t| match layers.as_slice() {
                    [fc1, fc2] => {
                        let h = t.linear_of_buffer("0", fc1, ParamTensor::R4(coords.clone()));
                        let h = t.relu("1", h);
                        t.linear("2", fc2, h)
                    }
                    // A model built here always has two.
                    _ => x,
                });
                let table = t.view(table, &[-1, heads as i64]);
                let bias = t.relative_position_bias(table, self.window);
                let bias = t.functional_sigmoid(bias);
                t.mul_scalar(bias, 16.0)
            }
            // A model built here always has one of the two.
            (None, None) => x,
        };
        let mut params = vec![
            t.parameter("qkv.weight", ParamTensor::R2(self.qkv.weight.clone())),
            t.parameter("proj.weight", ParamTensor::R2(self.proj.weight.clone())),
            t.parameter("qkv.bias", ParamTensor::R1(self.qkv.bias.clone())),
            t.parameter("proj.bias", ParamTensor::R1(self.proj.bias.clone())),
        ];
        if let Some(scale) = &self.logit_scale {
            params.push(t.parameter("logit_scale", ParamTensor::R3(scale.clone())));
        }
        let op = ShiftedWindowAttention {
            window: self.window,
            num_heads: heads,
            shift: self.shift,
            attention_dropout: 0.0,
            dropout: 0.0,
            cosine: self.logit_scale.is_some(),
        };
        t.shifted_window_attention(op, x, bias, &params)
    }
}

impl SwinBlock {
    /// `SwinTransformerBlock.forward` (`SwinTransformerBlockV2.forward`).
    fn trace(&self, t: &mut Tracer, input: NodeId) -> NodeId {
        let mlp = |t: &mut Tracer, x: NodeId| match linears(&self.mlp).as_slice() {
            [fc1, fc2] => t.ops_mlp("mlp", fc1, fc2, x),
            // A model built here always has two.
            _ => x,
        };
        let sd = |t: &mut Tracer, x: NodeId| {
            t.stochastic_depth("stochastic_depth", self.sd_prob, true, x)
        };
        if self.v2 {
            let y = t.scope("attn", |t| self.attn.trace(t, input));
            let y = t.layer_norm("norm1", &self.norm1, EPS, y);
            let y = sd(t, y);
            let x = t.add(input, y);
            let y = mlp(t, x);
            let y = t.layer_norm("norm2", &self.norm2, EPS, y);
            let y = sd(t, y);
            t.add(x, y)
        } else {
            let y = t.layer_norm("norm1", &self.norm1, EPS, input);
            let y = t.scope("attn", |t| self.attn.trace(t, y));
            let y = sd(t, y);
            let x = t.add(input, y);
            let y = t.layer_norm("norm2", &self.norm2, EPS, x);
            let y = mlp(t, y);
            let y = sd(t, y);
            t.add(x, y)
        }
    }
}

impl PatchMerging {
    /// `PatchMerging.forward` (`PatchMergingV2.forward`).
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.patch_merging_pad(x);
        if self.v2 {
            let x = t.linear("reduction", &self.reduction, x);
            t.layer_norm("norm", &self.norm, EPS, x)
        } else {
            let x = t.layer_norm("norm", &self.norm, EPS, x);
            t.linear("reduction", &self.reduction, x)
        }
    }
}

impl FeatureModel for SwinTransformer {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.scope("features", |t| {
            self.features.iter().enumerate().fold(x, |x, (i, feature)| {
                t.scope(&i.to_string(), |t| match feature {
                    Feature::Stem((conv, _, norm)) => {
                        let x = t.conv2d("0", conv, x);
                        let x = t.permute_module("1", &[0, 2, 3, 1], x);
                        t.layer_norm("2", norm, EPS, x)
                    }
                    Feature::Stage(blocks) => blocks.iter().enumerate().fold(x, |x, (j, block)| {
                        t.scope(&j.to_string(), |t| block.trace(t, x))
                    }),
                    Feature::Merge(merge) => merge.trace(t, x),
                })
            })
        });
        let x = t.layer_norm("norm", &self.norm, EPS, x);
        let x = t.permute_module("permute", &[0, 3, 1, 2], x);
        let x = t.adaptive_avg_pool2d("avgpool", [1, 1], x);
        let x = t.flatten_module("flatten", 1, x);
        t.linear("head", &self.head, x)
    }
}

/// A row of the Swin Transformer family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "Swin", about)
}

/// A row of the Swin Transformer V2 family.
const fn row_v2(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "SwinV2", about)
}

/// The published weights' preprocessing: bicubic, `resize` then a `crop` square.
const fn bicubic(resize: u32, crop: u32) -> Preprocessing {
    Preprocessing::sized(resize, crop, Interpolation::Bicubic)
}

/// The Swin rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("swin_t", "torchvision's Swin-T (window 7)")
        .weights("Swin_T_Weights.IMAGENET1K_V1", "swin_t-704ceda3.pth")
        .preprocess(bicubic(232, 224))
        .model(&Init::new(|d, a| SwinConfig::swin_t(a.classes()).init(d))),
    row("swin_s", "torchvision's Swin-S (window 7)")
        .weights("Swin_S_Weights.IMAGENET1K_V1", "swin_s-5e29d889.pth")
        .preprocess(bicubic(246, 224))
        .model(&Init::new(|d, a| SwinConfig::swin_s(a.classes()).init(d))),
    row("swin_b", "torchvision's Swin-B (window 7)")
        .weights("Swin_B_Weights.IMAGENET1K_V1", "swin_b-68c6b09e.pth")
        .preprocess(bicubic(238, 224))
        .model(&Init::new(|d, a| SwinConfig::swin_b(a.classes()).init(d))),
    row_v2("swin_v2_t", "torchvision's Swin-V2-T (window 8, cosine attention)")
        .weights("Swin_V2_T_Weights.IMAGENET1K_V1", "swin_v2_t-b137f0e2.pth")
        .preprocess(bicubic(260, 256))
        .model(&Init::new(|d, a| SwinConfig::swin_v2_t(a.classes()).init(d))),
    row_v2("swin_v2_s", "torchvision's Swin-V2-S (window 8, cosine attention)")
        .weights("Swin_V2_S_Weights.IMAGENET1K_V1", "swin_v2_s-637d8ceb.pth")
        .preprocess(bicubic(260, 256))
        .model(&Init::new(|d, a| SwinConfig::swin_v2_s(a.classes()).init(d))),
    row_v2("swin_v2_b", "torchvision's Swin-V2-B (window 8, cosine attention)")
        .weights("Swin_V2_B_Weights.IMAGENET1K_V1", "swin_v2_b-781e5279.pth")
        .preprocess(bicubic(272, 256))
        .model(&Init::new(|d, a| SwinConfig::swin_v2_b(a.classes()).init(d))),
];
