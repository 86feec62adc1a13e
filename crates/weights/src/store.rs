use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::pytorch_reader::{PickleValue, PytorchReader};
use burn::store::{
    ApplyResult, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, ModuleStore, PytorchStore,
    SafetensorsStore,
};
use burn::tensor::DType;

use crate::fit::FitReport;
use crate::load::expected_keys;
use crate::position::{PositionGrid, decode, interpolate};
use crate::transpose::PytorchLayout;
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

/// The entries of a training checkpoint that hold its state dict, tried when the model's keys
/// are not at the top level: `state_dict` (Lightning, timm's train script, most hand-written
/// loops) and `model` (torchvision's reference scripts).
pub const CHECKPOINT_ENTRIES: [&str; 2] = ["state_dict", "model"];

/// Prefixes that wrappers put before every key, tried alone and two deep, in any order:
/// `module.` (`DataParallel`, `DistributedDataParallel`), `_orig_mod.` (`torch.compile`) and
/// `model.` (a Lightning module holding the network as `self.model`).
pub const MODULE_PREFIXES: [&str; 3] = ["module.", "_orig_mod.", "model."];

/// Every prefix a state dict's keys may carry, shortest first: nothing, a checkpoint entry,
/// then one or two module prefixes after either.
fn layouts() -> Vec<String> {
    let entries =
        std::iter::once(String::new()).chain(CHECKPOINT_ENTRIES.iter().map(|e| format!("{e}.")));
    let mut wrappers = vec![String::new()];
    for a in MODULE_PREFIXES {
        wrappers.push(a.to_string());
    }
    for a in MODULE_PREFIXES {
        for b in MODULE_PREFIXES.iter().filter(|b| **b != a) {
            wrappers.push(format!("{a}{b}"));
        }
    }
    let mut all: Vec<String> = entries
        .flat_map(|e| wrappers.iter().map(move |w| format!("{e}{w}")))
        .collect();
    all.sort_by_key(String::len);
    all.dedup();
    all
}

/// How a file's keys were read: the prefix removed from each (`state_dict.module.`), empty for
/// a plain state dict.
fn describe_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        "a plain state dict".into()
    } else {
        format!("a state dict with every key under `{prefix}`")
    }
}

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

/// A parsed weights file, its state dict found; reading never executes a pickle.
///
/// Open it once, read its [`tensors`](Self::tensors) to decide how to build the model (a
/// fine-tuned head's class count), then [`load_into`](Self::load_into) the model.
pub struct WeightsFile {
    /// Tensors named as the model expects (any wrapper prefix removed).
    tensors: Vec<PackTensor>,
    /// How the keys were read.
    layout: String,
    /// The file, for errors.
    path: PathBuf,
}

impl WeightsFile {
    /// Opens and parses `path`; `expected` are the keys a model wants, used to recognise a
    /// wrapped state dict (pass none to take the file as it is): the prefix of
    /// [`CHECKPOINT_ENTRIES`] and [`MODULE_PREFIXES`] under which most of them are found is
    /// removed, and tensors outside it (optimizer state...) are dropped. Without `expected`,
    /// the prefix holding the most tensors is removed.
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
        let prefix = pick_prefix(&raw, expected);
        let matched = expected
            .iter()
            .any(|k| raw.contains_key(&format!("{prefix}{k}")));
        if !expected.is_empty() && !matched {
            return Err(WeightsError::UnknownLayout {
                path: path.to_path_buf(),
                found: found_layout(path, format, &raw),
                expected: expected_layout(expected),
            });
        }
        let tensors = raw
            .into_iter()
            .filter_map(|(key, mut tensor)| {
                tensor.name = key.strip_prefix(prefix.as_str())?.to_string();
                Some(tensor)
            })
            .collect();
        Ok(Self {
            tensors,
            layout: describe_prefix(&prefix),
            path: path.to_path_buf(),
        })
    }

    /// How the file's keys were read (`a state dict with every key under `module.``).
    pub fn layout(&self) -> &str {
        &self.layout
    }

    /// Renames every tensor `rename` gives a new name.
    pub fn rename(&mut self, rename: fn(&str) -> Option<String>) {
        for tensor in &mut self.tensors {
            if let Some(name) = rename(&tensor.name) {
                tensor.name = name;
            }
        }
    }

    /// Interpolates the positional embedding `grid` names to an `image_size` input, as
    /// torchvision's `interpolate_embeddings(image_size, patch, state_dict)` does (class
    /// token kept, the patch grid resized bicubically with `align_corners=True`): a
    /// checkpoint made for one input size then loads into the model built for another.
    /// Nothing changes when the embedding already fits or is absent (loading reports a
    /// missing key). Returns whether it was interpolated.
    pub fn interpolate_positions(&mut self, grid: PositionGrid, image_size: usize) -> Result<bool> {
        let Some(tensor) = self.tensors.iter_mut().find(|t| t.name == grid.key) else {
            return Ok(false);
        };
        let error = |source| WeightsError::Interpolation {
            path: self.path.clone(),
            key: grid.key.to_string(),
            image_size,
            source,
        };
        let shape = tensor.shape.as_slice().to_vec();
        let Some((from, to)) = grid.plan(&shape, image_size).map_err(error)? else {
            return Ok(false);
        };
        let bytes = tensor.to_bytes().map_err(|e| WeightsError::NotAStateDict {
            path: self.path.clone(),
            reason: format!("cannot read '{}': {e}", grid.key),
        })?;
        let values = decode(&bytes, tensor.dtype).map_err(error)?;
        let channels = shape[2];
        if values.len() != (1 + from * from) * channels {
            return Err(WeightsError::NotAStateDict {
                path: self.path.clone(),
                reason: format!("'{}' holds fewer bytes than its shape {shape:?}", grid.key),
            });
        }
        *tensor = PackTensor::new(
            tensor.name.clone(),
            DType::F32,
            vec![1, 1 + to * to, channels],
            tensor.param_id,
            interpolate(&values, channels, from, to),
        );
        Ok(true)
    }

    /// Keys (wrapper prefix removed), shapes and dtypes, as stored.
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
    fn apply_to<M: ModuleSnapshot>(&self, model: &mut M) -> ApplyResult {
        // burn-store applies the bytes of a float64 tensor to a float32 parameter unconverted:
        // casting first is what keeps such files from loading as garbage.
        let adapter = PytorchLayout.chain(FloatCastAdapter::to(DType::F32));
        model.apply(self.tensors.clone(), None, Some(Box::new(adapter)), true)
    }

    /// How the file's tensors fit `model`'s parameters.
    pub fn fit<M: ModuleSnapshot>(&self, model: &M) -> FitReport {
        FitReport::new(&expected_keys(model), &self.tensors())
    }

    /// Loads the file into `model`, all or nothing: the model comes back only if every
    /// parameter was found with the right shape and a float type, and no tensor was left over
    /// (BatchNorm's `num_batches_tracked` counters excepted).
    pub fn load_into<M: ModuleSnapshot>(&self, mut model: M) -> Result<M> {
        let mut report = self.fit(&model);
        if let Some(error) = report.error(&self.path) {
            return Err(error);
        }
        report.add_apply_errors(&self.apply_to(&mut model));
        match report.error(&self.path) {
            Some(error) => Err(error),
            None => Ok(model),
        }
    }
}

