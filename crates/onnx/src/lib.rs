//! ONNX files as featx models: [`load`] reads a `.onnx` file (and its external data) into a
//! [`TracedModel`] that every extractor, CAM method, picture and dataset run accepts.
//!
//! The file's own names are kept: each node answers to its ONNX name
//! (`/layer1/layer1.0/conv1/Conv`, `node_Conv_505`) and to its first output's value name, and
//! a module path (`layer3`) selects the last node that ran inside that module, read from the
//! TorchScript exporter's `/`-scoped names or the dynamo exporter's name-scope metadata.
//!
//! Each ONNX op maps onto featx's own ops ([`featx_graph::ops`]), so imported models run on the
//! same kernels as the zoo (BatchNorm folded into the convolution before it, fused ReLUs and
//! residual adds on the CPU). Shape arithmetic (`Shape -> Gather -> Concat -> Reshape`) is
//! computed once at load, for the input size, as the zoo's shape checks are: the graph is
//! fixed for one input shape, `[N, C, H, W]`, with `H x W` and `N` from the file or
//! [`LoadOptions`].
//!
//! The protobuf messages come from `onnx-ir` (burn's ONNX front end); its typed graph is not
//! used because it renames and merges nodes.

mod attrs;
mod constant;
mod error;
mod file;
mod import;
mod inline;
mod naming;
mod ops;

use std::path::Path;

pub use error::{OnnxError, Result};
use featx_models::TracedModel;

/// What the file leaves open about its input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// The input's `[H, W]`, required when the file's are dynamic; must match fixed ones.
    pub input_size: Option<[usize; 2]>,
    /// The batch size the graph is built for when the file's is dynamic (default 1); must match
    /// a fixed one.
    pub batch: Option<usize>,
}

/// An imported ONNX model.
#[derive(Debug)]
pub struct OnnxModel {
    /// The model as featx runs it: nodes named as in the file, with their op type as target
    /// and their module path.
    pub traced: TracedModel,
    /// The name of the image input.
    pub input_name: String,
    /// The default domain's opset the file imports.
    pub opset: i64,
    /// The batch size the graph computes.
    pub batch: usize,
}

/// Opens the ONNX file at `path` for an input of the size the file fixes.
pub fn load(path: &Path) -> Result<OnnxModel> {
    load_with(path, &LoadOptions::default())
}

/// Opens the ONNX file at `path`, with the input's open dimensions from `options`.
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<OnnxModel> {
    let model = file::read_model(path)?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_stem()
        .map_or_else(|| "onnx".to_string(), |s| s.to_string_lossy().into_owned());
    import::import(&model, folder, &name, options)
}

/// Opens ONNX bytes held in memory (no external data).
pub fn load_bytes(bytes: &[u8], options: &LoadOptions) -> Result<OnnxModel> {
    use onnx_ir::Message;
    let model = onnx_ir::ModelProto::parse_from_bytes(bytes).map_err(|e| OnnxError::NotOnnx {
        path: "<bytes>".into(),
        reason: e.to_string(),
    })?;
    file::check_model(&model, Path::new("<bytes>"))?;
    // External data is refused: there is no folder it could be in.
    import::import(
        &model,
        Path::new("/nonexistent-featx-folder"),
        "onnx",
        options,
    )
}

/// Whether `path` names an ONNX file (by its extension), as `--model` tells a file from a
/// zoo name.
pub fn is_onnx_path(path: &str) -> bool {
    Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// The ONNX op types featx imports, sorted.
pub fn supported_ops() -> Vec<&'static str> {
    ops::supported()
}

/// The `[H, W]` the file fixes for its image input, or `None` when it leaves them open (or
/// the file has no single image input, which [`load`] reports).
pub fn input_size(path: &Path) -> Result<Option<[usize; 2]>> {
    let model = file::read_model(path)?;
    Ok(import::fixed_input_size(&model))
}
