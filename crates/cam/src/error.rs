use thiserror::Error;

/// Errors from building or running a class activation map.
#[derive(Debug, Error)]
pub enum CamError {
    /// No CAM method has this name.
    #[error("no CAM method named '{name}'; the methods are {}", .known.join(", "))]
    UnknownMethod {
        /// The name as given.
        name: String,
        /// Every method's name.
        known: Vec<&'static str>,
    },
    /// A target layer's value is not a feature map `[N, C, H, W]`.
    #[error(
        "'{node}' is not a feature map: its value has shape {shape:?}, a CAM needs [N, C, H, W] (a convolution, block or pooling output) or transformer tokens [N, 1 + h*w, C]"
    )]
    NotFeatureMap {
        /// The node asked for.
        node: String,
        /// Its shape for the given input.
        shape: Vec<usize>,
    },
    /// The model's output is not one score per class.
    #[error(
        "{model} has no classifier output: its output '{node}' has shape {shape:?}, a CAM needs [N, classes]"
    )]
    NoClassifier {
        /// The model.
        model: String,
        /// Its output node.
        node: String,
        /// The output's shape.
        shape: Vec<usize>,
    },
    /// A target class the classifier does not have.
    #[error("class {class} is out of range: the model has {classes} classes (0..{classes})")]
    ClassOutOfRange {
        /// The class asked for.
        class: usize,
        /// How many classes the model has.
        classes: usize,
    },
    /// No target layer was given.
    #[error("a CAM needs at least one target layer")]
    NoLayers,
    /// Extraction failed (an unknown node, a bad input, the device).
    #[error(transparent)]
    Extract(#[from] featx_extract::ExtractError),
}

/// `Result` with [`CamError`].
pub type Result<T> = std::result::Result<T, CamError>;

/// A value that could not be read back from its device.
impl From<featx_graph::GraphError> for CamError {
    fn from(e: featx_graph::GraphError) -> Self {
        CamError::Extract(e.into())
    }
}
