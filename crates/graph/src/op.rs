use serde::Serialize;

use crate::Window2d;

/// What a node computes, with the hyperparameters needed to infer its output shape.
///
/// Parameters (weights) are not part of the IR: a `call_module` node's target names the module
/// that holds them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Op {
    /// The graph input, `[N, channels, H, W]`.
    Input {
        /// Expected channel count.
        channels: usize,
    },
    /// `nn.Conv2d`.
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel, stride, zero padding and dilation.
        window: Window2d,
        /// Channel groups.
        groups: usize,
        /// Whether a bias is added.
        bias: bool,
    },
    /// `nn.BatchNorm2d`.
    BatchNorm2d {
        /// Channel count.
        features: usize,
        /// Added to the variance before the square root.
        eps: f64,
    },
    /// `nn.ReLU`.
    Relu,
    /// `nn.MaxPool2d`.
    MaxPool2d {
        /// Window, stride, padding (with negative infinity) and dilation.
        window: Window2d,
        /// Round the output size up instead of down.
        ceil_mode: bool,
    },
    /// `nn.AdaptiveAvgPool2d`.
    AdaptiveAvgPool2d {
        /// Output size `[oh, ow]`.
        output: [usize; 2],
    },
    /// `nn.Linear` over the last dimension.
    Linear {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
        /// Whether a bias is added.
        bias: bool,
    },
    /// `nn.Dropout`: identity in eval mode.
    Dropout {
        /// Probability of zeroing an element in train mode.
        p: f64,
    },
    /// `operator.add` of two tensors of equal shape.
    Add,
    /// `torch.flatten(x, start_dim)`.
    Flatten {
        /// First dimension folded into the last.
        start_dim: usize,
    },
    /// `x.view(*shape)`, with at most one `-1`.
    View {
        /// Target shape; `-1` is inferred.
        shape: Vec<i64>,
    },
    /// `x.permute(*dims)`: output axis `i` is input axis `dims[i]`.
    Permute {
        /// A permutation of the input's axes.
        dims: Vec<usize>,
    },
    // Mobile nets (MobileNet, EfficientNet, RegNet).
    /// `operator.mul`: elementwise product with NumPy broadcasting (`scale * input`).
    Mul,
    /// `nn.ReLU6`: `min(max(x, 0), 6)`.
    Relu6,
    /// `nn.Hardswish`: `x * relu6(x + 3) / 6`.
    Hardswish,
    /// `nn.Hardsigmoid`: `relu6(x + 3) / 6`.
    Hardsigmoid,
    /// `nn.SiLU`: `x * sigmoid(x)`.
    Silu,
    /// `nn.Sigmoid`.
    Sigmoid,
    /// torchvision.ops' `StochasticDepth`: identity in eval mode; in train mode each sample
    /// (`row`) or the whole batch is zeroed with probability `p`, the rest scaled by `1/(1-p)`.
    StochasticDepth {
        /// Probability of dropping.
        p: f64,
        /// `mode="row"` (per sample) rather than `"batch"`.
        row: bool,
    },
    /// torchvision.ops' `Conv2dNormActivation` (and subclasses such as RegNet's
    /// `SimpleStemIN`): convolution, BatchNorm, optional activation. FX feature extraction
    /// keeps torchvision.ops modules as leaves, so this is one node.
    ConvNormActivation {
        /// The module class FX reports.
        class: ConvNormClass,
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel, stride, zero padding and dilation.
        window: Window2d,
        /// Channel groups (the channel count for a depthwise convolution).
        groups: usize,
        /// Whether the convolution adds a bias.
        bias: bool,
        /// BatchNorm's epsilon.
        eps: f64,
        /// The activation after the BatchNorm, if any.
        activation: Option<Activation>,
    },
    /// torchvision.ops' `SqueezeExcitation`: `input * scale_activation(fc2(activation(fc1(
    /// avgpool(input)))))`, with 1x1 convolutions `fc1`, `fc2`. One node, as FX keeps it.
    SqueezeExcitation {
        /// Input (and output) channels.
        channels: usize,
        /// Channels between `fc1` and `fc2`.
        squeeze: usize,
        /// After `fc1`.
        activation: Activation,
        /// After `fc2`.
        scale_activation: Activation,
    },
    // DenseNet, ConvNeXt, ViT.
    /// `torch.cat(tensors, dim)`: tensors of equal shape except along `dim`.
    Cat {
        /// The dimension the tensors are joined along.
        dim: usize,
    },
    /// `nn.AvgPool2d`, zero padding counted in the average (PyTorch's default).
    AvgPool2d {
        /// Window, stride and zero padding.
        window: Window2d,
        /// Round the output size up instead of down.
        ceil_mode: bool,
    },
    /// `F.relu(x)`: a ReLU called as a function (DenseNet's last), not a module.
    FunctionalRelu,
    /// `F.adaptive_avg_pool2d(x, output)`, called as a function.
    FunctionalAdaptiveAvgPool2d {
        /// Output size `[oh, ow]`.
        output: [usize; 2],
    },
    /// A parameter read in `forward` (FX `get_attr`: ConvNeXt's `layer_scale`, ViT's
    /// `class_token`).
    Parameter {
        /// Its shape.
        shape: Vec<usize>,
    },
    /// ConvNeXt's stem, torchvision's `Conv2dNormActivation` leaf: a convolution with bias,
    /// then LayerNorm over channels (`LayerNorm2d`), no activation.
    ConvLayerNorm2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel, stride, zero padding and dilation.
        window: Window2d,
        /// Added to the variance before the square root.
        eps: f64,
    },
    /// torchvision's `Permute` module (`torchvision.ops.misc.Permute`).
    PermuteModule {
        /// A permutation of the input's axes.
        dims: Vec<usize>,
    },
    /// `nn.LayerNorm` over the last dimension.
    LayerNorm {
        /// Size of the last dimension.
        features: usize,
        /// Added to the variance before the square root.
        eps: f64,
    },
    /// `F.layer_norm(x, (features,), weight, bias, eps)`; inputs `x`, `weight`, `bias`.
    FunctionalLayerNorm {
        /// Size of the last dimension.
        features: usize,
        /// Added to the variance before the square root.
        eps: f64,
    },
    /// `nn.GELU`, the exact (erf) form.
    Gelu,
    /// `operator.add` of two tensors, broadcasting as PyTorch does (ViT's tokens plus the
    /// `[1, tokens, dim]` position embedding).
    AddBroadcast,
    /// `nn.Flatten(start_dim)` (a module, unlike `torch.flatten`).
    FlattenModule {
        /// First dimension folded into the last.
        start_dim: usize,
    },
    /// `x.shape` (FX `builtins.getattr`): a `torch.Size`.
    Shape,
    /// `size[index]` of a `torch.Size`: an int.
    GetItem {
        /// The index.
        index: usize,
    },
    /// `a == rhs` of an int: a bool.
    Eq {
        /// The constant compared with.
        rhs: i64,
    },
    /// `torch._assert(cond, message)`: `None`, or the message as an error.
    Assert {
        /// The message torchvision raises.
        message: String,
    },
    /// `a // rhs` of an int.
    FloorDiv {
        /// The divisor.
        rhs: i64,
    },
    /// `a * b` of two ints.
    MulInt,
    /// `x.dim()`: the rank, an int.
    Dim,
    /// `x.reshape(*shape)`: `None` entries are the int inputs after the tensor, in order.
    Reshape {
        /// Target shape; `-1` is inferred.
        shape: Vec<Option<i64>>,
    },
    /// `x.expand(*sizes)`: `None` entries are the int inputs after the tensor; `-1` keeps a
    /// dimension.
    Expand {
        /// Target sizes.
        sizes: Vec<Option<i64>>,
    },
    /// `nn.MultiheadAttention(query, key, value, need_weights=False)`, batch first, self
    /// attention: a tuple `(output, None)`.
    MultiheadAttention {
        /// Model width.
        embed_dim: usize,
        /// Attention heads.
        num_heads: usize,
    },
    /// `pair[index]` of a tuple, when that element is a tensor.
    TupleItem {
        /// The index.
        index: usize,
    },
    /// `pair[index]` of a tuple, when that element is `None` (attention weights not asked for).
    NoneItem {
        /// The index.
        index: usize,
    },
    /// `x[:, index]` (FX `getitem` with a slice and an int): drops dimension `dim`.
    Select {
        /// The dimension indexed.
        dim: usize,
        /// The index taken.
        index: usize,
    },
    /// torchvision's `MLPBlock` leaf: Linear, GELU, Dropout, Linear, Dropout.
    Mlp {
        /// Input (and output) features.
        in_features: usize,
        /// Hidden features.
        hidden_features: usize,
    },
}

