use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::prelude::Tensor;
use featx_graph::{Graph, GraphBuilder, NodeId, Op, Window2d};

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
