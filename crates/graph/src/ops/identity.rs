use serde::Serialize;

use super::args::{same_shape, single_any};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// Its input, unchanged: ONNX `Identity`, a `Dropout` of a graph exported for inference, a
/// `Cast` from float to float, `x.contiguous()` (memory layout is no part of a value).
///
/// # Shapes
/// Any shape to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identity;

impl OpDef for Identity {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        same_shape(inputs)
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        single_any(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn identity_passes_its_input() {
        let x = feature(vec![1.0, -2.0], &[2, 1]);
        assert_eq!(
            run(&Identity, vec![x]).expect("passes"),
            (vec![2, 1], vec![1.0, -2.0])
        );
    }
}