/// What a node produces: a tensor of some shape, or, for the shape checks FX records as
/// nodes, a Python value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Value {
    /// A tensor of this shape.
    Tensor(Vec<usize>),
    /// A `torch.Size`.
    Size(Vec<usize>),
    /// An `int`.
    Int(i64),
    /// A `bool`.
    Bool(bool),
    /// `None`.
    None,
    /// A tuple.
    Tuple(Vec<Value>),
}

impl Value {
    /// The tensor's shape, if this is a tensor.
    pub fn shape(&self) -> Option<&[usize]> {
        match self {
            Value::Tensor(shape) => Some(shape),
            _ => None,
        }
    }

    /// The Python type name (`Tensor`, `Size`, `int`, `bool`, `NoneType`, `tuple`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Tensor(_) => "Tensor",
            Value::Size(_) => "Size",
            Value::Int(_) => "int",
            Value::Bool(_) => "bool",
            Value::None => "NoneType",
            Value::Tuple(_) => "tuple",
        }
    }

    fn int(&self) -> std::result::Result<i64, String> {
        match self {
            Value::Int(v) => Ok(*v),
            other => Err(format!("expected an int, got {other}")),
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Tensor(shape) => write!(f, "Tensor{shape:?}"),
            Value::Size(shape) => write!(f, "torch.Size({shape:?})"),
            Value::Int(v) => write!(f, "int {v}"),
            Value::Bool(v) => write!(f, "bool {}", if *v { "True" } else { "False" }),
            Value::None => write!(f, "None"),
            Value::Tuple(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "tuple ({})", items.join(", "))
            }
        }
    }
}

