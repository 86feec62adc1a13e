//! The CPU kernels of value-by-value ops: vectorised activations and softmax, adds and
//! per-axis scales.

use std::sync::Arc;

use burn::prelude::{Device, Tensor};
use burn::tensor::TensorData;
use featx_graph::ops::{Softmax, Unary, single_any};
use featx_graph::{Activation, Op};
use featx_kernels::cpu::{Elementwise, softmax_rows};

use super::{elementwise_of, eval_generic, flat, flat_values, plain_flex};
use crate::Feature;
use crate::kernel::{Kernel, NodeSpec};

/// A transcendental activation or a softmax, vectorised.
#[derive(Debug)]
enum Vectorised {
    /// An elementwise function.
    Map(Elementwise),
    /// Softmax over `axis` (vectorised over the last axis; another axis runs the generic op).
    Softmax(Softmax),
}

/// The vectorised sigmoid, SiLU, GELU, tanh, erf, exp and softmax, on the flex device, where
/// burn-flex calls libm one element at a time; and hardswish, hardsigmoid and ReLU6 as one
/// pass, where burn runs four ops.
pub(crate) fn elementwise(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    if !plain_flex(spec) {
        return None;
    }
    let kernel = match spec.op {
        // A plain ReLU stays on burn's op, which takes its input's buffer in place.
        Op::Activation(Activation::Relu) => return None,
        Op::Activation(activation) => Vectorised::Map(elementwise_of(*activation)),
        Op::Unary(Unary::GeluTanh) => Vectorised::Map(Elementwise::GeluTanh),
        Op::Unary(Unary::Tanh) => Vectorised::Map(Elementwise::Tanh),
        Op::Unary(Unary::Erf) => Vectorised::Map(Elementwise::Erf),
        Op::Unary(Unary::Exp) => Vectorised::Map(Elementwise::Exp),
        Op::Softmax(op) if !op.log => Vectorised::Softmax(op.clone()),
        _ => return None,
    };
    Some(Arc::new(kernel))
}

impl Kernel for Vectorised {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        if let Vectorised::Softmax(op) = self
            && op.axis + 1 != out_shape.len()
        {
            return eval_generic(op, inputs, out_shape);
        }
        let x = single_any(inputs)?;
        let dims = x.dims();
        let n: usize = dims.iter().product();
        let out = match self {
            // In place, or in one pass into a new buffer where the input is held elsewhere.
            Vectorised::Map(f) => match featx_kernels::cpu::map(*f, flat(x)?) {
                Ok(out) => out,
                Err(x) => {
                    let mut values = flat_values(Feature::from(x))?;
                    f.apply(&mut values);
                    Tensor::<1>::from_data(TensorData::new(values, [n]), &Device::flex())
                }
            },
            Vectorised::Softmax(_) => {
                let mut values = flat_values(x)?;
                softmax_rows(&mut values, dims.last().copied().unwrap_or(1));
                Tensor::<1>::from_data(TensorData::new(values, [n]), &Device::flex())
            }
        };
        Feature::from(out)
            .reshape(&dims)
            .ok_or_else(|| format!("cannot reshape back to {dims:?}"))
    }

    fn name(&self) -> &'static str {
        "cpu-vectorised"
    }
}

/// `a + b` of two tensors of one shape (a residual add), split over the cores, reading a
/// transposed operand (ConvNeXt's permuted Linear output) a tile at a time.
#[derive(Debug)]
struct Add;

/// The CPU add, on the flex device; broadcasts and other layouts run burn's add at run time.
pub(crate) fn add(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let Op::Add(_) = spec.op else {
        return None;
    };
    if !plain_flex(spec) {
        return None;
    }
    Some(Arc::new(Add))
}

