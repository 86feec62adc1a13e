//! What computes a planned node. The planner builds one kernel per step, once, from the
//! node's op, its layer and the device ([`NodeSpec`]): each builder in [`SPECIALISED`] either
//! accepts or declines, the first that accepts wins, and a node none accepts runs on the
//! [`generic`] kernel, burn's own ops on any device. A faster kernel for some device slots in as
//! one more builder.

mod cpu;
mod generic;
#[cfg(feature = "wgpu-plain")]
mod gpu;

use std::fmt::Debug;
use std::sync::Arc;

use burn::prelude::Device;
use burn::tensor::FloatDType;
use featx_graph::ops::Conv2d;
use featx_graph::{Activation, Layer, Op};

use crate::{Feature, Mode};

/// Computes one node's value from its input values.
pub(crate) trait Kernel: Debug + Send + Sync {
    /// The node's value; `out_shape` is its shape from the graph's shape inference. An error
    /// is a reason: planning guarantees the inputs fit, so it means a bug, not bad input.
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String>;

    /// A short name for reports (`cpu-winograd`, `burn`).
    fn name(&self) -> &'static str;
}

/// Everything a kernel is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeSpec<'a> {
    /// What the node computes (after planning's rewrites: a BatchNorm with its convolution
    /// folded in is a convolution here).
    pub op: &'a Op,
    /// Its parameters, for parameter ops.
    pub layer: Option<&'a Layer>,
    /// Where the parameters and inputs live.
    pub device: &'a Device,
    /// Eval or train behaviour.
    pub mode: Mode,
    /// Whether the kernel also applies the ReLU that is its only reader.
    pub relu: bool,
    /// Whether the kernel also adds its second input (a ResNet block's identity) before the
    /// ReLU: a convolution with the add that is its only reader folded in ([`fuses_residual`]).
    pub residual: bool,
    /// Whose convolution runs on GPU devices (read by the GPU builders only).
    #[cfg_attr(not(feature = "wgpu-plain"), allow(dead_code))]
    pub gpu_kernels: GpuKernels,
    /// The float type featx's GPU convolution may take its products in
    /// ([`crate::Precision::multiply_dtype`]).
    #[cfg_attr(not(feature = "wgpu-plain"), allow(dead_code))]
    pub multiply: FloatDType,
    /// Whether a backward pass will follow: only kernels with one (burn's ops) may run.
    pub gradients: bool,
}

/// Builds a kernel for a node, or declines.
type Builder = fn(&NodeSpec) -> Option<Arc<dyn Kernel>>;

/// Device-specific kernel builders, most specific first.
const SPECIALISED: &[Builder] = &[
    cpu::conv2d,
    cpu::depthwise,
    cpu::batch_norm,
    cpu::squeeze_excitation,
    cpu::linear,
    cpu::layer_norm,
    cpu::conv_layer_norm,
    cpu::mlp,
    cpu::attention,
    cpu::max_pool2d,
    cpu::add,
    cpu::mul,
    cpu::elementwise,
    #[cfg(feature = "wgpu-plain")]
    gpu::conv2d,
];

/// Builders of kernels that apply an activation other than ReLU in their own epilogue, tried
/// before a kernel followed by the activation's: featx's CPU convolution (a folded
/// `Conv2dNormActivation`'s Hardswish or SiLU) and Linear layer (ConvNeXt's GELU).
const ACTIVATED: &[ActivatedBuilder] = &[cpu::conv2d_activated, cpu::linear_activated];

/// Builds a kernel for a node that also applies an activation, or declines.
type ActivatedBuilder = fn(&NodeSpec, Activation) -> Option<Arc<dyn Kernel>>;

