//! Elementwise ops: arithmetic and comparisons with NumPy broadcasting (folded on constants
//! for shape arithmetic), `Where`, and the activations, mapped onto featx's own activations
//! where PyTorch's match (so `Relu` after `Conv` fuses as the zoo's does).

use featx_graph::Activation;
use featx_graph::ops::{Add, Binary, Compare, Mul, Op, Unary, Where};

use super::{Rule, folded, one};
use crate::constant::{Const, Dtype, broadcast_indices};
use crate::error::Result;
use crate::import::{Call, Importer, Val};

#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    Rule { op: "Add", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "Sub", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "Mul", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "Div", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "Pow", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "Max", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "Min", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "Sum", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "Mod", fold: Some(binary_fold), import: None },
    Rule { op: "Equal", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "Less", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "Greater", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "LessOrEqual", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "GreaterOrEqual", fold: Some(binary_fold), import: Some(binary_import) },
    Rule { op: "And", fold: Some(binary_fold), import: None },
    Rule { op: "Or", fold: Some(binary_fold), import: None },
    Rule { op: "Not", fold: Some(unary_fold), import: None },
    Rule { op: "Where", fold: Some(where_fold), import: Some(where_import) },
    Rule { op: "Relu", fold: None, import: Some(unary_import) },
    Rule { op: "Sigmoid", fold: None, import: Some(unary_import) },
    Rule { op: "HardSigmoid", fold: None, import: Some(unary_import) },
    Rule { op: "HardSwish", fold: None, import: Some(unary_import) },
    Rule { op: "Gelu", fold: None, import: Some(unary_import) },
    Rule { op: "Clip", fold: None, import: Some(unary_import) },
    Rule { op: "LeakyRelu", fold: None, import: Some(unary_import) },
    Rule { op: "Elu", fold: None, import: Some(unary_import) },
    Rule { op: "Softplus", fold: None, import: Some(unary_import) },
    Rule { op: "Mish", fold: None, import: Some(unary_import) },
    Rule { op: "Tanh", fold: None, import: Some(unary_import) },
    Rule { op: "Erf", fold: None, import: Some(unary_import) },
    Rule { op: "Exp", fold: None, import: Some(unary_import) },
    Rule { op: "Log", fold: None, import: Some(unary_import) },
    Rule { op: "Sin", fold: None, import: Some(unary_import) },
    Rule { op: "Cos", fold: None, import: Some(unary_import) },
    Rule { op: "Sqrt", fold: Some(unary_fold), import: Some(unary_import) },
    Rule { op: "Neg", fold: Some(unary_fold), import: Some(unary_import) },
    Rule { op: "Abs", fold: Some(unary_fold), import: Some(unary_import) },
    Rule { op: "Reciprocal", fold: Some(unary_fold), import: Some(unary_import) },
    Rule { op: "Floor", fold: Some(unary_fold), import: Some(unary_import) },
    Rule { op: "Ceil", fold: Some(unary_fold), import: Some(unary_import) },
];

/// The host arithmetic of a binary op, on `f64` (exact for shape integers).
fn arithmetic(op: &str) -> Option<fn(f64, f64) -> f64> {
    Some(match op {
        "Add" | "Sum" => |a, b| a + b,
        "Sub" => |a, b| a - b,
        "Mul" => |a, b| a * b,
        "Div" => |a, b| a / b,
        "Pow" => f64::powf,
        "Max" => f64::max,
        "Min" => f64::min,
        "Mod" => |a, b| a - (a / b).floor() * b,
        "Equal" => |a, b| f64::from(u8::from(a == b)),
        "Less" => |a, b| f64::from(u8::from(a < b)),
        "Greater" => |a, b| f64::from(u8::from(a > b)),
        "LessOrEqual" => |a, b| f64::from(u8::from(a <= b)),
        "GreaterOrEqual" => |a, b| f64::from(u8::from(a >= b)),
        "And" => |a, b| f64::from(u8::from(a != 0.0 && b != 0.0)),
        "Or" => |a, b| f64::from(u8::from(a != 0.0 || b != 0.0)),
        _ => return None,
    })
}

fn broadcast(call: &Call, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => Err(call.err(format!("cannot broadcast {a:?} and {b:?}"))),
        })
        .collect()
}

