use serde::Serialize;

use super::args::first_shape;
use super::{Cx, Kind, NOT_COMPUTED, OpDef};
use crate::{Feature, Value};

/// `x.shape` (FX `builtins.getattr`) or `x.size()` (FX method `size`): a `torch.Size`, known
/// from the input's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shape;

impl OpDef for Shape {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        Ok(Value::Size(first_shape(inputs)?.to_vec()))
    }

    fn eval(&self, _: &Cx, _: Vec<Feature>) -> Result<Feature, String> {
        Err(NOT_COMPUTED.into())
    }

    fn kind(&self, _: &[Kind]) -> Kind {
        Kind::Static
    }

    fn non_tensor(&self, _: &[Kind]) -> &'static str {
        "a torch.Size (an `x.shape` or `x.size()`, known from the input's shape)"
    }
}
