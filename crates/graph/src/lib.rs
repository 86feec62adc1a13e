//! The op IR: a CNN's forward pass recorded node by node, named the way torchvision's FX
//! feature extraction names them, with every op's shape inference and reference execution.
//!
//! A model's forward pass is recorded into a [`Graph`] through a [`GraphBuilder`]: every call
//! becomes a [`Node`] with its FX kind (`placeholder`, `call_module`, `call_function`,
//! `call_method`, `get_attr`), its target and module class, its inputs and its [`Op`]. The
//! builder owns the naming rules, so no model spells a node name by hand:
//!
//! - a leaf module call is named by its module path (`layer1.0.conv1`);
//! - a function or method call is `<enclosing module path>.<op>` (`layer1.0.add`, `flatten`);
//! - a repeated name gets `_1`, `_2`, ... (`layer1.0.relu`, then `layer1.0.relu_1`).
//!
//! Each op is one file in [`ops`]: its hyperparameters, its shape inference
//! ([`OpDef::infer`]), its execution on burn's tensor ops ([`OpDef::eval`]) and the rewrites
//! that belong to it. A node's parameters are a [`Layer`]; its runtime value a [`Feature`].
//!
//! Shapes are not stored: [`Graph::infer_shapes`] computes every node's output shape for a given
//! input shape, which is also how inputs are validated before any compute.

mod builder;
mod error;
mod feature;
mod graph;
mod layer;
mod layout;
pub mod ops;
mod tokens;
mod value;
mod window;

pub use builder::{GraphBuilder, ImportedNode};
pub use error::{GraphError, Result};
pub use feature::{Feature, MAX_RANK, TensorFn};
pub use graph::{Graph, Node, NodeId, NodeKind};
pub use layer::{Layer, ParamTensor, lazy_dims};
pub use layout::{Layout, MapView};
pub use ops::{Activation, ConvNormClass, Cx, Kind, Op, OpDef};
pub use tokens::TokenGrid;
pub use value::Value;
pub use window::Window2d;

/// How BatchNorm, Dropout and stochastic depth behave, as `model.eval()` / `model.train()` in
/// PyTorch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Running statistics, no dropout (the default).
    #[default]
    Eval,
    /// Batch statistics, active dropout. Running statistics are not updated.
    Train,
}
