use thiserror::Error;

/// Errors from resolving node queries, checking inputs and running an extractor.
#[derive(Debug, Error)]
pub enum ExtractError {
    /// A query matches no node name and no module path.
    #[error("no node or module named '{query}' in {model}{}", did_you_mean(.suggestions))]
    UnknownNode {
        /// The query as given.
        query: String,
        /// The model searched.
        model: String,
        /// The closest real node or module names.
        suggestions: Vec<String>,
    },
    /// A query names a node or module of the model's graph in one mode only: GoogLeNet's and
    /// Inception v3's auxiliary heads are in the train-mode graph alone, as torchvision's FX
    /// trace records them (their `forward` runs them only while training).
    #[error(
        "'{node}' exists in {model}'s {} mode graph only: ask for it in {} mode{}",
        mode_name(*.mode),
        mode_name(*.mode),
        mode_hint(*.mode)
    )]
    ModeOnly {
        /// The query as given.
        node: String,
        /// The model.
        model: String,
        /// The only mode whose graph has it.
        mode: crate::Mode,
    },
    /// Two different nodes were requested under the same output key.
    #[error("output key '{key}' is requested for both '{first}' and '{second}'")]
    DuplicateKey {
        /// The shared key.
        key: String,
        /// Node resolved for the first use of the key.
        first: String,
        /// Node resolved for the second use.
        second: String,
    },
    /// A request item is empty or malformed (`"layer1,,fc"`, `"=key"`).
    #[error("invalid node request '{item}': {reason}")]
    BadRequest {
        /// The offending item.
        item: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input does not fit the model; nothing was computed.
    #[error("invalid input of shape {found:?} for {model}: {reason}")]
    InvalidInput {
        /// The model.
        model: String,
        /// The input shape given.
        found: Vec<usize>,
        /// What was expected.
        reason: String,
    },
    /// The requested device is not usable here.
    #[error("device '{name}' is not available: {reason}")]
    DeviceUnavailable {
        /// The device asked for.
        name: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The precision asked for is unknown, or the device cannot compute in it.
    #[error("precision '{precision}' is not available here: {reason}")]
    PrecisionUnsupported {
        /// The precision asked for (`f16`).
        precision: String,
        /// Why, and what to use instead.
        reason: String,
    },
    /// A parameter the request needs is larger than the device's largest buffer; nothing was
    /// moved.
    #[error(
        "{layer} needs a {bytes}-byte buffer for '{tensor}', more than the {limit} bytes this device's largest buffer holds; extract nodes before it, or run on the CPU"
    )]
    LayerTooLarge {
        /// The node (module path) whose parameters do not fit.
        layer: String,
        /// Which of its tensors (`weight`, `bias`, ...).
        tensor: String,
        /// That tensor's size.
        bytes: u64,
        /// The device's limit.
        limit: u64,
    },
    /// A computed value could not be read back from its device as float32.
    #[error("cannot read back a tensor of shape {shape:?}: {reason}")]
    ReadBack {
        /// The tensor's shape.
        shape: Vec<usize>,
        /// What the backend reported.
        reason: String,
    },
    /// What a backward pass was asked to differentiate is not one number.
    #[error("the score to differentiate must hold one value, not a tensor of shape {shape:?}")]
    NotScalar {
        /// The shape the score function returned.
        shape: Vec<usize>,
    },
    /// A requested node is not a tensor (a shape check such as `x.shape` or
    /// `torch._assert`, or a tuple), so it has no feature to return.
    #[error("node '{node}' is not a tensor: it is {what}")]
    NotATensor {
        /// The node.
        node: String,
        /// What it is instead.
        what: String,
    },
    /// The traced graph is inconsistent with its layers (a model bug, not a user error).
    #[error("internal error at node '{node}': {reason}")]
    Internal {
        /// The node being executed.
        node: String,
        /// What went wrong.
        reason: String,
    },
}

fn mode_name(mode: crate::Mode) -> &'static str {
    match mode {
        crate::Mode::Eval => "eval",
        crate::Mode::Train => "train",
    }
}

fn mode_hint(mode: crate::Mode) -> &'static str {
    match mode {
        crate::Mode::Train => " (--mode train, or FeatureExtractor::new_in with Mode::Train)",
        crate::Mode::Eval => " (--mode eval, or FeatureExtractor::new)",
    }
}

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}

/// `Result` with [`ExtractError`].
pub type Result<T> = std::result::Result<T, ExtractError>;

/// A value that could not be read back, or a graph that contradicts itself (a model bug).
impl From<featx_graph::GraphError> for ExtractError {
    fn from(e: featx_graph::GraphError) -> Self {
        use featx_graph::GraphError;
        match e {
            GraphError::ReadBack { shape, reason } => ExtractError::ReadBack { shape, reason },
            GraphError::Shape { ref node, .. } => ExtractError::Internal {
                node: node.clone(),
                reason: e.to_string(),
            },
            GraphError::UnknownNodeId(id) => ExtractError::Internal {
                node: format!("#{id}"),
                reason: e.to_string(),
            },
        }
    }
}
