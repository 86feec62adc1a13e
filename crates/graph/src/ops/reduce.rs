use burn::prelude::*;
use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, TensorFn, Value};

/// What [`Reduce`] computes over the reduced axes (ONNX's `Reduce*` ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReduceKind {
    /// `ReduceMean`.
    Mean,
    /// `ReduceSum`.
    Sum,
    /// `ReduceMax`.
    Max,
    /// `ReduceMin`.
    Min,
    /// `ReduceProd`.
    Prod,
    /// `ReduceL1`: the sum of absolute values.
    L1,
    /// `ReduceL2`: the square root of the sum of squares.
    L2,
    /// `ReduceSumSquare`: the sum of squares.
    SumSquare,
    /// `ReduceLogSumExp`: `ln(sum(exp(x)))`, computed with the maximum subtracted first.
    LogSumExp,
}

/// A reduction over some axes (ONNX `ReduceMean`, `ReduceSum`, ...; `torch.mean(x, dims)`),
/// keeping them as size 1 or dropping them.
///
/// # Shapes
/// Any shape to the same with `axes` set to 1 (`keepdims`) or removed. Empty `axes` reduces
/// every axis, as ONNX does by default. Reducing every axis without `keepdims` gives a `[1]`
/// tensor rather than ONNX's scalar, since a [`Feature`] has rank 1 or more.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reduce {
    /// What is computed.
    pub kind: ReduceKind,
    /// The reduced axes (all of them when empty).
    pub axes: Vec<usize>,
    /// Whether the reduced axes stay, as size 1.
    pub keepdims: bool,
}

impl Reduce {
    /// The reduced axes of a rank-`rank` input, sorted, or why they are not valid.
    fn axes(&self, shape: &[usize]) -> Result<Vec<usize>, String> {
        if self.axes.is_empty() {
            return Ok((0..shape.len()).collect());
        }
        let mut axes = self.axes.clone();
        axes.sort_unstable();
        axes.dedup();
        if axes.len() != self.axes.len() || axes.iter().any(|&a| a >= shape.len()) {
            return Err(format!("cannot reduce axes {:?} of shape {shape:?}", self.axes));
        }
        Ok(axes)
    }
}

impl OpDef for Reduce {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        let axes = self.axes(shape)?;
        let out: Vec<usize> = match self.keepdims {
            true => (0..shape.len())
                .map(|i| if axes.contains(&i) { 1 } else { shape[i] })
                .collect(),
            false => (0..shape.len())
                .filter(|i| !axes.contains(i))
                .map(|i| shape[i])
                .collect(),
        };
        tensor(if out.is_empty() { vec![1] } else { out })
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let axes = self.axes(&x.dims())?;
        let kept = x.map_float(Reduction {
            kind: self.kind,
            axes,
        });
        let from = kept.dims();
        kept.reshape(cx.out_shape)
            .ok_or_else(|| format!("cannot reshape {from:?} to {:?}", cx.out_shape))
    }
}

/// The reduction over `axes`, each kept as size 1.
struct Reduction {
    kind: ReduceKind,
    axes: Vec<usize>,
}

impl Reduction {
    /// The sum over every axis.
    fn sum<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        self.axes.iter().fold(t, |t, &a| t.sum_dim(a))
    }

    /// The maximum over every axis.
    fn max<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        self.axes.iter().fold(t, |t, &a| t.max_dim(a))
    }
}

impl TensorFn for Reduction {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        let axes = self.axes.iter();
        match self.kind {
            // Every group of a mean over one axis has as many elements: the mean of the means
            // is the mean.
            ReduceKind::Mean => axes.fold(t, |t, &a| t.mean_dim(a)),
            ReduceKind::Sum => self.sum(t),
            ReduceKind::Max => self.max(t),
            ReduceKind::Min => axes.fold(t, |t, &a| t.min_dim(a)),
            ReduceKind::Prod => axes.fold(t, |t, &a| t.prod_dim(a)),
            ReduceKind::L1 => self.sum(t.abs()),
            ReduceKind::L2 => self.sum(t.square()).sqrt(),
            ReduceKind::SumSquare => self.sum(t.square()),
            ReduceKind::LogSumExp => {
                let max = self.max(t.clone());
                self.sum((t - max.clone()).exp()).log() + max
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    fn reduce(kind: ReduceKind, axes: Vec<usize>, keepdims: bool) -> (Vec<usize>, Vec<f32>) {
        // [[1, -2, 3], [4, 5, -6]].
        let x = feature(vec![1.0, -2.0, 3.0, 4.0, 5.0, -6.0], &[2, 3]);
        let op = Reduce {
            kind,
            axes,
            keepdims,
        };
        run(&op, vec![x]).expect("reduces")
    }

    #[test]
    fn reductions_follow_onnx() {
        use ReduceKind::*;
        assert_eq!(reduce(Sum, vec![1], false), (vec![2], vec![2.0, 3.0]));
        assert_eq!(reduce(Sum, vec![0], true), (vec![1, 3], vec![5.0, 3.0, -3.0]));
        assert_eq!(reduce(Mean, vec![], true), (vec![1, 1], vec![5.0 / 6.0]));
        assert_eq!(reduce(Mean, vec![0, 1], false), (vec![1], vec![5.0 / 6.0]));
        assert_eq!(reduce(Max, vec![1], false).1, [3.0, 5.0]);
        assert_eq!(reduce(Min, vec![], false), (vec![1], vec![-6.0]));
        assert_eq!(reduce(Prod, vec![1], false).1, [-6.0, -120.0]);
        assert_eq!(reduce(L1, vec![1], false).1, [6.0, 15.0]);
        assert_eq!(reduce(SumSquare, vec![1], false).1, [14.0, 77.0]);
        let l2 = reduce(L2, vec![1], false).1;
        assert!((l2[0] - 14f32.sqrt()).abs() < 1e-6 && (l2[1] - 77f32.sqrt()).abs() < 1e-5);
        // ln(e + e^-2 + e^3) = 3.1328084.
        let lse = reduce(LogSumExp, vec![1], false).1;
        let want = (1f32.exp() + (-2f32).exp() + 3f32.exp()).ln();
        assert!((lse[0] - want).abs() < 1e-5, "{lse:?}");
        let bad = Reduce {
            kind: Sum,
            axes: vec![2],
            keepdims: false,
        };
        assert!(bad.infer(&[&Value::Tensor(vec![2, 3])]).is_err());
    }
}
