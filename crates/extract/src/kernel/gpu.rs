//! Builders for featx's own GPU kernels (`featx-kernels`' `gpu`), on CubeCL devices when one of
//! featx's convolutions ([`GpuKernels::is_featx`]) is chosen. They have no backward pass: a plan
//! for gradients never picks them.

use std::sync::Arc;

use burn::prelude::Tensor;
use featx_graph::{Layer, Op};
use featx_kernels::gpu::PackedConv2d;

use super::{GpuKernels, Kernel, NodeSpec};
use crate::Feature;

/// The implicit-GEMM convolution (on cooperative matrices where the device has them for the
/// float type the run multiplies in): bias, residual add and ReLU in its epilogue.
#[derive(Debug)]
struct Conv {
    packed: PackedConv2d,
    residual: bool,
    relu: bool,
}

/// The GPU convolution, for ungrouped convolutions on a CubeCL device.
pub(super) fn conv2d(spec: &NodeSpec) -> Option<Arc<dyn Kernel>> {
    let (Op::Conv2d(op), Some(Layer::Conv2d(conv))) = (spec.op, spec.layer) else {
        return None;
    };
    if spec.gradients || !spec.gpu_kernels.is_featx() {
        return None;
    }
    let bias = conv.bias.as_ref().map(|b| b.val());
    let packed = PackedConv2d::new(&conv.weight.val(), bias.as_ref(), op.window, op.groups)?
        .multiplying_in(spec.multiply.into());
    let packed = match spec.gpu_kernels {
        GpuKernels::FeatxTiled => packed.tiled_only(),
        _ => packed,
    };
    Some(Arc::new(Conv {
        packed,
        residual: spec.residual,
        relu: spec.relu,
    }))
}

impl Kernel for Conv {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        let mut inputs = inputs.into_iter().map(|x| {
            x.into_rank::<4>()
                .map_err(|x| format!("expected a rank-4 input, got shape {:?}", x.dims()))
        });
        let x: Tensor<4> = inputs.next().ok_or("no input value")??;
        let residual = match self.residual {
            true => Some(inputs.next().ok_or("no residual value")??),
            false => None,
        };
        // The epilogue adds a residual of the output's own shape; one that broadcasts to it
        // (an add FX records the same way) is added after the convolution.
        if let Some(r) = residual
            .as_ref()
            .filter(|r| r.dims().as_slice() != out_shape)
        {
            let y = self
                .packed
                .forward(x, None, false)
                .map_err(|e| e.to_string())?;
            let sum = Feature::from(y)
                .broadcast_add(r.clone().into())
                .ok_or_else(|| format!("cannot add {:?} to {out_shape:?}", r.dims()))?;
            return Ok(if self.relu { sum.relu() } else { sum });
        }
        self.packed
            .forward(x, residual, self.relu)
            .map(Feature::from)
            .map_err(|e| e.to_string())
    }

    fn name(&self) -> &'static str {
        match self.packed.is_cooperative() {
            true => "gpu-cooperative",
            false => "gpu-implicit-gemm",
        }
    }
}
