use std::path::Path;

use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};

use crate::Result;
use crate::store::WeightsFile;

/// Loads the torchvision state dict at `path` into `model`.
///
/// Accepts `torch.save` files (zip or legacy) and SafeTensors, with the state dict at the top
/// level or in a training checkpoint's [`CHECKPOINT_ENTRIES`](crate::CHECKPOINT_ENTRIES), its
/// keys optionally prefixed by [`MODULE_PREFIXES`](crate::MODULE_PREFIXES) (`module.`,
/// `_orig_mod.`). The model is built by the caller: a fine-tuned head needs the file's class
/// count, which [`WeightsFile::tensors`](crate::WeightsFile::tensors) shows first (featx's
/// registry reads it for you). Returns the model only if every
/// parameter was found with the right shape and a float type, and no tensor was left over
/// (BatchNorm's `num_batches_tracked` counters excepted). On error the model is dropped, so
/// a partly loaded model can never be used by mistake.
pub fn load_state_dict<M: ModuleSnapshot>(model: M, path: &Path) -> Result<M> {
    load_state_dict_renamed(model, path, |_| None)
}

/// [`load_state_dict`] for files whose keys need renaming first: `rename` gives a file key's
/// current name, or `None` to keep it (DenseNet's published files use keys older than
/// torchvision's module names, which torchvision renames on load too).
pub fn load_state_dict_renamed<M: ModuleSnapshot>(
    model: M,
    path: &Path,
    rename: fn(&str) -> Option<String>,
) -> Result<M> {
    let keys: Vec<String> = expected_keys(&model).into_iter().map(|(k, _)| k).collect();
    let mut file = WeightsFile::open(path, &keys)?;
    file.rename(rename);
    file.load_into(model)
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
