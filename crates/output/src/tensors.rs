//! How featx encodes stored features: float32 safetensors with metadata that says where each
//! key came from, and float32 `.npy` arrays.

use std::collections::HashMap;

use safetensors::tensor::TensorView;

/// Who wrote a file: `featx <version>`, recorded in every output.
pub fn producer() -> String {
    format!("featx {}", env!("CARGO_PKG_VERSION"))
}

/// The safetensors metadata of extracted features: `node.<key>` = the graph node each key
/// came from, the model, and the producer.
pub fn feature_metadata<'a>(
    model: &str,
    nodes: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> HashMap<String, String> {
    let mut metadata: HashMap<String, String> = nodes
        .into_iter()
        .map(|(key, node)| (format!("node.{key}"), node.to_string()))
        .collect();
    metadata.insert("model".into(), model.to_string());
    metadata.insert("producer".into(), producer());
    metadata
}

/// One float32 tensor to store: name, shape and row-major values.
#[derive(Debug, Clone)]
pub struct NamedTensor<'a> {
    /// The tensor's name in the file (the `.npy` file stem in a folder).
    pub name: &'a str,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: &'a [f32],
}

/// Serialises float32 tensors and string metadata into the safetensors format.
pub(crate) fn safetensors_bytes(
    tensors: &[NamedTensor<'_>],
    metadata: HashMap<String, String>,
) -> std::result::Result<Vec<u8>, String> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.to_string(), v))
                .map_err(|e| format!("tensor {}: {e}", t.name))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| e.to_string())
}

/// A C-ordered float32 `.npy` file's bytes (what a dataset run writes per key, and what
/// `featx explore` serves for a node).
pub fn npy_bytes(shape: &[usize], values: &[f32]) -> std::io::Result<Vec<u8>> {
    use npyz::WriterBuilder;
    let expected: usize = shape.iter().product();
    if expected != values.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "shape {shape:?} needs {expected} values, got {}",
                values.len()
            ),
        ));
    }
    let mut buf = std::io::Cursor::new(Vec::new());
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut buf)
        .begin_nd()?;
    writer.extend(values.iter().copied())?;
    writer.finish()?;
    Ok(buf.into_inner())
}

/// The `.npy` file name of output `key`: characters outside `[A-Za-z0-9._-]` become `_`.
pub fn npy_file_name(key: &str) -> String {
    let stem: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.npy")
}