fn values(c: &Const) -> Vec<f64> {
    match &c.data {
        crate::constant::Data::F(v) => v.iter().map(|&x| f64::from(x)).collect(),
        crate::constant::Data::I(v) => v.iter().map(|&x| x as f64).collect(),
    }
}

fn binary_fold(call: &Call) -> Result<Vec<Const>> {
    let op = call.node.op_type.as_str();
    let f = arithmetic(op).ok_or_else(|| call.err("no host arithmetic"))?;
    let mut acc = call.constant(0)?.clone();
    for i in 1..call.inputs.len() {
        let b = call.constant(i)?;
        let out = broadcast(call, &acc.shape, &b.shape)?;
        super::constant::host_size(call, &out)?;
        let (ia, ib) = (
            broadcast_indices(&acc.shape, &out),
            broadcast_indices(&b.shape, &out),
        );
        let (va, vb) = (values(&acc), values(b));
        let float = acc.dtype == Dtype::Float || b.dtype == Dtype::Float;
        let r: Vec<f64> = ia
            .iter()
            .zip(&ib)
            .map(|(&x, &y)| {
                let v = f(va[x], vb[y]);
                // Integer division truncates, as ONNX's integer Div.
                if !float && op == "Div" { v.trunc() } else { v }
            })
            .collect();
        let compare = matches!(
            op,
            "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or"
        );
        acc = if compare {
            Const::ints(Dtype::Bool, out, r.iter().map(|&v| v as i64).collect())
        } else if float {
            Const::floats(out, r.iter().map(|&v| v as f32).collect())
        } else {
            Const::ints(acc.dtype, out, r.iter().map(|&v| v as i64).collect())
        };
    }
    folded(acc)
}

/// The featx op of a binary ONNX op.
fn binary_op(call: &Call) -> Result<Op> {
    Ok(match call.node.op_type.as_str() {
        "Add" | "Sum" => Add.into(),
        "Mul" => Mul.into(),
        "Sub" => Binary::Sub.into(),
        "Div" => Binary::Div.into(),
        "Pow" => Binary::Pow.into(),
        "Max" => Binary::Max.into(),
        "Min" => Binary::Min.into(),
        "Equal" => Compare::Equal.into(),
        "Less" => Compare::Less.into(),
        "Greater" => Compare::Greater.into(),
        "LessOrEqual" => Compare::LessOrEqual.into(),
        "GreaterOrEqual" => Compare::GreaterOrEqual.into(),
        other => return Err(call.err(format!("{other} on image tensors is not supported"))),
    })
}

/// A binary op, or a variadic one (`Sum`, `Max`) as a chain whose last link carries the
/// node's name.
fn binary_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let op = binary_op(call)?;
    let n = call.inputs.len();
    if n == 1 {
        let x = im.input_node(call, 0)?;
        return one(Val::Node(im.emit(
            call.naming(0),
            featx_graph::ops::Identity,
            &[x],
            None,
        )?));
    }
    let mut acc = im.input_node(call, 0)?;
    for i in 1..n {
        let b = im.input_node(call, i)?;
        let naming = if i + 1 == n {
            call.naming(0)
        } else {
            call.helper(&format!("partial_{i}"))
        };
        acc = im.emit(naming, op.clone(), &[acc, b], None)?;
    }
    one(Val::Node(acc))
}

fn unary_fold(call: &Call) -> Result<Vec<Const>> {
    let c = call.constant(0)?;
    let f: fn(f64) -> f64 = match call.node.op_type.as_str() {
        "Sqrt" => f64::sqrt,
        "Neg" => |x| -x,
        "Abs" => f64::abs,
        "Reciprocal" => |x| 1.0 / x,
        "Floor" => f64::floor,
        "Ceil" => f64::ceil,
        "Not" => |x| f64::from(u8::from(x == 0.0)),
        other => return Err(call.err(format!("no host arithmetic for {other}"))),
    };
    let r: Vec<f64> = values(c).into_iter().map(f).collect();
    folded(match c.dtype {
        Dtype::Float => Const::floats(c.shape.clone(), r.iter().map(|&v| v as f32).collect()),
        d => Const::ints(d, c.shape.clone(), r.iter().map(|&v| v as i64).collect()),
    })
}

