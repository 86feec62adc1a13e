//! Planning: which nodes run for a request, in what order, on which kernel, reading what, and
//! when each value is freed. Every choice is made here, once per extractor; execution only
//! walks the steps.
//!
//! Two rewrites happen before kernels are chosen, both invisible in the values any requested
//! node returns:
//! - in eval mode without gradients, a BatchNorm whose convolution nothing else reads runs as
//!   one convolution with folded weights, reading the convolution's input (the convolution's
//!   own output is never materialised);
//! - where the device's convolution takes a residual into its epilogue (featx's CPU kernels for
//!   ungrouped convolutions, its GPU kernel for all), an eval-mode `add` one of whose inputs is
//!   a convolution nothing else sees runs as that convolution with the add's other input added
//!   (a ResNet block's `relu(bn2(conv2(x)) + identity)` becomes one step, with the ReLU below);
//! - a ReLU whose input nothing else sees (not requested, not the output, read only by that
//!   ReLU) runs inside the convolution or BatchNorm that produces it (a BatchNorm that could
//!   not fold: DenseNet's pre-activation `norm -> relu -> conv`), and its own step passes the
//!   value on.
//!
//! In eval mode a `Conv2dNormActivation` node (one leaf in torchvision's trace) also runs as
//! one convolution with its BatchNorm folded in, its activation applied to the output (a ReLU
//! in the convolution's epilogue); no ReLU node fuses into it.
//!
//! A plan for gradients ([`Tape`]) records the nodes whose values the gradients flow through:
//! every node for gradients down to the input, only the requested nodes' descendants for
//! gradients of the requested nodes alone (a value that does not depend on any of them is a
//! constant of the backward pass). Recorded nodes run on burn's differentiable ops, unfolded:
//! featx's own CPU kernels have no backward pass, so they step aside there and only there. (A
//! `Conv2dNormActivation` leaf still runs folded in eval mode: the same function of its input,
//! with the same derivative.)

use std::sync::Arc;

use burn::prelude::*;
use burn::tensor::FloatDType;
use featx_graph::{Activation, Graph, Kind, Layer, NodeId, Op};

use crate::kernel::{GpuKernels, Kernel, NodeSpec, PassThrough, choose_activated, fuses_residual};
use crate::layers::{cast_layer, materialize};
use crate::{Mode, Precision, Resolved};

/// How an extractor runs, apart from where: what planning needs besides the graph and device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Settings {
    /// Eval or train behaviour.
    pub mode: Mode,
    /// The float precision parameters and values are in on the device.
    pub precision: Precision,
    /// Whose convolution a GPU device runs.
    pub gpu_kernels: GpuKernels,
}

/// One node to compute.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// The node whose value this step produces.
    pub node: NodeId,
    /// The values it reads, in argument order (empty for the graph input).
    pub reads: Vec<Read>,
    /// What computes it.
    pub kernel: Arc<dyn Kernel>,
    /// Whether a later step reads the value, so it is kept after this step.
    pub keep: bool,
    /// Positions in the request list this value is returned at.
    pub outputs: Vec<usize>,
}

/// A value a step reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Read {
    /// The node that produced it.
    pub node: NodeId,
    /// This is its last read: the step takes the value (its buffer may be reused in place)
    /// and frees it, instead of sharing it.
    pub last: bool,
}

/// The steps for one request, in execution order.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Steps in execution order: ancestors of the requested nodes only, minus convolutions
    /// folded into their BatchNorm.
    pub steps: Vec<Step>,
    /// How many convolutions run folded into the BatchNorm after them.
    pub folded: usize,
    /// How many per-channel scales (and the permutes before them) run folded into the Linear
    /// layer they scale.
    pub folded_scales: usize,
    /// How many ReLUs run inside the kernel of the node they read.
    pub fused_relus: usize,
    /// How many adds run inside the convolution that produces one of their inputs.
    pub fused_adds: usize,
    /// Whether the plan records a gradient tape: each requested value gets a gradient probe.
    pub gradients: bool,
}

/// Which part of a run a gradient tape records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tape {
    /// None: a plain forward pass.
    Off,
    /// Everything from the input on: gradients of the input and of every requested node.
    FromInput,
    /// The requested nodes and what depends on them: their gradients only, the rest of the
    /// run on the fast kernels.
    FromRequested,
}

