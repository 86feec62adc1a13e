use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// `x.permute(*dims)` or torchvision's `Permute(dims)` module: output axis `i` is input axis
/// `dims[i]`.
///
/// # Shapes
/// `[d0, .., dn]` to `[d(dims[0]), .., d(dims[n])]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Permute {
    /// A permutation of the input's axes.
    pub dims: Vec<usize>,
}

impl OpDef for Permute {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        let mut seen = vec![false; shape.len()];
        let valid = self.dims.len() == shape.len()
            && self
                .dims
                .iter()
                .all(|&d| d < shape.len() && !std::mem::replace(&mut seen[d], true));
        if !valid {
            return Err(format!(
                "{:?} is not a permutation of a rank-{} tensor's axes",
                self.dims,
                shape.len()
            ));
        }
        tensor(self.dims.iter().map(|&d| shape[d]).collect())
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let from = x.dims();
        x.permute(&self.dims)
            .ok_or_else(|| format!("cannot permute {from:?} by {:?}", self.dims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_reorders_axes_and_checks_the_permutation() {
        let infer = |dims: Vec<usize>, shape: Vec<usize>| {
            Permute { dims }.infer(&[&Value::Tensor(shape)])
        };
        assert_eq!(
            infer(vec![0, 2, 1], vec![2, 64, 49]),
            Ok(Value::Tensor(vec![2, 49, 64]))
        );
        assert!(infer(vec![0, 2, 1], vec![2, 64]).is_err());
        assert!(infer(vec![0, 1, 1], vec![2, 3, 4]).is_err());
    }
}
