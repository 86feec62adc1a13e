//! torchvision's Vision Transformer (ViT-B/16, ViT-B/32, ViT-L/16): patches embedded by a
//! strided convolution, a class token, a position embedding, pre-norm encoder blocks of
//! self attention and an MLP; features are token sequences `[N, tokens, dim]`.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use featx_graph::NodeId;
use featx_weights::PositionGrid;

use crate::registry::{Architecture, Init, Interpolation, Preprocessing, Row};
use crate::{Attention, FeatureModel, InputSpec, ParamTensor, Size, Tracer};

/// The `eps` of every LayerNorm in torchvision's ViT.
const EPS: f64 = 1e-6;

/// torchvision's `VisionTransformer`: `conv_proj`, `class_token`, `encoder`, `heads`.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    conv_proj: Conv2d,
    class_token: Param<Tensor<3>>,
    encoder: Encoder,
    heads: Heads,
    /// The architecture's name, from its configuration.
    #[module(skip)]
    name: String,
    /// Input height and width (fixed: the position embedding has one entry per patch).
    #[module(skip)]
    image_size: usize,
    /// Patch height and width.
    #[module(skip)]
    patch_size: usize,
    /// Token width.
    #[module(skip)]
    hidden_dim: usize,
}

/// torchvision's `Encoder`: position embedding, dropout, the blocks, a final LayerNorm.
#[derive(Module, Debug)]
pub struct Encoder {
    pos_embedding: Param<Tensor<3>>,
    /// `encoder_layer_0`, `encoder_layer_1`, ... (an `OrderedDict` in torchvision).
    layers: EncoderLayers,
    ln: LayerNorm,
}

/// The most encoder blocks a ViT here has (ViT-H/14).
const MAX_BLOCKS: usize = 32;

/// Declares [`EncoderLayers`] with one optional field per block, named as torchvision's
/// `OrderedDict` names them (`encoder_layer_0`, ...), which a `Vec` field cannot spell.
macro_rules! encoder_layers {
    ($($field:ident),* $(,)?) => {
        /// `Encoder.layers`: the first N of `encoder_layer_0` .. `encoder_layer_31`.
        #[derive(Module, Debug)]
        pub struct EncoderLayers {
            $($field: Option<EncoderBlock>,)*
        }

        impl EncoderLayers {
            fn new(blocks: Vec<EncoderBlock>) -> Self {
                let mut blocks = blocks.into_iter();
                Self { $($field: blocks.next(),)* }
            }

            fn blocks(&self) -> Vec<(&'static str, &EncoderBlock)> {
                [$((stringify!($field), &self.$field)),*]
                    .into_iter()
                    .filter_map(|(name, block)| block.as_ref().map(|b| (name, b)))
                    .collect()
            }
        }
    };
}

encoder_layers!(
    encoder_layer_0,
    encoder_layer_1,
    encoder_layer_2,
    encoder_layer_3,
    encoder_layer_4,
    encoder_layer_5,
    encoder_layer_6,
    encoder_layer_7,
    encoder_layer_8,
    encoder_layer_9,
    encoder_layer_10,
    encoder_layer_11,
    encoder_layer_12,
    encoder_layer_13,
    encoder_layer_14,
    encoder_layer_15,
    encoder_layer_16,
    encoder_layer_17,
    encoder_layer_18,
    encoder_layer_19,
    encoder_layer_20,
    encoder_layer_21,
    encoder_layer_22,
    encoder_layer_23,
    encoder_layer_24,
    encoder_layer_25,
    encoder_layer_26,
    encoder_layer_27,
    encoder_layer_28,
    encoder_layer_29,
    encoder_layer_30,
    encoder_layer_31,
);

/// torchvision's `EncoderBlock`: `x + attention(ln_1(x))`, then `+ mlp(ln_2(.))`.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    ln_1: LayerNorm,
    self_attention: Attention,
    ln_2: LayerNorm,
    /// `MLPBlock`: Linear (`0`), GELU, Dropout, Linear (`3`), Dropout.
    mlp: Vec<MlpEntry>,
}

