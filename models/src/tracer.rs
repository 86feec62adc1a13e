use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, LayerNorm, Linear, PaddingConfig2d};
use burn::prelude::*;
use featx_graph::{Activation, Graph, GraphBuilder, NodeId, Op, Window2d};

use crate::misc::{ConvNormActivation, SqueezeExcitation};

/// A parameter-carrying layer captured while tracing.
///
/// Burn tensors are reference-counted, so capturing a layer shares its weights rather than
/// copying them.
#[derive(Debug, Clone)]
pub enum Layer {
    /// Convolution weights and bias.
    Conv2d(Conv2d),
    /// Affine parameters and running statistics.
    BatchNorm(BatchNorm),
    /// Fully connected weights (`[in, out]`, Burn layout) and bias.
    Linear(Linear),
    // Mobile nets (MobileNet, EfficientNet, RegNet).
    /// A `Conv2dNormActivation`'s convolution and BatchNorm.
    ConvNorm(Conv2d, BatchNorm),
    /// A `SqueezeExcitation`'s `fc1` and `fc2` (1x1 convolutions with bias).
    SqueezeExcitation(Conv2d, Conv2d),
    // DenseNet, ConvNeXt, ViT.
    /// A parameter read directly in `forward` (a `get_attr` node).
    Parameter(ParamTensor),
    /// LayerNorm's scale and shift (Burn's `gamma` and `beta`).
    LayerNorm(LayerNorm),
    /// A convolution and the LayerNorm over its channels (ConvNeXt's stem).
    ConvLayerNorm(Conv2d, LayerNorm),
    /// Self attention's projections.
    Attention(Attention),
    /// An MLP block's two fully connected layers.
    Mlp(Linear, Linear),
}

// DenseNet, ConvNeXt, ViT.

/// A parameter tensor of rank 1 or 3, as a model holds it (lazily initialised).
#[derive(Debug, Clone)]
pub enum ParamTensor {
    /// A vector (a LayerNorm's weight read by `F.layer_norm`).
    R1(Param<Tensor<1>>),
    /// A rank-3 tensor (`layer_scale`, `class_token`, `pos_embedding`).
    R3(Param<Tensor<3>>),
}

impl ParamTensor {
    /// Its shape, without initialising it.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            ParamTensor::R1(p) => lazy_dims(p).to_vec(),
            ParamTensor::R3(p) => lazy_dims(p).to_vec(),
        }
    }
}

/// `nn.MultiheadAttention`'s parameters (torchvision's state-dict keys `in_proj_weight`,
/// `in_proj_bias`, `out_proj.weight`, `out_proj.bias`), for self attention with no mask.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query, key and value projections stacked, `[3 * embed_dim, embed_dim]` (PyTorch
    /// layout: not transposed, it is no `Linear`).
    pub in_proj_weight: Param<Tensor<2>>,
    /// Their biases, `[3 * embed_dim]`.
    pub in_proj_bias: Param<Tensor<1>>,
    /// The output projection.
    pub out_proj: Linear,
    /// Attention heads.
    #[module(skip)]
    pub num_heads: usize,
}

/// Records a forward pass: wraps a [`GraphBuilder`] and keeps the layer behind each
/// `call_module` node that has parameters.
#[derive(Debug, Default)]
pub struct Tracer {
    builder: GraphBuilder,
    layers: Vec<Option<Layer>>,
}

impl Tracer {
    /// An empty recording.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the input placeholder.
    pub fn input(&mut self, name: &str, channels: usize) -> NodeId {
        let id = self.builder.input(name, channels);
        self.bind(id, None)
    }

