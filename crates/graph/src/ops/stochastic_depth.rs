use burn::prelude::*;
use burn::tensor::Distribution;
use serde::Serialize;

use super::args::{same_shape, train_only};
use super::{Cx, OpDef};
use crate::{Feature, TensorFn, Value};

/// torchvision.ops' `StochasticDepth(p, mode)`: identity in eval mode; in train mode each
/// sample (`row`) or the whole batch is zeroed with probability `p`, the rest scaled by
/// `1/(1-p)`.
///
/// # Shapes
/// Any shape to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StochasticDepth {
    /// Probability of dropping.
    pub p: f64,
    /// `mode="row"` (per sample) rather than `"batch"`.
    pub row: bool,
}

impl OpDef for StochasticDepth {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        same_shape(inputs)
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        train_only(cx, inputs, self)
    }
}

impl TensorFn for &StochasticDepth {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        if self.p <= 0.0 {
            return t;
        }
        let keep = 1.0 - self.p;
        let mut shape = [1usize; D];
        if self.row {
            shape[0] = t.dims()[0];
        }
        let noise = Tensor::<D>::random(shape, Distribution::Bernoulli(keep), &t.device())
            .cast(burn::tensor::FloatDType::from(t.dtype()));
        let noise = if keep > 0.0 { noise / keep } else { noise };
        t * noise
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;

    #[test]
    fn identity_in_eval_and_all_dropped_at_p_one_in_train() {
        let op = StochasticDepth { p: 1.0, row: true };
        let x = Tensor::<2>::ones([2, 3], &Device::flex());
        let cx = |mode| Cx {
            layer: None,
            mode,
            out_shape: &[2, 3],
        };
        let eval = op.eval(&cx(Mode::Eval), vec![x.clone().into()]).unwrap();
        assert_eq!(eval.to_vec_f32().unwrap(), [1.0; 6]);
        let train = op.eval(&cx(Mode::Train), vec![x.into()]).unwrap();
        assert_eq!(train.to_vec_f32().unwrap(), [0.0; 6]);
    }
}
