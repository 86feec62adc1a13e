use serde::Serialize;

use super::args::tensor;
use super::{Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, ParamTensor, Value};

/// A parameter read in `forward` (FX `get_attr`: ConvNeXt's `layer_scale`, ViT's
/// `class_token`).
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
        Ok(match param {
            ParamTensor::R1(p) => p.val().into(),
            ParamTensor::R3(p) => p.val().into(),
        })
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::Parameter(_)))
    }
}
