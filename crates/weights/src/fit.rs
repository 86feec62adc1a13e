//! How a state dict fits a model: one report that both the loader's errors and a description
//! of a file (`featx weights`) are built from.

use std::path::Path;

use burn::store::{ApplyError, ApplyResult};
use serde::Serialize;

use crate::WeightsError;
use crate::store::TensorInfo;

/// Keys a state dict may hold that no featx model has a place for and loading ignores:
/// BatchNorm's `num_batches_tracked` counters (featx never updates running statistics) and
/// the integer `relative_position_index` buffers of Swin Transformer's and MaxViT's attention
/// (a constant of the window size, which featx's ops compute themselves).
pub fn is_ignored_key(key: &str) -> bool {
    key.ends_with("num_batches_tracked") || key.ends_with("relative_position_index")
}

/// A parameter whose tensor in the file does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyMismatch {
    /// The key, in torchvision naming.
    pub key: String,
    /// What is wrong: expected and found shapes or dtypes.
    pub reason: String,
}

/// How the tensors of a file fit a model's parameters, keys in torchvision naming.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FitReport {
    /// Parameters found with the right shape and a float type.
    pub applied: Vec<String>,
    /// Parameters the model needs that the file lacks.
    pub missing: Vec<String>,
    /// Tensors of the file the model has no place for (ignored keys excepted).
    pub unexpected: Vec<String>,
    /// Parameters whose tensor has the wrong shape or type.
    pub mismatched: Vec<KeyMismatch>,
}

impl FitReport {
    /// Compares a file's tensors with the `expected` `(key, shape)` pairs of a model (as
    /// [`crate::expected_keys`] lists them).
    pub fn new(expected: &[(String, Vec<usize>)], tensors: &[TensorInfo]) -> Self {
        let mut report = FitReport::default();
        for (key, shape) in expected {
            match tensors.iter().find(|t| &t.key == key) {
                None => report.missing.push(key.clone()),
                Some(t) if !t.dtype.is_float() => report.mismatched.push(KeyMismatch {
                    key: key.clone(),
                    reason: format!("expected a floating-point tensor, found {:?}", t.dtype),
                }),
                Some(t) if &t.shape != shape => report.mismatched.push(KeyMismatch {
                    key: key.clone(),
                    reason: format!("expected shape {shape:?}, found {:?}", t.shape),
                }),
                Some(_) => report.applied.push(key.clone()),
            }
        }
        report.unexpected = tensors
            .iter()
            .filter(|t| !is_ignored_key(&t.key) && !expected.iter().any(|(k, _)| k == &t.key))
            .map(|t| t.key.clone())
            .collect();
        report
    }

    /// Adds what burn reported while applying the tensors (conversion or adapter failures
    /// the comparison of shapes cannot see).
    pub(crate) fn add_apply_errors(&mut self, result: &ApplyResult) {
        for error in &result.errors {
            let (key, reason) = match error {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => (
                    path,
                    format!(
                        "expected shape {:?}, found {:?}",
                        expected.as_slice(),
                        found.as_slice()
                    ),
                ),
                ApplyError::DTypeMismatch {
                    path,
                    expected,
                    found,
                } => (
                    path,
                    format!("expected dtype {expected:?}, found {found:?}"),
                ),
                ApplyError::AdapterError { path, message }
                | ApplyError::LoadError { path, message } => (path, message.clone()),
            };
            let key = torch_key(key);
            self.applied.retain(|k| k != &key);
            if !self.mismatched.iter().any(|m| m.key == key) {
                self.mismatched.push(KeyMismatch { key, reason });
            }
        }
    }

    /// Whether every parameter was found, fits, and nothing is left over.
    pub fn fits(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }

    /// Why the file at `path` cannot be loaded, or `None` when it fits. The first problem
    /// wins, in this order: a wrong tensor, no parameter found at all, missing parameters,
    /// tensors left over.
    pub fn error(&self, path: &Path) -> Option<WeightsError> {
        let path = path.to_path_buf();
        if let Some(m) = self.mismatched.first() {
            return Some(WeightsError::Mismatch {
                path,
                key: m.key.clone(),
                reason: m.reason.clone(),
                others: self.mismatched[1..].to_vec(),
            });
        }
        if !self.missing.is_empty() && self.applied.is_empty() {
            return Some(WeightsError::NotAStateDict {
                path,
                reason: format!(
                    "none of the model's {} parameters is in it",
                    self.missing.len()
                ),
            });
        }
        if !self.missing.is_empty() {
            return Some(WeightsError::MissingKeys {
                path,
                keys: self.missing.clone(),
            });
        }
        if !self.unexpected.is_empty() {
            return Some(WeightsError::UnexpectedKeys {
                path,
                keys: self.unexpected.clone(),
            });
        }
        None
    }
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

#[cfg(test)]
mod tests {
    use burn::tensor::DType;

    use super::*;

    fn tensor(key: &str, shape: &[usize], dtype: DType) -> TensorInfo {
        TensorInfo {
            key: key.into(),
            shape: shape.to_vec(),
            dtype,
        }
    }

    #[test]
    fn sorts_every_key_into_one_list() {
        let expected = vec![
            ("conv.weight".to_string(), vec![8, 3, 3, 3]),
            ("bn.weight".to_string(), vec![8]),
            ("bn.running_mean".to_string(), vec![8]),
            ("fc.weight".to_string(), vec![10, 8]),
        ];
        let file = [
            tensor("conv.weight", &[8, 3, 3, 3], DType::F16),
            tensor("bn.weight", &[4], DType::F32),
            tensor("bn.running_mean", &[8], DType::I64),
            tensor("bn.num_batches_tracked", &[], DType::I64),
            tensor("attn.relative_position_index", &[2401], DType::I64),
            tensor("head.weight", &[10, 8], DType::F32),
        ];
        let report = FitReport::new(&expected, &file);
        assert_eq!(report.applied, ["conv.weight"]);
        assert_eq!(report.missing, ["fc.weight"]);
        assert_eq!(report.unexpected, ["head.weight"]);
        let wrong: Vec<&str> = report.mismatched.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(wrong, ["bn.weight", "bn.running_mean"]);
        assert!(report.mismatched[0].reason.contains("[8]"));
        assert!(!report.fits());
        let path = Path::new("w.pth");
        let error = report.error(path).unwrap();
        assert!(matches!(
            &error,
            WeightsError::Mismatch { key, others, .. }
                if key == "bn.weight" && others.len() == 1
        ));
        // Every mismatch is in the message, with its shapes or types.
        assert_eq!(
            error.to_string(),
            "w.pth: tensor 'bn.weight' does not fit the model: expected shape [8], found [4]; \
             also 'bn.running_mean': expected a floating-point tensor, found I64"
        );
        let only_missing = FitReport::new(&expected, &file[..1]);
        assert!(matches!(
            only_missing.error(path),
            Some(WeightsError::MissingKeys { keys, .. }) if keys.len() == 3
        ));
        assert!(matches!(
            FitReport::new(&expected, &[]).error(path),
            Some(WeightsError::NotAStateDict { .. })
        ));
    }
}
