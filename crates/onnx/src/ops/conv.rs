//! Sliding windows: `Conv` (as featx's `Conv2d`, so BatchNorm folding and the CPU kernels
//! apply), `MaxPool`, `AveragePool` and the global poolings.

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use featx_graph::ops::{AdaptiveAvgPool2d, AvgPool2d, Conv2d, MaxPool2d, Reduce, ReduceKind};
use featx_graph::{Layer, Window2d};

use super::{Rule, one};
use crate::error::Result;
use crate::import::{Call, Importer, Val};

#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    Rule { op: "Conv", fold: None, import: Some(conv) },
    Rule { op: "MaxPool", fold: None, import: Some(max_pool) },
    Rule { op: "AveragePool", fold: None, import: Some(avg_pool) },
    Rule { op: "GlobalAveragePool", fold: None, import: Some(global_avg_pool) },
    Rule { op: "GlobalMaxPool", fold: None, import: Some(global_max_pool) },
];

/// The largest stride, dilation or padding featx takes: far beyond any image model, and small
/// enough that window arithmetic cannot overflow on a hostile file.
const MAX_WINDOW: i64 = 1 << 16;

/// Two values of a 2-D attribute (`strides`, `dilations`), default `default`.
fn pair(call: &Call, name: &str, default: usize) -> Result<[usize; 2]> {
    match call.attrs.ints(name) {
        None => Ok([default; 2]),
        Some(v) if v.len() == 2 && v.iter().all(|&x| (1..=MAX_WINDOW).contains(&x)) => {
            Ok([v[0] as usize, v[1] as usize])
        }
        Some(v) => Err(call.err(format!("{name} {v:?}: featx computes 2-D windows only"))),
    }
}

/// The window of a 2-D conv or pool over an `[h, w]` input, with ONNX's `pads` or `auto_pad`.
fn window(call: &Call, kernel: [usize; 2], input: [usize; 2]) -> Result<Window2d> {
    let stride = pair(call, "strides", 1)?;
    let dilation = pair(call, "dilations", 1)?;
    let padding = match call.attrs.string("auto_pad", "NOTSET").as_str() {
        "NOTSET" => match call.attrs.ints("pads") {
            None => [(0, 0); 2],
            Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => [
                (p[0] as usize, p[2] as usize),
                (p[1] as usize, p[3] as usize),
            ],
            Some(p) => return Err(call.err(format!("pads {p:?}: expected 4 non-negative values"))),
        },
        "VALID" => [(0, 0); 2],
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            let pad = |i: usize| {
                let out = input[i].div_ceil(stride[i]);
                let span = kernel[i].saturating_sub(1) * dilation[i] + 1;
                let total = (out.saturating_sub(1) * stride[i] + span).saturating_sub(input[i]);
                let small = total / 2;
                if mode == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                }
            };
            [pad(0), pad(1)]
        }
        other => return Err(call.err(format!("auto_pad '{other}' is not supported"))),
    };
    Ok(Window2d {
        kernel,
        stride,
        padding,
        dilation,
    })
}

fn spatial(im: &Importer, call: &Call) -> Result<[usize; 2]> {
    match im.shape(call.input(0)?).as_slice() {
        [_, _, h, w] => Ok([*h, *w]),
        other => Err(call.err(format!("expected an [N, C, H, W] input, got {other:?}"))),
    }
}

fn conv(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let w = call.constant(1)?;
    let [o, i, kh, kw] = <[usize; 4]>::try_from(w.shape.as_slice()).map_err(|_| {
        call.err(format!(
            "weight shape {:?}: featx computes 2-D convolutions only",
            w.shape
        ))
    })?;
    let groups = call.attrs.int("group", 1).max(1) as usize;
    if o == 0 || groups > o || o % groups != 0 || [kh, kw].iter().any(|&k| k as i64 > MAX_WINDOW) {
        return Err(call.err(format!(
            "{o} output channels do not split into {groups} groups"
        )));
    }
    let window = window(call, [kh, kw], spatial(im, call)?)?;
    let bias = match call.opt_constant(2)? {
        Some(b) if b.len() == o => Some(Param::from_tensor(im.tensor(b.as_floats(), [o]))),
        Some(b) => return Err(call.err(format!("bias of shape {:?} for {o} channels", b.shape))),
        None => None,
    };
    let [(top, bottom), (left, right)] = window.padding;
    let module = burn::nn::conv::Conv2d {
        weight: Param::from_tensor(im.tensor(w.as_floats(), [o, i, kh, kw])),
        bias,
        stride: window.stride,
        kernel_size: [kh, kw],
        dilation: window.dilation,
        groups,
        padding: PaddingConfig2d::Explicit(top, left, bottom, right),
    };
    let op = Conv2d::of(&module);
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(
        call.naming(0),
        op,
        &[x],
        Some(Layer::Conv2d(module)),
    )?))
}

fn pool_window(im: &Importer, call: &Call) -> Result<Window2d> {
    let kernel = call
        .attrs
        .ints("kernel_shape")
        .filter(|k| k.len() == 2 && k.iter().all(|&x| (1..=MAX_WINDOW).contains(&x)))
        .ok_or_else(|| call.err("kernel_shape must be two positive sizes"))?;
    window(
        call,
        [kernel[0] as usize, kernel[1] as usize],
        spatial(im, call)?,
    )
}

fn max_pool(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    if call.node.output.get(1).is_some_and(|o| !o.is_empty()) {
        return Err(call.err("the Indices output is not supported"));
    }
    let op = MaxPool2d {
        window: pool_window(im, call)?,
        ceil_mode: call.attrs.int("ceil_mode", 0) != 0,
    };
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
}

fn avg_pool(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let op = AvgPool2d {
        window: pool_window(im, call)?,
        ceil_mode: call.attrs.int("ceil_mode", 0) != 0,
        count_include_pad: call.attrs.int("count_include_pad", 0) != 0,
    };
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
}

fn global_avg_pool(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    spatial(im, call)?;
    let x = im.input_node(call, 0)?;
    let op = AdaptiveAvgPool2d { output: [1, 1] };
    one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
}

fn global_max_pool(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    spatial(im, call)?;
    let x = im.input_node(call, 0)?;
    let op = Reduce {
        kind: ReduceKind::Max,
        axes: vec![2, 3],
        keepdims: true,
    };
    one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
}