/// An entry of `MLPBlock`'s Sequential: only the Linears have parameters.
#[derive(Module, Debug)]
pub enum MlpEntry {
    /// `nn.Linear`.
    Linear(Linear),
    /// `nn.GELU` or `nn.Dropout`.
    Stateless(NoParams),
}

/// A module without parameters.
#[derive(Module, Debug)]
pub struct NoParams;

/// `heads`: one `head` Linear (torchvision's `OrderedDict`).
#[derive(Module, Debug)]
pub struct Heads {
    head: Linear,
}

/// Configuration of a [`VisionTransformer`], as torchvision's `VisionTransformer(image_size,
/// patch_size, num_layers, num_heads, hidden_dim, mlp_dim)` takes it (no dropout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VitConfig {
    /// The architecture's name (`vit_b_16`), which the model reports.
    pub name: String,
    /// Input height and width.
    pub image_size: usize,
    /// Patch height and width.
    pub patch_size: usize,
    /// Encoder blocks (at most 32).
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Token width.
    pub hidden_dim: usize,
    /// Hidden width of the MLP blocks.
    pub mlp_dim: usize,
    /// Classifier outputs.
    pub num_classes: usize,
}

impl VitConfig {
    fn named(name: &str, patch_size: usize, [layers, heads, hidden, mlp]: [usize; 4]) -> Self {
        Self {
            name: name.into(),
            image_size: 224,
            patch_size,
            num_layers: layers,
            num_heads: heads,
            hidden_dim: hidden,
            mlp_dim: mlp,
            num_classes: 1000,
        }
    }

    /// The same configuration with `num_classes` outputs.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// The same configuration for `image_size` inputs (torchvision's `image_size` argument),
    /// or unchanged for `None`. A multiple of the patch size.
    pub fn with_image_size(mut self, image_size: Option<usize>) -> Self {
        if let Some(size) = image_size {
            self.image_size = size;
        }
        self
    }

    /// torchvision's `vit_b_16`.
    pub fn vit_b_16(num_classes: usize) -> Self {
        Self::named("vit_b_16", 16, [12, 12, 768, 3072]).with_num_classes(num_classes)
    }

    /// torchvision's `vit_b_32`.
    pub fn vit_b_32(num_classes: usize) -> Self {
        Self::named("vit_b_32", 32, [12, 12, 768, 3072]).with_num_classes(num_classes)
    }

    /// torchvision's `vit_l_32`.
    pub fn vit_l_32(num_classes: usize) -> Self {
        Self::named("vit_l_32", 32, [24, 16, 1024, 4096]).with_num_classes(num_classes)
    }

    /// torchvision's `vit_l_16`.
    pub fn vit_l_16(num_classes: usize) -> Self {
        Self::named("vit_l_16", 16, [24, 16, 1024, 4096]).with_num_classes(num_classes)
    }

    /// torchvision's `vit_h_14`.
    pub fn vit_h_14(num_classes: usize) -> Self {
        Self::named("vit_h_14", 14, [32, 16, 1280, 5120]).with_num_classes(num_classes)
    }

    /// Builds the model with freshly initialised weights on `device` (blocks beyond
    /// `MAX_BLOCKS` are cut).
    pub fn init(&self, device: &Device) -> VisionTransformer {
        let hidden = self.hidden_dim;
        let norm = || LayerNormConfig::new(hidden).with_epsilon(EPS).init(device);
        let patches = (self.image_size / self.patch_size.max(1)).pow(2);
        let blocks = (0..self.num_layers.min(MAX_BLOCKS))
            .map(|_| EncoderBlock {
                ln_1: norm(),
                self_attention: Attention {
                    in_proj_weight: Initializer::XavierUniform { gain: 1.0 }.init_with(
                        [3 * hidden, hidden],
                        Some(hidden),
                        Some(3 * hidden),
                        device,
                    ),
                    in_proj_bias: Initializer::Zeros.init([3 * hidden], device),
                    out_proj: LinearConfig::new(hidden, hidden).init(device),
                    num_heads: self.num_heads,
                },
                ln_2: norm(),
                mlp: vec![
                    MlpEntry::Linear(LinearConfig::new(hidden, self.mlp_dim).init(device)),
                    MlpEntry::Stateless(NoParams),
                    MlpEntry::Stateless(NoParams),
                    MlpEntry::Linear(LinearConfig::new(self.mlp_dim, hidden).init(device)),
                    MlpEntry::Stateless(NoParams),
                ],
            })
            .collect();
        VisionTransformer {
            conv_proj: Conv2dConfig::new([3, hidden], [self.patch_size, self.patch_size])
                .with_stride([self.patch_size, self.patch_size])
                .init(device),
            class_token: Initializer::Zeros.init([1, 1, hidden], device),
            encoder: Encoder {
                pos_embedding: Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                }
                .init([1, patches + 1, hidden], device),
                layers: EncoderLayers::new(blocks),
                ln: norm(),
            },
            heads: Heads {
                head: LinearConfig::new(hidden, self.num_classes).init(device),
            },
            name: self.name.clone(),
            image_size: self.image_size,
            patch_size: self.patch_size,
            hidden_dim: hidden,
        }
    }
}

