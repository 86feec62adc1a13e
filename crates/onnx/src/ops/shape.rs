//! Ops that move elements without computing on them: `Reshape`, `Flatten`, `Squeeze`,
//! `Unsqueeze`, `Transpose`, `Concat`, `Split`, `Slice`, `Gather`, `Expand`, `Pad`. Each folds
//! on constants (as an index map, [`Const::take`]) and imports as the featx op that does the
//! same on tensors.

use featx_graph::ops::{Cat, Expand, Gather, Pad, PadMode, Permute, Reshape, Select, Slice};

use super::{Rule, axes_of, axis, folded, one};
use crate::constant::{Const, broadcast_indices, strides};
use crate::error::Result;
use crate::import::{Call, Importer, Val};

#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    Rule { op: "Reshape", fold: Some(reshape_fold), import: Some(reshape_import) },
    Rule { op: "Flatten", fold: Some(reshape_fold), import: Some(reshape_import) },
    Rule { op: "Squeeze", fold: Some(reshape_fold), import: Some(reshape_import) },
    Rule { op: "Unsqueeze", fold: Some(reshape_fold), import: Some(reshape_import) },
    Rule { op: "Transpose", fold: Some(transpose_fold), import: Some(transpose_import) },
    Rule { op: "Concat", fold: Some(concat_fold), import: Some(concat_import) },
    Rule { op: "Split", fold: Some(split_fold), import: Some(split_import) },
    Rule { op: "Slice", fold: Some(slice_fold), import: Some(slice_import) },
    Rule { op: "Gather", fold: Some(gather_fold), import: Some(gather_import) },
    Rule { op: "Expand", fold: Some(expand_fold), import: Some(expand_import) },
    Rule { op: "Pad", fold: None, import: Some(pad_import) },
    Rule { op: "ScatterND", fold: Some(scatter_nd_fold), import: None },
];

/// The output shape of the reshaping ops, from the input's shape.
fn reshaped(call: &Call, input: &[usize]) -> Result<Vec<usize>> {
    let rank = input.len();
    let numel: usize = input.iter().product();
    match call.node.op_type.as_str() {
        "Flatten" => {
            let a = call.attrs.int("axis", 1);
            let a = if a < 0 { a + rank as i64 } else { a };
            if !(0..=rank as i64).contains(&a) {
                return Err(call.err(format!("axis {a} out of range for rank {rank}")));
            }
            let outer: usize = input[..a as usize].iter().product();
            Ok(vec![outer, numel / outer.max(1)])
        }
        "Squeeze" => {
            let axes = axes_of(call, 1)?;
            let drop: Vec<usize> = match axes {
                Some(axes) => axes
                    .iter()
                    .map(|&a| axis(call, a, rank))
                    .collect::<Result<_>>()?,
                None => (0..rank).filter(|&i| input[i] == 1).collect(),
            };
            if let Some(&d) = drop.iter().find(|&&d| input[d] != 1) {
                return Err(call.err(format!("cannot squeeze axis {d} of size {}", input[d])));
            }
            Ok((0..rank)
                .filter(|i| !drop.contains(i))
                .map(|i| input[i])
                .collect())
        }
        "Unsqueeze" => {
            let axes = axes_of(call, 1)?.ok_or_else(|| call.err("no axes"))?;
            let out_rank = rank + axes.len();
            let mut at: Vec<usize> = axes
                .iter()
                .map(|&a| axis(call, a, out_rank))
                .collect::<Result<_>>()?;
            at.sort_unstable();
            let mut dims = input.iter();
            Ok((0..out_rank)
                .map(|i| {
                    if at.contains(&i) {
                        1
                    } else {
                        dims.next().copied().unwrap_or(1)
                    }
                })
                .collect())
        }
        _ => {
            let target = call.constant(1)?.as_ints();
            let allow_zero = call.attrs.int("allowzero", 0) != 0;
            let mut out: Vec<i64> = target
                .iter()
                .enumerate()
                .map(|(i, &d)| match (d, allow_zero) {
                    (0, false) => input.get(i).map_or(0, |&x| x as i64),
                    _ => d,
                })
                .collect();
            let known: i64 = out
                .iter()
                .filter(|&&d| d >= 0)
                .try_fold(1i64, |a, &d| a.checked_mul(d))
                .ok_or_else(|| call.err(format!("target shape {target:?} is too large")))?;
            let infer = out.iter().filter(|&&d| d == -1).count();
            if infer > 1 || out.iter().any(|&d| d < -1) {
                return Err(call.err(format!("invalid target shape {target:?}")));
            }
            if infer == 1 {
                if known == 0 || numel as i64 % known != 0 {
                    return Err(call.err(format!("cannot reshape {input:?} to {target:?}")));
                }
                for d in &mut out {
                    if *d == -1 {
                        *d = numel as i64 / known;
                    }
                }
            }
            let out: Vec<usize> = out.iter().map(|&d| d as usize).collect();
            if out.iter().product::<usize>() != numel {
                return Err(call.err(format!("cannot reshape {input:?} to {target:?}")));
            }
            Ok(out)
        }
    }
}

