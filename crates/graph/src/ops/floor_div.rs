use serde::Serialize;

use super::args::first;
use super::{Cx, Kind, NOT_COMPUTED, OpDef};
use crate::{Feature, Value};

/// `a // rhs` of an int (FX `operator.floordiv`): arithmetic on an input's size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FloorDiv {
    /// The divisor.
    pub rhs: i64,
}

impl OpDef for FloorDiv {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        if self.rhs == 0 {
            return Err("integer division by zero".into());
        }
        Ok(Value::Int(first(inputs).int()?.div_euclid(self.rhs)))
    }

    fn eval(&self, _: &Cx, _: Vec<Feature>) -> Result<Feature, String> {
        Err(NOT_COMPUTED.into())
    }

    fn kind(&self, _: &[Kind]) -> Kind {
        Kind::Static
    }

    fn non_tensor(&self, _: &[Kind]) -> &'static str {
        "an int (arithmetic on an input's size)"
    }
}