/// `torch._assert(input.dim() == 3, f"Expected (batch_size, seq_length, hidden_dim) got
/// {input.shape}")`, the check `Encoder` and `EncoderBlock` open with.
fn assert_tokens(t: &mut Tracer, input: NodeId) {
    let dim = t.dim(input);
    let is_3d = t.eq(dim, 3);
    // The f-string reads `input.shape`: FX records that read too.
    t.shape(input);
    t.assert(is_3d, "Expected (batch_size, seq_length, hidden_dim)");
}

impl EncoderBlock {
    /// `EncoderBlock.forward`.
    fn trace(&self, t: &mut Tracer, input: NodeId) -> NodeId {
        assert_tokens(t, input);
        let x = t.layer_norm("ln_1", &self.ln_1, EPS, input);
        let (x, _weights) = t.self_attention("self_attention", &self.self_attention, x);
        let x = t.dropout("dropout", 0.0, x);
        let x = t.add(x, input);
        let y = t.layer_norm("ln_2", &self.ln_2, EPS, x);
        let linears: Vec<&Linear> = self
            .mlp
            .iter()
            .filter_map(|e| match e {
                MlpEntry::Linear(l) => Some(l),
                MlpEntry::Stateless(_) => None,
            })
            .collect();
        let y = match linears.as_slice() {
            [fc1, fc2] => t.mlp("mlp", fc1, fc2, y),
            // A model built here always has two.
            _ => y,
        };
        t.add(x, y)
    }
}

impl FeatureModel for VisionTransformer {
    fn name(&self) -> &str {
        &self.name
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: 3,
            size: Some([self.image_size, self.image_size]),
            nominal_size: [self.image_size, self.image_size],
        }
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        // `_process_input`.
        let size = t.shape(x);
        let [n, _c, h, w] = [0, 1, 2, 3].map(|i| t.get_item(size, i));
        let image = self.image_size as i64;
        let h_ok = t.eq(h, image);
        t.assert(
            h_ok,
            &format!("Wrong image height! Expected {image} but got another height!"),
        );
        let w_ok = t.eq(w, image);
        t.assert(
            w_ok,
            &format!("Wrong image width! Expected {image} but got another width!"),
        );
        let p = self.patch_size as i64;
        let n_h = t.floordiv(h, p);
        let n_w = t.floordiv(w, p);
        let x = t.conv2d("conv_proj", &self.conv_proj, x);
        let patches = t.mul(n_h, n_w);
        let x = t.reshape(
            x,
            &[
                Size::Node(n),
                Size::Const(self.hidden_dim as i64),
                Size::Node(patches),
            ],
        );
        let x = t.permute(x, &[0, 2, 1]);
        // `forward`.
        let shape = t.shape(x);
        let n = t.get_item(shape, 0);
        let class_token = t.parameter("class_token", ParamTensor::R3(self.class_token.clone()));
        let tokens = t.expand(
            class_token,
            &[Size::Node(n), Size::Const(-1), Size::Const(-1)],
        );
        let x = t.cat(&[tokens, x], 1);
        let e = &self.encoder;
        let x = t.scope("encoder", |t| {
            assert_tokens(t, x);
            let pos = t.parameter("pos_embedding", ParamTensor::R3(e.pos_embedding.clone()));
            let x = t.add(x, pos);
            let x = t.dropout("dropout", 0.0, x);
            let x = t.scope("layers", |t| {
                e.layers
                    .blocks()
                    .into_iter()
                    .fold(x, |x, (name, block)| t.scope(name, |t| block.trace(t, x)))
            });
            t.layer_norm("ln", &e.ln, EPS, x)
        });
        let x = t.select(x, 1, 0);
        t.scope("heads", |t| t.linear("head", &self.heads.head, x))
    }
}