fn reshape_fold(call: &Call) -> Result<Vec<Const>> {
    let c = call.constant(0)?;
    let shape = reshaped(call, &c.shape)?;
    folded(c.clone().reshaped(shape))
}

fn reshape_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let x = im.input_node(call, 0)?;
    let shape = reshaped(call, &im.shape(call.input(0)?))?;
    let op = Reshape {
        shape: shape.iter().map(|&d| Some(d as i64)).collect(),
    };
    one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
}

fn permutation(call: &Call, rank: usize) -> Result<Vec<usize>> {
    match call.attrs.ints("perm") {
        None => Ok((0..rank).rev().collect()),
        Some(p) => {
            let p: Vec<usize> = p
                .iter()
                .map(|&a| axis(call, a, rank))
                .collect::<Result<_>>()?;
            let mut sorted = p.clone();
            sorted.sort_unstable();
            if sorted != (0..rank).collect::<Vec<_>>() {
                return Err(call.err(format!("perm {p:?} is not a permutation of rank {rank}")));
            }
            Ok(p)
        }
    }
}

fn transpose_fold(call: &Call) -> Result<Vec<Const>> {
    let c = call.constant(0)?;
    let perm = permutation(call, c.shape.len())?;
    let out: Vec<usize> = perm.iter().map(|&p| c.shape[p]).collect();
    let st = strides(&c.shape);
    let ost = strides(&out);
    let n: usize = out.iter().product();
    let idx: Vec<usize> = (0..n)
        .map(|flat| {
            perm.iter()
                .enumerate()
                .map(|(d, &p)| (flat / ost[d]) % out[d] * st[p])
                .sum()
        })
        .collect();
    folded(c.take(&idx, out))
}

fn transpose_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let rank = im.shape(call.input(0)?).len();
    let dims = permutation(call, rank)?;
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(
        call.naming(0),
        Permute { dims },
        &[x],
        None,
    )?))
}

fn concat_fold(call: &Call) -> Result<Vec<Const>> {
    let parts: Vec<Const> = (0..call.inputs.len())
        .map(|i| call.constant(i).cloned())
        .collect::<Result<_>>()?;
    let rank = parts.first().map_or(0, |p| p.shape.len());
    let a = axis(call, call.attrs.int("axis", 0), rank)?;
    let parts: Vec<Const> = parts
        .into_iter()
        .filter(|p| !p.is_empty() || p.shape.len() != 1)
        .collect();
    Const::concat(&parts, a)
        .map(|c| vec![c])
        .ok_or_else(|| call.err("inputs of different ranks"))
}

fn concat_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let rank = im.shape(call.input(0)?).len();
    let dim = axis(call, call.attrs.int("axis", 0), rank)?;
    let mut inputs = Vec::new();
    for i in 0..call.inputs.len() {
        inputs.push(im.input_node(call, i)?);
    }
    one(Val::Node(im.emit(
        call.naming(0),
        Cat { dim },
        &inputs,
        None,
    )?))
}

/// The sizes of `Split`'s outputs along `axis` of size `size`.
fn split_sizes(call: &Call, size: usize) -> Result<Vec<usize>> {
    let given = match call.attrs.ints("split") {
        Some(s) => Some(s),
        None => call.opt_constant(1)?.map(Const::as_ints),
    };
    match given {
        Some(s) => {
            let s: Vec<usize> = s.iter().map(|&v| v.max(0) as usize).collect();
            if s.iter().sum::<usize>() != size {
                return Err(call.err(format!("split {s:?} does not add up to {size}")));
            }
            Ok(s)
        }
        None => {
            let n = call
                .attrs
                .int("num_outputs", call.node.output.len() as i64)
                .max(1) as usize;
            let chunk = size.div_ceil(n);
            Ok((0..n)
                .map(|i| chunk.min(size.saturating_sub(i * chunk)))
                .collect())
        }
    }
}

