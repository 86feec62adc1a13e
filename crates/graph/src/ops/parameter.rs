use serde::Serialize;

use super::args::tensor;
use super::{Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, Value};

/// A parameter read in `forward` (FX `get_attr`: ConvNeXt's `layer_scale`, ViT's
/// `class_token`), or an imported graph's constant ([`crate::ParamTensor::from_f32`]).
///
/// # Shapes
/// No input; `shape` out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameter {
    /// Its shape.
    pub shape: Vec<usize>,
}

impl OpDef for Parameter {
    fn infer(&self, _: &[&Value]) -> Result<Value, String> {
        tensor(self.shape.clone())
    }

    fn eval(&self, cx: &Cx, _: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::Parameter(param)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        Ok(param.val())
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::Parameter(_)))
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::super::args::testing::run_with;
    use super::*;
    use crate::ParamTensor;

    #[test]
    fn constants_of_any_rank_are_parameters() {
        let device = Device::flex();
        let values: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let param = ParamTensor::from_f32(values.clone(), &[2, 1, 2, 1, 2], &device)
            .expect("rank 5");
        assert_eq!(param.dims(), [2, 1, 2, 1, 2]);
        let layer = Layer::Parameter(param);
        let op = Parameter {
            shape: vec![2, 1, 2, 1, 2],
        };
        assert!(op.fits(Some(&layer)));
        assert_eq!(
            run_with(&op, Some(&layer), vec![]).expect("reads"),
            (vec![2, 1, 2, 1, 2], values)
        );
        assert!(ParamTensor::from_f32(vec![1.0], &[], &device).is_none());
        assert!(ParamTensor::from_f32(vec![1.0; 3], &[2, 2], &device).is_none());
        assert!(ParamTensor::from_f32(vec![1.0], &[1; 7], &device).is_none());
    }
}