/// The image size a ViT state dict was trained at: its positional embedding `[1, (size /
/// patch)^2 + 1, hidden]` holds one entry per patch and one for the class token. `None`
/// without the embedding or with a length that is not a square plus one.
#[cfg(test)]
pub(crate) fn image_size_from(
    tensors: &[featx_weights::TensorInfo],
    patch: usize,
) -> Option<usize> {
    grid(patch).image_size(tensors)
}

/// A ViT's positional embedding, for `patch x patch` patches: where its image size is read
/// from, and what is interpolated when it is built for another size.
pub const fn grid(patch: usize) -> PositionGrid {
    PositionGrid {
        key: "encoder.pos_embedding",
        patch,
    }
}

/// A row of the ViT family.
const fn row(name: &'static str, about: &'static str) -> Row {
    Row::new(name, "ViT", about)
}

/// The ViT rows of [`crate::MODELS`].
// One row per architecture, one line per column: rustfmt would give each argument a line.
#[rustfmt::skip]
pub(crate) const ARCHITECTURES: &[Architecture] = &[
    row("vit_b_16", "torchvision's ViT-B/16 (224x224, or a checkpoint's size)")
        .weights("ViT_B_16_Weights.IMAGENET1K_V1", "vit_b_16-c867db91.pth")
        .model(&Init::new(|d, a| VitConfig::vit_b_16(a.classes()).with_image_size(a.image_size).init(d))
            .image_size_from(grid(16))),
    row("vit_b_32", "torchvision's ViT-B/32 (224x224, or a checkpoint's size)")
        .weights("ViT_B_32_Weights.IMAGENET1K_V1", "vit_b_32-d86f8d99.pth")
        .model(&Init::new(|d, a| VitConfig::vit_b_32(a.classes()).with_image_size(a.image_size).init(d))
            .image_size_from(grid(32))),
    row("vit_l_16", "torchvision's ViT-L/16 (224x224, or a checkpoint's size)")
        .weights("ViT_L_16_Weights.IMAGENET1K_V1", "vit_l_16-852ce7e3.pth")
        .resize(242)
        .model(&Init::new(|d, a| VitConfig::vit_l_16(a.classes()).with_image_size(a.image_size).init(d))
            .image_size_from(grid(16))),
    row("vit_l_32", "torchvision's ViT-L/32 (224x224, or a checkpoint's size)")
        .weights("ViT_L_32_Weights.IMAGENET1K_V1", "vit_l_32-c7638314.pth")
        .model(&Init::new(|d, a| VitConfig::vit_l_32(a.classes()).with_image_size(a.image_size).init(d))
            .image_size_from(grid(32))),
    // Published only as SWAG weights: end-to-end at 518x518 (the default, which torchvision's
    // builder builds the model for) and linear at 224.
    row("vit_h_14", "torchvision's ViT-H/14 (224x224, or a checkpoint's size: 518 for its SWAG weights)")
        .weights("ViT_H_14_Weights.IMAGENET1K_SWAG_E2E_V1", "vit_h_14_swag-80465313.pth")
        .preprocess(Preprocessing::sized(518, 518, Interpolation::Bicubic))
        .model(&Init::new(|d, a| VitConfig::vit_h_14(a.classes()).with_image_size(a.image_size).init(d))
            .image_size_from(grid(14))
            .published(|d, a| VitConfig::vit_h_14(a.classes()).with_image_size(a.image_size.or(Some(518))).init(d), |m| m)),
];
