//! Writing files so that a reader never sees half of one: everything goes to a temporary name
//! in the destination folder first and is renamed into place.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::TensorView;

use crate::error::{Result, output_error};

/// Temporary files of featx start with this; a run removes its own leftovers on start.
pub(crate) const TEMP_PREFIX: &str = ".featx-tmp-";

/// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename), as an
/// ordinary `0644` file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with_prefix(path, bytes, TEMP_PREFIX)
}

pub(crate) fn write_atomic_with_prefix(path: &Path, bytes: &[u8], prefix: &str) -> Result<()> {
    let fail = |e: std::io::Error| output_error(path, e);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    // Temporary files are private (0600); extracted features are ordinary files.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_data().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

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
pub struct NamedTensor<'a> {
    /// The tensor's name in the file.
    pub name: &'a str,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: &'a [f32],
}

/// Serialises float32 tensors and string metadata into the safetensors format.
pub fn safetensors_bytes(
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
                .map_err(|e| e.to_string())
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| e.to_string())
}

/// A float32 `.npy` file's bytes.
pub(crate) fn npy_bytes(shape: &[usize], values: &[f32]) -> std::io::Result<Vec<u8>> {
    use npyz::WriterBuilder;
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
