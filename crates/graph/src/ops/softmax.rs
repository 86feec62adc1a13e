use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, TensorFn, Value};

/// Softmax along one axis (ONNX `Softmax` from opset 13, `torch.softmax`), or its logarithm
/// (`LogSoftmax`, `torch.log_softmax`), computed stably (the axis' maximum subtracted first).
///
/// # Shapes
/// Any shape with the axis to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Softmax {
    /// The axis the probabilities sum to 1 along.
    pub axis: usize,
    /// Log-softmax rather than softmax.
    pub log: bool,
}

impl TensorFn for Softmax {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        match self.log {
            true => log_softmax(t, self.axis),
            false => softmax(t, self.axis),
        }
    }
}

impl OpDef for Softmax {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        if self.axis >= shape.len() {
            return Err(format!("no axis {} in shape {shape:?}", self.axis));
        }
        tensor(shape.to_vec())
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        if self.axis >= x.rank() {
            return Err(format!("no axis {} in shape {:?}", self.axis, x.dims()));
        }
        Ok(x.map_float(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn softmax_normalises_along_its_axis() {
        // Along axis 0 of [[0, 0], [ln 3, 0]]: columns [1/4, 3/4] and [1/2, 1/2].
        let x = || feature(vec![0.0, 0.0, 3f32.ln(), 0.0], &[2, 2]);
        let op = Softmax {
            axis: 0,
            log: false,
        };
        let (_, got) = run(&op, vec![x()]).expect("softmax");
        let want = [0.25, 0.5, 0.75, 0.5];
        assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6), "{got:?}");
        let op = Softmax { axis: 0, log: true };
        let (_, got) = run(&op, vec![x()]).expect("log-softmax");
        let want = want.map(f32::ln);
        assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6), "{got:?}");
        let op = Softmax {
            axis: 2,
            log: false,
        };
        assert!(op.infer(&[&Value::Tensor(vec![2, 2])]).is_err());
    }
}