fn split_fold(call: &Call) -> Result<Vec<Const>> {
    let c = call.constant(0)?;
    let a = axis(call, call.attrs.int("axis", 0), c.shape.len())?;
    let mut start = 0;
    let mut out = Vec::new();
    for count in split_sizes(call, c.shape[a])? {
        out.push(slice_const(
            c,
            &[AxisSlice {
                axis: a,
                start,
                step: 1,
                count,
            }],
        ));
        start += count;
    }
    Ok(out)
}

fn split_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let shape = im.shape(call.input(0)?);
    let a = axis(call, call.attrs.int("axis", 0), shape.len())?;
    let x = im.input_node(call, 0)?;
    let mut start = 0;
    let mut out = Vec::new();
    for (k, size) in split_sizes(call, shape[a])?.into_iter().enumerate() {
        let op = Slice {
            axes: vec![a],
            starts: vec![start],
            ends: vec![start + size],
            steps: vec![1],
        };
        out.push(Val::Node(im.emit(call.naming(k), op, &[x], None)?));
        start += size;
    }
    Ok(out)
}

/// One axis of a `Slice`: `count` elements from `start`, `step` apart (negative: backwards).
#[derive(Debug, Clone, Copy)]
struct AxisSlice {
    axis: usize,
    start: usize,
    step: i64,
    count: usize,
}

impl AxisSlice {
    fn index(&self, i: usize) -> usize {
        (self.start as i64 + i as i64 * self.step) as usize
    }
}

/// A `Slice`'s axes, clamped into the shape as ONNX clamps them.
fn slice_params(call: &Call, shape: &[usize]) -> Result<Vec<AxisSlice>> {
    let (starts, ends, axes, steps) = if call.opset < 10 {
        let starts = call.attrs.ints("starts").unwrap_or_default();
        let ends = call.attrs.ints("ends").unwrap_or_default();
        let axes = call.attrs.ints("axes");
        (starts, ends, axes, None)
    } else {
        (
            call.constant(1)?.as_ints(),
            call.constant(2)?.as_ints(),
            call.opt_constant(3)?.map(Const::as_ints),
            call.opt_constant(4)?.map(Const::as_ints),
        )
    };
    let axes: Vec<i64> = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps: Vec<i64> = steps.unwrap_or_else(|| vec![1; starts.len()]);
    let rank = shape.len();
    let mut out = Vec::with_capacity(starts.len());
    for (i, &first) in starts.iter().enumerate() {
        let axis = axis(call, *axes.get(i).unwrap_or(&0), rank)?;
        let step = *steps.get(i).unwrap_or(&1);
        let d = shape[axis] as i64;
        let wrap = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let end = *ends.get(i).unwrap_or(&i64::MAX);
        let (start, count) = match step {
            0 => return Err(call.err("a slice step of 0")),
            _ if d == 0 => (0, 0),
            s if s > 0 => {
                let (b, e) = (wrap(first).clamp(0, d), wrap(end).clamp(0, d));
                (b, (e - b).max(0).saturating_add(s - 1) / s)
            }
            s => {
                let (b, e) = (wrap(first).clamp(0, d - 1), wrap(end).clamp(-1, d - 1));
                (b, (b - e).max(0).saturating_add(-s - 1) / -s)
            }
        };
        out.push(AxisSlice {
            axis,
            start: start.max(0) as usize,
            step,
            count: count.max(0) as usize,
        });
    }
    Ok(out)
}

/// The elements of `c` along each axis of `axes`.
fn slice_const(c: &Const, axes: &[AxisSlice]) -> Const {
    let mut out = c.shape.clone();
    for a in axes {
        out[a.axis] = a.count;
    }
    let st = strides(&c.shape);
    let ost = strides(&out);
    let n: usize = out.iter().product();
    let idx: Vec<usize> = (0..n)
        .map(|flat| {
            (0..out.len())
                .map(|d| {
                    let i = (flat / ost[d]) % out[d];
                    let i = axes.iter().find(|a| a.axis == d).map_or(i, |a| a.index(i));
                    i * st[d]
                })
                .sum()
        })
        .collect();
    c.take(&idx, out)
}