/// Whose convolution a GPU device runs: featx's own (one launch with the bias, residual add and
/// ReLU in its epilogue) or burn's (autotuned among cubecl's kernels, where this build tunes).
/// All compute torchvision's numbers to the same tolerance; which is faster depends on the
/// adapter, so `featx bench` and `scripts/gpu-check.sh` measure each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpuKernels {
    /// featx's implicit-GEMM convolution (`featx-kernels`' `gpu`): on cooperative matrices
    /// (tensor cores) where the device has them for the type the run multiplies in, else
    /// register-tiled.
    #[default]
    Featx,
    /// featx's register-tiled convolution even where cooperative matrices would run: to
    /// measure what they win on a card, or to step around a driver whose cooperative matrices
    /// misbehave. At `--precision mixed` it multiplies in float32.
    FeatxTiled,
    /// burn's `conv2d`, followed by its element-wise add and ReLU.
    Burn,
}

impl GpuKernels {
    /// Every choice, in the order the command line lists them.
    pub const ALL: [GpuKernels; 3] = [GpuKernels::Featx, GpuKernels::FeatxTiled, GpuKernels::Burn];

    /// The name on the command line (`featx`, `featx-tiled`, `burn`).
    pub fn name(self) -> &'static str {
        match self {
            GpuKernels::Featx => "featx",
            GpuKernels::FeatxTiled => "featx-tiled",
            GpuKernels::Burn => "burn",
        }
    }

    /// Whether featx's own convolution runs (with the residual add folded in).
    pub fn is_featx(self) -> bool {
        self != GpuKernels::Burn
    }
}

/// Whether convolution `conv` on `device` takes the add after it into its epilogue, so the
/// planner folds a ResNet block's `add` into its last convolution: featx's CPU convolution
/// does for ungrouped convolutions (a grouped or depthwise one keeps its own kernel and the
/// add stays a node), featx's GPU convolution for every one.
pub(crate) fn fuses_residual(device: &Device, gpu_kernels: GpuKernels, conv: &Conv2d) -> bool {
    if *device == Device::flex() {
        return conv.groups == 1;
    }
    #[cfg(feature = "wgpu-plain")]
    if gpu_kernels.is_featx() {
        return featx_kernels::gpu::supports(device);
    }
    let _ = (device, gpu_kernels);
    false
}

/// The kernel for `spec`: the first specialised builder's that accepts it, else the generic.
pub(crate) fn choose(spec: &NodeSpec) -> Arc<dyn Kernel> {
    SPECIALISED
        .iter()
        .find_map(|build| build(spec))
        .unwrap_or_else(|| Arc::new(generic::Generic::new(spec)))
}

/// A kernel that returns its one input as it is: the graph input, and a ReLU whose producer
/// already applied it.
#[derive(Debug)]
pub(crate) struct PassThrough;

impl Kernel for PassThrough {
    fn run(&self, inputs: Vec<Feature>, _: &[usize]) -> Result<Feature, String> {
        inputs
            .into_iter()
            .next()
            .ok_or_else(|| "no input value".to_string())
    }

    fn name(&self) -> &'static str {
        "pass-through"
    }
}

/// The kernel for `spec` followed by `activation`: a ReLU runs in the kernel's epilogue, any
/// other activation in the epilogue of a kernel that takes it ([`ACTIVATED`]), else as a
/// second pass over its output.
pub(crate) fn choose_activated(spec: &NodeSpec, activation: Option<Activation>) -> Arc<dyn Kernel> {
    match activation {
        None => choose(spec),
        Some(Activation::Relu) => choose(&NodeSpec {
            relu: true,
            ..*spec
        }),
        Some(activation) => {
            // A kernel that applies it to its output piece by piece, while in cache.
            if let Some(fused) = ACTIVATED.iter().find_map(|build| build(spec, activation)) {
                return fused;
            }
            // The activation's own kernel: the vectorised one where the device has it.
            let op = Op::Activation(activation);
            let post = choose(&NodeSpec {
                op: &op,
                layer: None,
                relu: false,
                residual: false,
                ..*spec
            });
            Arc::new(Activated {
                inner: choose(spec),
                post,
            })
        }
    }
}

/// A kernel whose output goes through an activation (a folded `Conv2dNormActivation`).
#[derive(Debug)]
struct Activated {
    inner: Arc<dyn Kernel>,
    post: Arc<dyn Kernel>,
}

impl Kernel for Activated {
    fn run(&self, inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        let x = self.inner.run(inputs, out_shape)?;
        self.post.run(vec![x], out_shape)
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