// Mobile nets (MobileNet, EfficientNet, RegNet).
/// An elementwise activation inside a composite module (`Conv2dNormActivation`,
/// `SqueezeExcitation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Activation {
    /// `nn.ReLU`.
    Relu,
    /// `nn.ReLU6`.
    Relu6,
    /// `nn.Hardswish`.
    Hardswish,
    /// `nn.Hardsigmoid`.
    Hardsigmoid,
    /// `nn.SiLU`.
    Silu,
    /// `nn.Sigmoid`.
    Sigmoid,
}

impl Activation {
    /// The op of the activation as a module of its own.
    pub fn op(self) -> Op {
        match self {
            Activation::Relu => Op::Relu,
            Activation::Relu6 => Op::Relu6,
            Activation::Hardswish => Op::Hardswish,
            Activation::Hardsigmoid => Op::Hardsigmoid,
            Activation::Silu => Op::Silu,
            Activation::Sigmoid => Op::Sigmoid,
        }
    }
}

/// Which class a [`Op::ConvNormActivation`] node is (the name FX reports as its module type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConvNormClass {
    /// `Conv2dNormActivation`.
    Conv2dNormActivation,
    /// RegNet's `SimpleStemIN` (a 3x3 stride-2 `Conv2dNormActivation`).
    SimpleStemIn,
}

