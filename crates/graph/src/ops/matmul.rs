use burn::prelude::*;
use serde::Serialize;

use super::args::{binary, broadcast_shape, shapes, tensor};
use super::{Cx, OpDef};
use crate::feature::BinaryFn;
use crate::{Feature, MAX_RANK, Value};

/// NumPy `matmul` of two tensors of rank 2 or more (ONNX `MatMul`, `torch.matmul`, `@`):
/// attention's `[B, H, T, D] @ [B, H, D, T]`, or tokens times a weight matrix.
///
/// The leading (batch) dimensions broadcast; a rank-2 right operand is one matrix for every
/// batch. Rank-1 operands (NumPy's vector promotion) are not supported.
///
/// # Shapes
/// `[..., m, k]` and `[..., k, n]` to `[broadcast(...), m, n]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatMul;

impl OpDef for MatMul {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let [a, b] = shapes(inputs)?[..] else {
            return Err(format!("matmul takes two tensors, got {}", inputs.len()));
        };
        let (ra, rb) = (a.len(), b.len());
        if ra < 2 || rb < 2 {
            return Err(format!(
                "matmul takes operands of rank 2 or more, got shapes {a:?} and {b:?}"
            ));
        }
        let (m, k) = (a[ra - 2], a[ra - 1]);
        let (k2, n) = (b[rb - 2], b[rb - 1]);
        if k != k2 {
            return Err(format!(
                "cannot multiply shapes {a:?} and {b:?}: inner sizes {k} and {k2} differ"
            ));
        }
        let mut out = broadcast_shape(&a[..ra - 2], &b[..rb - 2])
            .map_err(|_| format!("cannot broadcast the batch dimensions of {a:?} and {b:?}"))?;
        out.extend([m, n]);
        if out.len() > MAX_RANK {
            return Err(format!("matmul of {a:?} and {b:?} is above rank {MAX_RANK}"));
        }
        tensor(out)
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        binary(inputs, "matmul", |a, b| {
            let (da, db) = (a.dims(), b.dims());
            let (ra, rb) = (da.len(), db.len());
            if ra < 2 || rb < 2 {
                return None;
            }
            if rb == 2 && ra > 2 {
                // One matrix for every batch: one `[rows, k] @ [k, n]` product.
                let rows = da[..ra - 1].iter().product::<usize>();
                let a = a.reshape(&[rows, da[ra - 1]])?;
                return a.zip_same_rank(b, MatMulFn)?.reshape(cx.out_shape);
            }
            // Both at the output's rank, batch dimensions broadcast.
            let rank = ra.max(rb);
            let batch = cx.out_shape.get(..rank - 2)?;
            let full = |d: &[usize]| -> Vec<usize> {
                let mut s = batch.to_vec();
                s.extend_from_slice(&d[d.len() - 2..]);
                s
            };
            let (a, b) = (a.broadcast_to(&full(&da))?, b.broadcast_to(&full(&db))?);
            a.zip_same_rank(b, MatMulFn)
        })
    }
}

/// `a @ b` of two same-rank tensors (also what [`super::Einsum`]'s products run).
pub(super) struct MatMulFn;

impl BinaryFn for MatMulFn {
    fn apply<const D: usize>(&self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        a.matmul(b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn matmul_multiplies_batches_of_matrices() {
        // [2, 2, 3] @ [3, 1]: each batch's rows dotted with [1, 0, -1].
        let a = feature((0..12).map(|v| v as f32).collect(), &[2, 2, 3]);
        let b = feature(vec![1.0, 0.0, -1.0], &[3, 1]);
        let (shape, got) = run(&MatMul, vec![a, b]).expect("multiplies");
        assert_eq!(shape, [2, 2, 1]);
        assert_eq!(got, [-2.0, -2.0, -2.0, -2.0]);

        // Batch dimensions [2, 1] and [1, 2] broadcast to [2, 2].
        let a = feature(vec![1.0, 2.0, 3.0, 4.0], &[2, 1, 1, 2]);
        let b = feature(vec![1.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 2.0], &[1, 2, 2, 2]);
        let (shape, got) = run(&MatMul, vec![a, b]).expect("broadcasts");
        assert_eq!(shape, [2, 2, 1, 2]);
        // [1, 2] @ I, [1, 2] @ 2I, [3, 4] @ I, [3, 4] @ 2I.
        assert_eq!(got, [1.0, 2.0, 2.0, 4.0, 3.0, 4.0, 6.0, 8.0]);

        // Attention scores: [1, 2, 2] @ [1, 2, 2] (the second transposed by hand).
        let q = feature(vec![1.0, 2.0, 3.0, 4.0], &[1, 2, 2]);
        let kt = feature(vec![5.0, 7.0, 6.0, 8.0], &[1, 2, 2]);
        let (_, got) = run(&MatMul, vec![q, kt]).expect("multiplies");
        assert_eq!(got, [17.0, 23.0, 39.0, 53.0]);

        let infer = |a: Vec<usize>, b: Vec<usize>| {
            MatMul.infer(&[&Value::Tensor(a), &Value::Tensor(b)])
        };
        assert!(infer(vec![2, 3], vec![2, 3]).is_err());
        assert!(infer(vec![3], vec![3, 2]).is_err());
        assert!(infer(vec![2, 4, 3], vec![3, 3, 2]).is_err());
    }
}
