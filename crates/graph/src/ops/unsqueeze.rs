use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, MAX_RANK, Value};

/// `torch.unsqueeze(x, dim)`: the same values with a new axis of size 1 at `dim`
/// (GoogLeNet's and Inception v3's `transform_input`, which turns each `x[:, c]` back into a
/// one-channel image).
///
/// # Shapes
/// `[d0, .., d(r-1)]` to the same with a 1 inserted before axis `dim` (`dim` at most the rank
/// `r`; the result at most [`MAX_RANK`] axes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unsqueeze {
    /// Where the new axis goes, counted in the output.
    pub dim: usize,
}

impl OpDef for Unsqueeze {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        if self.dim > shape.len() {
            return Err(format!(
                "cannot insert an axis at {} of a rank-{} tensor",
                self.dim,
                shape.len()
            ));
        }
        if shape.len() >= MAX_RANK {
            return Err(format!(
                "a rank-{} tensor has no room for another axis (at most {MAX_RANK})",
                shape.len()
            ));
        }
        let mut out = shape.to_vec();
        out.insert(self.dim, 1);
        tensor(out)
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let from = x.dims();
        x.reshape(cx.out_shape)
            .ok_or_else(|| format!("cannot unsqueeze {from:?} to {:?}", cx.out_shape))
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn unsqueeze_inserts_a_unit_axis_and_keeps_the_values() {
        let x = || feature(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        for (dim, shape) in [(0, vec![1, 2, 3]), (1, vec![2, 1, 3]), (2, vec![2, 3, 1])] {
            let (out, values) = run(&Unsqueeze { dim }, vec![x()]).expect("fits");
            assert_eq!(out, shape, "dim {dim}");
            assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "dim {dim}");
        }
    }

    #[test]
    fn unsqueeze_past_the_rank_is_an_error() {
        let err = run(&Unsqueeze { dim: 3 }, vec![feature(vec![0.0; 6], &[2, 3])]).unwrap_err();
        assert!(err.contains("axis at 3"), "{err}");
        let full = feature(vec![0.0], &[1; MAX_RANK]);
        assert!(run(&Unsqueeze { dim: 0 }, vec![full]).is_err());
    }
}
