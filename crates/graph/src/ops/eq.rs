use serde::Serialize;

use super::args::first;
use super::{Cx, Kind, NOT_COMPUTED, OpDef};
use crate::{Feature, Value};

/// `a == rhs` of an int (FX `operator.eq`): a bool, the condition of an input check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Eq {
    /// The constant compared with.
    pub rhs: i64,
}

impl OpDef for Eq {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        Ok(Value::Bool(first(inputs).int()? == self.rhs))
    }

    fn eval(&self, _: &Cx, _: Vec<Feature>) -> Result<Feature, String> {
        Err(NOT_COMPUTED.into())
    }

    fn kind(&self, _: &[Kind]) -> Kind {
        Kind::Static
    }

    fn non_tensor(&self, _: &[Kind]) -> &'static str {
        "a bool (the condition of an input check)"
    }
}
