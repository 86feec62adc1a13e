//! Builders for featx's own CPU kernels (`featx-kernels`), on the flex device. They have no
//! backward pass: a plan for gradients never picks them.

use std::sync::Arc;

use burn::prelude::{Device, Tensor};
use featx_graph::ops::single;
use featx_graph::{Layer, Op};
use featx_kernels::cpu::{MaxPool2d, PackedConv2d};

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
