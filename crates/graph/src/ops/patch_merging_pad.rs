use burn::prelude::*;
use burn::tensor::ops::PadMode;
use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// torchvision's `_patch_merging_pad(x)` (Swin Transformer's `PatchMerging`;
/// `torch.fx.wrap`ped, so one FX node): a channels-last map padded with zeros to an even
/// height and width, then each 2x2 patch's four tokens side by side on the channels, in
/// torchvision's order `x[0::2, 0::2]`, `x[1::2, 0::2]`, `x[0::2, 1::2]`, `x[1::2, 1::2]`.
///
/// # Shapes
/// `[..., H, W, C]` (rank 3 to 6) to `[..., ceil(H / 2), ceil(W / 2), 4 C]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchMergingPad;

impl OpDef for PatchMergingPad {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        match *shape {
            [.., h, w, c] if shape.len() <= 6 => {
                let mut out = shape[..shape.len() - 3].to_vec();
                out.extend([h.div_ceil(2), w.div_ceil(2), 4 * c]);
                tensor(out)
            }
            _ => Err(format!(
                "expected a channels-last [..., H, W, C] map, got {shape:?}"
            )),
        }
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let dims = x.dims();
        let [.., h, w, c] = *dims.as_slice() else {
            return Err(format!("expected [..., H, W, C], got {dims:?}"));
        };
        let lead: usize = dims[..dims.len() - 3].iter().product();
        let x: Tensor<4> = x
            .reshape(&[lead, h, w, c])
            .and_then(|x| x.into_rank().ok())
            .ok_or_else(|| format!("cannot read {dims:?} as [N, H, W, C]"))?;
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let x = match (2 * h2 - h, 2 * w2 - w) {
            (0, 0) => x,
            (bottom, right) => x.pad(
                [(0, 0), (0, bottom), (0, right), (0, 0)],
                PadMode::Constant(0.0),
            ),
        };
        // [N, H/2, row, W/2, column, C] -> [N, H/2, W/2, column, row, C]: the patch's tokens
        // in torchvision's order (row fastest), each C channels.
        let merged = x
            .reshape([lead, h2, 2, w2, 2, c])
            .permute([0, 1, 3, 4, 2, 5])
            .reshape([lead, h2, w2, 4 * c]);
        Feature::from(merged)
            .reshape(cx.out_shape)
            .ok_or_else(|| format!("cannot reshape to {:?}", cx.out_shape))
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    /// `_patch_merging_pad` written out as torchvision does it, on one `[H, W, C]` map.
    fn reference(x: &[f32], h: usize, w: usize, c: usize) -> Vec<f32> {
        let at = |r: usize, col: usize, ch: usize| {
            if r < h && col < w {
                x[(r * w + col) * c + ch]
            } else {
                0.0
            }
        };
        let mut out = Vec::new();
        for r in 0..h.div_ceil(2) {
            for col in 0..w.div_ceil(2) {
                for (dr, dc) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    out.extend((0..c).map(|ch| at(2 * r + dr, 2 * col + dc, ch)));
                }
            }
        }
        out
    }

    #[test]
    fn patches_are_merged_in_torchvisions_order_with_odd_sides_padded() {
        for (h, w, c) in [(4, 4, 2), (3, 5, 3), (1, 1, 1)] {
            let x: Vec<f32> = (0..h * w * c).map(|v| v as f32 + 1.0).collect();
            let (shape, out) =
                run(&PatchMergingPad, vec![feature(x.clone(), &[1, h, w, c])]).expect("runs");
            assert_eq!(shape, [1, h.div_ceil(2), w.div_ceil(2), 4 * c]);
            assert_eq!(out, reference(&x, h, w, c), "{h}x{w}x{c}");
        }
        // Leading dimensions are kept.
        let x: Vec<f32> = (0..2 * 3 * 2 * 2).map(|v| v as f32).collect();
        let (shape, out) = run(&PatchMergingPad, vec![feature(x.clone(), &[2, 3, 2, 2])]).unwrap();
        assert_eq!(shape, [2, 2, 1, 8]);
        assert_eq!(&out[16..], reference(&x[12..], 3, 2, 2));
        assert!(
            PatchMergingPad
                .infer(&[&Value::Tensor(vec![4, 4])])
                .is_err()
        );
    }
}
