use std::path::Path;

use burn::module::{ModuleVisitor, Param};
use burn::store::ModuleSnapshot;
use burn::tensor::Tensor;

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
///
/// Reads the parameters' shapes only: a freshly built model's weights are never drawn, so
/// asking costs microseconds where collecting the tensors would initialise every one.
pub fn expected_keys<M: ModuleSnapshot>(model: &M) -> Vec<(String, Vec<usize>)> {
    let mut keys = TorchKeys::default();
    model.visit(&mut keys);
    keys.keys
}

/// Walks a module as burn-store's collector does (enum variants left out of the path), naming
/// each parameter as [`BurnToPyTorchAdapter`](burn::store::BurnToPyTorchAdapter) would:
/// `Linear` weights transposed, normalisation layers' `gamma`/`beta` as `weight`/`bias`.
#[derive(Default)]
struct TorchKeys {
    path: Vec<String>,
    containers: Vec<String>,
    keys: Vec<(String, Vec<usize>)>,
}

impl ModuleVisitor for TorchKeys {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
        if !container_type.starts_with("Enum:") {
            self.path.push(name.to_string());
        }
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.containers.pop();
        if !container_type.starts_with("Enum:") {
            self.path.pop();
        }
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let module = self
            .containers
            .iter()
            .rev()
            .find(|c| c.starts_with("Struct:") || c.starts_with("Enum:"))
            .map_or("", String::as_str);
        let mut shape = param.lazy_shape().as_slice().to_vec();
        let mut path = self.path.clone();
        let leaf = path.last().map_or("", String::as_str);
        let norm = matches!(
            module,
            "Struct:BatchNorm" | "Struct:LayerNorm" | "Struct:GroupNorm" | "Struct:RmsNorm"
        );
        let renamed = match leaf {
            "gamma" if norm => Some("weight"),
            "beta" if norm => Some("bias"),
            _ => None,
        };
        if module == "Struct:Linear" && leaf == "weight" && shape.len() == 2 {
            shape.swap(0, 1);
        } else if let (Some(renamed), Some(last)) = (renamed, path.last_mut()) {
            *last = renamed.to_string();
        }
        self.keys.push((path.join("."), shape));
    }
}
