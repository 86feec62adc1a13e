use std::path::PathBuf;

use thiserror::Error;

/// Everything the CLI reports; each variant knows its exit code (see [`CliError::exit_code`]).
#[derive(Debug, Error)]
pub enum CliError {
    /// Resolving nodes, checking the input or running the model failed.
    #[error(transparent)]
    Extract(#[from] featx_extract::ExtractError),
    /// The weights could not be downloaded or loaded.
    #[error(transparent)]
    Weights(#[from] featx_weights::WeightsError),
    /// An ONNX file could not be opened as a model.
    #[error(transparent)]
    Onnx(#[from] featx_onnx::OnnxError),
    /// The input file could not be read as a tensor.
    #[error("cannot use input {path}: {reason}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The command line asks for something that cannot be done (nothing to extract, a flag
    /// that needs another).
    #[error("{0}")]
    Usage(String),
    /// A dataset run could not start or finish.
    #[error(transparent)]
    Dataset(#[from] featx_dataset::DatasetError),
    /// A dataset run finished, but some images could not be used.
    #[error("{failed} of {images} images could not be used; their errors are in {index}")]
    Incomplete {
        /// Images that failed.
        failed: usize,
        /// Images in the run.
        images: usize,
        /// The index that lists them.
        index: PathBuf,
    },
    /// A class activation map cannot be made (an unknown method, a layer that is not a
    /// feature map, a model without classifier output, a class out of range).
    #[error(transparent)]
    Cam(featx_cam::CamError),
    /// A picture could not be drawn or saved.
    #[error(transparent)]
    Picture(#[from] featx_viz::VizError),
    /// The device failed while running (a lost GPU, a driver error).
    #[error("the device failed: {0}")]
    Device(String),
    /// A model's graph is inconsistent (a bug in a model, not bad input).
    #[error("the model's graph is inconsistent: {0}")]
    Graph(#[from] featx_graph::GraphError),
    /// A report could not be encoded as JSON.
    #[error("cannot encode the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The results could not be written.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl From<featx_output::OutputError> for CliError {
    fn from(e: featx_output::OutputError) -> Self {
        CliError::Output {
            path: e.path().to_path_buf(),
            reason: e.reason(),
        }
    }
}

impl From<featx_cam::CamError> for CliError {
    fn from(e: featx_cam::CamError) -> Self {
        match e {
            featx_cam::CamError::Extract(e) => CliError::Extract(e),
            other => CliError::Cam(other),
        }
    }
}

impl CliError {
    /// 2 for bad usage or bad input (nothing was computed or written), 1 for a failure after
    /// the input was accepted (the device, a bug, writing the results), 3 for a dataset run
    /// that finished with some images failed, or a dataset folder not complete yet.
    pub fn exit_code(&self) -> u8 {
        use featx_dataset::DatasetError;
        use featx_extract::ExtractError;
        use featx_viz::VizError;
        match self {
            CliError::Incomplete { .. } | CliError::Dataset(DatasetError::Incomplete { .. }) => 3,
            CliError::Output { .. }
            | CliError::Device(_)
            | CliError::Graph(_)
            | CliError::Json(_)
            | CliError::Picture(VizError::Render(_) | VizError::Save { .. })
            | CliError::Dataset(DatasetError::Output { .. })
            | CliError::Extract(ExtractError::Internal { .. } | ExtractError::ReadBack { .. })
            | CliError::Dataset(DatasetError::Extract(
                ExtractError::Internal { .. } | ExtractError::ReadBack { .. },
            )) => 1,
            _ => 2,
        }
    }

    /// The command-line way out of this error, where there is one (the libraries' messages
    /// speak of their own API, not of flags).
    pub fn hint(&self) -> Option<&'static str> {
        use featx_extract::ExtractError;
        use featx_weights::WeightsError;
        match self {
            CliError::Weights(WeightsError::Download { .. } | WeightsError::Checksum { .. }) => {
                Some("--weights random runs with random weights; --weights FILE takes a local file")
            }
            CliError::Extract(
                ExtractError::DeviceUnavailable { .. } | ExtractError::LayerTooLarge { .. },
            ) => Some("--device cpu runs on the CPU; --device auto picks the GPU when one works"),
            _ => None,
        }
    }
}
