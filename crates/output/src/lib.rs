//! Writing featx's result files, in one place: every command and crate that stores features or
//! pictures goes through here, so that
//!
//! - a reader never sees half a file: [`AtomicWriter`] writes to a temporary name in the
//!   destination folder and renames it into place (a folder of files, likewise, whole);
//! - stored features look the same wherever they come from: float32 safetensors
//!   ([`AtomicWriter::safetensors`]) with [`feature_metadata`] (`node.<key>`, `model`,
//!   `producer`), and float32 `.npy` arrays ([`AtomicWriter::npy_folder`], named by
//!   [`npy_file_name`]).

mod atomic;
mod error;
mod tensors;

pub use atomic::{AtomicWriter, TEMP_PREFIX, write_atomic};
pub use error::{OutputError, Result};
pub use tensors::{NamedTensor, feature_metadata, npy_bytes, npy_file_name, producer};
