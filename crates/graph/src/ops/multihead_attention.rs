use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::Serialize;

use super::args::{shapes, single};
use super::{Cx, Kind, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, Value, lazy_dims};

/// `nn.MultiheadAttention(query, key, value, need_weights=False)`, batch first, self
/// attention with no mask: a tuple `(output, None)`. Evaluated, it is the output alone; the
/// [`super::TupleItem`] after it passes that on.
///
/// # Shapes
/// Three equal `[N, L, embed_dim]` to `([N, L, embed_dim], None)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MultiheadAttention {
    /// Model width.
    pub embed_dim: usize,
    /// Attention heads.
    pub num_heads: usize,
}

/// `nn.MultiheadAttention`'s parameters (torchvision's state-dict keys `in_proj_weight`,
/// `in_proj_bias`, `out_proj.weight`, `out_proj.bias`), for self attention with no mask.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query, key and value projections stacked, `[3 * embed_dim, embed_dim]` (PyTorch
    /// layout: not transposed, it is no `Linear`).
    pub in_proj_weight: Param<Tensor<2>>,
    /// Their biases, `[3 * embed_dim]`.
    pub in_proj_bias: Param<Tensor<1>>,
    /// The output projection.
    pub out_proj: Linear,
    /// Attention heads.
    #[module(skip)]
    pub num_heads: usize,
}

impl MultiheadAttention {
    /// The op of these parameters.
    pub fn of(attn: &Attention) -> Self {
        let [_, embed_dim] = lazy_dims(&attn.in_proj_weight);
        MultiheadAttention {
            embed_dim,
            num_heads: attn.num_heads,
        }
    }
}

impl OpDef for MultiheadAttention {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shapes = shapes(inputs)?;
        if shapes.len() != 3 || shapes.iter().any(|s| s != &shapes[0]) {
            return Err("self attention takes three equal inputs".into());
        }
        match shapes[0] {
            [_, _, e] if *e == self.embed_dim => Ok(Value::Tuple(vec![
                Value::Tensor(shapes[0].to_vec()),
                Value::None,
            ])),
            _ => Err(format!("expected [N, L, {}]", self.embed_dim)),
        }
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::Attention(attn)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        // Self attention: query, key and value are one tensor.
        let x: Tensor<3> = single(inputs)?;
        Ok(attention(x, attn, self.num_heads).into())
    }

    fn kind(&self, _: &[Kind]) -> Kind {
        Kind::Tuple
    }

    fn non_tensor(&self, _: &[Kind]) -> &'static str {
        "a tuple (attention output, None); its output is the `getitem` node after it"
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::Attention(_)))
    }
}

/// Self attention in eval mode: project to queries, keys and values, `softmax(q k^T /
/// sqrt(d)) v` per head, project out.
fn attention(x: Tensor<3>, attn: &Attention, heads: usize) -> Tensor<3> {
    let [n, l, e] = x.dims();
    let d = e / heads.max(1);
    let rows = x.reshape([n * l, e]);
    let qkv = rows.matmul(attn.in_proj_weight.val().transpose())
        + attn.in_proj_bias.val().reshape([1, 3 * e]);
    // [n*l, 3e] -> [3, n, heads, l, d]
    let qkv = qkv.reshape([n, l, 3, heads, d]).permute([2, 0, 3, 1, 4]);
    let part = |i: usize| -> Tensor<4> { qkv.clone().narrow(0, i, 1).reshape([n, heads, l, d]) };
    let (q, k, v) = (part(0), part(1), part(2));
    let q = q * (1.0 / (d as f64).sqrt());
    let weights = softmax(q.matmul(k.swap_dims(2, 3)), 3);
    let out = weights.matmul(v).swap_dims(1, 2).reshape([n * l, e]);
    let out = attn.out_proj.forward(out);
    out.reshape([n, l, e])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_is_a_tuple_of_its_output_and_none() {
        let attention = MultiheadAttention {
            embed_dim: 768,
            num_heads: 12,
        };
        let tokens = Value::Tensor(vec![2, 197, 768]);
        let pair = attention.infer(&[&tokens, &tokens, &tokens]).unwrap();
        assert_eq!(pair, Value::Tuple(vec![tokens.clone(), Value::None]));
        assert_eq!(pair.to_string(), "tuple (Tensor[2, 197, 768], None)");
        assert_eq!(attention.kind(&[Kind::Tensor; 3]), Kind::Tuple);
        let other = Value::Tensor(vec![2, 197, 64]);
        assert!(attention.infer(&[&other, &other, &other]).is_err());
    }
}