impl Plan {
    /// Plans `requested` on `device` as `settings` say, recording what `tape` says for a
    /// backward pass.
    pub fn new(
        graph: &Graph,
        layers: &[Option<Layer>],
        requested: &[Resolved],
        device: &Device,
        settings: Settings,
        tape: Tape,
    ) -> Self {
        let Settings {
            mode,
            precision,
            gpu_kernels,
        } = settings;
        let nodes = graph.nodes();
        let n = nodes.len();
        let targets: Vec<NodeId> = requested.iter().map(|r| r.node).collect();
        let needed = graph.needed_for(&targets);
        let mut is_requested = vec![false; n];
        for t in &targets {
            is_requested[t.0] = true;
        }
        // Values only their one reader sees may be folded into it.
        let mut readers = vec![0usize; n];
        for (i, node) in nodes.iter().enumerate() {
            if needed[i] {
                for input in &node.inputs {
                    readers[input.0] += 1;
                }
            }
        }
        let private =
            |id: NodeId| readers[id.0] == 1 && !is_requested[id.0] && graph.output() != id;
        // Nodes whose kernel sees a recorded value (and must be differentiable), and nodes
        // whose value is recorded (those, and the requested ones with their probes).
        let mut differentiable = vec![tape == Tape::FromInput; n];
        let mut recorded = vec![tape == Tape::FromInput; n];
        if tape == Tape::FromRequested {
            for (i, node) in nodes.iter().enumerate() {
                differentiable[i] = node.inputs.iter().any(|p| recorded[p.0]);
                recorded[i] = differentiable[i] || is_requested[i];
            }
        }
        let gradients = tape != Tape::Off;

        // What each node computes, after folding: (op, layer, inputs).
        let mut ops: Vec<(Op, Option<Layer>, Vec<NodeId>)> = nodes
            .iter()
            .zip(layers.iter().chain(std::iter::repeat(&None)))
            .map(|(node, layer)| (node.op.clone(), layer.clone(), node.inputs.clone()))
            .collect();
        let mut skipped = vec![false; n];
        let mut folded = 0;
        let mut folded_scales = 0;
        // A gradient plan keeps torch's arithmetic, convolution then BatchNorm, even where
        // nothing it records needs it: a gradient jumps at a ReLU's zero or a max-pool tie, so
        // a value rounded another way upstream can move one by a whole step (folding in
        // float64 moved one of ResNet18's `layer1` feature gradients 3% off torch's).
        if mode == Mode::Eval && !gradients {
            for i in (0..n).filter(|&i| needed[i] && !differentiable[i]) {
                if let Some((op, layer, conv)) = fold_batch_norm(graph, layers, NodeId(i), private)
                {
                    ops[i] = (op, Some(layer), nodes[conv.0].inputs.clone());
                    skipped[conv.0] = true;
                    folded += 1;
                }
            }
        }
        // The activation a folded `Conv2dNormActivation` applies after its convolution.
        let mut post: Vec<Option<Activation>> = vec![None; n];
        if mode == Mode::Eval {
            for i in (0..n).filter(|&i| needed[i]) {
                if let Some((op, layer, activation)) = fold_conv_norm(&ops[i].0, ops[i].1.as_ref())
                {
                    ops[i].0 = op;
                    ops[i].1 = Some(layer);
                    post[i] = activation;
                }
            }
        }
        // A per-channel scale of a private Linear layer's permuted output (ConvNeXt's
        // `layer_scale`), folded into the layer's weights: the multiply becomes the permute.
        if mode == Mode::Eval && !gradients {
            for i in (0..n).filter(|&i| needed[i] && !differentiable[i]) {
                if let Some((linear, layer, permute, scale)) = fold_layer_scale(&ops, i, private) {
                    ops[linear.0].1 = Some(layer);
                    ops[i] = (ops[permute.0].0.clone(), None, vec![linear]);
                    skipped[permute.0] = true;
                    skipped[scale.0] = true;
                    folded_scales += 1;
                }
            }
        }
        // Parameters in the run's precision, cast after folding (folded in float32).
        if precision.dtype() != FloatDType::F32 {
            for i in (0..n).filter(|&i| needed[i]) {
                ops[i].1 = ops[i].1.take().map(|layer| cast_layer(layer, precision));
            }
        }
        // Adds into the private convolution that produces one of their inputs.
        let mut residual = vec![false; n];
        if mode == Mode::Eval {
            for i in (0..n).filter(|&i| needed[i] && !differentiable[i]) {
                let (Op::Add(_), [a, b]) = (&ops[i].0, ops[i].2.as_slice()) else {
                    continue;
                };
                let conv_of = |id: NodeId| {
                    matches!(&ops[id.0].0, Op::Conv2d(conv) if fuses_residual(device, gpu_kernels, conv))
                        && ops[id.0].1.is_some()
                        && ops[id.0].2.len() == 1
                        && post[id.0].is_none()
                        && !skipped[id.0]
                        && !differentiable[id.0]
                        && private(id)
                };
                let (conv, identity) = match (conv_of(*a), conv_of(*b)) {
                    (true, _) => (*a, *b),
                    (false, true) => (*b, *a),
                    (false, false) => continue,
                };
                let (op, layer, inputs) = ops[conv.0].clone();
                ops[i] = (op, layer, vec![inputs[0], identity]);
                skipped[conv.0] = true;
                residual[i] = true;
            }
        }
        let mut fused_relu = vec![false; n];
        let mut passes_on = vec![false; n];
        for i in (0..n).filter(|&i| needed[i]) {
            if let (Op::Activation(Activation::Relu), [producer]) = (&ops[i].0, ops[i].2.as_slice())
                && matches!(ops[producer.0].0, Op::Conv2d(_) | Op::BatchNorm2d(_))
                && post[producer.0].is_none()
                && private(*producer)
            {
                fused_relu[producer.0] = true;
                passes_on[i] = true;
            }
        }
        // An activation of a private Linear layer's output runs in the layer's epilogue, on
        // pieces of the output still in cache (ConvNeXt's GELU after each block's first
        // Linear: 9% of its forward pass at batch 8 as a pass of its own).
        if mode == Mode::Eval {
            for i in (0..n).filter(|&i| needed[i] && !differentiable[i]) {
                if let (Op::Activation(activation), [producer]) = (&ops[i].0, ops[i].2.as_slice())
                    && !passes_on[i]
                    && matches!(ops[producer.0].0, Op::Linear(_))
                    && post[producer.0].is_none()
                    && !fused_relu[producer.0]
                    && !differentiable[producer.0]
                    && private(*producer)
                {
                    post[producer.0] = Some(*activation);
                    passes_on[i] = true;
                }
            }
        }

        // Shape checks are values of the input's shape, computed while checking it: they
        // never run, and no kernel reads them.
        for (i, skip) in skipped.iter_mut().enumerate() {
            if graph.kind(NodeId(i)) == Kind::Static {
                *skip = true;
            }
        }
        for (op, _, inputs) in &mut ops {
            if !matches!(op, Op::Input(_)) {
                inputs.retain(|&input| graph.kind(input) != Kind::Static);
            }
        }
        let order: Vec<usize> = (0..n).filter(|&i| needed[i] && !skipped[i]).collect();
        let mut last_read = vec![None; n];
        for &i in &order {
            for input in &ops[i].2 {
                last_read[input.0] = Some(i);
            }
        }
        // Random weights are drawn on first use: draw them now, in the order a run would, so
        // that a first run times extraction, not the random number generator.
        for &i in &order {
            if let Some(layer) = &ops[i].1 {
                materialize(layer);
            }
        }
        let mut outputs = vec![Vec::new(); n];
        for (pos, r) in requested.iter().enumerate() {
            outputs[r.node.0].push(pos);
        }
        let steps = order
            .iter()
            .map(|&i| {
                let (op, layer, inputs) = &ops[i];
                let kernel: Arc<dyn Kernel> = if passes_on[i] || matches!(op, Op::Input(_)) {
                    Arc::new(PassThrough)
                } else {
                    let spec = NodeSpec {
                        op,
                        layer: layer.as_ref(),
                        device,
                        mode,
                        relu: fused_relu[i],
                        residual: residual[i],
                        gpu_kernels,
                        multiply: precision.multiply_dtype(),
                        gradients: differentiable[i],
                    };
                    choose_activated(&spec, post[i])
                };
                let reads = inputs
                    .iter()
                    .enumerate()
                    .map(|(k, &input)| Read {
                        node: input,
                        // A value read twice by one step is taken at its last argument only.
                        last: last_read[input.0] == Some(i) && !inputs[k + 1..].contains(&input),
                    })
                    .collect();
                Step {
                    node: NodeId(i),
                    reads,
                    kernel,
                    keep: last_read[i].is_some(),
                    outputs: std::mem::take(&mut outputs[i]),
                }
            })
            .collect();
        // Of the activations that pass on their producer's value, the ReLUs; the others run
        // in a Linear layer's epilogue.
        let fused_relus = (0..n)
            .filter(|&i| passes_on[i] && matches!(ops[i].0, Op::Activation(Activation::Relu)))
            .count();
        Self {
            steps,
            folded,
            folded_scales,
            fused_relus,
            fused_adds: residual.iter().filter(|&&r| r).count(),
            gradients,
        }
    }
}

