use std::path::Path;

use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};

use crate::Result;
use crate::fit::FitReport;
use crate::store::WeightsFile;

/// Loads the torchvision state dict at `path` into `model`.
///
/// Accepts `torch.save` files (zip or legacy) and SafeTensors, with the state dict at the top
/// level or nested under `state_dict` / `model` / `module.`. Returns the model only if every
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
    mut model: M,
    path: &Path,
    rename: fn(&str) -> Option<String>,
) -> Result<M> {
    let expected = expected_keys(&model);
    let keys: Vec<String> = expected.iter().map(|(k, _)| k.clone()).collect();
    let mut file = WeightsFile::open(path, &keys)?;
    file.rename(rename);
    let mut report = FitReport::new(&expected, &file.tensors());
    if let Some(error) = report.error(path) {
        return Err(error);
    }
    report.add_apply_errors(&file.apply_to(&mut model));
    match report.error(path) {
        Some(error) => Err(error),
        None => Ok(model),
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
