use serde::Serialize;

use super::args::{binary, shapes, tensor};
use super::{Cx, OpDef};
use super::matmul::MatMulFn;
use crate::{Feature, MAX_RANK, Value};

/// `torch.einsum(equation, a, b)` for the equations that are a batched matrix product:
/// `"B G H I D, B G H J D -> B G H I J"` (MaxViT's attention scores, `a @ b^T`) and
/// `"B G H I J, B G H J D -> B G H I D"` (its weighted values, `a @ b`).
///
/// Both operands carry the same batch letters first, in the output's order; their last two
/// letters are `i k` and `k j` (or `j k`, the second operand transposed), the output's `i j`.
/// Any other equation (more operands, ellipses, traces, reductions of other axes) is rejected
/// by [`OpDef::infer`]: featx does not parse general einsum.
///
/// # Shapes
/// `[batch.., m, k]` and `[batch.., k, n]` (or `[batch.., n, k]`) to `[batch.., m, n]`; the
/// batch sizes of the operands are equal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Einsum {
    /// The equation as PyTorch takes it (spaces allowed).
    pub equation: String,
}

/// What an accepted equation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Product {
    /// Letters per operand and in the output (batch letters and two more).
    rank: usize,
    /// The second operand is `[.., n, k]`: transposed before the product.
    transpose_b: bool,
}

impl Einsum {
    /// The matrix product the equation is, or why it is not one featx computes.
    fn product(&self) -> Result<Product, String> {
        let unsupported = |why: &str| {
            format!(
                "unsupported einsum equation {:?}: {why}; featx computes only batched matrix \
                 products (`..ik,..kj->..ij` or `..ik,..jk->..ij`, the same batch letters \
                 leading every term)",
                self.equation
            )
        };
        let eq: String = self
            .equation
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let Some((lhs, out)) = eq.split_once("->") else {
            return Err(unsupported("no explicit output (`->`)"));
        };
        let terms: Vec<&str> = lhs.split(',').collect();
        let [a, b] = terms[..] else {
            return Err(unsupported(&format!("{} operands, not two", terms.len())));
        };
        if ![a, b, out]
            .iter()
            .all(|t| t.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(unsupported("a term holds something other than letters"));
        }
        let (a, b, out) = (a.as_bytes(), b.as_bytes(), out.as_bytes());
        let rank = out.len();
        if rank < 2 || a.len() != rank || b.len() != rank {
            return Err(unsupported(
                "the terms differ in length or have fewer than two letters",
            ));
        }
        let mut seen = [false; 256];
        if out
            .iter()
            .any(|&c| std::mem::replace(&mut seen[c as usize], true))
        {
            return Err(unsupported("a letter repeats in the output"));
        }
        let batch = &out[..rank - 2];
        if &a[..rank - 2] != batch || &b[..rank - 2] != batch {
            return Err(unsupported(
                "the operands' leading letters are not the output's",
            ));
        }
        let (i, j) = (out[rank - 2], out[rank - 1]);
        let (ai, ak) = (a[rank - 2], a[rank - 1]);
        let (b0, b1) = (b[rank - 2], b[rank - 1]);
        if ai != i || seen[ak as usize] {
            return Err(unsupported(
                "the first operand is not `..ik` with `k` summed",
            ));
        }
        match (b0, b1) {
            _ if (b0, b1) == (ak, j) => Ok(Product {
                rank,
                transpose_b: false,
            }),
            _ if (b0, b1) == (j, ak) => Ok(Product {
                rank,
                transpose_b: true,
            }),
            _ => Err(unsupported(
                "the second operand is neither `..kj` nor `..jk`",
            )),
        }
    }
}

