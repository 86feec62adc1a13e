//! The [`Tracer`]: what a model's `forward_trace` calls, one method per PyTorch call a
//! torchvision `forward` makes. Each method records the op and how FX names the call (module
//! class, function target, method name); the op itself lives in `featx_graph::ops`.

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, LayerNorm, Linear};
use featx_graph::ops::{
    self, Activation, Attention, ConvLayerNormParams, ConvNormParams, MlpParams,
    SqueezeExcitationParams,
};
use featx_graph::{Graph, GraphBuilder, Layer, NodeId, Op, ParamTensor, Window2d, lazy_dims};

use crate::misc::{ConvNormActivation, SqueezeExcitation};

/// Records a forward pass: wraps a [`GraphBuilder`] and keeps the layer behind each node that
/// has parameters.
///
/// Only these methods record parameter ops, each with its parameters, so a parameter op is
/// never recorded without them.
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

    /// The graph and the per-node layers; `output` is what the forward pass returns.
    pub fn finish(self, output: NodeId) -> (Graph, Vec<Option<Layer>>) {
        (self.builder.finish(output), self.layers)
    }

    // Modules with parameters.

    /// `nn.Conv2d` at `name`.
    pub fn conv2d(&mut self, name: &str, conv: &Conv2d, x: NodeId) -> NodeId {
        let layer = Layer::Conv2d(conv.clone());
        self.module(name, "Conv2d", ops::Conv2d::of(conv), Some(layer), &[x])
    }

    /// `nn.BatchNorm2d` at `name`.
    pub fn batch_norm(&mut self, name: &str, bn: &BatchNorm, x: NodeId) -> NodeId {
        let layer = Layer::BatchNorm(bn.clone());
        self.module(
            name,
            "BatchNorm2d",
            ops::BatchNorm2d::of(bn),
            Some(layer),
            &[x],
        )
    }

    /// `nn.Linear` at `name`.
    pub fn linear(&mut self, name: &str, linear: &Linear, x: NodeId) -> NodeId {
        let layer = Layer::Linear(linear.clone());
        self.module(name, "Linear", ops::Linear::of(linear), Some(layer), &[x])
    }

    /// torchvision.ops' `Conv2dNormActivation` at `name`: one leaf node, as FX feature
    /// extraction traces it.
    pub fn conv_norm_activation(
        &mut self,
        name: &str,
        module: &ConvNormActivation,
        x: NodeId,
    ) -> NodeId {
        let (conv, bn, act) = module;
        let op = ops::ConvNormActivation::of(conv, bn, act.activation);
        let layer = Layer::ConvNorm(ConvNormParams {
            conv: conv.clone(),
            norm: bn.clone(),
        });
        self.module(name, act.class.name(), op, Some(layer), &[x])
    }

    /// torchvision.ops' `SqueezeExcitation` at `name`, one leaf node.
    pub fn squeeze_excitation(
        &mut self,
        name: &str,
        module: &SqueezeExcitation,
        x: NodeId,
    ) -> NodeId {
        let [squeeze, channels, _, _] = lazy_dims(&module.fc1.weight);
        let op = ops::SqueezeExcitation {
            channels,
            squeeze,
            activation: module.activation,
            scale_activation: module.scale_activation,
        };
        let layer = Layer::SqueezeExcitation(SqueezeExcitationParams {
            fc1: module.fc1.clone(),
            fc2: module.fc2.clone(),
        });
        self.module(name, "SqueezeExcitation", op, Some(layer), &[x])
    }

    /// `self.<name>` read in `forward`: the parameter as a `get_attr` node.
    pub fn parameter(&mut self, name: &str, param: ParamTensor) -> NodeId {
        let op = ops::Parameter {
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
        let op = ops::ConvLayerNorm2d {
            conv: ops::Conv2d::of(conv),
            eps,
        };
        let layer = Layer::ConvLayerNorm(ConvLayerNormParams {
            conv: conv.clone(),
            norm: norm.clone(),
        });
        self.module(name, "Conv2dNormActivation", op, Some(layer), &[x])
    }

    /// `nn.LayerNorm` at `name`, over the last dimension, with `eps` (Burn's own is
    /// private).
    pub fn layer_norm(&mut self, name: &str, norm: &LayerNorm, eps: f64, x: NodeId) -> NodeId {
        let [features] = lazy_dims(&norm.gamma);
        let op = ops::LayerNorm { features, eps };
        let layer = Layer::LayerNorm(norm.clone());
        self.module(name, "LayerNorm", op, Some(layer), &[x])
    }

    /// `nn.MultiheadAttention` at `name` called as `attn(x, x, x, need_weights=False)`;
    /// returns the `[0]` and `[1]` getitem nodes (output and `None`), recorded right after it.
    pub fn self_attention(&mut self, name: &str, attn: &Attention, x: NodeId) -> (NodeId, NodeId) {
        let op = ops::MultiheadAttention::of(attn);
        let layer = Layer::Attention(attn.clone());
        let pair = self.module(name, "MultiheadAttention", op, Some(layer), &[x, x, x]);
        let out = self.getitem(ops::TupleItem { index: 0 }, pair);
        let weights = self.getitem(ops::GetItem { index: 1 }, pair);
        (out, weights)
    }

    /// torchvision's `MLPBlock` leaf at `name`: `linear_2(gelu(linear_1(x)))` (its dropouts
    /// are identities at the probability torchvision's ViTs use, 0).
    pub fn mlp(&mut self, name: &str, fc1: &Linear, fc2: &Linear, x: NodeId) -> NodeId {
        let layer = Layer::Mlp(MlpParams {
            fc1: fc1.clone(),
            fc2: fc2.clone(),
        });
        self.module(name, "MLPBlock", ops::Mlp::of(fc1), Some(layer), &[x])
    }

    // Parameter-free modules.

    /// `nn.ReLU` at `name`.
    pub fn relu(&mut self, name: &str, x: NodeId) -> NodeId {
        self.activation(name, Activation::Relu, x)
    }

    /// `nn.GELU` at `name`.
    pub fn gelu(&mut self, name: &str, x: NodeId) -> NodeId {
        self.activation(name, Activation::Gelu, x)
    }

    /// An activation module (`nn.Hardswish`, `nn.ReLU6`, ...) at `name`.
    pub fn activation(&mut self, name: &str, activation: Activation, x: NodeId) -> NodeId {
        self.module(name, activation.module_class(), activation, None, &[x])
    }

    /// `nn.MaxPool2d` at `name`: the largest value in each `window` (padding never wins).
    pub fn max_pool2d(
        &mut self,
        name: &str,
        window: Window2d,
        ceil_mode: bool,
        x: NodeId,
    ) -> NodeId {
        let op = ops::MaxPool2d { window, ceil_mode };
        self.module(name, "MaxPool2d", op, None, &[x])
    }

    /// `nn.AvgPool2d` at `name`: the mean of each `window`, zero padding counted.
    pub fn avg_pool2d(
        &mut self,
        name: &str,
        window: Window2d,
        ceil_mode: bool,
        x: NodeId,
    ) -> NodeId {
        let op = ops::AvgPool2d {
            window,
            ceil_mode,
            count_include_pad: true,
        };
        self.module(name, "AvgPool2d", op, None, &[x])
    }

    /// `nn.AdaptiveAvgPool2d(output)` at `name`.
    pub fn adaptive_avg_pool2d(&mut self, name: &str, output: [usize; 2], x: NodeId) -> NodeId {
        let op = ops::AdaptiveAvgPool2d { output };
        self.module(name, "AdaptiveAvgPool2d", op, None, &[x])
    }

    /// `nn.Dropout(p)` at `name`: identity in eval mode.
    pub fn dropout(&mut self, name: &str, p: f64, x: NodeId) -> NodeId {
        self.module(name, "Dropout", ops::Dropout { p }, None, &[x])
    }

    /// torchvision.ops' `StochasticDepth(p, mode)` at `name`: identity in eval mode.
    pub fn stochastic_depth(&mut self, name: &str, p: f64, row: bool, x: NodeId) -> NodeId {
        let op = ops::StochasticDepth { p, row };
        self.module(name, "StochasticDepth", op, None, &[x])
    }

    /// torchvision's `Permute(dims)` module at `name`.
    pub fn permute_module(&mut self, name: &str, dims: &[usize], x: NodeId) -> NodeId {
        let op = ops::Permute {
            dims: dims.to_vec(),
        };
        self.module(name, "Permute", op, None, &[x])
    }

    /// `nn.Flatten(start_dim)` at `name`.
    pub fn flatten_module(&mut self, name: &str, start_dim: usize, x: NodeId) -> NodeId {
        self.module(name, "Flatten", ops::Flatten { start_dim }, None, &[x])
    }

    // Functions.

    /// `a + b` in the current scope, broadcasting as PyTorch does.
    pub fn add(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.function("add", "operator.add", ops::Add, &[a, b])
    }

    /// `a * b` in the current scope: of tensors (broadcasting), or of two int nodes.
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.function("mul", "operator.mul", ops::Mul, &[a, b])
    }

    /// `x * c` of a tensor and a Python number in the current scope.
    pub fn mul_scalar(&mut self, x: NodeId, c: f64) -> NodeId {
        self.function("mul", "operator.mul", ops::Scalar::Mul(c), &[x])
    }

    /// `x + c` of a tensor and a Python number in the current scope.
    pub fn add_scalar(&mut self, x: NodeId, c: f64) -> NodeId {
        self.function("add", "operator.add", ops::Scalar::Add(c), &[x])
    }

    /// `torch.unsqueeze(x, dim)` in the current scope.
    pub fn unsqueeze(&mut self, x: NodeId, dim: usize) -> NodeId {
        let op = ops::Unsqueeze { dim };
        self.function("unsqueeze", "torch.unsqueeze", op, &[x])
    }

    /// `F.avg_pool2d(x, kernel_size, stride, padding)` in the current scope (zero padding
    /// counted, rounding down, as its defaults are).
    pub fn functional_avg_pool2d(&mut self, window: Window2d, x: NodeId) -> NodeId {
        let op = ops::AvgPool2d {
            window,
            ceil_mode: false,
            count_include_pad: true,
        };
        self.function("avg_pool2d", "torch._C._nn.avg_pool2d", op, &[x])
    }

    /// `F.max_pool2d(x, kernel_size, stride, ..)` in the current scope.
    pub fn functional_max_pool2d(
        &mut self,
        window: Window2d,
        ceil_mode: bool,
        x: NodeId,
    ) -> NodeId {
        let target = "torch.nn.functional.max_pool2d";
        let op = ops::MaxPool2d { window, ceil_mode };
        self.function("max_pool2d", target, op, &[x])
    }

    /// `torch.flatten(x, start_dim)` in the current scope.
    pub fn flatten(&mut self, x: NodeId, start_dim: usize) -> NodeId {
        self.function("flatten", "torch.flatten", ops::Flatten { start_dim }, &[x])
    }

    /// `torch.cat(xs, dim)` in the current scope.
    pub fn cat(&mut self, xs: &[NodeId], dim: usize) -> NodeId {
        self.function("cat", "torch.cat", ops::Cat { dim }, xs)
    }

    /// `torch.transpose(x, dim0, dim1)` of a rank-`rank` `x` in the current scope: a
    /// permutation swapping two axes (the op lists every axis, so the trace gives the rank it
    /// knows, as ShuffleNetV2's channel shuffle knows its view's).
    pub fn transpose(&mut self, x: NodeId, rank: usize, dim0: usize, dim1: usize) -> NodeId {
        let dims = swapped_axes(rank, dim0, dim1);
        self.function("transpose", "torch.transpose", ops::Permute { dims }, &[x])
    }

    /// `F.relu(x)` in the current scope.
    pub fn functional_relu(&mut self, x: NodeId) -> NodeId {
        let target = "torch.nn.functional.relu";
        self.function("relu", target, Activation::Relu, &[x])
    }

    /// `F.adaptive_avg_pool2d(x, output)` in the current scope.
    pub fn functional_adaptive_avg_pool2d(&mut self, output: [usize; 2], x: NodeId) -> NodeId {
        let target = "torch.nn.functional.adaptive_avg_pool2d";
        let op = ops::AdaptiveAvgPool2d { output };
        self.function("adaptive_avg_pool2d", target, op, &[x])
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
        let target = "torch.nn.functional.layer_norm";
        let op = ops::LayerNorm { features, eps };
        self.function("layer_norm", target, op, &[x, weight, bias])
    }

    /// `x[:, index]` in the current scope (a `getitem` dropping dimension `dim`).
    pub fn select(&mut self, x: NodeId, dim: usize, index: usize) -> NodeId {
        self.getitem(ops::Select { dim, index }, x)
    }

    // Methods.

    /// `x.flatten(start_dim)` (the method, where [`Tracer::flatten`] is `torch.flatten`).
    pub fn flatten_method(&mut self, x: NodeId, start_dim: usize) -> NodeId {
        self.method("flatten", ops::Flatten { start_dim }, &[x])
    }

    /// `x.mean(dims)` in the current scope (MNASNet's global pool).
    pub fn mean(&mut self, x: NodeId, dims: &[usize]) -> NodeId {
        let op = ops::Reduce {
            kind: ops::ReduceKind::Mean,
            axes: dims.to_vec(),
            keepdims: false,
        };
        self.method("mean", op, &[x])
    }

    /// `x.view(*shape)` in the current scope.
    pub fn view(&mut self, x: NodeId, shape: &[i64]) -> NodeId {
        let op = ops::Reshape {
            shape: shape.iter().copied().map(Some).collect(),
        };
        self.method("view", op, &[x])
    }

    /// `x.view(*shape)`, each [`Size::Node`] read from an int node (ShuffleNetV2's
    /// `x.view(batchsize, groups, channels_per_group, height, width)`).
    pub fn view_sizes(&mut self, x: NodeId, shape: &[Size]) -> NodeId {
        let (shape, inputs) = sizes(x, shape);
        self.method("view", ops::Reshape { shape }, &inputs)
    }

    /// `x.contiguous()`: the same values (a copy into row-major order in PyTorch).
    pub fn contiguous(&mut self, x: NodeId) -> NodeId {
        self.method("contiguous", ops::Identity, &[x])
    }

    /// `x.chunk(N, dim=dim)` unpacked into `N` names (`x1, x2 = x.chunk(2, dim=1)`): the
    /// tuple node, then one `getitem` per piece, as FX records the unpacking. Returns the
    /// pieces.
    pub fn chunk<const N: usize>(&mut self, x: NodeId, dim: usize) -> [NodeId; N] {
        let tuple = self.method("chunk", ops::Chunk { chunks: N, dim }, &[x]);
        std::array::from_fn(|index| {
            let op = ops::ChunkItem {
                chunks: N,
                dim,
                index,
            };
            self.getitem(op, tuple)
        })
    }

    /// `x.permute(*dims)` in the current scope.
    pub fn permute(&mut self, x: NodeId, dims: &[usize]) -> NodeId {
        let op = ops::Permute {
            dims: dims.to_vec(),
        };
        self.method("permute", op, &[x])
    }

    /// `x.reshape(*shape)`, each [`Size::Node`] read from an int node.
    pub fn reshape(&mut self, x: NodeId, shape: &[Size]) -> NodeId {
        let (shape, inputs) = sizes(x, shape);
        self.method("reshape", ops::Reshape { shape }, &inputs)
    }

    /// `x.expand(*sizes)`, each [`Size::Node`] read from an int node.
    pub fn expand(&mut self, x: NodeId, shape: &[Size]) -> NodeId {
        let (sizes, inputs) = sizes(x, shape);
        self.method("expand", ops::Expand { sizes }, &inputs)
    }

    // Shape checks: Python values known from the input's shape.

    /// `x.shape` in the current scope.
    pub fn shape(&mut self, x: NodeId) -> NodeId {
        self.function("getattr", "builtins.getattr", ops::Shape, &[x])
    }

    /// `x.size()` in the current scope: the same `torch.Size` as `x.shape`, called as a method.
    pub fn size(&mut self, x: NodeId) -> NodeId {
        self.method("size", ops::Shape, &[x])
    }

    /// `x.dim()`.
    pub fn dim(&mut self, x: NodeId) -> NodeId {
        self.method("dim", ops::Dim, &[x])
    }

    /// `size[index]` of a `torch.Size` node.
    pub fn get_item(&mut self, size: NodeId, index: usize) -> NodeId {
        self.getitem(ops::GetItem { index }, size)
    }

    /// `a == rhs` of an int node.
    pub fn eq(&mut self, a: NodeId, rhs: i64) -> NodeId {
        self.function("eq", "operator.eq", ops::Eq { rhs }, &[a])
    }

    /// `a // rhs` of an int node.
    pub fn floordiv(&mut self, a: NodeId, rhs: i64) -> NodeId {
        self.function("floordiv", "operator.floordiv", ops::FloorDiv { rhs }, &[a])
    }

    /// `torch._assert(cond, message)`.
    pub fn assert(&mut self, cond: NodeId, message: &str) -> NodeId {
        let op = ops::Assert {
            message: message.to_string(),
        };
        self.function("_assert", "torch._assert", op, &[cond])
    }

    // Calls of MaxViT's blocks.

    /// `nn.Identity` at `name` (a block's absent projection or stochastic depth): its input,
    /// as a node of its own.
    pub fn identity_module(&mut self, name: &str, x: NodeId) -> NodeId {
        self.module(name, "Identity", ops::Identity, None, &[x])
    }

    /// `nn.Tanh` at `name`.
    pub fn tanh(&mut self, name: &str, x: NodeId) -> NodeId {
        self.module(name, "Tanh", ops::Unary::Tanh, None, &[x])
    }

    /// torchvision.ops' `Conv2dNormActivation` built with `norm_layer=None` and
    /// `activation_layer=None` (MaxViT's second stem layer) at `name`: only its convolution
    /// (`<name>.0`, with a bias), one leaf node.
    pub fn conv_without_norm(&mut self, name: &str, conv: &Conv2d, x: NodeId) -> NodeId {
        let layer = Layer::Conv2d(conv.clone());
        let op = ops::Conv2d::of(conv);
        self.module(name, "Conv2dNormActivation", op, Some(layer), &[x])
    }

    /// `torch.chunk(x, N, dim=dim)` unpacked into `N` names (`q, k, v = torch.chunk(qkv, 3,
    /// dim=-1)`): the function's tuple node, then one `getitem` per piece, as
    /// [`Tracer::chunk`] records the method. `dim` counts from the front.
    pub fn chunk_function<const N: usize>(&mut self, x: NodeId, dim: usize) -> [NodeId; N] {
        let op = ops::Chunk { chunks: N, dim };
        let tuple = self.function("chunk", "torch.chunk", op, &[x]);
        std::array::from_fn(|index| {
            let op = ops::ChunkItem {
                chunks: N,
                dim,
                index,
            };
            self.getitem(op, tuple)
        })
    }

    /// `torch.swapaxes(x, dim0, dim1)` of a rank-`rank` `x` in the current scope (MaxViT's
    /// `SwapAxes` module, traced through): a permutation swapping two axes, counted from the
    /// front.
    pub fn swapaxes(&mut self, x: NodeId, rank: usize, dim0: usize, dim1: usize) -> NodeId {
        let dims = swapped_axes(rank, dim0, dim1);
        self.function("swapaxes", "torch.swapaxes", ops::Permute { dims }, &[x])
    }

    /// `F.softmax(x, dim)` in the current scope, `dim` counted from the front.
    pub fn softmax(&mut self, x: NodeId, dim: usize) -> NodeId {
        let op = ops::Softmax {
            axis: dim,
            log: false,
        };
        self.function("softmax", "torch.nn.functional.softmax", op, &[x])
    }

    /// `torch.einsum(equation, a, b)` in the current scope: the batched matrix products
    /// [`ops::Einsum`] computes (another equation is an error of shape inference).
    pub fn einsum(&mut self, equation: &str, a: NodeId, b: NodeId) -> NodeId {
        let op = ops::Einsum {
            equation: equation.to_string(),
        };
        self.function("einsum", "torch.functional.einsum", op, &[a, b])
    }

    /// `x.unsqueeze(dim)` (the method, where [`Tracer::unsqueeze`] is `torch.unsqueeze`).
    pub fn unsqueeze_method(&mut self, x: NodeId, dim: usize) -> NodeId {
        self.method("unsqueeze", ops::Unsqueeze { dim }, &[x])
    }

    /// `x[index]` of a constant integer tensor `index` of shape `index_shape`, whose values
    /// FX baked into the graph (MaxViT's relative position index, a buffer viewed at trace
    /// time): entries of `x` along its first axis.
    pub fn index_rows(&mut self, x: NodeId, index: Vec<usize>, index_shape: Vec<usize>) -> NodeId {
        let op = ops::Gather {
            axis: 0,
            indices: index,
            indices_shape: index_shape,
        };
        self.getitem(op, x)
    }

    // Calls of Swin Transformer's blocks.

    /// torchvision.ops' `MLP` leaf at `name` (Linear `0`, GELU, Dropout, Linear `3`, Dropout:
    /// Swin's blocks), one node computing as [`Tracer::mlp`]'s `MLPBlock`.
    pub fn ops_mlp(&mut self, name: &str, fc1: &Linear, fc2: &Linear, x: NodeId) -> NodeId {
        let layer = Layer::Mlp(MlpParams {
            fc1: fc1.clone(),
            fc2: fc2.clone(),
        });
        self.module(name, "MLP", ops::Mlp::of(fc1), Some(layer), &[x])
    }

    /// `nn.Linear` at `name` called on a buffer of its parent module that FX reads without
    /// naming it (Swin V2's `cpb_mlp.0` on `relative_coords_table`): a node with no inputs
    /// holding the buffer beside the layer.
    pub fn linear_of_buffer(&mut self, name: &str, linear: &Linear, buffer: ParamTensor) -> NodeId {
        let op = ops::BufferLinear {
            buffer: buffer.dims(),
            linear: ops::Linear::of(linear),
        };
        let layer = Layer::BufferLinear(ops::BufferLinearParams {
            buffer,
            linear: linear.clone(),
        });
        self.module(name, "Linear", op, Some(layer), &[])
    }

    /// `torch.sigmoid(x)` in the current scope.
    pub fn functional_sigmoid(&mut self, x: NodeId) -> NodeId {
        self.function("sigmoid", "torch.sigmoid", Activation::Sigmoid, &[x])
    }

    /// torchvision's `_get_relative_position_bias(table, relative_position_index, window)`
    /// in the current scope: the index buffer is a constant of the window the op computes.
    pub fn relative_position_bias(&mut self, table: NodeId, window: [usize; 2]) -> NodeId {
        let target = "torchvision.models.swin_transformer._get_relative_position_bias";
        let op = ops::RelativePositionBias { window };
        self.function("_get_relative_position_bias", target, op, &[table])
    }

    /// torchvision's `shifted_window_attention(x, qkv.weight, proj.weight, bias, window,
    /// heads, shift_size=.., qkv_bias=.., proj_bias=.., [logit_scale=..])` in the current
    /// scope; `params` are the `get_attr` nodes of `qkv.weight`, `proj.weight`, `qkv.bias`,
    /// `proj.bias` and, for Swin V2, `logit_scale`.
    pub fn shifted_window_attention(
        &mut self,
        op: ops::ShiftedWindowAttention,
        x: NodeId,
        bias: NodeId,
        params: &[NodeId],
    ) -> NodeId {
        let target = "torchvision.models.swin_transformer.shifted_window_attention";
        // FX's order: positional `input, qkv_weight, proj_weight, relative_position_bias`,
        // then the keyword tensors.
        let mut inputs = vec![x];
        inputs.extend(params.iter().take(2));
        inputs.push(bias);
        inputs.extend(params.iter().skip(2));
        self.function("shifted_window_attention", target, op, &inputs)
    }

    /// torchvision's `_patch_merging_pad(x)` in the current scope.
    pub fn patch_merging_pad(&mut self, x: NodeId) -> NodeId {
        let target = "torchvision.models.swin_transformer._patch_merging_pad";
        self.function("_patch_merging_pad", target, ops::PatchMergingPad, &[x])
    }

    // How FX records each kind of call.

    /// A leaf module call of class `class`, with its parameters if it has any.
    fn module(
        &mut self,
        name: &str,
        class: &str,
        op: impl Into<Op>,
        layer: Option<Layer>,
        inputs: &[NodeId],
    ) -> NodeId {
        let id = self.builder.call_module(name, class, op, inputs);
        self.bind(id, layer)
    }

    /// A free-function call named `name` with FX target `target`.
    fn function(
        &mut self,
        name: &str,
        target: &str,
        op: impl Into<Op>,
        inputs: &[NodeId],
    ) -> NodeId {
        let id = self.builder.call_function(name, target, op, inputs);
        self.bind(id, None)
    }

    /// `operator.getitem` of one value.
    fn getitem(&mut self, op: impl Into<Op>, x: NodeId) -> NodeId {
        self.function("getitem", "operator.getitem", op, &[x])
    }

    /// A tensor-method call.
    fn method(&mut self, method: &str, op: impl Into<Op>, inputs: &[NodeId]) -> NodeId {
        let id = self.builder.call_method(method, op, inputs);
        self.bind(id, None)
    }

    fn bind(&mut self, id: NodeId, layer: Option<Layer>) -> NodeId {
        debug_assert_eq!(id.0, self.layers.len());
        self.layers.push(layer);
        id
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

/// The permutation of `rank` axes that swaps `dim0` and `dim1` (`torch.transpose`,
/// `torch.swapaxes`); out of range, a list that shape inference rejects, naming the node.
fn swapped_axes(rank: usize, dim0: usize, dim1: usize) -> Vec<usize> {
    let mut dims: Vec<usize> = (0..rank).collect();
    if dim0 < rank && dim1 < rank {
        dims.swap(dim0, dim1);
    } else {
        dims.extend([dim0, dim1]);
    }
    dims
}