    /// Runs `f` inside the submodule scope `name` (`layer1`, `0`, `downsample`).
    pub fn scope<R>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.builder.enter(name);
        let out = f(self);
        self.builder.exit();
        out
    }

    /// `nn.Conv2d` at `name`.
    pub fn conv2d(&mut self, name: &str, conv: &Conv2d, x: NodeId) -> NodeId {
        let [out_channels, group_in, kh, kw] = lazy_dims(&conv.weight);
        let kernel = [kh, kw];
        let op = Op::Conv2d {
            in_channels: group_in * conv.groups,
            out_channels,
            window: Window2d {
                kernel,
                stride: conv.stride,
                padding: padding_pairs(&conv.padding, kernel, conv.dilation),
                dilation: conv.dilation,
            },
            groups: conv.groups,
            bias: conv.bias.is_some(),
        };
        self.layer(name, op, Layer::Conv2d(conv.clone()), x)
    }

    /// `nn.BatchNorm2d` at `name`.
    pub fn batch_norm(&mut self, name: &str, bn: &BatchNorm, x: NodeId) -> NodeId {
        let [features] = lazy_dims(&bn.gamma);
        let op = Op::BatchNorm2d {
            features,
            eps: bn.epsilon,
        };
        self.layer(name, op, Layer::BatchNorm(bn.clone()), x)
    }

    /// `nn.Linear` at `name`.
    pub fn linear(&mut self, name: &str, linear: &Linear, x: NodeId) -> NodeId {
        let [in_features, out_features] = lazy_dims(&linear.weight);
        let op = Op::Linear {
            in_features,
            out_features,
            bias: linear.bias.is_some(),
        };
        self.layer(name, op, Layer::Linear(linear.clone()), x)
    }

    /// `nn.ReLU` at `name`.
    pub fn relu(&mut self, name: &str, x: NodeId) -> NodeId {
        self.stateless(name, Op::Relu, x)
    }

    /// `nn.MaxPool2d` at `name`: the largest value in each `window` (padding never wins).
    pub fn max_pool2d(
        &mut self,
        name: &str,
        window: Window2d,
        ceil_mode: bool,
        x: NodeId,
    ) -> NodeId {
        self.stateless(name, Op::MaxPool2d { window, ceil_mode }, x)
    }

    /// `nn.AdaptiveAvgPool2d(output)` at `name`.
    pub fn adaptive_avg_pool2d(&mut self, name: &str, output: [usize; 2], x: NodeId) -> NodeId {
        self.stateless(name, Op::AdaptiveAvgPool2d { output }, x)
    }

    /// `nn.Dropout(p)` at `name`: identity in eval mode.
    pub fn dropout(&mut self, name: &str, p: f64, x: NodeId) -> NodeId {
        self.stateless(name, Op::Dropout { p }, x)
    }

    /// `a + b` in the current scope.
    pub fn add(&mut self, a: NodeId, b: NodeId) -> NodeId {
        let id = self.builder.call_function(Op::Add, &[a, b]);
        self.bind(id, None)
    }

    /// `torch.flatten(x, start_dim)` in the current scope.
    pub fn flatten(&mut self, x: NodeId, start_dim: usize) -> NodeId {
        let id = self.builder.call_function(Op::Flatten { start_dim }, &[x]);
        self.bind(id, None)
    }

    /// `x.view(*shape)` in the current scope.
    pub fn view(&mut self, x: NodeId, shape: &[i64]) -> NodeId {
        let op = Op::View {
            shape: shape.to_vec(),
        };
        let id = self.builder.call_method(op, &[x]);
        self.bind(id, None)
    }

    /// `x.permute(*dims)` in the current scope.
    pub fn permute(&mut self, x: NodeId, dims: &[usize]) -> NodeId {
        let op = Op::Permute {
            dims: dims.to_vec(),
        };
        let id = self.builder.call_method(op, &[x]);
        self.bind(id, None)
    }

    // Mobile nets (MobileNet, EfficientNet, RegNet).
    /// torchvision.ops' `Conv2dNormActivation` at `name`: one leaf node, as FX feature
    /// extraction traces it.
    pub fn conv_norm_activation(
        &mut self,
        name: &str,
        module: &ConvNormActivation,
        x: NodeId,
    ) -> NodeId {
        let (conv, bn, act) = module;
        let [out_channels, group_in, kh, kw] = lazy_dims(&conv.weight);
        let kernel = [kh, kw];
        let op = Op::ConvNormActivation {
            class: act.class,
            in_channels: group_in * conv.groups,
            out_channels,
            window: Window2d {
                kernel,
                stride: conv.stride,
                padding: padding_pairs(&conv.padding, kernel, conv.dilation),
                dilation: conv.dilation,
            },
            groups: conv.groups,
            bias: conv.bias.is_some(),
            eps: bn.epsilon,
            activation: act.activation,
        };
        self.layer(name, op, Layer::ConvNorm(conv.clone(), bn.clone()), x)
    }

    /// torchvision.ops' `SqueezeExcitation` at `name`, one leaf node.
    pub fn squeeze_excitation(
        &mut self,
        name: &str,
        module: &SqueezeExcitation,
        x: NodeId,
    ) -> NodeId {
        let [squeeze, channels, _, _] = lazy_dims(&module.fc1.weight);
        let op = Op::SqueezeExcitation {
            channels,
            squeeze,
            activation: module.activation,
            scale_activation: module.scale_activation,
        };
        let layer = Layer::SqueezeExcitation(module.fc1.clone(), module.fc2.clone());
        self.layer(name, op, layer, x)
    }

    /// torchvision.ops' `StochasticDepth(p, mode)` at `name`: identity in eval mode.
    pub fn stochastic_depth(&mut self, name: &str, p: f64, row: bool, x: NodeId) -> NodeId {
        self.stateless(name, Op::StochasticDepth { p, row }, x)
    }

    /// An activation module (`nn.Hardswish`, `nn.ReLU6`, ...) at `name`.
    pub fn activation(&mut self, name: &str, activation: Activation, x: NodeId) -> NodeId {
        self.stateless(name, activation.op(), x)
    }

    /// `a * b` (broadcasting) in the current scope.
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        let id = self.builder.call_function(Op::Mul, &[a, b]);
        self.bind(id, None)
    }

    /// `x.flatten(start_dim)` (the method, where [`Tracer::flatten`] is `torch.flatten`).
    pub fn flatten_method(&mut self, x: NodeId, start_dim: usize) -> NodeId {
        let id = self.builder.call_method(Op::Flatten { start_dim }, &[x]);
        self.bind(id, None)
    }

    /// The graph and the per-node layers; `output` is what the forward pass returns.
    pub fn finish(self, output: NodeId) -> (Graph, Vec<Option<Layer>>) {
        (self.builder.finish(output), self.layers)
    }

    /// A module call whose parameters `layer` holds. Only the typed methods above build
    /// these, so a parameter op can never be recorded without its parameters.
    fn layer(&mut self, name: &str, op: Op, layer: Layer, x: NodeId) -> NodeId {
        let id = self.builder.call_module(name, op, &[x]);
        self.bind(id, Some(layer))
    }

    /// A parameter-free module call.
    fn stateless(&mut self, name: &str, op: Op, x: NodeId) -> NodeId {
        let id = self.builder.call_module(name, op, &[x]);
        self.bind(id, None)
    }

    fn bind(&mut self, id: NodeId, layer: Option<Layer>) -> NodeId {
        debug_assert_eq!(id.0, self.layers.len());
        self.layers.push(layer);
        id
    }

    // DenseNet, ConvNeXt, ViT.

    /// `torch.cat(xs, dim)` in the current scope.
    pub fn cat(&mut self, xs: &[NodeId], dim: usize) -> NodeId {
        let id = self.builder.call_function(Op::Cat { dim }, xs);
        self.bind(id, None)
    }

    /// `nn.AvgPool2d` at `name`: the mean of each `window`, zero padding counted.
    pub fn avg_pool2d(
        &mut self,
        name: &str,
        window: Window2d,
        ceil_mode: bool,
        x: NodeId,
    ) -> NodeId {
        self.stateless(name, Op::AvgPool2d { window, ceil_mode }, x)
    }

    /// `F.relu(x)` in the current scope.
    pub fn functional_relu(&mut self, x: NodeId) -> NodeId {
        let id = self.builder.call_function(Op::FunctionalRelu, &[x]);
        self.bind(id, None)
    }

    /// `F.adaptive_avg_pool2d(x, output)` in the current scope.
    pub fn functional_adaptive_avg_pool2d(&mut self, output: [usize; 2], x: NodeId) -> NodeId {
        let op = Op::FunctionalAdaptiveAvgPool2d { output };
        let id = self.builder.call_function(op, &[x]);
        self.bind(id, None)
    }

    /// `self.<name>` read in `forward`: the parameter as a `get_attr` node.
    pub fn parameter(&mut self, name: &str, param: ParamTensor) -> NodeId {
        let op = Op::Parameter {
            shape: param.dims(),
        };
        let id = self.builder.get_attr(name, op);
        self.bind(id, Some(Layer::Parameter(param)))
    }

    /// torchvision's `Conv2dNormActivation(conv, LayerNorm2d)` leaf at `name` (ConvNeXt's
    /// stem): the convolution, then LayerNorm over channels with `eps`.
    pub fn conv_layer_norm(
        &mut self,
        name: &str,
        conv: &Conv2d,
        norm: &LayerNorm,
        eps: f64,
        x: NodeId,
    ) -> NodeId {
        let [out_channels, group_in, kh, kw] = lazy_dims(&conv.weight);
        let kernel = [kh, kw];
        let op = Op::ConvLayerNorm2d {
            in_channels: group_in * conv.groups,
            out_channels,
            window: Window2d {
                kernel,
                stride: conv.stride,
                padding: padding_pairs(&conv.padding, kernel, conv.dilation),
                dilation: conv.dilation,
            },
            eps,
        };
        let layer = Layer::ConvLayerNorm(conv.clone(), norm.clone());
        self.layer(name, op, layer, x)
    }

    /// torchvision's `Permute(dims)` module at `name`.
    pub fn permute_module(&mut self, name: &str, dims: &[usize], x: NodeId) -> NodeId {
        let op = Op::PermuteModule {
            dims: dims.to_vec(),
        };
        self.stateless(name, op, x)
    }

    /// `nn.LayerNorm` at `name`, over the last dimension, with `eps` (Burn's own is
    /// private).
    pub fn layer_norm(&mut self, name: &str, norm: &LayerNorm, eps: f64, x: NodeId) -> NodeId {
        let [features] = lazy_dims(&norm.gamma);
        let op = Op::LayerNorm { features, eps };
        self.layer(name, op, Layer::LayerNorm(norm.clone()), x)
    }

    /// `F.layer_norm(x, (features,), weight, bias, eps)` in the current scope, `weight` and
    /// `bias` being `get_attr` nodes.
    pub fn functional_layer_norm(
        &mut self,
        x: NodeId,
        weight: NodeId,
        bias: NodeId,
        features: usize,
        eps: f64,
    ) -> NodeId {
        let op = Op::FunctionalLayerNorm { features, eps };
        let id = self.builder.call_function(op, &[x, weight, bias]);
        self.bind(id, None)
    }

    /// `nn.GELU` at `name`.
    pub fn gelu(&mut self, name: &str, x: NodeId) -> NodeId {
        self.stateless(name, Op::Gelu, x)
    }

    /// `a + b` of two tensors whose shapes broadcast, in the current scope.
    pub fn add_broadcast(&mut self, a: NodeId, b: NodeId) -> NodeId {
        let id = self.builder.call_function(Op::AddBroadcast, &[a, b]);
        self.bind(id, None)
    }

    /// `nn.Flatten(start_dim)` at `name`.
    pub fn flatten_module(&mut self, name: &str, start_dim: usize, x: NodeId) -> NodeId {
        self.stateless(name, Op::FlattenModule { start_dim }, x)
    }

    /// A function call on Python values (shape checks) in the current scope.
    fn value_fn(&mut self, op: Op, inputs: &[NodeId]) -> NodeId {
        let id = self.builder.call_function(op, inputs);
        self.bind(id, None)
    }

    /// `x.shape` in the current scope.
    pub fn shape(&mut self, x: NodeId) -> NodeId {
        self.value_fn(Op::Shape, &[x])
    }

    /// `size[index]` of a `torch.Size` node.
    pub fn get_item(&mut self, size: NodeId, index: usize) -> NodeId {
        self.value_fn(Op::GetItem { index }, &[size])
    }

    /// `a == rhs` of an int node.
    pub fn eq(&mut self, a: NodeId, rhs: i64) -> NodeId {
        self.value_fn(Op::Eq { rhs }, &[a])
    }

    /// `torch._assert(cond, message)`.
    pub fn assert(&mut self, cond: NodeId, message: &str) -> NodeId {
        let op = Op::Assert {
            message: message.to_string(),
        };
        self.value_fn(op, &[cond])
    }

    /// `a // rhs` of an int node.
    pub fn floordiv(&mut self, a: NodeId, rhs: i64) -> NodeId {
        self.value_fn(Op::FloorDiv { rhs }, &[a])
    }

    /// `a * b` of two int nodes.
    pub fn mul_int(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.value_fn(Op::MulInt, &[a, b])
    }

    /// `x.dim()`.
    pub fn dim(&mut self, x: NodeId) -> NodeId {
        let id = self.builder.call_method(Op::Dim, &[x]);
        self.bind(id, None)
    }

    /// `x.reshape(*shape)`, each [`Size::Node`] read from an int node.
    pub fn reshape(&mut self, x: NodeId, shape: &[Size]) -> NodeId {
        let (spec, inputs) = sizes(x, shape);
        let id = self
            .builder
            .call_method(Op::Reshape { shape: spec }, &inputs);
        self.bind(id, None)
    }

    /// `x.expand(*sizes)`, each [`Size::Node`] read from an int node.
    pub fn expand(&mut self, x: NodeId, shape: &[Size]) -> NodeId {
        let (spec, inputs) = sizes(x, shape);
        let id = self
            .builder
            .call_method(Op::Expand { sizes: spec }, &inputs);
        self.bind(id, None)
    }

    /// `nn.MultiheadAttention` at `name` called as `attn(x, x, x, need_weights=False)`;
    /// returns the `[0]` and `[1]` getitem nodes (output and `None`), recorded right after it.
    pub fn self_attention(&mut self, name: &str, attn: &Attention, x: NodeId) -> (NodeId, NodeId) {
        let [_, embed_dim] = lazy_dims(&attn.in_proj_weight);
        let op = Op::MultiheadAttention {
            embed_dim,
            num_heads: attn.num_heads,
        };
        let id = self.builder.call_module(name, op, &[x, x, x]);
        let pair = self.bind(id, Some(Layer::Attention(attn.clone())));
        let out = self
            .builder
            .call_function(Op::TupleItem { index: 0 }, &[pair]);
        let out = self.bind(out, None);
        let weights = self.value_fn(Op::NoneItem { index: 1 }, &[pair]);
        (out, weights)
    }

    /// `x[:, index]` in the current scope (a `getitem` dropping dimension 1).
    pub fn select(&mut self, x: NodeId, dim: usize, index: usize) -> NodeId {
        let id = self.builder.call_function(Op::Select { dim, index }, &[x]);
        self.bind(id, None)
    }

    /// torchvision's `MLPBlock` leaf at `name`: `linear_2(gelu(linear_1(x)))` (its dropouts
    /// are identities at the probability torchvision's ViTs use, 0).
    pub fn mlp(&mut self, name: &str, fc1: &Linear, fc2: &Linear, x: NodeId) -> NodeId {
        let [in_features, hidden_features] = lazy_dims(&fc1.weight);
        let op = Op::Mlp {
            in_features,
            hidden_features,
        };
        self.layer(name, op, Layer::Mlp(fc1.clone(), fc2.clone()), x)
    }
}

