use std::collections::BTreeMap;
use std::path::Path;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::pytorch_reader::{PickleValue, PytorchReader};
use burn::store::{
    ApplyResult, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use burn::tensor::DType;

use crate::{ReadError, Result, WeightsError};

/// A state dict file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// `torch.save` output, zip or legacy (`.pth`, `.pt`, `.bin`).
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

/// Where checkpoints commonly nest the state dict: a training checkpoint's `state_dict` or
/// `model` entry, and `DataParallel`'s `module.` prefix.
const WRAPPERS: [&str; 5] = [
    "state_dict.module.",
    "model.module.",
    "state_dict.",
    "model.",
    "module.",
];

/// One tensor of a weights file, as stored (before any layout adaptation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Key in the file, with any wrapper prefix removed.
    pub key: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
}

/// A parsed weights file; reading never executes a pickle.
pub(crate) struct WeightsFile {
    /// Tensors named as the model expects (any wrapper prefix removed).
    tensors: Vec<PackTensor>,
}

impl WeightsFile {
    /// Opens and parses `path`; `expected` are the keys a model wants, used to recognise a
    /// wrapped state dict (pass none to take the file as it is).
    pub fn open(path: &Path, expected: &[String]) -> Result<Self> {
        let format = WeightsFormat::from_path(path)?;
        let meta = std::fs::metadata(path).map_err(|source| WeightsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            return Err(WeightsError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("is a directory, not a file"),
            });
        }
        if meta.len() == 0 {
            return Err(WeightsError::Corrupt {
                path: path.to_path_buf(),
                source: ReadError::Empty,
            });
        }
        let raw = read_all(path, format)?;
        let matches = |prefix: &str| {
            expected
                .iter()
                .filter(|k| raw.contains_key(&format!("{prefix}{k}")))
                .count()
        };
        let direct = matches("");
        let prefix = WRAPPERS
            .into_iter()
            .map(|p| (p, matches(p)))
            .filter(|(_, n)| *n > direct)
            .max_by_key(|(_, n)| *n)
            .map(|(p, _)| p)
            .or_else(|| {
                // No model to compare with: unwrap when every key shares one wrapper.
                (expected.is_empty() && !raw.is_empty())
                    .then(|| {
                        WRAPPERS
                            .into_iter()
                            .find(|p| raw.keys().all(|k| k.starts_with(p)))
                    })
                    .flatten()
            });
        let tensors = raw
            .into_iter()
            .filter_map(|(key, mut tensor)| {
                if let Some(p) = prefix {
                    tensor.name = key.strip_prefix(p)?.to_string();
                }
                Some(tensor)
            })
            .collect();
        Ok(Self { tensors })
    }

    /// Keys, shapes and dtypes, as stored.
    /// Renames every tensor `rename` gives a new name.
    pub fn rename(&mut self, rename: fn(&str) -> Option<String>) {
        for tensor in &mut self.tensors {
            if let Some(name) = rename(&tensor.name) {
                tensor.name = name;
            }
        }
    }

    pub fn tensors(&self) -> Vec<TensorInfo> {
        self.tensors
            .iter()
            .map(|t| TensorInfo {
                key: t.name.clone(),
                shape: t.shape.as_slice().to_vec(),
                dtype: t.dtype,
            })
            .collect()
    }

    /// Applies the file to `model`: PyTorch layouts adapted, every float type converted to
    /// float32, Sequential indices kept as they are (`conv3.0`, `conv3.2` are real paths).
    pub fn apply_to<M: ModuleSnapshot>(&self, model: &mut M) -> ApplyResult {
        // burn-store applies the bytes of a float64 tensor to a float32 parameter unconverted:
        // casting first is what keeps such files from loading as garbage.
        let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32));
        model.apply(self.tensors.clone(), None, Some(Box::new(adapter)), true)
    }
}

/// The tensors of the weights file at `path` (a wrapper prefix such as `state_dict.` removed),
/// without loading them into a model.
pub fn inspect(path: &Path) -> Result<Vec<TensorInfo>> {
    Ok(WeightsFile::open(path, &[])?.tensors())
}

fn read_all(path: &Path, format: WeightsFormat) -> Result<BTreeMap<String, PackTensor>> {
    let corrupt = |source: ReadError| WeightsError::Corrupt {
        path: path.to_path_buf(),
        source,
    };
    match format {
        WeightsFormat::Pytorch => PytorchStore::from_file(path)
            .map_indices_contiguous(false)
            .get_all_tensors()
            .cloned()
            .map_err(|e| match top_level_type(path) {
                Some(found) => WeightsError::NotAStateDict {
                    path: path.to_path_buf(),
                    reason: format!("its top level is a {found}, not a dictionary of tensors"),
                },
                None => corrupt(ReadError::Pytorch(e)),
            }),
        WeightsFormat::Safetensors => SafetensorsStore::from_file(path)
            .map_indices_contiguous(false)
            .get_all_tensors()
            .cloned()
            .map_err(|e| corrupt(ReadError::Safetensors(e))),
    }
}

/// The Python type of a readable pickle's top level when it is not a dictionary (a bare
/// tensor, a list, a whole pickled module...); `None` for a dictionary or an unreadable file.
fn top_level_type(path: &Path) -> Option<String> {
    Some(match PytorchReader::read_pickle_data(path, None).ok()? {
        PickleValue::Dict(_) => return None,
        PickleValue::None => "None".into(),
        PickleValue::Bool(_) => "bool".into(),
        PickleValue::Int(_) => "int".into(),
        PickleValue::Float(_) => "float".into(),
        PickleValue::String(_) => "str".into(),
        PickleValue::List(_) => "list".into(),
        PickleValue::Bytes(_) => "bytes".into(),
        PickleValue::Unsupported(name) => name,
    })
}