impl Op {
    /// The name FX gives a function or method call (`add`, `flatten`, `view`), and the
    /// class name of a module op (`Conv2d`, `ReLU`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "placeholder",
            Op::Conv2d { .. } => "Conv2d",
            Op::BatchNorm2d { .. } => "BatchNorm2d",
            Op::Relu => "ReLU",
            Op::MaxPool2d { .. } => "MaxPool2d",
            Op::AdaptiveAvgPool2d { .. } => "AdaptiveAvgPool2d",
            Op::Linear { .. } => "Linear",
            Op::Dropout { .. } => "Dropout",
            Op::Add => "add",
            Op::Flatten { .. } => "flatten",
            Op::View { .. } => "view",
            Op::Permute { .. } => "permute",
            // Mobile nets (MobileNet, EfficientNet, RegNet).
            Op::Mul => "mul",
            Op::Relu6 => "ReLU6",
            Op::Hardswish => "Hardswish",
            Op::Hardsigmoid => "Hardsigmoid",
            Op::Silu => "SiLU",
            Op::Sigmoid => "Sigmoid",
            Op::StochasticDepth { .. } => "StochasticDepth",
            Op::ConvNormActivation { class, .. } => match class {
                ConvNormClass::Conv2dNormActivation => "Conv2dNormActivation",
                ConvNormClass::SimpleStemIn => "SimpleStemIN",
            },
            Op::SqueezeExcitation { .. } => "SqueezeExcitation",
            // DenseNet, ConvNeXt, ViT.
            Op::Cat { .. } => "cat",
            Op::AvgPool2d { .. } => "AvgPool2d",
            Op::FunctionalRelu => "relu",
            Op::FunctionalAdaptiveAvgPool2d { .. } => "adaptive_avg_pool2d",
            Op::Parameter { .. } => "get_attr",
            Op::ConvLayerNorm2d { .. } => "Conv2dNormActivation",
            Op::PermuteModule { .. } => "Permute",
            Op::LayerNorm { .. } => "LayerNorm",
            Op::FunctionalLayerNorm { .. } => "layer_norm",
            Op::Gelu => "GELU",
            Op::MulInt => "mul",
            Op::AddBroadcast => "add",
            Op::FlattenModule { .. } => "Flatten",
            Op::Shape => "getattr",
            Op::GetItem { .. } | Op::TupleItem { .. } | Op::NoneItem { .. } | Op::Select { .. } => {
                "getitem"
            }
            Op::Eq { .. } => "eq",
            Op::Assert { .. } => "_assert",
            Op::FloorDiv { .. } => "floordiv",
            Op::Dim => "dim",
            Op::Reshape { .. } => "reshape",
            Op::Expand { .. } => "expand",
            Op::MultiheadAttention { .. } => "MultiheadAttention",
            Op::Mlp { .. } => "MLPBlock",
        }
    }

    /// The FX target of a function or method op (`operator.add`, `torch.flatten`, `view`).
    pub fn function_target(&self) -> &'static str {
        match self {
            Op::Add => "operator.add",
            Op::Flatten { .. } => "torch.flatten",
            // Mobile nets (MobileNet, EfficientNet, RegNet).
            Op::Mul => "operator.mul",
            // DenseNet, ConvNeXt, ViT.
            Op::Cat { .. } => "torch.cat",
            Op::FunctionalRelu => "torch.nn.functional.relu",
            Op::FunctionalAdaptiveAvgPool2d { .. } => "torch.nn.functional.adaptive_avg_pool2d",
            Op::FunctionalLayerNorm { .. } => "torch.nn.functional.layer_norm",
            Op::MulInt => "operator.mul",
            Op::AddBroadcast => "operator.add",
            Op::Shape => "builtins.getattr",
            Op::GetItem { .. } | Op::TupleItem { .. } | Op::NoneItem { .. } | Op::Select { .. } => {
                "operator.getitem"
            }
            Op::Eq { .. } => "operator.eq",
            Op::Assert { .. } => "torch._assert",
            Op::FloorDiv { .. } => "operator.floordiv",
            other => other.type_name(),
        }
    }

    /// Output shape for the given input shapes, or why they are not acceptable.
    ///
    /// The error is a bare reason; [`crate::Graph::infer_shapes`] adds the node name.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        let first = inputs.first().copied().unwrap_or(&[]);
        match self {
            Op::Input { channels } => {
                if first.len() != 4 {
                    return Err(format!(
                        "expected a rank-4 [N, {channels}, H, W] tensor, got rank {}",
                        first.len()
                    ));
                }
                if first[1] != *channels {
                    return Err(format!(
                        "expected {channels} channels ([N, {channels}, H, W]), got {}",
                        first[1]
                    ));
                }
                if first[0] == 0 || first[2] == 0 || first[3] == 0 {
                    return Err("batch, height and width must be non-zero".into());
                }
                Ok(first.to_vec())
            }
            // A `Conv2dNormActivation` has its convolution's geometry.
            Op::Conv2d {
                in_channels,
                out_channels,
                window,
                ..
            }
            | Op::ConvNormActivation {
                in_channels,
                out_channels,
                window,
                ..
            } => {
                let [n, c, h, w] = rank4(first)?;
                if c != *in_channels {
                    return Err(format!("expected {in_channels} channels, got {c}"));
                }
                let [oh, ow] = window.output_size([h, w], false)?;
                Ok(vec![n, *out_channels, oh, ow])
            }
            Op::BatchNorm2d { features, .. }
            | Op::SqueezeExcitation {
                channels: features, ..
            } => {
                let [_, c, _, _] = rank4(first)?;
                if c != *features {
                    return Err(format!("expected {features} channels, got {c}"));
                }
                Ok(first.to_vec())
            }
            Op::Relu | Op::Dropout { .. } => Ok(first.to_vec()),
            Op::MaxPool2d { window, ceil_mode } => {
                let [n, c, h, w] = rank4(first)?;
                let [oh, ow] = window.output_size([h, w], *ceil_mode)?;
                Ok(vec![n, c, oh, ow])
            }
            Op::AdaptiveAvgPool2d { output } => {
                let [n, c, _, _] = rank4(first)?;
                Ok(vec![n, c, output[0], output[1]])
            }
            Op::Linear {
                in_features,
                out_features,
                ..
            } => match first.split_last() {
                Some((last, rest)) if last == in_features => {
                    let mut out = rest.to_vec();
                    out.push(*out_features);
                    Ok(out)
                }
                _ => Err(format!("expected a last dimension of {in_features}")),
            },
            Op::Add => {
                let second = inputs.get(1).copied().unwrap_or(&[]);
                if first != second {
                    return Err(format!("cannot add shapes {first:?} and {second:?}"));
                }
                Ok(first.to_vec())
            }
            Op::Flatten { start_dim } => {
                if *start_dim >= first.len() {
                    return Err(format!("cannot flatten from dimension {start_dim}"));
                }
                let mut out = first[..*start_dim].to_vec();
                out.push(first[*start_dim..].iter().product());
                Ok(out)
            }
            Op::View { shape } => view_shape(first, shape),
            Op::Permute { dims } => {
                let mut seen = vec![false; first.len()];
                let valid = dims.len() == first.len()
                    && dims
                        .iter()
                        .all(|&d| d < first.len() && !std::mem::replace(&mut seen[d], true));
                if !valid {
                    return Err(format!(
                        "{dims:?} is not a permutation of a rank-{} tensor's axes",
                        first.len()
                    ));
                }
                Ok(dims.iter().map(|&d| first[d]).collect())
            }
            // Mobile nets (MobileNet, EfficientNet, RegNet).
            Op::Mul => broadcast_shape(first, inputs.get(1).copied().unwrap_or(&[])),
            Op::Relu6
            | Op::Hardswish
            | Op::Hardsigmoid
            | Op::Silu
            | Op::Sigmoid
            | Op::StochasticDepth { .. } => Ok(first.to_vec()),
            // DenseNet, ConvNeXt, ViT.
            Op::Cat { dim } => cat_shape(inputs, *dim),
            Op::AvgPool2d { window, ceil_mode } => {
                let [n, c, h, w] = rank4(first)?;
                let [oh, ow] = window.output_size([h, w], *ceil_mode)?;
                Ok(vec![n, c, oh, ow])
            }
            Op::FunctionalRelu => Ok(first.to_vec()),
            Op::FunctionalAdaptiveAvgPool2d { output } => {
                let [n, c, _, _] = rank4(first)?;
                Ok(vec![n, c, output[0], output[1]])
            }
            Op::Parameter { shape } => Ok(shape.clone()),
            Op::ConvLayerNorm2d {
                in_channels,
                out_channels,
                window,
                ..
            } => {
                let [n, c, h, w] = rank4(first)?;
                if c != *in_channels {
                    return Err(format!("expected {in_channels} channels, got {c}"));
                }
                let [oh, ow] = window.output_size([h, w], false)?;
                Ok(vec![n, *out_channels, oh, ow])
            }
            Op::PermuteModule { dims } => Op::Permute { dims: dims.clone() }.output_shape(inputs),
            Op::LayerNorm { features, .. } | Op::FunctionalLayerNorm { features, .. } => {
                match first.last() {
                    Some(last) if last == features => Ok(first.to_vec()),
                    _ => Err(format!("expected a last dimension of {features}")),
                }
            }
            Op::Gelu => Ok(first.to_vec()),
            Op::AddBroadcast => broadcast_shape(first, inputs.get(1).copied().unwrap_or(&[])),
            Op::FlattenModule { start_dim } => Op::Flatten {
                start_dim: *start_dim,
            }
            .output_shape(inputs),
            Op::MultiheadAttention { embed_dim, .. } => match first {
                [_, _, e] if e == embed_dim => Ok(first.to_vec()),
                _ => Err(format!("expected [N, L, {embed_dim}]")),
            },
            Op::TupleItem { .. } => Ok(first.to_vec()),
            Op::Select { dim, index } => {
                if *dim >= first.len() || *index >= first[*dim] {
                    return Err(format!("cannot take index {index} of dimension {dim}"));
                }
                let mut out = first.to_vec();
                out.remove(*dim);
                Ok(out)
            }
            Op::Mlp { in_features, .. } => match first.last() {
                Some(last) if last == in_features => Ok(first.to_vec()),
                _ => Err(format!("expected a last dimension of {in_features}")),
            },
            Op::Shape
            | Op::GetItem { .. }
            | Op::Eq { .. }
            | Op::Assert { .. }
            | Op::FloorDiv { .. }
            | Op::MulInt
            | Op::Dim
            | Op::Reshape { .. }
            | Op::Expand { .. }
            | Op::NoneItem { .. } => Err(format!(
                "{} takes Python values: see Op::output_value",
                self.type_name()
            )),
        }
    }
}

