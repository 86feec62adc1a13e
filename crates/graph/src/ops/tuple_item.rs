use serde::Serialize;

use super::args::{first, single_any};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// `pair[index]` of a tuple, when that element is a tensor (attention's output). The tuple's
/// producer evaluates to that tensor alone, so evaluating this passes it on.
///
/// # Shapes
/// A tuple to its `index`th element.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TupleItem {
    /// The index.
    pub index: usize,
}

impl OpDef for TupleItem {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        match first(inputs) {
            Value::Tuple(items) => match items.get(self.index) {
                Some(item @ Value::Tensor(_)) => Ok(item.clone()),
                _ => Err(format!("index {} of {} is no tensor", self.index, first(inputs))),
            },
            other => Err(format!("cannot index {other}")),
        }
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        single_any(inputs)
    }
}
