//! Taking an op's inputs apart, with the reason when they are not what the op takes.

use burn::prelude::Tensor;

use super::Cx;
use crate::{Feature, Mode, TensorFn, Value};

/// The one input of a single-input op as rank `D`.
pub fn single<const D: usize>(inputs: Vec<Feature>) -> Result<Tensor<D>, String> {
    single_any(inputs)?
        .into_rank::<D>()
        .map_err(|x| format!("expected a rank-{D} input, got shape {:?}", x.dims()))
}

/// The one input, whatever its rank.
pub fn single_any(inputs: Vec<Feature>) -> Result<Feature, String> {
    inputs
        .into_iter()
        .next()
        .ok_or_else(|| "no input value".to_string())
}

/// `f(a, b)` of a two-input op, or why not (`verb` names it: "cannot add shapes ...").
pub fn binary(
    inputs: Vec<Feature>,
    verb: &str,
    f: impl FnOnce(Feature, Feature) -> Option<Feature>,
) -> Result<Feature, String> {
    let Ok([a, b]) = <[Feature; 2]>::try_from(inputs) else {
        return Err(format!("{verb} takes two inputs"));
    };
    let shapes = (a.dims(), b.dims());
    f(a, b).ok_or_else(|| format!("cannot {verb} shapes {:?} and {:?}", shapes.0, shapes.1))
}

/// The first input's value (`None` when there is none).
pub(crate) fn first<'a>(inputs: &[&'a Value]) -> &'a Value {
    inputs.first().copied().unwrap_or(&Value::None)
}

/// Every input's tensor shape, or why one is not a tensor.
pub(crate) fn shapes<'a>(inputs: &[&'a Value]) -> Result<Vec<&'a [usize]>, String> {
    inputs.iter().map(|v| v.tensor_shape()).collect()
}

/// The first input's tensor shape.
pub(crate) fn first_shape<'a>(inputs: &[&'a Value]) -> Result<&'a [usize], String> {
    first(inputs).tensor_shape()
}

/// A shape as `[N, C, H, W]`, or why not.
pub(crate) fn rank4(shape: &[usize]) -> Result<[usize; 4], String> {
    <[usize; 4]>::try_from(shape).map_err(|_| format!("expected rank 4, got rank {}", shape.len()))
}

/// A tensor of this shape.
pub(crate) fn tensor(shape: Vec<usize>) -> Result<Value, String> {
    Ok(Value::Tensor(shape))
}

/// The shape of an elementwise op on `a` and `b` under NumPy broadcasting: shapes aligned at
/// their last axis, each pair of sizes equal or one of them 1.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => Err(format!("cannot broadcast shapes {a:?} and {b:?}")),
        })
        .collect()
}

/// The shape of a same-shape elementwise op (an activation, dropout): the input's.
pub(crate) fn same_shape(inputs: &[&Value]) -> Result<Value, String> {
    tensor(first_shape(inputs)?.to_vec())
}

/// The one input unchanged in eval mode, `f` of it in train mode (dropout, stochastic depth).
pub(crate) fn train_only(
    cx: &Cx,
    inputs: Vec<Feature>,
    f: impl TensorFn,
) -> Result<Feature, String> {
    let x = single_any(inputs)?;
    Ok(match cx.mode {
        Mode::Eval => x,
        Mode::Train => x.map_float(f),
    })
}

/// Building inputs and running an op in the ops' tests.
#[cfg(test)]
pub(crate) mod testing {
    use burn::prelude::*;
    use burn::tensor::TensorData;

    use crate::ops::{Cx, OpDef};
    use crate::{Feature, Layer, Mode, Value};

    /// A feature of `shape` holding `values` (row-major), on the CPU device.
    pub(crate) fn feature(values: Vec<f32>, shape: &[usize]) -> Feature {
        let device = Device::flex();
        let flat = Feature::from(Tensor::<1>::from_data(
            TensorData::new(values, [shape.iter().product::<usize>()]),
            &device,
        ));
        flat.reshape(shape).expect("a shape of the values' count")
    }

    /// The op's output shape and values: shape inference, then eval, checking they agree.
    pub(crate) fn run(
        op: &dyn OpDef,
        inputs: Vec<Feature>,
    ) -> Result<(Vec<usize>, Vec<f32>), String> {
        run_with(op, None, inputs)
    }

    /// As [`run`], with the node's parameters.
    pub(crate) fn run_with(
        op: &dyn OpDef,
        layer: Option<&Layer>,
        inputs: Vec<Feature>,
    ) -> Result<(Vec<usize>, Vec<f32>), String> {
        let values: Vec<Value> = inputs.iter().map(|f| Value::Tensor(f.dims())).collect();
        let refs: Vec<&Value> = values.iter().collect();
        let value = op.infer(&refs)?;
        let shape = value.tensor_shape()?.to_vec();
        let cx = Cx {
            layer,
            mode: Mode::Eval,
            out_shape: &shape,
        };
        let out = op.eval(&cx, inputs)?;
        assert_eq!(out.dims(), shape, "eval's shape is not inference's");
        Ok((shape, out.to_vec_f32().map_err(|e| e.to_string())?))
    }
}
