//! Builders for featx's own CPU kernels (`featx-kernels`), on the flex device. They have no
//! backward pass: a plan for gradients never picks them.

use std::sync::Arc;

use burn::prelude::{Device, Tensor};
use burn::tensor::TensorData;
use featx_graph::ops::{Softmax, Unary, single, single_any};
use featx_graph::{Activation, Cx, Layer, Mode, Op};
use featx_kernels::cpu::{
    Elementwise, MaxPool2d, PackedConv2d, PackedDepthwise, PackedLinear, softmax_rows,
};

use super::{Kernel, NodeSpec};
use crate::Feature;

/// A convolution with weights packed once, bias and ReLU in its epilogue.
#[derive(Debug)]
struct Conv {
    packed: PackedConv2d,
    relu: bool,
}

/// The packed convolution, on the flex device for ungrouped convolutions.
pub(super) fn conv2d(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let (Op::Conv2d(op), Some(Layer::Conv2d(conv))) = (spec.op, spec.layer) else {
        return None;
    };
    // Its residual epilogue is not written; the planner folds adds on the GPU only.
    if *spec.device != Device::flex() || spec.gradients || spec.residual {
        return None;
    }
    let bias = conv.bias.as_ref().map(|b| b.val());
    let packed = PackedConv2d::new(&conv.weight.val(), bias.as_ref(), op.window, op.groups)?;
    Some(Arc::new(Conv {
        packed,
        relu: spec.relu,
    }))
}

impl Kernel for Conv {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        let x: Tensor<4> = single(inputs)?;
        self.packed
            .forward(x, self.relu)
            .map(Feature::from)
            .map_err(|x| format!("the CPU convolution cannot take {:?}", x.dims()))
    }

    fn name(&self) -> &'static str {
        if self.packed.is_winograd() {
            "cpu-winograd"
        } else {
            "cpu-gemm"
        }
    }
}

/// A depthwise convolution (`groups == channels`), bias and ReLU in its epilogue.
#[derive(Debug)]
struct Depthwise {
    packed: PackedDepthwise,
    relu: bool,
}

/// The depthwise convolution, on the flex device.
pub(super) fn depthwise(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let (Op::Conv2d(op), Some(Layer::Conv2d(conv))) = (spec.op, spec.layer) else {
        return None;
    };
    if *spec.device != Device::flex() || spec.gradients || spec.residual {
        return None;
    }
    let bias = conv.bias.as_ref().map(|b| b.val());
    let packed = PackedDepthwise::new(&conv.weight.val(), bias.as_ref(), op.window, op.groups)?;
    Some(Arc::new(Depthwise {
        packed,
        relu: spec.relu,
    }))
}

impl Kernel for Depthwise {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        let x: Tensor<4> = single(inputs)?;
        self.packed
            .forward(x, self.relu)
            .map(Feature::from)
            .map_err(|x| format!("the CPU depthwise convolution cannot take {:?}", x.dims()))
    }

    fn name(&self) -> &'static str {
        "cpu-depthwise"
    }
}

/// A Linear layer over the last axis of any rank, as one matrix product.
#[derive(Debug)]
struct Linear {
    packed: PackedLinear,
    relu: bool,
}

/// The Linear layer, on the flex device.
pub(super) fn linear(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let (Op::Linear(_), Some(Layer::Linear(layer))) = (spec.op, spec.layer) else {
        return None;
    };
    if *spec.device != Device::flex() || spec.gradients || spec.residual {
        return None;
    }
    let bias = layer.bias.as_ref().map(|b| b.val());
    let packed = PackedLinear::new(&layer.weight.val(), bias.as_ref())?;
    Some(Arc::new(Linear {
        packed,
        relu: spec.relu,
    }))
}

impl Kernel for Linear {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let dims = x.dims();
        let Some((&k, leading)) = dims.split_last() else {
            return Err("a Linear layer needs at least one axis".into());
        };
        if k != self.packed.inputs() {
            return Err(format!("the CPU Linear cannot take {dims:?}"));
        }
        let rows = leading.iter().product();
        let x: Tensor<2> = x
            .reshape(&[rows, k])
            .and_then(|x| x.into_rank().ok())
            .ok_or_else(|| format!("the CPU Linear cannot take {dims:?}"))?;
        let out = self
            .packed
            .forward(x)
            .map_err(|x| format!("the CPU Linear cannot take {:?}", x.dims()))?;
        let out = if self.relu { out.clamp_min(0.0) } else { out };
        let mut shape = leading.to_vec();
        shape.push(self.packed.outputs());
        Feature::from(out)
            .reshape(&shape)
            .ok_or_else(|| format!("no Linear output of shape {shape:?}"))
    }

    fn name(&self) -> &'static str {
        "cpu-linear"
    }
}

/// Max pooling without argmax indices.
#[derive(Debug)]
struct Pool(MaxPool2d);

/// The CPU max pool, on the flex device.
pub(super) fn max_pool2d(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let Op::MaxPool2d(pool) = spec.op else {
        return None;
    };
    // Its ReLU epilogue is not written; the generic kernel handles that case.
    if *spec.device != Device::flex() || spec.relu || spec.gradients {
        return None;
    }
    Some(Arc::new(Pool(MaxPool2d {
        window: pool.window,
    })))
}

impl Kernel for Pool {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        let x: Tensor<4> = single(inputs)?;
        let &[_, _, oh, ow] = out_shape else {
            return Err(format!("a max pool's output is rank 4, not {out_shape:?}"));
        };
        self.0
            .forward(x, [oh, ow])
            .map(Feature::from)
            .map_err(|x| format!("the CPU max pool cannot take {:?}", x.dims()))
    }

    fn name(&self) -> &'static str {
        "cpu-max-pool"
    }
}

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
pub(super) fn elementwise(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    if *spec.device != Device::flex() || spec.gradients || spec.relu || spec.residual {
        return None;
    }
    let kernel = match spec.op {
        Op::Activation(Activation::Sigmoid) => Vectorised::Map(Elementwise::Sigmoid),
        Op::Activation(Activation::Silu) => Vectorised::Map(Elementwise::Silu),
        Op::Activation(Activation::Gelu) => Vectorised::Map(Elementwise::Gelu),
        Op::Activation(Activation::Hardswish) => Vectorised::Map(Elementwise::Hardswish),
        Op::Activation(Activation::Hardsigmoid) => Vectorised::Map(Elementwise::Hardsigmoid),
        Op::Activation(Activation::Relu6) => Vectorised::Map(Elementwise::Relu6),
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
            let cx = Cx {
                layer: None,
                mode: Mode::Eval,
                out_shape,
            };
            return featx_graph::OpDef::eval(op, &cx, inputs);
        }
        let x = single_any(inputs)?;
        let dims = x.dims();
        let n: usize = dims.iter().product();
        let flat: Tensor<1> = x
            .reshape(&[n])
            .and_then(|f| f.into_rank::<1>().ok())
            .ok_or_else(|| format!("cannot flatten {dims:?}"))?;
        // Moved out without a copy when nothing else holds the buffer.
        let mut values = flat
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        match self {
            Vectorised::Map(f) => f.apply(&mut values),
            Vectorised::Softmax(_) => softmax_rows(&mut values, dims.last().copied().unwrap_or(1)),
        }
        let out = Tensor::<1>::from_data(TensorData::new(values, [n]), &Device::flex());
        Feature::from(out)
            .reshape(&dims)
            .ok_or_else(|| format!("cannot reshape back to {dims:?}"))
    }

    fn name(&self) -> &'static str {
        "cpu-vectorised"
    }
}
