use std::path::Path;

use npyz::{NpyFile, Order};

use crate::error::CliError;

/// Reads a C-ordered float32 (or float64, converted) `.npy` file as `(shape, values)`.
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), CliError> {
    let fail = |reason: String| CliError::Input {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let npy = NpyFile::new(&bytes[..]).map_err(|e| fail(format!("not a .npy file ({e})")))?;
    if npy.order() == Order::Fortran {
        return Err(fail(
            "Fortran-ordered arrays are not supported; save with np.ascontiguousarray".into(),
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = npy.dtype().descr();
    let values = match npy.try_data::<f32>() {
        Ok(data) => data
            .collect::<std::io::Result<Vec<f32>>>()
            .map_err(|e| fail(format!("truncated data ({e})")))?,
        Err(npy) => match npy.try_data::<f64>() {
            Ok(data) => data
                .collect::<std::io::Result<Vec<f64>>>()
                .map_err(|e| fail(format!("truncated data ({e})")))?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            Err(_) => {
                return Err(fail(format!(
                    "expected float32 values, found dtype {dtype}"
                )));
            }
        },
    };
    Ok((shape, values))
}
