//! Loads torchvision state dicts into featx models.
//!
//! `.pth`/`.pt` files (torch.save's zip pickle) are read with burn's PyTorch reader, which
//! parses the pickle without executing it; `.safetensors` files are read with burn's
//! SafeTensors store. Both adapt PyTorch layouts (Linear weights transposed, BatchNorm
//! `weight`/`bias` to `gamma`/`beta`), so torchvision keys load without remapping.
//!
//! torchvision's published ImageNet weights are fetched once into a verified cache
//! ([`fetch`]).
//!
//! A state dict is found where training scripts put it: at the top level, or under a
//! checkpoint's [`CHECKPOINT_ENTRIES`] with [`MODULE_PREFIXES`] (`module.`, `_orig_mod.`)
//! before its keys; [`WeightsFile`] opens a file once, so its head can be read before the
//! model is built.
//!
//! Loading is all-or-nothing: the model is consumed and only handed back when every parameter
//! was found with the right shape; otherwise a [`WeightsError`] names the file and the keys.

mod download;
mod error;
mod fit;
mod load;
mod position;
mod store;
mod transpose;

pub use download::{
    BASE_URL_ENV, CACHE_DIR_ENV, DEFAULT_BASE_URL, RemoteWeights, base_url, cache_dir, fetch,
    verify,
};
pub use error::{DownloadError, ReadError, Result, WeightsError};
pub use fit::{FitReport, KeyMismatch, is_ignored_key};
pub use load::{expected_keys, load_state_dict, load_state_dict_renamed};
pub use position::{GridError, PositionGrid, bicubic_align_corners};
pub use store::{
    CHECKPOINT_ENTRIES, MODULE_PREFIXES, TensorInfo, WeightsFile, WeightsFormat, inspect,
};