// Mobile nets (MobileNet, EfficientNet, RegNet).
/// The shape of an elementwise op on `a` and `b` under NumPy broadcasting: shapes aligned at
/// their last axis, each pair of sizes equal or one of them 1.
fn broadcast_shape(a: &[usize], b: &[usize]) -> std::result::Result<Vec<usize>, String> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => Err(format!("cannot broadcast shapes {a:?} and {b:?}")),
        })
        .collect()
}

fn rank4(shape: &[usize]) -> std::result::Result<[usize; 4], String> {
    <[usize; 4]>::try_from(shape).map_err(|_| format!("expected rank 4, got rank {}", shape.len()))
}

// DenseNet, ConvNeXt, ViT.
impl Op {
    /// What the node produces for these input values (tensors by shape, and the Python
    /// values of shape checks), or why they are not acceptable. `torch._assert` with a false
    /// condition is its message as an error: the check the model makes on its input.
    pub fn output_value(&self, inputs: &[&Value]) -> std::result::Result<Value, String> {
        let first = inputs.first().copied().unwrap_or(&Value::None);
        let tensor = |v: &Value| {
            v.shape()
                .map(<[usize]>::to_vec)
                .ok_or_else(|| format!("expected a tensor, got {v}"))
        };
        Ok(match self {
            Op::Shape => Value::Size(tensor(first)?),
            Op::Dim => Value::Int(tensor(first)?.len() as i64),
            Op::GetItem { index } => match first {
                Value::Size(dims) => match dims.get(*index) {
                    Some(d) => Value::Int(*d as i64),
                    None => return Err(format!("index {index} of {first}")),
                },
                Value::Tuple(items) => match items.get(*index) {
                    Some(item) => item.clone(),
                    None => return Err(format!("index {index} of {first}")),
                },
                other => return Err(format!("cannot index {other}")),
            },
            Op::Eq { rhs } => Value::Bool(first.int()? == *rhs),
            Op::Assert { message } => match first {
                Value::Bool(true) => Value::None,
                Value::Bool(false) => return Err(message.clone()),
                other => return Err(format!("expected a bool, got {other}")),
            },
            Op::FloorDiv { rhs } => {
                if *rhs == 0 {
                    return Err("integer division by zero".into());
                }
                Value::Int(first.int()?.div_euclid(*rhs))
            }
            Op::MulInt => {
                let second = inputs.get(1).copied().unwrap_or(&Value::None);
                Value::Int(first.int()? * second.int()?)
            }
            Op::Reshape { shape } => {
                let shape = fill_ints(shape, &inputs[1.min(inputs.len())..])?;
                Value::Tensor(view_shape(&tensor(first)?, &shape)?)
            }
            Op::Expand { sizes } => {
                let sizes = fill_ints(sizes, &inputs[1.min(inputs.len())..])?;
                Value::Tensor(expand_shape(&tensor(first)?, &sizes)?)
            }
            Op::MultiheadAttention { .. } => {
                let shapes: Vec<Vec<usize>> =
                    inputs.iter().map(|v| tensor(v)).collect::<Result<_, _>>()?;
                if shapes.iter().any(|s| s != &shapes[0]) || shapes.len() != 3 {
                    return Err("self attention takes three equal inputs".into());
                }
                let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
                Value::Tuple(vec![
                    Value::Tensor(self.output_shape(&shapes)?),
                    Value::None,
                ])
            }
            Op::TupleItem { index } | Op::NoneItem { index } => match first {
                Value::Tuple(items) => match items.get(*index) {
                    Some(item) => item.clone(),
                    None => return Err(format!("index {index} of {first}")),
                },
                other => return Err(format!("cannot index {other}")),
            },
            _ => {
                let shapes: Vec<Vec<usize>> =
                    inputs.iter().map(|v| tensor(v)).collect::<Result<_, _>>()?;
                let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
                Value::Tensor(self.output_shape(&shapes)?)
            }
        })
    }

