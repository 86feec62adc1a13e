//! What each ONNX op becomes, one rule per op type, kept beside the ops of its kind: `fold`
//! computes it on the host when every input is known at load (shape arithmetic, constants),
//! `import` records featx nodes for it otherwise.

mod constant;
mod conv;
mod elementwise;
mod linear;
mod norm;
mod reduce;
mod resize;
mod shape;

use crate::constant::Const;
use crate::error::Result;
use crate::import::{Call, Importer, Val};

/// Computes an op on values known at load.
pub type Fold = fn(&Call) -> Result<Vec<Const>>;

/// Records featx nodes computing an op; returns its outputs in order.
pub type Import = fn(&mut Importer, &Call) -> Result<Vec<Val>>;

/// How one ONNX op type is imported.
pub struct Rule {
    /// The op type (`Conv`).
    pub op: &'static str,
    /// Its host computation, for ops that shape arithmetic uses.
    pub fold: Option<Fold>,
    /// Its featx nodes.
    pub import: Option<Import>,
}

/// Every rule, by family.
const FAMILIES: &[&[Rule]] = &[
    constant::RULES,
    shape::RULES,
    elementwise::RULES,
    conv::RULES,
    norm::RULES,
    linear::RULES,
    reduce::RULES,
    resize::RULES,
];

/// The rule of `op`.
pub fn find(op: &str) -> Option<&'static Rule> {
    FAMILIES.iter().flat_map(|f| f.iter()).find(|r| r.op == op)
}

/// Every op type with a rule, sorted.
pub fn supported() -> Vec<&'static str> {
    let mut ops: Vec<&'static str> = FAMILIES
        .iter()
        .flat_map(|f| f.iter())
        .map(|r| r.op)
        .collect();
    ops.sort_unstable();
    ops
}

/// `axis` (negative counts from the end) as an index into a rank-`rank` shape.
pub fn axis(call: &Call, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(call.err(format!("axis {axis} is out of range for rank {rank}")))
    }
}

/// One output.
pub fn one(v: Val) -> Result<Vec<Val>> {
    Ok(vec![v])
}

/// A fold with one output.
pub fn folded(c: Const) -> Result<Vec<Const>> {
    Ok(vec![c])
}

/// The axes an op takes as an attribute (older opsets) or as input `input` (newer), if any.
pub fn axes_of(call: &Call, input: usize) -> Result<Option<Vec<i64>>> {
    if let Some(axes) = call.attrs.ints("axes") {
        return Ok(Some(axes));
    }
    Ok(call.opt_constant(input)?.map(Const::as_ints))
}
