use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use featx_graph::{Graph, GraphBuilder, NodeId, Op};

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
        let [out_channels, group_in, kh, kw] = conv.weight.dims();
        let op = Op::Conv2d {
            in_channels: group_in * conv.groups,
            out_channels,
            kernel: [kh, kw],
            stride: conv.stride,
            padding: symmetric_padding(&conv.padding),
            dilation: conv.dilation,
            groups: conv.groups,
            bias: conv.bias.is_some(),
        };
        let id = self.builder.call_module(name, op, &[x]);
        self.bind(id, Some(Layer::Conv2d(conv.clone())))
    }

    /// `nn.BatchNorm2d` at `name`.
    pub fn batch_norm(&mut self, name: &str, bn: &BatchNorm, x: NodeId) -> NodeId {
        let [features] = bn.gamma.dims();
        let op = Op::BatchNorm2d {
            features,
            eps: bn.epsilon,
        };
        let id = self.builder.call_module(name, op, &[x]);
        self.bind(id, Some(Layer::BatchNorm(bn.clone())))
    }

    /// `nn.Linear` at `name`.
    pub fn linear(&mut self, name: &str, linear: &Linear, x: NodeId) -> NodeId {
        let [in_features, out_features] = linear.weight.dims();
        let op = Op::Linear {
            in_features,
            out_features,
            bias: linear.bias.is_some(),
        };
        let id = self.builder.call_module(name, op, &[x]);
        self.bind(id, Some(Layer::Linear(linear.clone())))
    }

    /// A parameter-free module (`nn.ReLU`, `nn.MaxPool2d`, `nn.Dropout`, ...) at `name`.
    pub fn module(&mut self, name: &str, op: Op, x: NodeId) -> NodeId {
        let id = self.builder.call_module(name, op, &[x]);
        self.bind(id, None)
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

    /// The graph and the per-node layers; `output` is what the forward pass returns.
    pub fn finish(self, output: NodeId) -> (Graph, Vec<Option<Layer>>) {
        (self.builder.finish(output), self.layers)
    }

    fn bind(&mut self, id: NodeId, layer: Option<Layer>) -> NodeId {
        debug_assert_eq!(id.0, self.layers.len());
        self.layers.push(layer);
        id
    }
}

/// The models here only use explicit symmetric padding; anything else is a model bug.
fn symmetric_padding(padding: &PaddingConfig2d) -> [usize; 2] {
    match padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            assert!(
                top == bottom && left == right,
                "featx models use symmetric padding"
            );
            [*top, *left]
        }
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Same => panic!("featx models use explicit padding, not Same"),
    }
}