/// One size argument of `reshape` / `expand`: a constant or an int node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// A constant (`-1` infers or keeps).
    Const(i64),
    /// The value of an int node (`x.shape[0]`).
    Node(NodeId),
}

/// The op's size list (`None` for node sizes) and the node's inputs: `x`, then the int nodes.
fn sizes(x: NodeId, shape: &[Size]) -> (Vec<Option<i64>>, Vec<NodeId>) {
    let mut inputs = vec![x];
    let spec = shape
        .iter()
        .map(|s| match s {
            Size::Const(c) => Some(*c),
            Size::Node(n) => {
                inputs.push(*n);
                None
            }
        })
        .collect();
    (spec, inputs)
}

/// A parameter's shape without initialising it: burn fills a fresh parameter with random
/// values on first use, and tracing (listing nodes, say) needs only the shapes.
fn lazy_dims<const D: usize>(param: &Param<Tensor<D>>) -> [usize; D] {
    <[usize; D]>::try_from(param.lazy_shape().as_slice()).unwrap_or_else(|_| param.dims())
}

/// burn's padding setting as `(before, after)` pairs. `Same` is PyTorch's `padding="same"`
/// (the window's span minus one, the odd element after), fixed ahead of any input as the IR's
/// geometry is.
fn padding_pairs(
    padding: &PaddingConfig2d,
    kernel: [usize; 2],
    dilation: [usize; 2],
) -> [(usize, usize); 2] {
    match *padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Same => Window2d::same_padding(kernel, dilation),
    }
}
