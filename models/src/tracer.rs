use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::prelude::Tensor;
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

    /// `nn.functional.adaptive_avg_pool2d(x, output)` in the current scope.
    pub fn adaptive_avg_pool2d_function(&mut self, output: [usize; 2], x: NodeId) -> NodeId {
        let op = Op::AdaptiveAvgPool2dFunction { output };
        let id = self.builder.call_function(op, &[x]);
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
