//! A ViT checkpoint at another input size: its positional embedding interpolated as
//! torchvision's `interpolate_embeddings` does.
//!
//! The embedding `[1, 1 + s*s, C]` holds a class token, then one entry per patch of an
//! `s x s` grid. The class token is kept; the grid, as `[1, C, s, s]`, is resized to the new
//! one with `nn.functional.interpolate(mode="bicubic", align_corners=True)`, then laid out
//! again as `[1, n*n, C]`.

use burn::tensor::{Bytes, DType, bf16, f16};
use thiserror::Error;

use crate::store::TensorInfo;

/// Where a model's input size shows in its state dict: a positional embedding
/// `[1, 1 + (size / patch)^2, hidden]` with a class token first, as ViT's
/// `encoder.pos_embedding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionGrid {
    /// The embedding's state-dict key.
    pub key: &'static str,
    /// The side of a patch, in pixels.
    pub patch: usize,
}

/// Why a positional embedding cannot be interpolated to an input size.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GridError {
    /// The input size is no positive multiple of the patch size (torchvision's
    /// `VisionTransformer` refuses it too: "Input shape indivisible by patch size!").
    #[error("{image_size} is not a positive multiple of the patch size {patch}")]
    NotAMultiple {
        /// The input size asked for.
        image_size: usize,
        /// The model's patch size.
        patch: usize,
    },
    /// The embedding is not `[1, 1 + s*s, C]`: no square grid of patches after a class token.
    #[error("shape {shape:?} is not [1, 1 + s*s, C] (a class token and a square grid)")]
    NotASquareGrid {
        /// The embedding's shape in the file.
        shape: Vec<usize>,
    },
    /// The embedding's element type is not a float featx reads.
    #[error("dtype {0:?} cannot be interpolated (expected float16, bfloat16, float32 or float64)")]
    DType(DType),
}

impl PositionGrid {
    /// The input size a state dict was made for: the grid side its embedding holds, times the
    /// patch size. `None` without the embedding, or when it is no square grid.
    pub fn image_size(&self, tensors: &[TensorInfo]) -> Option<usize> {
        let t = tensors.iter().find(|t| t.key == self.key)?;
        grid_side(&t.shape).map(|side| side * self.patch)
    }

    /// The grid sides an interpolation to `image_size` goes from and to, or `None` when the
    /// embedding of `shape` already fits it.
    pub(crate) fn plan(
        &self,
        shape: &[usize],
        image_size: usize,
    ) -> Result<Option<(usize, usize)>, GridError> {
        if self.patch == 0 || image_size == 0 || !image_size.is_multiple_of(self.patch) {
            return Err(GridError::NotAMultiple {
                image_size,
                patch: self.patch,
            });
        }
        let from = grid_side(shape).ok_or_else(|| GridError::NotASquareGrid {
            shape: shape.to_vec(),
        })?;
        let to = image_size / self.patch;
        Ok((from != to).then_some((from, to)))
    }

    /// `tensors` as they are once the embedding is interpolated to `image_size`: its shape
    /// changed, nothing else. Unchanged without the embedding, when it already fits, or when it
    /// cannot be interpolated (loading reports why).
    pub fn interpolated_info(&self, tensors: &[TensorInfo], image_size: usize) -> Vec<TensorInfo> {
        tensors
            .iter()
            .map(|t| match self.plan(&t.shape, image_size) {
                Ok(Some((_, to))) if t.key == self.key && t.dtype.is_float() => TensorInfo {
                    shape: vec![1, 1 + to * to, t.shape[2]],
                    ..t.clone()
                },
                _ => t.clone(),
            })
            .collect()
    }
}

/// The side `s` of the patch grid of a `[1, 1 + s*s, C]` embedding.
fn grid_side(shape: &[usize]) -> Option<usize> {
    let patches = match shape {
        [1, len, c] if *c > 0 => len.checked_sub(1)?,
        _ => return None,
    };
    let side = (patches as f64).sqrt().round() as usize;
    (side > 0 && side * side == patches).then_some(side)
}

/// The values of a float tensor's little-endian `bytes`, as float64.
pub(crate) fn decode(bytes: &[u8], dtype: DType) -> Result<Vec<f64>, GridError> {
    Ok(match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect(),
        DType::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f64())
            .collect(),
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f64())
            .collect(),
        other => return Err(GridError::DType(other)),
    })
}

/// The `[1, 1 + from^2, channels]` embedding `values` interpolated to `[1, 1 + to^2,
/// channels]`, as float32 little-endian bytes (the type featx's parameters have).
pub(crate) fn interpolate(values: &[f64], channels: usize, from: usize, to: usize) -> Bytes {
    let mut out = Vec::with_capacity((1 + to * to) * channels);
    // The class token, kept.
    out.extend_from_slice(&values[..channels]);
    // `[s*s, C]` tokens are the grid `[C, s, s]` laid out channels last: each channel
    // is resized on its own.
    let grid = &values[channels..];
    let mut resized = vec![0.0; to * to * channels];
    let mut plane = vec![0.0; from * from];
    for c in 0..channels {
        for (i, v) in plane.iter_mut().enumerate() {
            *v = grid[i * channels + c];
        }
        for (i, v) in bicubic_align_corners(&plane, from, to)
            .into_iter()
            .enumerate()
        {
            resized[i * channels + c] = v;
        }
    }
    out.extend(resized);
    let bytes: Vec<u8> = out
        .into_iter()
        .flat_map(|v| (v as f32).to_le_bytes())
        .collect();
    Bytes::from_bytes_vec(bytes)
}

