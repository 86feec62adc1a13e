//! A node-recording op IR for CNN forward passes, named the way torchvision's FX feature
//! extraction names them.
//!
//! A model's forward pass is recorded into a [`Graph`] through a [`GraphBuilder`]: every op
//! becomes a [`Node`] with its FX kind (`placeholder`, `call_module`, `call_function`,
//! `call_method`), its target, its inputs and its [`Op`] hyperparameters. The builder owns the
//! naming rules, so no model spells a node name by hand:
//!
//! - a leaf module call is named by its module path (`layer1.0.conv1`);
//! - a function or method call is `<enclosing module path>.<op>` (`layer1.0.add`, `flatten`);
//! - a repeated name gets `_1`, `_2`, ... (`layer1.0.relu`, then `layer1.0.relu_1`).
//!
//! Shapes are not stored: [`Graph::infer_shapes`] computes every node's output shape for a given
//! input shape, which is also how inputs are validated before any compute.

mod builder;
mod error;
mod graph;
mod op;
mod window;

pub use builder::GraphBuilder;
pub use error::{GraphError, Result};
pub use graph::{Graph, Node, NodeId, NodeKind};
pub use op::{Activation, ConvNormClass, Op, Value};
pub use window::Window2d;