/// The tensors of the weights file at `path`, without loading them into a model: with no model
/// to compare with, the known prefix holding the most tensors (`state_dict.module.`) is removed
/// and tensors outside it are dropped.
pub fn inspect(path: &Path) -> Result<Vec<TensorInfo>> {
    Ok(WeightsFile::open(path, &[])?.tensors())
}

/// The prefix the state dict's keys carry: the layout under which most `expected` keys are
/// found (the first, shortest, on a tie; none unless it finds more than the top level), or,
/// with no model to compare with, the non-empty layout holding the most tensors.
fn pick_prefix<T>(raw: &BTreeMap<String, T>, expected: &[String]) -> String {
    let candidates = layouts();
    if expected.is_empty() {
        let holds = |p: &str| raw.keys().filter(|k| k.starts_with(p)).count();
        return candidates
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(|p| (holds(&p), p))
            .filter(|(n, _)| *n > 0)
            // Most tensors; on a tie the longest prefix (`state_dict.module.` over `state_dict.`).
            .max_by(|(n, p), (m, q)| n.cmp(m).then(p.len().cmp(&q.len())))
            .map(|(_, p)| p)
            .unwrap_or_default();
    }
    let matches = |p: &str| {
        expected
            .iter()
            .filter(|k| raw.contains_key(&format!("{p}{k}")))
            .count()
    };
    let mut best = (matches(""), String::new());
    for p in candidates.into_iter().skip(1) {
        let n = matches(&p);
        if n > best.0 {
            best = (n, p);
        }
    }
    best.1
}

/// What a file holds, for an error: its top-level entries (and the first tensors).
fn found_layout(path: &Path, format: WeightsFormat, raw: &BTreeMap<String, PackTensor>) -> String {
    let mut entries: Vec<String> = match format {
        WeightsFormat::Pytorch => match PytorchReader::read_pickle_data(path, None) {
            Ok(PickleValue::Dict(dict)) => dict.into_keys().collect(),
            _ => Vec::new(),
        },
        WeightsFormat::Safetensors => Vec::new(),
    };
    if entries.is_empty() {
        entries = raw.keys().cloned().collect();
    }
    // A state dict's top level is its flat keys: summarised by their first part (`layer1`).
    // `_metadata` is the version record `torch.save` keeps beside every state dict.
    entries = entries
        .iter()
        .filter(|k| k.as_str() != "_metadata")
        .map(|k| k.split('.').next().unwrap_or(k).to_string())
        .collect();
    entries.sort();
    entries.dedup();
    let first: Vec<String> = raw
        .iter()
        .take(3)
        .map(|(k, t)| format!("{k} {:?}", t.shape.as_slice()))
        .collect();
    format!(
        "a dictionary with top-level entries {} and {} tensor(s){}",
        list(&entries, 12),
        raw.len(),
        if first.is_empty() {
            String::new()
        } else {
            format!(
                " ({}{})",
                first.join(", "),
                if raw.len() > 3 { ", ..." } else { "" }
            )
        }
    )
}