/// The featx op of an activation or elementwise function.
fn unary_op(call: &Call) -> Result<Op> {
    let a = &call.attrs;
    Ok(match call.node.op_type.as_str() {
        "Relu" => Activation::Relu.into(),
        "Sigmoid" => Activation::Sigmoid.into(),
        "HardSwish" => Activation::Hardswish.into(),
        "HardSigmoid" => {
            let (alpha, beta) = (a.float("alpha", 0.2), a.float("beta", 0.5));
            // PyTorch's `Hardsigmoid` exports as alpha 1/6, beta 1/2.
            if (alpha - 1.0 / 6.0).abs() < 1e-7 && beta == 0.5 {
                Activation::Hardsigmoid.into()
            } else {
                Unary::HardSigmoid { alpha, beta }.into()
            }
        }
        "Gelu" => match a.string("approximate", "none").as_str() {
            "tanh" => Unary::GeluTanh.into(),
            _ => Activation::Gelu.into(),
        },
        "Clip" => {
            let (min, max) = if call.opset < 11 {
                (
                    a.has("min").then(|| a.float("min", f32::MIN)),
                    a.has("max").then(|| a.float("max", f32::MAX)),
                )
            } else {
                (
                    call.opt_constant(1)?.and_then(Const::scalar_f32),
                    call.opt_constant(2)?.and_then(Const::scalar_f32),
                )
            };
            match (min, max) {
                (Some(lo), Some(hi)) if lo == 0.0 && hi == 6.0 => Activation::Relu6.into(),
                (Some(0.0), None) => Activation::Relu.into(),
                _ => Unary::Clip { min, max }.into(),
            }
        }
        "LeakyRelu" => Unary::LeakyRelu {
            alpha: a.float("alpha", 0.01),
        }
        .into(),
        "Elu" => Unary::Elu {
            alpha: a.float("alpha", 1.0),
        }
        .into(),
        "Softplus" => Unary::Softplus.into(),
        "Mish" => Unary::Mish.into(),
        "Tanh" => Unary::Tanh.into(),
        "Erf" => Unary::Erf.into(),
        "Exp" => Unary::Exp.into(),
        "Log" => Unary::Log.into(),
        "Sin" => Unary::Sin.into(),
        "Cos" => Unary::Cos.into(),
        "Sqrt" => Unary::Sqrt.into(),
        "Neg" => Unary::Neg.into(),
        "Abs" => Unary::Abs.into(),
        "Reciprocal" => Unary::Reciprocal.into(),
        "Floor" => Unary::Floor.into(),
        "Ceil" => Unary::Ceil.into(),
        other => return Err(call.err(format!("{other} is not an elementwise function"))),
    })
}

fn unary_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let op = unary_op(call)?;
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
}

fn where_fold(call: &Call) -> Result<Vec<Const>> {
    let (c, x, y) = (call.constant(0)?, call.constant(1)?, call.constant(2)?);
    let out = broadcast(call, &broadcast(call, &c.shape, &x.shape)?, &y.shape)?;
    super::constant::host_size(call, &out)?;
    let (ic, ix, iy) = (
        broadcast_indices(&c.shape, &out),
        broadcast_indices(&x.shape, &out),
        broadcast_indices(&y.shape, &out),
    );
    let cond = values(c);
    let (vx, vy) = (values(x), values(y));
    let r: Vec<f64> = (0..ic.len())
        .map(|i| {
            if cond[ic[i]] != 0.0 {
                vx[ix[i]]
            } else {
                vy[iy[i]]
            }
        })
        .collect();
    let mut result = match x.dtype {
        Dtype::Float => Const::floats(out, r.iter().map(|&v| v as f32).collect()),
        d => Const::ints(d, out, r.iter().map(|&v| v as i64).collect()),
    };
    result.batch = (0..ic.len())
        .map(|i| {
            if cond[ic[i]] != 0.0 {
                x.batch[ix[i]]
            } else {
                y.batch[iy[i]]
            }
        })
        .collect();
    folded(result)
}

fn where_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let inputs = [
        im.input_node(call, 0)?,
        im.input_node(call, 1)?,
        im.input_node(call, 2)?,
    ];
    one(Val::Node(im.emit(call.naming(0), Where, &inputs, None)?))
}
