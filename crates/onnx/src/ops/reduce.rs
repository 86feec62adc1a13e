//! Reductions (`ReduceMean`, `ReduceSum`, ... with axes as an attribute or, from opset 18, an
//! input) and `Softmax` / `LogSoftmax`.

use featx_graph::ops::{Reduce, ReduceKind, Softmax};

use super::{Rule, axes_of, axis, one};
use crate::error::Result;
use crate::import::{Call, Importer, Val};

#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    Rule { op: "ReduceMean", fold: None, import: Some(reduce) },
    Rule { op: "ReduceSum", fold: None, import: Some(reduce) },
    Rule { op: "ReduceMax", fold: None, import: Some(reduce) },
    Rule { op: "ReduceMin", fold: None, import: Some(reduce) },
    Rule { op: "ReduceProd", fold: None, import: Some(reduce) },
    Rule { op: "ReduceL1", fold: None, import: Some(reduce) },
    Rule { op: "ReduceL2", fold: None, import: Some(reduce) },
    Rule { op: "ReduceSumSquare", fold: None, import: Some(reduce) },
    Rule { op: "ReduceLogSumExp", fold: None, import: Some(reduce) },
    Rule { op: "Softmax", fold: None, import: Some(softmax) },
    Rule { op: "LogSoftmax", fold: None, import: Some(softmax) },
];

fn reduce(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let kind = match call.node.op_type.as_str() {
        "ReduceMean" => ReduceKind::Mean,
        "ReduceSum" => ReduceKind::Sum,
        "ReduceMax" => ReduceKind::Max,
        "ReduceMin" => ReduceKind::Min,
        "ReduceProd" => ReduceKind::Prod,
        "ReduceL1" => ReduceKind::L1,
        "ReduceL2" => ReduceKind::L2,
        "ReduceSumSquare" => ReduceKind::SumSquare,
        _ => ReduceKind::LogSumExp,
    };
    let rank = im.shape(call.input(0)?).len();
    let axes: Vec<usize> = match axes_of(call, 1)? {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|&x| axis(call, x, rank))
            .collect::<Result<_>>()?,
        // No axes: every axis, unless `noop_with_empty_axes` asks for the identity.
        _ if call.attrs.int("noop_with_empty_axes", 0) != 0 => {
            let x = im.input_node(call, 0)?;
            return one(Val::Node(im.emit(
                call.naming(0),
                featx_graph::ops::Identity,
                &[x],
                None,
            )?));
        }
        _ => (0..rank).collect(),
    };
    let op = Reduce {
        kind,
        axes,
        keepdims: call.attrs.int("keepdims", 1) != 0,
    };
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
}

fn softmax(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let rank = im.shape(call.input(0)?).len();
    let default = if call.opset < 13 { 1 } else { -1 };
    let a = axis(call, call.attrs.int("axis", default), rank)?;
    // Before opset 13 the softmax is over everything from `axis` on, flattened: the same as
    // over the last axis when `axis` is the last one.
    if call.opset < 13 && a + 1 != rank {
        return Err(call.err("a pre-opset-13 softmax over several axes is not supported"));
    }
    let op = Softmax {
        axis: a,
        log: call.node.op_type == "LogSoftmax",
    };
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
}
