//! PyTorch's layout to Burn's, with a fast transpose of Linear weights.
//!
//! PyTorch stores a Linear layer's weight as `[out, in]`, Burn as `[in, out]`. burn-store's
//! adapter transposes one element at a time through byte slices, writing with a stride of a
//! whole row: on VGG16's 4096x25088 classifier weight that was 5 s of a 5.5 s load. This
//! adapter transposes float32 weights in 32x32 tiles that stay in cache, over every core, and
//! hands everything else (other dtypes, BatchNorm and LayerNorm renames) to burn-store's own.

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleAdapter, ModuleContext, PyTorchToBurnAdapter, bridge};
use burn::tensor::{DType, Shape, TensorData};
use rayon::prelude::*;

/// burn-store's `PyTorchToBurnAdapter` with Linear weights transposed by [`transpose`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PytorchLayout;

impl ModuleAdapter for PytorchLayout {
    fn adapt(&self, tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        let linear_weight = ctx.module_type() == Some("Struct:Linear")
            && tensor.name.rsplit('.').next() == Some("weight")
            && tensor.shape.len() == 2
            && tensor.dtype == DType::F32;
        if !linear_weight {
            return PyTorchToBurnAdapter.adapt(tensor, ctx);
        }
        let (rows, cols) = (tensor.shape[0], tensor.shape[1]);
        let name = tensor.name.clone();
        bridge::map_data(
            tensor,
            name,
            DType::F32,
            Shape::from(vec![cols, rows]),
            move |data| transposed(data, rows, cols),
        )
    }

    fn get_alternative_param_name(&self, param_name: &str, module_type: &str) -> Option<String> {
        PyTorchToBurnAdapter.get_alternative_param_name(param_name, module_type)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

/// `data` (`[rows, cols]` float32) as `[cols, rows]`. Data that is not float32 of that size
/// comes back as it is, for the shape check that follows to report.
fn transposed(data: TensorData, rows: usize, cols: usize) -> TensorData {
    let values = match data.as_slice::<f32>() {
        Ok(values) if values.len() == rows * cols => transpose(values, rows, cols),
        _ => return data,
    };
    TensorData::new(values, [cols, rows])
}

/// The transpose of a row-major `[rows, cols]` matrix, as a row-major `[cols, rows]` one.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut dst = vec![0.0f32; rows * cols];
    if dst.is_empty() {
        return dst;
    }
    // Each task fills TILE rows of the result (TILE columns of the source), tile by tile.
    dst.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(band, out)| {
            let c0 = band * TILE;
            let width = out.len() / rows;
            for r0 in (0..rows).step_by(TILE) {
                let height = TILE.min(rows - r0);
                for c in 0..width {
                    let row = &mut out[c * rows + r0..c * rows + r0 + height];
                    for (r, v) in row.iter_mut().enumerate() {
                        *v = src[(r0 + r) * cols + c0 + c];
                    }
                }
            }
        });
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_transpose_like_the_definition() {
        for (rows, cols) in [(1, 1), (3, 5), (37, 70), (64, 33), (1, 100), (100, 1)] {
            let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
            let got = transpose(&src, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        got[c * rows + r],
                        src[r * cols + c],
                        "{rows}x{cols} at {r},{c}"
                    );
                }
            }
        }
        assert!(transpose(&[], 0, 7).is_empty());
    }

    #[test]
    fn other_data_passes_through_for_the_shape_check() {
        let data = TensorData::new(vec![1.0f32, 2.0, 3.0], [3]);
        assert_eq!(transposed(data.clone(), 2, 2), data);
    }
}
