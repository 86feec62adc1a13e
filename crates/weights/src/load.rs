use std::path::{Path, PathBuf};

use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};

use crate::{Result, WeightsError};

/// A state dict file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// `torch.save` output (`.pth`, `.pt`).
    Pytorch,
    /// SafeTensors (`.safetensors`).
    Safetensors,
}

impl WeightsFormat {
    /// The format implied by a file's extension.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("pth" | "pt" | "bin") => Ok(Self::Pytorch),
            Some("safetensors") => Ok(Self::Safetensors),
            _ => Err(WeightsError::UnsupportedFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Loads the torchvision state dict at `path` into `model`.
///
/// Returns the model only if every parameter was found with the right shape and no tensor
/// was left over (BatchNorm's `num_batches_tracked` counters excepted).
pub fn load_state_dict<M: ModuleSnapshot>(mut model: M, path: &Path) -> Result<M> {
    let format = WeightsFormat::from_path(path)?;
    let meta = std::fs::metadata(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return Err(WeightsError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("is a directory"),
        });
    }
    let corrupt = |reason: String| WeightsError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    // Sequential indices with gaps (`conv3.0`, `conv3.2`) are real parameter paths in featx
    // models: never renumber them.
    let result = match format {
        WeightsFormat::Pytorch => {
            let mut store = PytorchStore::from_file(path)
                .map_indices_contiguous(false)
                .allow_partial(true)
                .validate(false);
            model
                .load_from(&mut store)
                .map_err(|e| corrupt(e.to_string()))?
        }
        WeightsFormat::Safetensors => {
            let mut store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .map_indices_contiguous(false)
                .allow_partial(true)
                .validate(false);
            model
                .load_from(&mut store)
                .map_err(|e| corrupt(e.to_string()))?
        }
    };
    check(result, path)?;
    Ok(model)
}

fn check(result: ApplyResult, path: &Path) -> Result<()> {
    let path: PathBuf = path.to_path_buf();
    if let Some(error) = result.errors.first() {
        let (key, reason) = match error {
            ApplyError::ShapeMismatch {
                path: key,
                expected,
                found,
            } => (
                key,
                format!(
                    "expected shape {:?}, found {:?}",
                    expected.as_slice(),
                    found.as_slice()
                ),
            ),
            ApplyError::DTypeMismatch {
                path: key,
                expected,
                found,
            } => (key, format!("expected dtype {expected:?}, found {found:?}")),
            ApplyError::AdapterError { path: key, message }
            | ApplyError::LoadError { path: key, message } => (key, message.clone()),
        };
        return Err(WeightsError::Mismatch {
            path,
            key: torch_key(key),
            reason,
        });
    }
    if !result.missing.is_empty() {
        let keys = result.missing.iter().map(|(k, _)| torch_key(k)).collect();
        return Err(WeightsError::MissingKeys { path, keys });
    }
    let unexpected: Vec<String> = result
        .unused
        .into_iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .collect();
    if !unexpected.is_empty() {
        return Err(WeightsError::UnexpectedKeys {
            path,
            keys: unexpected,
        });
    }
    Ok(())
}

/// Burn's BatchNorm names `gamma`/`beta` are torchvision's `weight`/`bias`.
fn torch_key(key: &str) -> String {
    if let Some(stem) = key.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = key.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        key.to_string()
    }
}

/// The torchvision `state_dict` keys and shapes `model` expects, in module order
/// (BatchNorm's `num_batches_tracked` counters, which featx ignores, are not listed).
pub fn expected_keys<M: ModuleSnapshot>(model: &M) -> Vec<(String, Vec<usize>)> {
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.as_slice().to_vec()))
        .collect()
}
