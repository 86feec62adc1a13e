use burn::prelude::*;
use burn::tensor::Slice as Range;
use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, TensorFn, Value};

/// A strided slice along some axes (ONNX `Slice` with constant, already clamped bounds;
/// `x[:, 1:5:2]`).
///
/// # Shapes
/// Any shape to the same with each sliced axis of size `ceil((end - start) / step)`; an
/// empty slice is an error (a [`Feature`] has no zero-size axes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slice {
    /// The sliced axes, each once.
    pub axes: Vec<usize>,
    /// Each axis' first index.
    pub starts: Vec<usize>,
    /// Each axis' end (exclusive), at most its size.
    pub ends: Vec<usize>,
    /// Each axis' step, 1 or more.
    pub steps: Vec<usize>,
}

impl Slice {
    /// Each axis' `(start, end, step)` for `shape` (the whole axis when not sliced), or why
    /// the slice does not fit.
    fn ranges(&self, shape: &[usize]) -> Result<Vec<(usize, usize, usize)>, String> {
        let n = self.axes.len();
        if self.starts.len() != n || self.ends.len() != n || self.steps.len() != n {
            return Err(format!(
                "slice has {n} axes but {} starts, {} ends and {} steps",
                self.starts.len(),
                self.ends.len(),
                self.steps.len()
            ));
        }
        let mut ranges: Vec<Option<(usize, usize, usize)>> = vec![None; shape.len()];
        for (i, &axis) in self.axes.iter().enumerate() {
            let (start, end, step) = (self.starts[i], self.ends[i], self.steps[i]);
            let slot = ranges
                .get_mut(axis)
                .ok_or_else(|| format!("no axis {axis} in shape {shape:?}"))?;
            if slot.is_some() {
                return Err(format!("axis {axis} is sliced twice"));
            }
            if step == 0 || start >= end || end > shape[axis] {
                return Err(format!(
                    "cannot slice {start}..{end} step {step} of axis {axis} in shape {shape:?}"
                ));
            }
            *slot = Some((start, end, step));
        }
        Ok(ranges
            .into_iter()
            .zip(shape)
            .map(|(r, &size)| r.unwrap_or((0, size, 1)))
            .collect())
    }
}

impl OpDef for Slice {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        let out = self
            .ranges(shape)?
            .into_iter()
            .map(|(start, end, step)| (end - start).div_ceil(step))
            .collect();
        tensor(out)
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let ranges = self.ranges(&x.dims())?;
        Ok(x.map_float(Strided(ranges)))
    }
}

/// The slice of every axis.
struct Strided(Vec<(usize, usize, usize)>);

impl TensorFn for Strided {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        let ranges: Vec<Range> = self
            .0
            .iter()
            .map(|&(start, end, step)| Range::new(start as isize, Some(end as isize), step as isize))
            .collect();
        t.slice(ranges.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn slice_takes_strided_ranges() {
        // [2, 5] = [[0..5], [5..10]]; axis 1 from 1 to 5 step 2: columns 1 and 3.
        let x = || feature((0..10).map(|v| v as f32).collect(), &[2, 5]);
        let op = Slice {
            axes: vec![1],
            starts: vec![1],
            ends: vec![5],
            steps: vec![2],
        };
        assert_eq!(
            run(&op, vec![x()]).expect("slices"),
            (vec![2, 2], vec![1.0, 3.0, 6.0, 8.0])
        );
        // Both axes: the second row's last three.
        let op = Slice {
            axes: vec![1, 0],
            starts: vec![2, 1],
            ends: vec![5, 2],
            steps: vec![1, 1],
        };
        assert_eq!(
            run(&op, vec![x()]).expect("slices"),
            (vec![1, 3], vec![7.0, 8.0, 9.0])
        );
        let infer = |start, end| {
            let op = Slice {
                axes: vec![1],
                starts: vec![start],
                ends: vec![end],
                steps: vec![1],
            };
            op.infer(&[&Value::Tensor(vec![2, 5])])
        };
        assert!(infer(3, 3).is_err());
        assert!(infer(0, 6).is_err());
    }
}