fn slice_fold(call: &Call) -> Result<Vec<Const>> {
    let c = call.constant(0)?;
    let axes = slice_params(call, &c.shape)?;
    folded(slice_const(c, &axes))
}

/// A slice of a tensor: forward steps are one `Slice`; each backward axis a `Gather` of its
/// indices in order.
fn slice_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let shape = im.shape(call.input(0)?);
    let axes = slice_params(call, &shape)?;
    if let Some(a) = axes.iter().find(|a| a.count == 0) {
        return Err(call.err(format!("the slice of axis {} is empty", a.axis)));
    }
    let (forward, backward): (Vec<AxisSlice>, Vec<AxisSlice>) =
        axes.iter().partition(|a| a.step > 0);
    let mut steps: Vec<featx_graph::Op> = Vec::new();
    if !forward.is_empty() {
        steps.push(
            Slice {
                axes: forward.iter().map(|a| a.axis).collect(),
                starts: forward.iter().map(|a| a.start).collect(),
                ends: forward.iter().map(|a| a.index(a.count - 1) + 1).collect(),
                steps: forward.iter().map(|a| a.step as usize).collect(),
            }
            .into(),
        );
    }
    for a in &backward {
        steps.push(
            Gather {
                axis: a.axis,
                indices: (0..a.count).map(|i| a.index(i)).collect(),
                indices_shape: vec![a.count],
            }
            .into(),
        );
    }
    let mut x = im.input_node(call, 0)?;
    let last = steps.len().saturating_sub(1);
    for (k, op) in steps.into_iter().enumerate() {
        let naming = if k == last {
            call.naming(0)
        } else {
            call.helper(&format!("step_{k}"))
        };
        x = im.emit(naming, op, &[x], None)?;
    }
    one(Val::Node(x))
}

/// `Gather`'s indices, made non-negative.
fn gather_indices(call: &Call, size: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let idx = call.constant(1)?;
    let values = idx
        .as_ints()
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + size as i64 } else { i };
            if (0..size as i64).contains(&j) {
                Ok(j as usize)
            } else {
                Err(call.err(format!("index {i} out of range for size {size}")))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((values, idx.shape.clone()))
}

fn gather_fold(call: &Call) -> Result<Vec<Const>> {
    let c = call.constant(0)?;
    let a = axis(call, call.attrs.int("axis", 0), c.shape.len())?;
    let (indices, ishape) = gather_indices(call, c.shape[a])?;
    let outer: usize = c.shape[..a].iter().product();
    let inner: usize = c.shape[a + 1..].iter().product();
    super::constant::host_size(call, &[outer, indices.len(), inner])?;
    let mut idx = Vec::new();
    for o in 0..outer {
        for &i in &indices {
            for k in 0..inner {
                idx.push((o * c.shape[a] + i) * inner + k);
            }
        }
    }
    let out: Vec<usize> = c.shape[..a]
        .iter()
        .chain(&ishape)
        .chain(&c.shape[a + 1..])
        .copied()
        .collect();
    folded(c.take(&idx, out))
}

fn gather_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let shape = im.shape(call.input(0)?);
    let a = axis(call, call.attrs.int("axis", 0), shape.len())?;
    let (indices, ishape) = gather_indices(call, shape[a])?;
    let x = im.input_node(call, 0)?;
    let id = if ishape.is_empty() {
        im.emit(
            call.naming(0),
            Select {
                dim: a,
                index: indices[0],
            },
            &[x],
            None,
        )?
    } else {
        let op = Gather {
            axis: a,
            indices,
            indices_shape: ishape,
        };
        im.emit(call.naming(0), op, &[x], None)?
    };
    one(Val::Node(id))
}

/// ONNX `Expand`'s output: the input and the target shape broadcast together.
fn expanded(call: &Call, input: &[usize]) -> Result<Vec<usize>> {
    let target: Vec<usize> = call
        .constant(1)?
        .as_ints()
        .iter()
        .map(|&d| d.max(0) as usize)
        .collect();
    let rank = input.len().max(target.len());
    let at = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (at(input, i), at(&target, i)) {
            (a, b) if a == b || b == 1 => Ok(a),
            (1, b) => Ok(b),
            (a, b) => Err(call.err(format!("cannot expand size {a} to {b}"))),
        })
        .collect()
}

