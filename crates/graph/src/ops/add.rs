use serde::Serialize;

use super::args::{binary, broadcast_shape, shapes, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// `a + b` of two tensors (`operator.add`), broadcasting as PyTorch does: a ResNet block's
/// identity, or ViT's tokens plus the `[1, tokens, dim]` position embedding.
///
/// # Shapes
/// Two shapes that broadcast to their broadcast shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Add;

impl OpDef for Add {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        match shapes(inputs)?.as_slice() {
            [a, b] => tensor(broadcast_shape(a, b)?),
            other => Err(format!("add takes two tensors, got {}", other.len())),
        }
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        binary(inputs, "add", |a, b| {
            // Equal shapes (the common case) need no broadcasting views.
            if a.dims() == b.dims() {
                a.checked_add(b)
            } else {
                a.broadcast_add(b)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_broadcasts_as_pytorch() {
        let infer = |a: Vec<usize>, b: Vec<usize>| {
            Add.infer(&[&Value::Tensor(a), &Value::Tensor(b)])
        };
        assert_eq!(
            infer(vec![4, 197, 768], vec![1, 197, 768]),
            Ok(Value::Tensor(vec![4, 197, 768]))
        );
        assert_eq!(infer(vec![2, 8], vec![2, 8]), Ok(Value::Tensor(vec![2, 8])));
        assert!(infer(vec![2, 3], vec![2, 4]).is_err());
    }
}