impl OpDef for Einsum {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let product = self.product()?;
        let [a, b] = shapes(inputs)?[..] else {
            return Err(format!(
                "einsum here takes two tensors, got {}",
                inputs.len()
            ));
        };
        let r = product.rank;
        if r > MAX_RANK || a.len() != r || b.len() != r {
            return Err(format!(
                "einsum {:?} takes two rank-{r} tensors, got shapes {a:?} and {b:?}",
                self.equation
            ));
        }
        let (k, n) = match product.transpose_b {
            false => (b[r - 2], b[r - 1]),
            true => (b[r - 1], b[r - 2]),
        };
        if a[..r - 2] != b[..r - 2] || a[r - 1] != k {
            return Err(format!(
                "einsum {:?} cannot combine shapes {a:?} and {b:?}",
                self.equation
            ));
        }
        let mut out = a[..r - 1].to_vec();
        out.push(n);
        tensor(out)
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let product = self.product()?;
        binary(inputs, "einsum", |a, b| {
            let b = match product.transpose_b {
                false => b,
                true => {
                    let mut axes: Vec<usize> = (0..b.rank()).collect();
                    axes.swap(b.rank() - 1, b.rank().checked_sub(2)?);
                    b.permute(&axes)?
                }
            };
            a.zip_same_rank(b, MatMulFn)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    fn einsum(equation: &str) -> Einsum {
        Einsum {
            equation: equation.into(),
        }
    }

    #[test]
    fn einsum_computes_maxvit_attention_products() {
        // q [1, 2, 3]: rows [0, 1, 2], [3, 4, 5]; k [1, 2, 3]: rows [1, 0, -1], [0, 1, 0].
        let q = || feature((0..6).map(|v| v as f32).collect(), &[1, 2, 3]);
        let k = feature(vec![1.0, 0.0, -1.0, 0.0, 1.0, 0.0], &[1, 2, 3]);
        // Scores q k^T: [[0*1 + 2*-1, 1], [3 - 5, 4]].
        let scores = einsum("B I D, B J D -> B I J");
        assert_eq!(
            run(&scores, vec![q(), k]).expect("scores"),
            (vec![1, 2, 2], vec![-2.0, 1.0, -2.0, 4.0])
        );
        // Weights [1, 2, 2] times values [1, 2, 3]: a @ b.
        let weights = feature(vec![1.0, 0.0, 0.5, 0.5], &[1, 2, 2]);
        let mix = einsum("B I J, B J D -> B I D");
        assert_eq!(
            run(&mix, vec![weights, q()]).expect("mix"),
            (vec![1, 2, 3], vec![0.0, 1.0, 2.0, 1.5, 2.5, 3.5])
        );
        // MaxViT's own spelling, at its rank.
        let maxvit = einsum("B G H I D, B G H J D -> B G H I J");
        let infer =
            |a: Vec<usize>, b: Vec<usize>| maxvit.infer(&[&Value::Tensor(a), &Value::Tensor(b)]);
        assert_eq!(
            infer(vec![1, 64, 2, 49, 32], vec![1, 64, 2, 49, 32]),
            Ok(Value::Tensor(vec![1, 64, 2, 49, 49]))
        );
        assert!(infer(vec![1, 64, 2, 49, 32], vec![1, 64, 2, 49, 16]).is_err());
        assert!(infer(vec![1, 64, 2, 49, 32], vec![1, 32, 2, 49, 32]).is_err());
        assert!(infer(vec![64, 2, 49, 32], vec![64, 2, 49, 32]).is_err());
    }

    #[test]
    fn einsum_rejects_other_equations_by_name() {
        let x = Value::Tensor(vec![2, 3, 3]);
        for equation in [
            "bij,bjk",
            "bij->bji",
            "bij,bjk,bkl->bil",
            "...ij,...jk->...ik",
            "bij,bjk->bki",
            "bij,cjk->bik",
            "bij,bik->bjk",
            "bii,bij->bij",
            "bij,bjj->bij",
        ] {
            let err = einsum(equation).infer(&[&x, &x]).unwrap_err();
            assert!(
                err.contains("unsupported einsum equation") && err.contains(equation),
                "{equation}: {err}"
            );
        }
    }
}
