//! `Resize` (and its predecessor `Upsample`) of feature maps: the output size from `sizes` or
//! `scales`, with ONNX's coordinate transforms and rounding, computed by featx's `Resize`.

use featx_graph::ops::{CoordinateTransform, NearestRounding, Resize, ResizeMode};

use super::{Rule, one};
use crate::error::Result;
use crate::import::{Call, Importer, Val};

#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    Rule { op: "Resize", fold: None, import: Some(resize) },
    Rule { op: "Upsample", fold: None, import: Some(resize) },
];

fn resize(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let shape = im.shape(call.input(0)?);
    let [n, c, h, w] = <[usize; 4]>::try_from(shape.as_slice())
        .map_err(|_| call.err(format!("expected an [N, C, H, W] input, got {shape:?}")))?;
    let a = &call.attrs;
    // Inputs: X, roi, scales, sizes (opset 11+); X, scales (Upsample, Resize 10).
    let (scales, sizes) = if call.node.op_type == "Upsample" || call.opset < 11 {
        (call.opt_constant(1)?.map(|s| s.as_floats()), None)
    } else {
        (
            call.opt_constant(2)?
                .map(|s| s.as_floats())
                .filter(|s| !s.is_empty()),
            call.opt_constant(3)?
                .map(|s| s.as_ints())
                .filter(|s| !s.is_empty()),
        )
    };
    let (size, scales) = match (sizes, scales) {
        (Some(s), _) if s.len() == 4 && s[0] as usize == n && s[1] as usize == c => {
            ([s[2] as usize, s[3] as usize], None)
        }
        (None, Some(s))
            if s.len() == 4 && s[0] == 1.0 && s[1] == 1.0 && s[2] > 0.0 && s[3] > 0.0 =>
        {
            let size = [
                (h as f32 * s[2]).floor() as usize,
                (w as f32 * s[3]).floor() as usize,
            ];
            (size, Some([s[2], s[3]]))
        }
        _ => {
            return Err(call
                .err("only spatial resizing of [N, C, H, W] with 4 sizes or scales is supported"));
        }
    };
    if size.contains(&0) {
        return Err(call.err(format!("output size {size:?} is empty")));
    }
    let mode = match a.string("mode", "nearest").as_str() {
        "nearest" => ResizeMode::Nearest(
            match a.string("nearest_mode", "round_prefer_floor").as_str() {
                "floor" => NearestRounding::Floor,
                "ceil" => NearestRounding::Ceil,
                "round_prefer_ceil" => NearestRounding::RoundPreferCeil,
                _ => NearestRounding::RoundPreferFloor,
            },
        ),
        "linear" | "bilinear" => ResizeMode::Linear,
        "cubic" => ResizeMode::Cubic {
            a: a.float("cubic_coeff_a", -0.75),
        },
        other => return Err(call.err(format!("mode '{other}' is not supported"))),
    };
    let default_transform = if call.opset < 11 {
        "asymmetric"
    } else {
        "half_pixel"
    };
    let transform = match a
        .string("coordinate_transformation_mode", default_transform)
        .as_str()
    {
        "half_pixel" => CoordinateTransform::HalfPixel,
        "pytorch_half_pixel" => CoordinateTransform::PytorchHalfPixel,
        "align_corners" => CoordinateTransform::AlignCorners,
        "asymmetric" => CoordinateTransform::Asymmetric,
        other => {
            return Err(call.err(format!(
                "coordinate_transformation_mode '{other}' is not supported"
            )));
        }
    };
    let op = Resize {
        size,
        mode,
        transform,
        exclude_outside: a.int("exclude_outside", 0) != 0,
        scales,
    };
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(call.naming(0), op, &[x], None)?))
}
