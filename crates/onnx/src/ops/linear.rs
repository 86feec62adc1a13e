//! Matrix products: `Gemm` and `MatMul` by a weight become featx's `Linear` (the zoo's
//! classifier op); products of two computed tensors are `MatMul`; `Einsum` is lowered to
//! permutes, reshapes and one batched `MatMul`.

use burn::module::Param;
use featx_graph::ops::{Linear, MatMul, Permute, Reshape};
use featx_graph::{Layer, NodeId};

use super::{Rule, one};
use crate::error::Result;
use crate::import::{Call, Importer, Val};

#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    Rule { op: "Gemm", fold: None, import: Some(gemm) },
    Rule { op: "MatMul", fold: None, import: Some(matmul) },
    Rule { op: "Einsum", fold: None, import: Some(einsum) },
];

/// A `Linear` layer from an `[in, out]` weight (burn's layout, MatMul's) and a bias.
fn linear(
    im: &mut Importer,
    call: &Call,
    x: usize,
    weight: Vec<f32>,
    [k, n]: [usize; 2],
    bias: Option<Vec<f32>>,
) -> Result<Val> {
    let layer = burn::nn::Linear {
        weight: Param::from_tensor(im.tensor(weight, [k, n])),
        bias: bias.map(|b| Param::from_tensor(im.tensor(b, [n]))),
    };
    let op = Linear::of(&layer);
    let x = im.input_node(call, x)?;
    Ok(Val::Node(im.emit(
        call.naming(0),
        op,
        &[x],
        Some(Layer::Linear(layer)),
    )?))
}

fn gemm(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let a = &call.attrs;
    let (alpha, beta) = (a.float("alpha", 1.0), a.float("beta", 1.0));
    if a.int("transA", 0) != 0 {
        return Err(call.err("transA is not supported"));
    }
    let b = call
        .constant(1)
        .map_err(|_| call.err("B must be a weight"))?;
    let [r, c] = <[usize; 2]>::try_from(b.shape.as_slice())
        .map_err(|_| call.err(format!("B has shape {:?}", b.shape)))?;
    let values = b.as_floats();
    // To burn's `[in, out]`, scaled by alpha.
    let (k, n, weight) = if a.int("transB", 0) != 0 {
        let mut w = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                w[j * r + i] = alpha * values[i * c + j];
            }
        }
        (c, r, w)
    } else {
        (r, c, values.iter().map(|v| alpha * v).collect())
    };
    let bias = match call.opt_constant(2)? {
        None => None,
        Some(c) if c.len() == n => Some(c.as_floats().iter().map(|v| beta * v).collect()),
        Some(c) if c.len() == 1 => Some(vec![beta * c.as_floats()[0]; n]),
        Some(c) => return Err(call.err(format!("C of shape {:?} is not a bias of {n}", c.shape))),
    };
    one(linear(im, call, 0, weight, [k, n], bias)?)
}

fn matmul(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    if let (Val::Node(_), Val::Const(w)) = (call.input(0)?, call.input(1)?)
        && let [k, n] = w.shape[..]
    {
        let weight = w.as_floats();
        return one(linear(im, call, 0, weight, [k, n], None)?);
    }
    let (a, b) = (im.input_node(call, 0)?, im.input_node(call, 1)?);
    one(Val::Node(im.emit(call.naming(0), MatMul, &[a, b], None)?))
}

/// `Einsum` of one or two operands whose every letter appears in the output or in both
/// operands: each operand permuted to `[batch, free, contracted]`, one batched product,
/// then the output's order.
fn einsum(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let equation: String = call
        .attrs
        .string("equation", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (lhs, out) = equation
        .split_once("->")
        .ok_or_else(|| call.err(format!("equation '{equation}' without an explicit output")))?;
    let terms: Vec<&str> = lhs.split(',').collect();
    if equation.contains('.') || terms.len() != call.inputs.len() {
        return Err(call.err(format!(
            "equation '{equation}' is not supported (ellipsis or operand count)"
        )));
    }
    for (i, term) in terms.iter().enumerate() {
        let rank = im.shape(call.input(i)?).len();
        if term.chars().count() != rank || !term.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(call.err(format!("operand {i} has rank {rank}, term '{term}'")));
        }
    }
    let shapes: Vec<Vec<usize>> = (0..terms.len())
        .map(|i| call.input(i).map(|v| im.shape(v)))
        .collect::<Result<_>>()?;
    let size = |l: char| -> usize {
        terms
            .iter()
            .zip(&shapes)
            .find_map(|(t, s)| t.find(l).map(|i| s[i]))
            .unwrap_or(1)
    };
    let order = |term: &str, letters: &[char]| -> Vec<usize> {
        letters.iter().filter_map(|&l| term.find(l)).collect()
    };
    let out: Vec<char> = out.chars().collect();
    match terms.as_slice() {
        [a] => {
            if a.chars().any(|l| !out.contains(&l)) || a.len() != out.len() {
                return Err(call.err(format!("equation '{equation}' sums over an operand's axes")));
            }
            let x = im.input_node(call, 0)?;
            let op = Permute {
                dims: order(a, &out),
            };
            one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
        }
        [a, b] => {
            let (ac, bc): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            let batch: Vec<char> = ac
                .iter()
                .copied()
                .filter(|l| bc.contains(l) && out.contains(l))
                .collect();
            let contracted: Vec<char> = ac
                .iter()
                .copied()
                .filter(|l| bc.contains(l) && !out.contains(l))
                .collect();
            let left: Vec<char> = ac.iter().copied().filter(|l| !bc.contains(l)).collect();
            let right: Vec<char> = bc.iter().copied().filter(|l| !ac.contains(l)).collect();
            if left.iter().chain(&right).any(|l| !out.contains(l)) {
                return Err(call.err(format!(
                    "equation '{equation}' sums over one operand's own axis"
                )));
            }
            let prod = |ls: &[char]| ls.iter().map(|&l| size(l)).product::<usize>();
            let (nb, nl, nk, nr) = (prod(&batch), prod(&left), prod(&contracted), prod(&right));
            let mut arrange =
                |i: usize, letters: Vec<char>, to: [usize; 3], what: &str| -> Result<NodeId> {
                    let x = im.input_node(call, i)?;
                    let term = terms[i];
                    let p = im.emit(
                        call.helper(&format!("{what}_permuted")),
                        Permute {
                            dims: order(term, &letters),
                        },
                        &[x],
                        None,
                    )?;
                    let shape = to.iter().map(|&d| Some(d as i64)).collect();
                    im.emit(
                        call.helper(&format!("{what}_matrix")),
                        Reshape { shape },
                        &[p],
                        None,
                    )
                };
            let ka = arrange(
                0,
                [&batch[..], &left, &contracted].concat(),
                [nb, nl, nk],
                "a",
            )?;
            let kb = arrange(
                1,
                [&batch[..], &contracted, &right].concat(),
                [nb, nk, nr],
                "b",
            )?;
            let product = im.emit(call.helper("product"), MatMul, &[ka, kb], None)?;
            let grouped: Vec<char> = [&batch[..], &left, &right].concat();
            let shape = grouped.iter().map(|&l| Some(size(l) as i64)).collect();
            let unflat = im.emit(
                call.helper("unflattened"),
                Reshape { shape },
                &[product],
                None,
            )?;
            let op = Permute {
                dims: out
                    .iter()
                    .filter_map(|l| grouped.iter().position(|g| g == l))
                    .collect(),
            };
            one(Val::Node(im.emit(call.naming(0), op, &[unflat], None)?))
        }
        _ => Err(call.err("Einsum of more than two operands is not supported")),
    }
}