/// PyTorch's cubic convolution constant (`upsample_bicubic2d`'s `A`).
const A: f64 = -0.75;

/// The four weights of PyTorch's `get_cubic_upsample_coefficients` for a fractional offset
/// `t`: taps at -1, 0, 1, 2 from the source index below.
fn cubic_weights(t: f64) -> [f64; 4] {
    // |x| <= 1: ((A + 2) x - (A + 3)) x^2 + 1; 1 < |x| < 2: ((A x - 5A) x + 8A) x - 4A.
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// The taps of each output index along an axis of `from` samples resized to `to`, with
/// `align_corners=True`: source position `i * (from - 1) / (to - 1)`, its four neighbours
/// clamped to the border, as PyTorch's `upsample_bicubic2d` reads them.
fn axis_taps(from: usize, to: usize) -> Vec<([usize; 4], [f64; 4])> {
    let scale = if to > 1 {
        (from as f64 - 1.0) / (to as f64 - 1.0)
    } else {
        0.0
    };
    let last = from.saturating_sub(1) as i64;
    (0..to)
        .map(|i| {
            let real = scale * i as f64;
            let below = real.floor();
            let base = below as i64;
            let index = |k: i64| (base + k).clamp(0, last) as usize;
            (
                [index(-1), index(0), index(1), index(2)],
                cubic_weights(real - below),
            )
        })
        .collect()
}

/// A `from x from` plane resized to `to x to` as `nn.functional.interpolate(mode="bicubic",
/// align_corners=True)` does: cubic convolution with A = -0.75 along each axis, indices
/// clamped at the border. Computed here in float64 on the host rather than with a backend's
/// kernel: the grid is tiny, the result then does not depend on the device, and it matches
/// PyTorch's float32 kernel to well under 1e-6.
pub fn bicubic_align_corners(plane: &[f64], from: usize, to: usize) -> Vec<f64> {
    let taps = axis_taps(from, to);
    let mut out = Vec::with_capacity(to * to);
    for (rows, wy) in &taps {
        for (cols, wx) in &taps {
            let mut sum = 0.0;
            for (r, wr) in rows.iter().zip(wy) {
                let row = &plane[r * from..(r + 1) * from];
                let across: f64 = cols.iter().zip(wx).map(|(c, w)| row[*c] * w).sum();
                sum += wr * across;
            }
            out.push(sum);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cubic_weights_are_pytorchs() {
        // No offset: the sample itself.
        assert_eq!(cubic_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
        // Half way, A = -0.75: [-0.09375, 0.59375, 0.59375, -0.09375], summing to 1.
        let w = cubic_weights(0.5);
        for (got, want) in w.iter().zip([-0.09375, 0.59375, 0.59375, -0.09375]) {
            assert!((got - want).abs() < 1e-15, "{w:?}");
        }
        let w = cubic_weights(0.3);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{w:?}");
    }

    #[test]
    fn corners_are_kept_and_a_linear_ramp_stays_linear_inside() {
        // 2x2 -> 3x3 with align_corners: the corners are the input's; the centre of the
        // row 0..1 is 0.5 (taps clamped to [0, 0, 1, 1] with weights -0.09375, 0.59375,
        // 0.59375, -0.09375: 0.59375 - 0.09375 = 0.5).
        let out = bicubic_align_corners(&[0.0, 1.0, 2.0, 3.0], 2, 3);
        let want = [0.0, 0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 2.5, 3.0];
        for (got, want) in out.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{out:?}");
        }
        // The same size is a copy.
        let plane: Vec<f64> = (0..9).map(|i| (i * i) as f64).collect();
        assert_eq!(bicubic_align_corners(&plane, 3, 3), plane);
    }

    #[test]
    fn sizes_that_are_no_grid_are_typed_errors() {
        let grid = PositionGrid {
            key: "encoder.pos_embedding",
            patch: 8,
        };
        assert_eq!(
            grid.plan(&[1, 17, 16], 50),
            Err(GridError::NotAMultiple {
                image_size: 50,
                patch: 8
            })
        );
        assert!(matches!(
            grid.plan(&[1, 17, 16], 0),
            Err(GridError::NotAMultiple { .. })
        ));
        assert_eq!(
            grid.plan(&[1, 16, 16], 48),
            Err(GridError::NotASquareGrid {
                shape: vec![1, 16, 16]
            })
        );
        assert_eq!(grid.plan(&[1, 17, 16], 32), Ok(None));
        assert_eq!(grid.plan(&[1, 17, 16], 48), Ok(Some((4, 6))));
    }
}