fn expand_fold(call: &Call) -> Result<Vec<Const>> {
    let c = call.constant(0)?;
    let out = expanded(call, &c.shape)?;
    super::constant::host_size(call, &out)?;
    folded(c.take(&broadcast_indices(&c.shape, &out), out))
}

fn expand_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let out = expanded(call, &im.shape(call.input(0)?))?;
    let x = im.input_node(call, 0)?;
    let op = Expand {
        sizes: out.iter().map(|&d| Some(d as i64)).collect(),
    };
    one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
}

fn pad_import(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let shape = im.shape(call.input(0)?);
    let rank = shape.len();
    let raw = match call.attrs.ints("pads") {
        Some(p) => p,
        None => call.constant(1)?.as_ints(),
    };
    let value = match call.attrs.has("value") {
        true => call.attrs.float("value", 0.0),
        false => call
            .opt_constant(2)?
            .and_then(Const::scalar_f32)
            .unwrap_or(0.0),
    };
    let axes: Vec<usize> = match call.opt_constant(3)? {
        Some(a) => a
            .as_ints()
            .iter()
            .map(|&x| axis(call, x, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    if raw.len() != 2 * axes.len() || raw.iter().any(|&p| p < 0) {
        return Err(call.err(format!(
            "pads {raw:?}: expected {} non-negative values",
            2 * axes.len()
        )));
    }
    let mut pads = vec![(0usize, 0usize); rank];
    for (i, &a) in axes.iter().enumerate() {
        pads[a] = (raw[i] as usize, raw[i + axes.len()] as usize);
    }
    let mode = match call.attrs.string("mode", "constant").as_str() {
        "constant" => PadMode::Constant(value),
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        other => return Err(call.err(format!("pad mode '{other}' is not supported"))),
    };
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(
        call.naming(0),
        Pad { pads, mode },
        &[x],
        None,
    )?))
}

/// `ScatterND` on constants (Swin's attention mask is built this way): `data` with the slices
/// that `indices` name replaced by `updates`.
fn scatter_nd_fold(call: &Call) -> Result<Vec<Const>> {
    let (data, indices, updates) = (call.constant(0)?, call.constant(1)?, call.constant(2)?);
    if call.attrs.string("reduction", "none") != "none" {
        return Err(call.err("only reduction 'none' is supported"));
    }
    let k = *indices
        .shape
        .last()
        .ok_or_else(|| call.err("scalar indices"))?;
    if k > data.shape.len() {
        return Err(call.err(format!(
            "indices of depth {k} into rank {}",
            data.shape.len()
        )));
    }
    let slice: usize = data.shape[k..].iter().product();
    let st = strides(&data.shape);
    let idx = indices.as_ints();
    let count = idx.len() / k.max(1);
    if updates.len() != count * slice {
        return Err(call.err(format!(
            "updates of shape {:?} for {count} slices of {slice}",
            updates.shape
        )));
    }
    // Flat positions: each element of `data` takes itself, or the update that lands on it.
    let mut from: Vec<(bool, usize)> = (0..data.len()).map(|i| (false, i)).collect();
    for (n, tuple) in idx.chunks(k.max(1)).enumerate().take(count) {
        let mut base = 0usize;
        for (d, &i) in tuple.iter().enumerate().take(k) {
            let size = data.shape[d] as i64;
            let i = if i < 0 { i + size } else { i };
            if !(0..size).contains(&i) {
                return Err(call.err(format!("index {i} out of range for size {size}")));
            }
            base += i as usize * st[d];
        }
        for j in 0..slice {
            from[base + j] = (true, n * slice + j);
        }
    }
    let pick = |d: &Const, u: &Const| -> crate::constant::Data {
        use crate::constant::Data;
        match (&d.data, u.cast(d.dtype).data) {
            (Data::F(dv), Data::F(uv)) => Data::F(
                from.iter()
                    .map(|&(up, i)| if up { uv[i] } else { dv[i] })
                    .collect(),
            ),
            (Data::I(dv), Data::I(uv)) => Data::I(
                from.iter()
                    .map(|&(up, i)| if up { uv[i] } else { dv[i] })
                    .collect(),
            ),
            (dv, _) => dv.clone(),
        }
    };
    let mut out = data.clone();
    out.data = pick(data, updates);
    folded(out)
}
