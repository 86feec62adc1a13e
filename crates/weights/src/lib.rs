//! Loads torchvision state dicts into featx models.
//!
//! `.pth`/`.pt` files (torch.save's zip pickle) are read with burn's PyTorch reader, which
//! parses the pickle without executing it; `.safetensors` files are read with burn's
//! SafeTensors store. Both adapt PyTorch layouts (Linear weights transposed, BatchNorm
//! `weight`/`bias` to `gamma`/`beta`), so torchvision keys load without remapping.
//!
//! Loading is all-or-nothing: the model is consumed and only handed back when every parameter
//! was found with the right shape; otherwise a [`WeightsError`] names the file and the keys.

mod error;
mod load;
mod store;

pub use error::{Result, WeightsError};
pub use load::{expected_keys, load_state_dict};
pub use store::{TensorInfo, WeightsFormat, inspect};