    /// Whether the node's value is a tensor (a feature that can be extracted): not a shape
    /// check, not attention's `(output, None)` tuple.
    pub fn is_tensor(&self) -> bool {
        !self.is_static() && !matches!(self, Op::MultiheadAttention { .. })
    }

    /// Whether the node's value is known from the input's shape alone (the shape checks and
    /// their arithmetic): it is computed while checking the input, and never runs.
    pub fn is_static(&self) -> bool {
        matches!(
            self,
            Op::Shape
                | Op::GetItem { .. }
                | Op::Eq { .. }
                | Op::Assert { .. }
                | Op::FloorDiv { .. }
                | Op::MulInt
                | Op::Dim
                | Op::NoneItem { .. }
        )
    }
}

/// `spec` with each `None` replaced by the next int of `values`.
fn fill_ints(spec: &[Option<i64>], values: &[&Value]) -> std::result::Result<Vec<i64>, String> {
    let mut values = values.iter();
    spec.iter()
        .map(|d| match d {
            Some(d) => Ok(*d),
            None => values
                .next()
                .ok_or_else(|| "missing a size argument".to_string())?
                .int(),
        })
        .collect()
}

/// `x.expand(*sizes)`: `-1` keeps a dimension, a size-1 dimension may grow; new leading
/// dimensions are allowed.
fn expand_shape(input: &[usize], sizes: &[i64]) -> std::result::Result<Vec<usize>, String> {
    if sizes.len() < input.len() {
        return Err(format!("cannot expand {input:?} to {sizes:?}"));
    }
    let lead = sizes.len() - input.len();
    sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let current = i.checked_sub(lead).map(|j| input[j]);
            match (s, current) {
                (-1, Some(c)) => Ok(c),
                (s, Some(c)) if s >= 0 && (c == 1 || c as i64 == s) => Ok(s as usize),
                (s, None) if s >= 0 => Ok(s as usize),
                _ => Err(format!("cannot expand {input:?} to {sizes:?}")),
            }
        })
        .collect()
}

