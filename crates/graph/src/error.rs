use thiserror::Error;

/// Errors raised while building a graph, inferring its shapes or reading a value back.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum GraphError {
    /// An op cannot accept the shape that reaches it.
    #[error("node '{node}' cannot take an input of shape {input:?}: {reason}")]
    Shape {
        /// The node whose input is wrong.
        node: String,
        /// The shape that reached it.
        input: Vec<usize>,
        /// What the op expected instead.
        reason: String,
    },
    /// A computed value could not be read back from its device as float32.
    #[error("cannot read back a tensor of shape {shape:?}: {reason}")]
    ReadBack {
        /// The tensor's shape.
        shape: Vec<usize>,
        /// What the backend reported.
        reason: String,
    },
    /// A node was referenced that does not belong to the graph.
    #[error("node id {0} is not part of this graph")]
    UnknownNodeId(usize),
}

/// `Result` with [`GraphError`].
pub type Result<T> = std::result::Result<T, GraphError>;
