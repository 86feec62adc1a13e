use burn::prelude::*;
use burn::tensor::TensorData;
use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, MAX_RANK, TensorFn, Value};

/// ONNX `Gather` with constant indices: entries of one axis picked by index (`x[:, 0]`,
/// `x[:, [2, 0]]`, an embedding lookup).
///
/// # Shapes
/// `data` to `data[..axis] ++ indices_shape ++ data[axis + 1..]`: an empty `indices_shape`
/// (one scalar index) removes the axis. Removing the only axis gives `[1]`, since a
/// [`Feature`] has rank 1 or more.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gather {
    /// The axis indexed.
    pub axis: usize,
    /// The indices, row-major, each below the axis' size.
    pub indices: Vec<usize>,
    /// The indices' shape (empty for a scalar index).
    pub indices_shape: Vec<usize>,
}

impl Gather {
    /// The output shape for `shape`, or why the indices do not fit it.
    fn out_shape(&self, shape: &[usize]) -> Result<Vec<usize>, String> {
        let Some(&size) = shape.get(self.axis) else {
            return Err(format!("no axis {} in shape {shape:?}", self.axis));
        };
        if self.indices.len() != self.indices_shape.iter().product::<usize>() {
            return Err(format!(
                "{} indices do not fill shape {:?}",
                self.indices.len(),
                self.indices_shape
            ));
        }
        if self.indices.is_empty() {
            return Err("gather takes at least one index".into());
        }
        if let Some(i) = self.indices.iter().find(|&&i| i >= size) {
            return Err(format!(
                "index {i} is out of range for axis {} of shape {shape:?}",
                self.axis
            ));
        }
        let mut out = shape[..self.axis].to_vec();
        out.extend_from_slice(&self.indices_shape);
        out.extend_from_slice(&shape[self.axis + 1..]);
        if out.len() > MAX_RANK {
            return Err(format!("gather's output {out:?} is above rank {MAX_RANK}"));
        }
        Ok(if out.is_empty() { vec![1] } else { out })
    }
}

impl OpDef for Gather {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        tensor(self.out_shape(first_shape(inputs)?)?)
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let out = self.out_shape(&x.dims())?;
        let picked = x.map_float(Pick {
            axis: self.axis,
            indices: &self.indices,
        });
        let from = picked.dims();
        picked
            .reshape(&out)
            .ok_or_else(|| format!("cannot reshape {from:?} to {out:?}"))
    }
}

/// `index_select` along `axis`: the axis becomes `indices.len()` long.
struct Pick<'a> {
    axis: usize,
    indices: &'a [usize],
}

impl TensorFn for Pick<'_> {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        let indices: Vec<i64> = self.indices.iter().map(|&i| i as i64).collect();
        let n = indices.len();
        let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [n]), &t.device());
        t.select(self.axis, indices)
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn gather_picks_entries_of_an_axis() {
        // [2, 3] = [[0, 1, 2], [3, 4, 5]].
        let x = || feature((0..6).map(|v| v as f32).collect(), &[2, 3]);
        let gather = |axis, indices: Vec<usize>, indices_shape: Vec<usize>| Gather {
            axis,
            indices,
            indices_shape,
        };
        // Columns 2 and 0, as a [2, 1] index tensor: [2, 2, 1].
        let op = gather(1, vec![2, 0], vec![2, 1]);
        assert_eq!(
            run(&op, vec![x()]).expect("gathers"),
            (vec![2, 2, 1], vec![2.0, 0.0, 5.0, 3.0])
        );
        // A scalar index drops the axis: row 1.
        let op = gather(0, vec![1], vec![]);
        assert_eq!(
            run(&op, vec![x()]).expect("gathers"),
            (vec![3], vec![3.0, 4.0, 5.0])
        );
        let bad = gather(1, vec![3], vec![1]);
        assert!(bad.infer(&[&Value::Tensor(vec![2, 3])]).is_err());
        let bad = gather(1, vec![0, 1], vec![3]);
        assert!(bad.infer(&[&Value::Tensor(vec![2, 3])]).is_err());
    }
}
