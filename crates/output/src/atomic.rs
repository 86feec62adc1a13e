//! Files and folders that appear whole or not at all: everything is written under a temporary
//! name in the destination folder, then renamed into place.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::error::{OutputError, Result};
use crate::tensors::{NamedTensor, npy_bytes, npy_file_name, safetensors_bytes};

/// Temporary files and folders of featx start with this, so that a run can recognise (and
/// remove) what an interrupted one left behind.
pub const TEMP_PREFIX: &str = ".featx-tmp-";

/// Writes files and folders atomically. Its temporary names start with [`TEMP_PREFIX`] and a
/// tag, so that processes sharing a folder (the shards of a dataset) each clean up only their
/// own leftovers.
#[derive(Debug, Clone)]
pub struct AtomicWriter {
    temp_prefix: String,
}

impl Default for AtomicWriter {
    fn default() -> Self {
        AtomicWriter::tagged("")
    }
}

impl AtomicWriter {
    /// A writer whose temporary names start with [`TEMP_PREFIX`] followed by `tag`.
    pub fn tagged(tag: &str) -> Self {
        AtomicWriter {
            temp_prefix: format!("{TEMP_PREFIX}{tag}"),
        }
    }

    /// How this writer's temporary names start.
    pub fn temp_prefix(&self) -> &str {
        &self.temp_prefix
    }

    /// Writes `bytes` to `path` (temporary file in the same folder, flushed to disk, then
    /// renamed), as an ordinary `0644` file.
    pub fn bytes(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let fail = |e: std::io::Error| OutputError::write(path, e);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&self.temp_prefix);
        // Temporary files are private (0600); results are ordinary files.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let mut tmp = builder.tempfile_in(parent(path)).map_err(fail)?;
        tmp.write_all(bytes).map_err(fail)?;
        tmp.as_file().sync_data().map_err(fail)?;
        tmp.persist(path).map_err(|e| fail(e.error))?;
        Ok(())
    }

    /// Writes a folder holding `files` (name, bytes) at `path`, replacing a folder of that
    /// name: the files go into a temporary folder that is renamed into place.
    pub fn folder(&self, path: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
        let fail = |e: std::io::Error| OutputError::write(path, e);
        let tmp = tempfile::Builder::new()
            .prefix(&self.temp_prefix)
            .tempdir_in(parent(path))
            .map_err(fail)?;
        for (name, bytes) in files {
            std::fs::write(tmp.path().join(name), bytes).map_err(fail)?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(fail)?;
        }
        // A folder left by a writer that died before it was committed is replaced whole.
        if path.exists() {
            std::fs::remove_dir_all(path).map_err(fail)?;
        }
        std::fs::rename(tmp.keep(), path).map_err(fail)?;
        Ok(())
    }

    /// Writes float32 `tensors` and string `metadata` as one `.safetensors` file.
    pub fn safetensors(
        &self,
        path: &Path,
        tensors: &[NamedTensor<'_>],
        metadata: HashMap<String, String>,
    ) -> Result<()> {
        let bytes = safetensors_bytes(tensors, metadata).map_err(|reason| OutputError::Encode {
            path: path.to_path_buf(),
            format: "safetensors",
            reason,
        })?;
        self.bytes(path, &bytes)
    }

    /// Writes float32 `tensors` as a folder of `.npy` files, one per tensor, named by
    /// [`npy_file_name`].
    pub fn npy_folder(&self, path: &Path, tensors: &[NamedTensor<'_>]) -> Result<()> {
        let files = tensors
            .iter()
            .map(|t| {
                let bytes = npy_bytes(&t.shape, t.values).map_err(|e| OutputError::Encode {
                    path: path.join(npy_file_name(t.name)),
                    format: "npy",
                    reason: e.to_string(),
                })?;
                Ok((npy_file_name(t.name), bytes))
            })
            .collect::<Result<Vec<_>>>()?;
        self.folder(path, &files)
    }
}

/// Writes `bytes` to `path` atomically with the default [`AtomicWriter`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    AtomicWriter::default().bytes(path, bytes)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn files_and_folders_land_whole_and_leave_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }

        let writer = AtomicWriter::tagged("shard-1-of-2.");
        assert_eq!(writer.temp_prefix(), ".featx-tmp-shard-1-of-2.");
        let folder = dir.path().join("part");
        let values = [1.0f32, 2.0, 3.0, 4.0];
        let tensors = [NamedTensor {
            name: "layer/1",
            shape: vec![2, 2],
            values: &values,
        }];
        writer.npy_folder(&folder, &tensors).unwrap();
        writer.npy_folder(&folder, &tensors).unwrap();
        assert_eq!(names(&folder), ["layer_1.npy"]);
        assert_eq!(names(dir.path()), ["a.bin", "part"]);

        let missing = dir.path().join("no/such/folder/x.bin");
        let err = write_atomic(&missing, b"x").unwrap_err();
        assert_eq!(err.path(), missing);
        assert!(err.to_string().contains("x.bin"), "{err}");
    }

    #[test]
    fn a_shape_that_does_not_fit_its_values_is_an_encoding_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        let tensors = [NamedTensor {
            name: "x",
            shape: vec![3],
            values: &[1.0, 2.0],
        }];
        let err = AtomicWriter::default()
            .safetensors(&path, &tensors, HashMap::new())
            .unwrap_err();
        assert!(matches!(err, OutputError::Encode { .. }), "{err}");
        assert!(!path.exists());
    }
}
