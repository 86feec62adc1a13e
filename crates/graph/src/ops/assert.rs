use serde::Serialize;

use super::args::first;
use super::{Cx, Kind, NOT_COMPUTED, OpDef};
use crate::{Feature, Value};

/// `torch._assert(cond, message)`: `None`, or, with a false condition, the message as an
/// error: the check a model makes on its input, raised before any compute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assert {
    /// The message torchvision raises.
    pub message: String,
}

impl OpDef for Assert {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        match first(inputs) {
            Value::Bool(true) => Ok(Value::None),
            Value::Bool(false) => Err(self.message.clone()),
            other => Err(format!("expected a bool, got {other}")),
        }
    }

    fn eval(&self, _: &Cx, _: Vec<Feature>) -> Result<Feature, String> {
        Err(NOT_COMPUTED.into())
    }

    fn kind(&self, _: &[Kind]) -> Kind {
        Kind::Static
    }

    fn non_tensor(&self, _: &[Kind]) -> &'static str {
        "None (an input check, `torch._assert`)"
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FloorDiv, GetItem, Shape};
    use super::*;

    /// ViT's input check, node by node: `x.shape`, `[2]`, `== 224`, `_assert`, `// 16`.
    #[test]
    fn shape_checks_compute_python_values() {
        let x = Value::Tensor(vec![2, 3, 224, 224]);
        let size = Shape.infer(&[&x]).unwrap();
        assert_eq!(size, Value::Size(vec![2, 3, 224, 224]));
        let h = GetItem { index: 2 }.infer(&[&size]).unwrap();
        assert_eq!(h, Value::Int(224));
        let ok = super::super::Eq { rhs: 224 }.infer(&[&h]).unwrap();
        assert_eq!(ok, Value::Bool(true));
        let assert = Assert {
            message: "Wrong image height!".into(),
        };
        assert_eq!(assert.infer(&[&ok]).unwrap(), Value::None);
        assert_eq!(
            assert.infer(&[&Value::Bool(false)]).unwrap_err(),
            "Wrong image height!"
        );
        assert_eq!(FloorDiv { rhs: 16 }.infer(&[&h]).unwrap(), Value::Int(14));
        assert!(FloorDiv { rhs: 0 }.infer(&[&h]).is_err());
        assert_eq!(Shape.kind(&[Kind::Tensor]), Kind::Static);
    }
}