/// `torch.cat`'s output: the inputs' common shape, summed along `dim`.
fn cat_shape(inputs: &[&[usize]], dim: usize) -> std::result::Result<Vec<usize>, String> {
    let Some(first) = inputs.first() else {
        return Err("cat of no tensors".into());
    };
    if dim >= first.len() {
        return Err(format!(
            "cannot join rank-{} tensors along dimension {dim}",
            first.len()
        ));
    }
    let mut out = first.to_vec();
    out[dim] = 0;
    for shape in inputs {
        let fits = shape.len() == first.len()
            && shape
                .iter()
                .zip(first.iter())
                .enumerate()
                .all(|(d, (a, b))| d == dim || a == b);
        if !fits {
            return Err(format!(
                "cannot join shapes {first:?} and {shape:?} along dimension {dim}"
            ));
        }
        out[dim] += shape[dim];
    }
    Ok(out)
}

fn view_shape(input: &[usize], shape: &[i64]) -> std::result::Result<Vec<usize>, String> {
    let numel: usize = input.iter().product();
    let known: usize = shape
        .iter()
        .filter(|&&d| d >= 0)
        .map(|&d| d as usize)
        .product();
    let inferred = shape.iter().filter(|&&d| d == -1).count();
    if inferred > 1 || shape.iter().any(|&d| d < -1) {
        return Err(format!("invalid view shape {shape:?}"));
    }
    if inferred == 0 {
        if known != numel {
            return Err(format!("cannot view {numel} elements as {shape:?}"));
        }
        return Ok(shape.iter().map(|&d| d as usize).collect());
    }
    if known == 0 || !numel.is_multiple_of(known) {
        return Err(format!("cannot view {numel} elements as {shape:?}"));
    }
    Ok(shape
        .iter()
        .map(|&d| if d == -1 { numel / known } else { d as usize })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_output_matches_pytorch_formula() {
        let conv = Op::Conv2d {
            in_channels: 3,
            out_channels: 64,
            window: Window2d::square(7, 2, 3),
            groups: 1,
            bias: false,
        };
        assert_eq!(
            conv.output_shape(&[&[2, 3, 224, 224]]).unwrap(),
            vec![2, 64, 112, 112]
        );
        assert!(conv.output_shape(&[&[2, 4, 224, 224]]).is_err());
    }

    #[test]
    fn maxpool_ceil_mode_drops_window_starting_in_padding() {
        let pool = |ceil_mode| Op::MaxPool2d {
            window: Window2d::square(3, 2, 0),
            ceil_mode,
        };
        assert_eq!(
            pool(false).output_shape(&[&[1, 1, 6, 6]]).unwrap(),
            vec![1, 1, 2, 2]
        );
        assert_eq!(
            pool(true).output_shape(&[&[1, 1, 6, 6]]).unwrap(),
            vec![1, 1, 3, 3]
        );
    }

    #[test]
    fn view_infers_minus_one_and_rejects_uneven_sizes() {
        let view = Op::View { shape: vec![-1, 6] };
        assert_eq!(view.output_shape(&[&[2, 3, 2, 2]]).unwrap(), vec![4, 6]);
        assert!(view.output_shape(&[&[1, 5]]).is_err());
    }

    #[test]
    fn permute_reorders_axes_and_checks_the_permutation() {
        let permute = Op::Permute {
            dims: vec![0, 2, 1],
        };
        assert_eq!(
            permute.output_shape(&[&[2, 64, 49]]).unwrap(),
            vec![2, 49, 64]
        );
        assert!(permute.output_shape(&[&[2, 64]]).is_err());
        let repeated = Op::Permute {
            dims: vec![0, 1, 1],
        };
        assert!(repeated.output_shape(&[&[2, 3, 4]]).is_err());
    }

    #[test]
    fn mul_broadcasts_like_numpy() {
        assert_eq!(
            Op::Mul
                .output_shape(&[&[2, 8, 1, 1], &[2, 8, 5, 5]])
                .unwrap(),
            vec![2, 8, 5, 5]
        );
        assert_eq!(
            Op::Mul.output_shape(&[&[8, 1, 1], &[2, 8, 5, 5]]).unwrap(),
            vec![2, 8, 5, 5]
        );
        assert!(Op::Mul.output_shape(&[&[2, 3], &[2, 4]]).is_err());
    }

    #[test]
    fn window_larger_than_input_is_an_error() {
        let conv = Op::Conv2d {
            in_channels: 3,
            out_channels: 8,
            window: Window2d::square(11, 4, 2),
            groups: 1,
            bias: true,
        };
        let err = conv.output_shape(&[&[1, 3, 4, 4]]).unwrap_err();
        assert!(err.contains("smaller than the window"), "{err}");
    }

    // DenseNet, ConvNeXt, ViT.

    #[test]
    fn cat_sums_the_joined_dimension_and_checks_the_others() {
        let cat = Op::Cat { dim: 1 };
        assert_eq!(
            cat.output_shape(&[&[2, 64, 8, 8], &[2, 32, 8, 8]]).unwrap(),
            vec![2, 96, 8, 8]
        );
        assert!(cat.output_shape(&[&[2, 64, 8, 8], &[2, 32, 4, 4]]).is_err());
    }

    #[test]
    fn mul_and_add_broadcast_as_pytorch() {
        assert_eq!(
            Op::Mul
                .output_shape(&[&[96, 1, 1], &[2, 96, 56, 56]])
                .unwrap(),
            vec![2, 96, 56, 56]
        );
        assert_eq!(
            Op::AddBroadcast
                .output_shape(&[&[4, 197, 768], &[1, 197, 768]])
                .unwrap(),
            vec![4, 197, 768]
        );
        assert!(Op::Mul.output_shape(&[&[3, 1], &[2, 4]]).is_err());
    }

    #[test]
    fn shape_checks_compute_python_values() {
        let x = Value::Tensor(vec![2, 3, 224, 224]);
        let size = Op::Shape.output_value(&[&x]).unwrap();
        assert_eq!(size, Value::Size(vec![2, 3, 224, 224]));
        let h = Op::GetItem { index: 2 }.output_value(&[&size]).unwrap();
        assert_eq!(h, Value::Int(224));
        let ok = Op::Eq { rhs: 224 }.output_value(&[&h]).unwrap();
        assert_eq!(ok, Value::Bool(true));
        let assert = Op::Assert {
            message: "Wrong image height!".into(),
        };
        assert_eq!(assert.output_value(&[&ok]).unwrap(), Value::None);
        let bad = Value::Bool(false);
        assert_eq!(
            assert.output_value(&[&bad]).unwrap_err(),
            "Wrong image height!"
        );
        let n = Op::FloorDiv { rhs: 16 }.output_value(&[&h]).unwrap();
        assert_eq!(n, Value::Int(14));
        let patches = Op::MulInt.output_value(&[&n, &n]).unwrap();
        let conv = Value::Tensor(vec![2, 768, 14, 14]);
        let batch = Value::Int(2);
        let reshape = Op::Reshape {
            shape: vec![None, Some(768), None],
        };
        assert_eq!(
            reshape.output_value(&[&conv, &batch, &patches]).unwrap(),
            Value::Tensor(vec![2, 768, 196])
        );
        let token = Value::Tensor(vec![1, 1, 768]);
        let expand = Op::Expand {
            sizes: vec![None, Some(-1), Some(-1)],
        };
        assert_eq!(
            expand.output_value(&[&token, &batch]).unwrap(),
            Value::Tensor(vec![2, 1, 768])
        );
        let tokens = Value::Tensor(vec![2, 197, 768]);
        let attention = Op::MultiheadAttention {
            embed_dim: 768,
            num_heads: 12,
        };
        let pair = attention
            .output_value(&[&tokens, &tokens, &tokens])
            .unwrap();
        assert_eq!(pair, Value::Tuple(vec![tokens.clone(), Value::None]));
        assert_eq!(pair.to_string(), "tuple (Tensor[2, 197, 768], None)");
        assert!(!attention.is_tensor() && Op::Dim.is_static() && Op::Gelu.is_tensor());
    }
}