/// For an eval-mode BatchNorm node reading a convolution whose value is `private` to it, the
/// convolution that computes both at once ([`featx_graph::ops::BatchNorm2d::fold`]) and the
/// convolution node it replaces.
fn fold_batch_norm(
    graph: &Graph,
    layers: &[Option<Layer>],
    id: NodeId,
    private: impl Fn(NodeId) -> bool,
) -> Option<(Op, Layer, NodeId)> {
    let nodes = graph.nodes();
    let layer = |id: NodeId| layers.get(id.0).and_then(Option::as_ref);
    let (Op::BatchNorm2d(norm), Some(Layer::BatchNorm(bn))) = (&nodes[id.0].op, layer(id)) else {
        return None;
    };
    let conv_id = *nodes[id.0].inputs.first()?;
    if !private(conv_id) {
        return None;
    }
    let (Op::Conv2d(op), Some(Layer::Conv2d(conv))) = (&nodes[conv_id.0].op, layer(conv_id)) else {
        return None;
    };
    let (op, folded) = norm.fold(op, conv, bn);
    Some((op.into(), Layer::Conv2d(folded), conv_id))
}

/// For a multiply `i` of a `[C, 1, 1]` parameter by the NHWC -> NCHW permute of a Linear
/// layer's `C` outputs, both private: (the Linear, its layer with the scale folded in
/// ([`featx_graph::ops::Linear::fold_scale`]), the permute, the parameter).
fn fold_layer_scale(
    ops: &[(Op, Option<Layer>, Vec<NodeId>)],
    i: usize,
    private: impl Fn(NodeId) -> bool,
) -> Option<(NodeId, Layer, NodeId, NodeId)> {
    let (Op::Mul(_), [a, b]) = (&ops[i].0, ops[i].2.as_slice()) else {
        return None;
    };
    let parameter = |id: NodeId| match (&ops[id.0].0, &ops[id.0].1) {
        (Op::Parameter(_), Some(Layer::Parameter(p))) if private(id) => Some(p),
        _ => None,
    };
    let (scale, param, permute) = match (parameter(*a), parameter(*b)) {
        (Some(p), _) => (*a, p, *b),
        (None, Some(p)) => (*b, p, *a),
        (None, None) => return None,
    };
    let (Op::Permute(order), [linear]) = (&ops[permute.0].0, ops[permute.0].2.as_slice()) else {
        return None;
    };
    if order.dims != [0, 3, 1, 2] || !private(permute) || !private(*linear) {
        return None;
    }
    let (Op::Linear(_), Some(Layer::Linear(layer))) = (&ops[linear.0].0, &ops[linear.0].1) else {
        return None;
    };
    let [_, outputs] = layer.weight.dims();
    if param.dims() != [outputs, 1, 1] {
        return None;
    }
    let values: Vec<f64> = param
        .val()
        .into_rank::<3>()
        .ok()?
        .into_data()
        .iter::<f64>()
        .collect();
    let folded = featx_graph::ops::Linear::fold_scale(layer, &values)?;
    Some((*linear, Layer::Linear(folded), permute, scale))
}

/// An eval-mode `Conv2dNormActivation` as a convolution with its BatchNorm folded in
/// ([`featx_graph::ops::ConvNormActivation::fold`]), and the activation to apply after it.
fn fold_conv_norm(op: &Op, layer: Option<&Layer>) -> Option<(Op, Layer, Option<Activation>)> {
    let (Op::ConvNormActivation(op), Some(Layer::ConvNorm(params))) = (op, layer) else {
        return None;
    };
    let (conv, folded) = op.fold(params);
    Some((conv.into(), Layer::Conv2d(folded), op.activation))
}
