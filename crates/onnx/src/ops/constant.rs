//! Values that exist before any input: `Constant`, `ConstantOfShape`, `Range`, the input's
//! `Shape` and `Size`, and the type-only ops `Cast`, `CastLike`, `Identity`, `Dropout`.

use featx_graph::ops::Identity;

use super::{Rule, folded, one};
use crate::constant::{Const, Dtype};
use crate::error::Result;
use crate::file::{dtype_of, read_tensor};
use crate::import::{Call, Importer, Val};

#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    Rule { op: "Constant", fold: Some(constant), import: None },
    Rule { op: "ConstantOfShape", fold: Some(constant_of_shape), import: None },
    Rule { op: "Range", fold: Some(range), import: None },
    Rule { op: "Shape", fold: Some(shape_fold), import: Some(shape_import) },
    Rule { op: "Size", fold: Some(size_fold), import: Some(size_import) },
    Rule { op: "Cast", fold: Some(cast), import: Some(cast_import) },
    Rule { op: "CastLike", fold: Some(cast_like), import: Some(cast_import) },
    Rule { op: "Identity", fold: Some(identity), import: Some(identity_import) },
    Rule { op: "Dropout", fold: Some(identity), import: Some(identity_import) },
];

fn constant(call: &Call) -> Result<Vec<Const>> {
    let a = &call.attrs;
    if let Some(t) = a.tensor("value") {
        let folder = std::path::Path::new("/nonexistent-featx-folder");
        return folded(read_tensor(t, folder)?);
    }
    if a.has("value_float") {
        return folded(Const::floats(vec![], vec![a.float("value_float", 0.0)]));
    }
    if a.has("value_int") {
        return folded(Const::ints(Dtype::Int, vec![], vec![a.int("value_int", 0)]));
    }
    if let Some(v) = a.ints("value_ints") {
        return folded(Const::vector(v));
    }
    if let Some(attr) = a.0.iter().find(|x| x.name == "value_floats") {
        return folded(Const::floats(vec![attr.floats.len()], attr.floats.clone()));
    }
    Err(call
        .err("a Constant without a numeric value (strings and sparse tensors are not supported)"))
}

fn constant_of_shape(call: &Call) -> Result<Vec<Const>> {
    let shape: Vec<usize> = call
        .constant(0)?
        .as_ints()
        .iter()
        .map(|&d| d.max(0) as usize)
        .collect();
    let n = host_size(call, &shape)?;
    let value = match call.attrs.tensor("value") {
        Some(t) => read_tensor(t, std::path::Path::new("/nonexistent-featx-folder"))?,
        None => Const::floats(vec![1], vec![0.0]),
    };
    Ok(vec![match value.dtype {
        Dtype::Float => Const::floats(
            shape,
            vec![value.as_floats().first().copied().unwrap_or(0.0); n],
        ),
        d => Const::ints(
            d,
            shape,
            vec![value.as_ints().first().copied().unwrap_or(0); n],
        ),
    }])
}

/// The element count of a constant computed at load, or an error when it is beyond what
/// shape arithmetic ever needs (a corrupt or hostile file).
pub fn host_size(call: &Call, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_HOST_ELEMENTS)
        .ok_or_else(|| {
            call.err(format!(
                "a constant of shape {shape:?} is too large to compute at load"
            ))
        })
}

/// The most elements a constant computed at load may have.
const MAX_HOST_ELEMENTS: usize = 1 << 24;

fn range(call: &Call) -> Result<Vec<Const>> {
    let (start, limit, delta) = (call.constant(0)?, call.constant(1)?, call.constant(2)?);
    let [s, l, d] =
        [start, limit, delta].map(|c| c.as_floats().first().copied().unwrap_or(0.0) as f64);
    if d == 0.0 {
        return Err(call.err("Range with a zero delta"));
    }
    let n = ((l - s) / d).ceil().max(0.0) as usize;
    if n > 1 << 24 {
        return Err(call.err(format!("Range of {n} elements")));
    }
    let values: Vec<f64> = (0..n).map(|i| s + d * i as f64).collect();
    folded(match start.dtype {
        Dtype::Float => Const::floats(vec![n], values.iter().map(|&v| v as f32).collect()),
        t => Const::ints(t, vec![n], values.iter().map(|&v| v as i64).collect()),
    })
}

/// `Shape`'s `start`/`end` (opset 15) applied to a shape.
fn shape_of(call: &Call, shape: &[usize]) -> Const {
    let r = shape.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(call.attrs.int("start", 0));
    let end = clamp(call.attrs.int("end", r));
    let dims: Vec<i64> = shape[start..end.max(start)]
        .iter()
        .map(|&d| d as i64)
        .collect();
    Const::vector(dims)
}

fn shape_fold(call: &Call) -> Result<Vec<Const>> {
    folded(shape_of(call, &call.constant(0)?.shape))
}

fn shape_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let shape = im.shape(call.input(0)?);
    one(Val::Const(shape_of(call, &shape)))
}

fn size_fold(call: &Call) -> Result<Vec<Const>> {
    folded(Const::ints(
        Dtype::Int,
        vec![],
        vec![call.constant(0)?.len() as i64],
    ))
}

fn size_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let n: usize = im.shape(call.input(0)?).iter().product();
    one(Val::Const(Const::ints(Dtype::Int, vec![], vec![n as i64])))
}

fn cast_target(call: &Call) -> Result<Dtype> {
    let code = call.attrs.int("to", 1) as i32;
    dtype_of(code).ok_or_else(|| call.err(format!("cast to unsupported type {code}")))
}

fn cast(call: &Call) -> Result<Vec<Const>> {
    folded(call.constant(0)?.cast(cast_target(call)?))
}

fn cast_like(call: &Call) -> Result<Vec<Const>> {
    let target = call.constant(1)?.dtype;
    folded(call.constant(0)?.cast(target))
}

/// A cast of an image tensor: float to float is the identity (featx computes in one float
/// type); to integers or booleans it is not supported.
fn cast_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let target = match call.node.op_type.as_str() {
        "CastLike" => match call.input(1)? {
            Val::Const(c) => c.dtype,
            Val::Node(_) => Dtype::Float,
        },
        _ => cast_target(call)?,
    };
    if target != Dtype::Float {
        return Err(call.err("casts an image tensor to an integer or boolean type"));
    }
    identity_import(im, call)
}

fn identity(call: &Call) -> Result<Vec<Const>> {
    folded(call.constant(0)?.clone())
}

fn identity_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(call.naming(0), Identity, &[x], None)?))
}
