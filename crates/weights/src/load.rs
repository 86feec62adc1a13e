use std::path::{Path, PathBuf};

use burn::store::{ApplyError, ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot};

use crate::store::{TensorInfo, WeightsFile};
use crate::{Result, WeightsError};

/// Loads the torchvision state dict at `path` into `model`.
///
/// Accepts `torch.save` files (zip or legacy) and SafeTensors, with the state dict at the top
/// level or nested under `state_dict` / `model` / `module.`. Returns the model only if every
/// parameter was found with the right shape and a float type, and no tensor was left over
/// (BatchNorm's `num_batches_tracked` counters excepted). On error the model is dropped, so
/// a partly loaded model can never be used by mistake.
pub fn load_state_dict<M: ModuleSnapshot>(mut model: M, path: &Path) -> Result<M> {
    let expected = expected_keys(&model);
    let keys: Vec<String> = expected.iter().map(|(k, _)| k.clone()).collect();
    let file = WeightsFile::open(path, &keys)?;
    check_dtypes(&file.tensors(), &keys, path)?;
    let result = file.apply_to(&mut model);
    check(result, path)?;
    Ok(model)
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

/// Parameters must be floating point; any float width is converted on load.
fn check_dtypes(tensors: &[TensorInfo], keys: &[String], path: &Path) -> Result<()> {
    for t in tensors {
        if keys.contains(&t.key) && !t.dtype.is_float() {
            return Err(WeightsError::Mismatch {
                path: path.to_path_buf(),
                key: t.key.clone(),
                reason: format!("expected a floating-point tensor, found {:?}", t.dtype),
            });
        }
    }
    Ok(())
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
        if result.applied.is_empty() {
            return Err(WeightsError::NotAStateDict {
                path,
                reason: format!(
                    "none of the model's {} parameters is in it",
                    result.missing.len()
                ),
            });
        }
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