impl Kernel for Add {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        let Ok([a, b]) = <[Feature; 2]>::try_from(inputs) else {
            return Err("add takes two inputs".to_string());
        };
        let sum = match (a.rank(), a.dims() == b.dims()) {
            (2, true) => ranked_add::<2>(a, b),
            (3, true) => ranked_add::<3>(a, b),
            (4, true) => ranked_add::<4>(a, b),
            _ => Err((a, b)),
        };
        sum.or_else(|(a, b)| eval_generic(&featx_graph::ops::Add, vec![a, b], out_shape))
    }

    fn name(&self) -> &'static str {
        "cpu-add"
    }
}

/// A tensor times a vector along one of its axes (ConvNeXt's layer scale, `[C, 1, 1] *
/// [N, C, H, W]`), in the tensor's own memory order on every core; other products run burn's
/// at run time.
#[derive(Debug)]
struct Scale;

/// The CPU product by a per-axis vector, on the flex device.
pub(crate) fn mul(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let Op::Mul(_) = spec.op else {
        return None;
    };
    if !plain_flex(spec) {
        return None;
    }
    Some(Arc::new(Scale))
}

impl Kernel for Scale {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        let Ok([a, b]) = <[Feature; 2]>::try_from(inputs) else {
            return Err("multiply takes two inputs".to_string());
        };
        // The product commutes (exactly): the full-shaped operand first.
        let (x, v) = if a.dims() == out_shape {
            (a, b)
        } else {
            (b, a)
        };
        let axis = (x.dims() == out_shape)
            .then(|| scale_axis(&x.dims(), &v.dims()))
            .flatten();
        let scaled = match axis {
            Some(axis) => {
                let factors = flat_values(v.clone())?;
                match x.rank() {
                    2 => ranked_scale::<2>(x, axis, &factors),
                    3 => ranked_scale::<3>(x, axis, &factors),
                    4 => ranked_scale::<4>(x, axis, &factors),
                    _ => Err(x),
                }
            }
            None => Err(x),
        };
        scaled.or_else(|x| eval_generic(&featx_graph::ops::Mul, vec![x, v], out_shape))
    }

    fn name(&self) -> &'static str {
        "cpu-scale"
    }
}

/// The axis of `x` along which `v` (broadcast to `x`'s shape, NumPy's way) varies, where it
/// varies along exactly one and is 1 on every other.
fn scale_axis(x: &[usize], v: &[usize]) -> Option<usize> {
    let offset = x.len().checked_sub(v.len())?;
    let mut varying = v.iter().enumerate().filter(|&(_, &d)| d != 1);
    let (i, &d) = varying.next()?;
    (varying.next().is_none() && x[offset + i] == d).then_some(offset + i)
}

/// [`featx_kernels::cpu::scale`] on a feature of rank `D`, or it back.
#[allow(clippy::result_large_err)] // `Err` hands the input back; it is no error.
fn ranked_scale<const D: usize>(
    x: Feature,
    axis: usize,
    factors: &[f32],
) -> Result<Feature, Feature>
where
    Feature: From<Tensor<D>>,
{
    match x.into_rank::<D>() {
        Ok(x) => featx_kernels::cpu::scale(x, axis, factors)
            .map(Feature::from)
            .map_err(Feature::from),
        Err(x) => Err(x),
    }
}

/// [`featx_kernels::cpu::add`] on two features of rank `D`, or both back.
#[allow(clippy::result_large_err)] // `Err` hands the inputs back; it is no error.
fn ranked_add<const D: usize>(a: Feature, b: Feature) -> Result<Feature, (Feature, Feature)>
where
    Feature: From<Tensor<D>>,
{
    match (a.into_rank::<D>(), b.into_rank::<D>()) {
        (Ok(a), Ok(b)) => featx_kernels::cpu::add(a, b)
            .map(Feature::from)
            .map_err(|(a, b)| (a.into(), b.into())),
        (a, b) => Err((
            a.map_or_else(|f| f, Feature::from),
            b.map_or_else(|f| f, Feature::from),
        )),
    }
}
