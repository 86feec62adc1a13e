//! The ops of the IR, one file each, as tract keeps its ops: a struct with the op's
//! hyperparameters, its shape (and Python value) inference, its reference execution on burn's
//! tensor ops, the rewrites that belong to it, and its tests. [`Op`] lists them, one line each.
//!
//! An op is what a node computes, not how it was called: `nn.ReLU`, `F.relu` and a ReLU inside a
//! `Conv2dNormActivation` are one [`Activation`]; `view` and `reshape` one [`Reshape`]. How FX saw
//! the call (`call_module` and the module class, `call_function` and its target) is data on the
//! [`crate::Node`], set by the tracer.
//!
//! The reference execution ([`OpDef::eval`]) is the kernel for any device, and what featx's own
//! CPU and GPU kernels (`featx-extract`'s `SPECIALISED` list) are tested against.

mod args;

use std::fmt::Debug;

use serde::Serialize;

use crate::{Feature, Layer, Mode, Value};

pub(crate) use args::broadcast_shape;
pub use args::{binary, single, single_any};

/// What every op provides. `Op` dispatches to it; nothing outside an op's file matches on the
/// op's parameters except the rewrites and kernels that specialise it.
pub trait OpDef: Debug + Send + Sync {
    /// What the node produces for these input values (tensors by shape, and the Python values
    /// of shape checks), or why they are not acceptable. The error is a bare reason;
    /// [`crate::Graph::infer_values`] adds the node's name.
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String>;

    /// The node's value from its inputs' values, with burn's tensor ops. An error is a reason:
    /// the inputs were checked by [`OpDef::infer`] first, so it means a bug, not bad input.
    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String>;

    /// What kind of value the node produces, from its inputs' kinds: a tensor unless the op
    /// says otherwise.
    fn kind(&self, inputs: &[Kind]) -> Kind {
        let _ = inputs;
        Kind::Tensor
    }

    /// What the value is, for an error, when [`OpDef::kind`] is not [`Kind::Tensor`] (from its
    /// inputs' kinds, as `kind`).
    fn non_tensor(&self, inputs: &[Kind]) -> &'static str {
        let _ = inputs;
        "a Python value"
    }

    /// Whether `layer` holds the parameters this op reads: the tracer records them together,
    /// a hand-built graph may not. Parameter-free ops take anything.
    fn fits(&self, layer: Option<&Layer>) -> bool {
        let _ = layer;
        true
    }
}

/// What an op's value is, for planning: only tensors are computed and extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// A tensor: a feature that can be extracted.
    Tensor,
    /// A Python value known from the input's shape alone (`x.shape`, `h == 224`,
    /// `torch._assert`): computed while checking the input, never run.
    Static,
    /// A tuple holding a tensor (attention's `(output, None)`): computed, not extractable.
    Tuple,
}

/// What [`OpDef::eval`] may read besides its inputs.
#[derive(Debug, Clone, Copy)]
pub struct Cx<'a> {
    /// The node's parameters, for parameter ops.
    pub layer: Option<&'a Layer>,
    /// Eval or train behaviour.
    pub mode: Mode,
    /// The node's output shape, from shape inference.
    pub out_shape: &'a [usize],
}

/// The error of a parameter op evaluated without its parameters.
pub(crate) const NO_PARAMETERS: &str = "no parameters were traced for this layer";

/// The error of a static op asked to compute on tensors.
pub(crate) const NOT_COMPUTED: &str = "a shape check is not computed on tensors";

/// Lists the ops: declares each file, and builds [`Op`] with its conversions and dispatch.
macro_rules! ops {
    ($($file:ident :: $name:ident),* $(,)?) => {
        $(mod $file; pub use $file::$name;)*

        /// What a node computes: one variant per op, each a struct in its own file.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub enum Op {
            $(
                #[doc = concat!("The `", stringify!($name), "` op (`ops/", stringify!($file), ".rs`).")]
                $name($name),
            )*
        }

        $(impl From<$name> for Op {
            fn from(op: $name) -> Op {
                Op::$name(op)
            }
        })*

        impl Op {
            /// The op's definition.
            pub fn def(&self) -> &dyn OpDef {
                match self {
                    $(Op::$name(op) => op,)*
                }
            }

            /// The op's name (`Conv2d`, `Reshape`), for reports.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Op::$name(_) => stringify!($name),)*
                }
            }
        }
    };
}

ops! {
    input::Input,
    conv2d::Conv2d,
    batch_norm::BatchNorm2d,
    activation::Activation,
    max_pool2d::MaxPool2d,
    avg_pool2d::AvgPool2d,
    adaptive_avg_pool2d::AdaptiveAvgPool2d,
    linear::Linear,
    dropout::Dropout,
    stochastic_depth::StochasticDepth,
    add::Add,
    mul::Mul,
    flatten::Flatten,
    reshape::Reshape,
    permute::Permute,
    expand::Expand,
    cat::Cat,
    select::Select,
    parameter::Parameter,
    conv_norm_activation::ConvNormActivation,
    conv_layer_norm::ConvLayerNorm2d,
    squeeze_excitation::SqueezeExcitation,
    layer_norm::LayerNorm,
    multihead_attention::MultiheadAttention,
    tuple_item::TupleItem,
    mlp::Mlp,
    shape::Shape,
    dim::Dim,
    get_item::GetItem,
    eq::Eq,
    floor_div::FloorDiv,
    assert::Assert,
    unary::Unary,
    binary::Binary,
    matmul::MatMul,
    softmax::Softmax,
    reduce::Reduce,
    slice::Slice,
    chunk::Chunk,
    chunk_item::ChunkItem,
    gather::Gather,
    pad::Pad,
    group_norm::GroupNorm,
    where_op::Where,
    identity::Identity,
    compare::Compare,
    logical::Logical,
    resize::Resize,
    einsum::Einsum,
    unsqueeze::Unsqueeze,
    scalar::Scalar,
    shifted_window_attention::ShiftedWindowAttention,
    relative_position_bias::RelativePositionBias,
    patch_merging_pad::PatchMergingPad,
    buffer_linear::BufferLinear,
}

pub use buffer_linear::BufferLinearParams;
pub use conv_layer_norm::ConvLayerNormParams;
pub use conv_norm_activation::{ConvNormClass, ConvNormParams};
pub use mlp::MlpParams;
pub use multihead_attention::Attention;
pub use pad::PadMode;
pub use reduce::ReduceKind;
pub use resize::{CoordinateTransform, NearestRounding, ResizeMode};
pub use squeeze_excitation::SqueezeExcitationParams;
