use std::path::PathBuf;

/// Why an ONNX file cannot be opened as a featx model. Each variant names what it found: the
/// file, the node (by its ONNX name), the op and opset, the tensor.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The bytes are not an ONNX protobuf message (another format, or cut short).
    #[error("{path} is not an ONNX model: {reason}")]
    NotOnnx {
        /// The file.
        path: PathBuf,
        /// What the protobuf parser said.
        reason: String,
    },

    /// An op featx does not compute, with where it is.
    #[error(
        "node '{node}': op {domain}{op} (opset {opset}) is not supported by featx; supported ops: {supported}"
    )]
    UnsupportedOp {
        /// The node's ONNX name.
        node: String,
        /// The op type.
        op: String,
        /// The op's domain with a `::` after it, empty for the default domain.
        domain: String,
        /// The opset the file imports for that domain.
        opset: i64,
        /// The ops featx supports, comma-separated.
        supported: String,
    },

    /// A node featx supports in general, with attributes or inputs it does not.
    #[error("node '{node}' ({op}): {reason}")]
    Node {
        /// The node's ONNX name.
        node: String,
        /// The op type.
        op: String,
        /// What is wrong or unsupported.
        reason: String,
    },

    /// The model's inputs are not one image batch.
    #[error("{0}")]
    Input(String),

    /// A dimension of the input the file leaves open and no option fixes.
    #[error(
        "input '{input}' has a dynamic {dim} ('{param}'): give the input size (--input-size HxW, or --crop)"
    )]
    DynamicInput {
        /// The input's name.
        input: String,
        /// Which dimension (`height`, `width`, `channel count`).
        dim: &'static str,
        /// The file's symbolic name for it.
        param: String,
    },

    /// A node reads a value no earlier node or initializer produces: a cycle, or a missing
    /// producer.
    #[error(
        "node '{node}' reads '{value}', which nothing before it produces (a cycle or a missing node)"
    )]
    Undefined {
        /// The node's ONNX name.
        node: String,
        /// The value it reads.
        value: String,
    },

    /// A tensor's data is absent or does not match its shape and type.
    #[error("tensor '{tensor}': {reason}")]
    TensorData {
        /// The initializer or constant's name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },

    /// A tensor's external data file lies outside the model's folder.
    #[error("tensor '{tensor}': external data '{location}' is outside the model's folder")]
    ExternalPath {
        /// The tensor's name.
        tensor: String,
        /// The `location` the file gives.
        location: String,
    },

    /// A shape does not fit where the file puts it.
    #[error("node '{node}': {reason}")]
    Shape {
        /// The node's ONNX name.
        node: String,
        /// The op's reason.
        reason: String,
    },
}

/// Results of this crate.
pub type Result<T, E = OnnxError> = std::result::Result<T, E>;