/// What a model wants, for an error: its first keys, and where they may be.
fn expected_layout(expected: &[String]) -> String {
    format!(
        "the model's keys ({}) at the top level, or under `{}` (a training checkpoint), \
         each optionally prefixed by {}",
        list(expected, 3),
        CHECKPOINT_ENTRIES.join("` or `"),
        MODULE_PREFIXES
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `items` comma-separated, the first `max` of them, with how many more there are.
fn list(items: &[String], max: usize) -> String {
    let shown = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        format!("{shown}, ... ({} in all)", items.len())
    } else {
        shown
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> BTreeMap<String, ()> {
        names.iter().map(|k| (k.to_string(), ())).collect()
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn every_documented_wrapper_is_a_layout() {
        let all = layouts();
        assert_eq!(all[0], "");
        for prefix in [
            "module.",
            "_orig_mod.",
            "state_dict.",
            "model.",
            "state_dict.module.",
            "state_dict.model.",
            "model._orig_mod.",
            "module._orig_mod.",
            "_orig_mod.module.",
            "state_dict.model._orig_mod.",
        ] {
            assert!(all.iter().any(|p| p == prefix), "{prefix}");
        }
        assert!(all.windows(2).all(|w| w[0].len() <= w[1].len()));
        assert!(!all.iter().any(|p| p.contains("module.module.")));
    }

    #[test]
    fn the_prefix_holding_the_models_keys_is_removed() {
        let expected = strings(&["conv1.weight", "fc.weight", "fc.bias"]);
        let plain = keys(&["conv1.weight", "fc.weight", "fc.bias"]);
        assert_eq!(pick_prefix(&plain, &expected), "");
        let ddp = keys(&[
            "state_dict.module.conv1.weight",
            "state_dict.module.fc.weight",
            "state_dict.module.fc.bias",
            "optimizer_states.0.state.0.momentum_buffer",
        ]);
        assert_eq!(pick_prefix(&ddp, &expected), "state_dict.module.");
        let compiled = keys(&["model._orig_mod.conv1.weight", "model._orig_mod.fc.weight"]);
        assert_eq!(pick_prefix(&compiled, &expected), "model._orig_mod.");
        // Lightning: the network held as `self.model`, under `state_dict`.
        let lightning = keys(&["state_dict.model.conv1.weight", "state_dict.model.fc.bias"]);
        assert_eq!(pick_prefix(&lightning, &expected), "state_dict.model.");
        // No model to compare with: the layout holding the most tensors.
        assert_eq!(pick_prefix(&ddp, &[]), "state_dict.module.");
        assert_eq!(pick_prefix(&plain, &[]), "");
        // Nothing found anywhere: the keys are taken as they are.
        let optimizer = keys(&["optimizer.state.0.momentum_buffer"]);
        assert_eq!(pick_prefix(&optimizer, &expected), "");
    }

    /// A SafeTensors file of float32 zeros with these keys and shapes.
    fn write_safetensors(path: &Path, tensors: &[(&str, &[usize])]) {
        let mut header = Vec::new();
        let mut offset = 0;
        for (key, shape) in tensors {
            let bytes = 4 * shape.iter().product::<usize>();
            header.push(format!(
                "\"{key}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
                offset + bytes
            ));
            offset += bytes;
        }
        let header = format!("{{{}}}", header.join(","));
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header.as_bytes());
        file.resize(file.len() + offset, 0);
        std::fs::write(path, file).unwrap();
    }

    #[test]
    fn a_file_without_the_models_keys_names_what_it_found() {
        let dir = std::env::temp_dir().join(format!("featx-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ema.safetensors");
        write_safetensors(
            &path,
            &[
                ("ema.conv1.weight", &[2, 3, 1, 1]),
                ("ema.fc.weight", &[7, 2]),
                ("step", &[1]),
            ],
        );
        let expected = strings(&["conv1.weight", "fc.weight", "fc.bias"]);
        let err = WeightsFile::open(&path, &expected).err().unwrap();
        let text = err.to_string();
        match err {
            WeightsError::UnknownLayout {
                found, expected, ..
            } => {
                assert!(found.contains("top-level entries ema, step"), "{found}");
                assert!(found.contains("ema.conv1.weight [2, 3, 1, 1]"), "{found}");
                assert!(
                    expected.contains("conv1.weight, fc.weight, fc.bias"),
                    "{expected}"
                );
                assert!(expected.contains("`state_dict` or `model`"), "{expected}");
                assert!(expected.contains("`_orig_mod.`"), "{expected}");
            }
            other => panic!("{other}"),
        }
        assert!(text.contains("ema.safetensors"), "{text}");
        // The same file opens as it is without a model, and with the wrapper it names.
        let file = WeightsFile::open(&path, &[]).unwrap();
        assert_eq!(file.layout(), "a plain state dict");
        assert_eq!(file.tensors().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
