use serde::Serialize;

use super::args::first_shape;
use super::{Cx, Kind, NOT_COMPUTED, OpDef};
use crate::{Feature, Value};

/// `x.dim()`: the rank, an int known from the input's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dim;

impl OpDef for Dim {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        Ok(Value::Int(first_shape(inputs)?.len() as i64))
    }

    fn eval(&self, _: &Cx, _: Vec<Feature>) -> Result<Feature, String> {
        Err(NOT_COMPUTED.into())
    }

    fn kind(&self, _: &[Kind]) -> Kind {
        Kind::Static
    }

    fn non_tensor(&self, _: &[Kind]) -> &'static str {
        "an int (the rank of an input check)"
    }
}
