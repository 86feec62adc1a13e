use serde::Serialize;

use super::args::{broadcast_shape, shapes, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// ONNX `Where` (`torch.where(condition, x, y)`): `x` where the condition is true, `y`
/// elsewhere. The condition is a float tensor, nonzero meaning true (how a [`Feature`] holds
/// [`super::Compare`]'s output).
///
/// # Shapes
/// The condition, `x` and `y`, broadcast together, to their broadcast shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Where;

impl OpDef for Where {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        match shapes(inputs)?.as_slice() {
            [c, x, y] => tensor(broadcast_shape(&broadcast_shape(c, x)?, y)?),
            other => Err(format!("where takes three tensors, got {}", other.len())),
        }
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Ok([c, x, y]) = <[Feature; 3]>::try_from(inputs) else {
            return Err("where takes three inputs".into());
        };
        let shapes = [c.dims(), x.dims(), y.dims()];
        Feature::where_nonzero(c, x, y).ok_or_else(|| format!("cannot broadcast shapes {shapes:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn where_picks_by_a_broadcast_condition() {
        // A [2] condition over [2, 2] rows; y a scalar-like [1].
        let c = feature(vec![1.0, 0.0], &[2]);
        let x = feature(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let y = feature(vec![-1.0], &[1]);
        assert_eq!(
            run(&Where, vec![c, x, y]).expect("broadcasts"),
            (vec![2, 2], vec![1.0, -1.0, 3.0, -1.0])
        );
        let bad = [
            Value::Tensor(vec![3]),
            Value::Tensor(vec![2, 2]),
            Value::Tensor(vec![1]),
        ];
        assert!(Where.infer(&[&bad[0], &bad[1], &bad[2]]).is_err());
    }
}
