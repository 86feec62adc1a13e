use burn::prelude::*;
use burn::tensor::TensorData;
use serde::Serialize;

use super::args::{first_shape, single, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// torchvision's `_get_relative_position_bias(table, relative_position_index, window_size)`
/// (Swin Transformer; `torch.fx.wrap`ped, so one FX node): every pair of tokens `(i, j)` of a
/// `wh x ww` window reads the table row of their offset, giving one `N x N` bias per head
/// (`N = wh * ww`).
///
/// The index is the attention module's `relative_position_index` buffer, a constant of the
/// window size that FX reads without naming it; it is computed here as torchvision computes
/// it: row `(ri - rj + wh - 1) * (2 ww - 1) + (ci - cj + ww - 1)` for tokens at `(ri, ci)`
/// and `(rj, cj)`.
///
/// # Shapes
/// `[(2 wh - 1) * (2 ww - 1), heads]` to `[1, heads, wh * ww, wh * ww]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelativePositionBias {
    /// The window's `[height, width]`.
    pub window: [usize; 2],
}

impl RelativePositionBias {
    /// Tokens per window.
    fn tokens(&self) -> usize {
        self.window[0] * self.window[1]
    }

    /// Table rows: one per offset `(dy, dx)`.
    fn rows(&self) -> usize {
        let [wh, ww] = self.window;
        (2 * wh).saturating_sub(1) * (2 * ww).saturating_sub(1)
    }

    /// The table row of each token pair `(i, j)`, row-major `[N, N]`: torchvision's
    /// `relative_position_index`.
    pub fn index(&self) -> Vec<usize> {
        let [wh, ww] = self.window;
        let coords: Vec<(usize, usize)> =
            (0..wh).flat_map(|r| (0..ww).map(move |c| (r, c))).collect();
        coords
            .iter()
            .flat_map(|&(ri, ci)| {
                coords
                    .iter()
                    .map(move |&(rj, cj)| (ri + wh - 1 - rj) * (2 * ww - 1) + (ci + ww - 1 - cj))
            })
            .collect()
    }
}

impl OpDef for RelativePositionBias {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        if self.tokens() == 0 {
            return Err("the window is empty".into());
        }
        match *shape {
            [rows, heads] if rows == self.rows() => {
                tensor(vec![1, heads, self.tokens(), self.tokens()])
            }
            _ => Err(format!(
                "expected a [{}, heads] table for a {:?} window, got {shape:?}",
                self.rows(),
                self.window
            )),
        }
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let table: Tensor<2> = single(inputs)?;
        let [_, heads] = table.dims();
        let n = self.tokens();
        let index: Vec<i64> = self.index().into_iter().map(|i| i as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [n * n]), &table.device());
        let bias = table
            .select(0, index)
            .reshape([n, n, heads])
            .permute([2, 0, 1])
            .reshape([1, heads, n, n]);
        Ok(bias.into())
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn every_token_pair_reads_the_row_of_its_offset() {
        let op = RelativePositionBias { window: [2, 3] };
        // 3 x 5 offsets, 2 heads: head h of row r holds 10 r + h.
        let table: Vec<f32> = (0..15)
            .flat_map(|r| (0..2).map(move |h| (10 * r + h) as f32))
            .collect();
        let (shape, bias) = run(&op, vec![feature(table, &[15, 2])]).expect("runs");
        assert_eq!(shape, [1, 2, 6, 6]);
        let at = |h: usize, i: usize, j: usize| bias[(h * 6 + i) * 6 + j];
        for h in 0..2 {
            for i in 0..6 {
                for j in 0..6 {
                    // Tokens are row-major in the window: (i / 3, i % 3).
                    let dy = (i / 3) as i64 - (j / 3) as i64;
                    let dx = (i % 3) as i64 - (j % 3) as i64;
                    let row = (dy + 1) * 5 + dx + 2;
                    assert_eq!(at(h, i, j), (10 * row + h as i64) as f32, "{h} {i} {j}");
                }
            }
        }
        // A token with itself reads the middle row, offset (0, 0).
        assert_eq!(at(0, 4, 4), 70.0);
    }

    #[test]
    fn the_index_covers_every_offset_of_a_seven_by_seven_window() {
        let op = RelativePositionBias { window: [7, 7] };
        let index = op.index();
        assert_eq!(index.len(), 49 * 49);
        let mut seen = [false; 169];
        index.iter().for_each(|&i| seen[i] = true);
        assert!(seen.iter().all(|&s| s));
        assert_eq!(
            op.infer(&[&Value::Tensor(vec![169, 3])]),
            Ok(Value::Tensor(vec![1, 3, 49, 49]))
        );
        assert!(op.infer(&[&Value::Tensor(vec![168, 3])]).is_err());
        assert!(op.infer(&[&Value::Tensor(vec![169, 3, 1])]).is_err());
    }
}
