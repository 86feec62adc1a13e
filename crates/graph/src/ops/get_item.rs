use serde::Serialize;

use super::args::first;
use super::{Cx, Kind, NOT_COMPUTED, OpDef};
use crate::{Feature, Value};

/// `value[index]` (FX `operator.getitem`) of a `torch.Size` (an int) or of a tuple whose item
/// is a Python value (attention's `None` weights): known without computing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GetItem {
    /// The index.
    pub index: usize,
}

impl OpDef for GetItem {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let value = first(inputs);
        let item = match value {
            Value::Size(dims) => dims.get(self.index).map(|d| Value::Int(*d as i64)),
            Value::Tuple(items) => items.get(self.index).cloned(),
            other => return Err(format!("cannot index {other}")),
        };
        item.ok_or_else(|| format!("index {} of {value}", self.index))
    }

    fn eval(&self, _: &Cx, _: Vec<Feature>) -> Result<Feature, String> {
        Err(NOT_COMPUTED.into())
    }

    fn kind(&self, _: &[Kind]) -> Kind {
        Kind::Static
    }

    fn non_tensor(&self, inputs: &[Kind]) -> &'static str {
        match inputs.first() {
            Some(Kind::Tuple) => "None (the attention weights, not computed: need_weights=False)",
            _ => "an int (arithmetic on an input's size)",
        }
    }
}
