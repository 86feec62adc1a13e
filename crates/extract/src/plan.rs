//! Planning: which nodes run for a request, in what order, on which kernel, reading what, and
//! when each value is freed. Every choice is made here, once per extractor; execution only
//! walks the steps.
//!
//! Two rewrites happen before kernels are chosen, both invisible in the values any requested
//! node returns:
//! - in eval mode, a BatchNorm whose convolution nothing else reads runs as one convolution
//!   with folded weights, reading the convolution's input (the convolution's own output is
//!   never materialised);
//! - a ReLU whose input nothing else sees (not requested, not the output, read only by that
//!   ReLU) runs inside the convolution that produces it, and its own step passes the value on.

use std::sync::Arc;

use burn::prelude::*;
use featx_graph::{Graph, NodeId, Op};
use featx_models::Layer;

use crate::kernel::{Kernel, NodeSpec, PassThrough, choose};
use crate::{Mode, Resolved};

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
    /// How many ReLUs run inside the kernel of the node they read.
    pub fused_relus: usize,
}

impl Plan {
    /// Plans `requested` on `device` in `mode`.
    pub fn new(
        graph: &Graph,
        layers: &[Option<Layer>],
        requested: &[Resolved],
        mode: Mode,
        device: &Device,
    ) -> Self {
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

        // What each node computes, after folding: (op, layer, inputs).
        let mut ops: Vec<(Op, Option<Layer>, Vec<NodeId>)> = nodes
            .iter()
            .zip(layers.iter().chain(std::iter::repeat(&None)))
            .map(|(node, layer)| (node.op.clone(), layer.clone(), node.inputs.clone()))
            .collect();
        let mut skipped = vec![false; n];
        let mut folded = 0;
        if mode == Mode::Eval {
            for i in (0..n).filter(|&i| needed[i]) {
                if let Some((op, layer, conv)) = fold_batch_norm(graph, layers, NodeId(i), private)
                {
                    ops[i] = (op, Some(layer), nodes[conv.0].inputs.clone());
                    skipped[conv.0] = true;
                    folded += 1;
                }
            }
        }
        let mut fused_relu = vec![false; n];
        let mut passes_on = vec![false; n];
        for i in (0..n).filter(|&i| needed[i]) {
            if let (Op::Relu, [producer]) = (&ops[i].0, ops[i].2.as_slice())
                && matches!(ops[producer.0].0, Op::Conv2d { .. })
                && private(*producer)
            {
                fused_relu[producer.0] = true;
                passes_on[i] = true;
            }
        }

        // Shape checks are values of the input's shape, computed while checking it: they
        // never run, and no kernel reads them.
        for (i, node) in nodes.iter().enumerate() {
            if node.op.is_static() {
                skipped[i] = true;
            }
        }
        for (op, _, inputs) in &mut ops {
            if !matches!(op, Op::Input { .. }) {
                inputs.retain(|input| !nodes[input.0].op.is_static());
            }
        }
        let order: Vec<usize> = (0..n).filter(|&i| needed[i] && !skipped[i]).collect();
        let mut last_read = vec![None; n];
        for &i in &order {
            for input in &ops[i].2 {
                last_read[input.0] = Some(i);
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
                let kernel: Arc<dyn Kernel> = if passes_on[i] || matches!(op, Op::Input { .. }) {
                    Arc::new(PassThrough)
                } else {
                    choose(&NodeSpec {
                        op,
                        layer: layer.as_ref(),
                        device,
                        mode,
                        relu: fused_relu[i],
                    })
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
        Self {
            steps,
            folded,
            fused_relus: passes_on.iter().filter(|&&p| p).count(),
        }
    }
}

/// For an eval-mode BatchNorm node reading a convolution whose value is `private` to it, the
/// convolution that computes both at once (`bn(conv(x))` with scaled weights and a bias) and
/// the convolution node it replaces.
fn fold_batch_norm(
    graph: &Graph,
    layers: &[Option<Layer>],
    id: NodeId,
    private: impl Fn(NodeId) -> bool,
) -> Option<(Op, Layer, NodeId)> {
    let nodes = graph.nodes();
    let layer = |id: NodeId| layers.get(id.0).and_then(Option::as_ref);
    let (Op::BatchNorm2d { eps, .. }, Some(Layer::BatchNorm(bn))) = (&nodes[id.0].op, layer(id))
    else {
        return None;
    };
    let conv_id = *nodes[id.0].inputs.first()?;
    if !private(conv_id) {
        return None;
    }
    let (
        Op::Conv2d {
            in_channels,
            out_channels,
            window,
            groups,
            ..
        },
        Some(Layer::Conv2d(conv)),
    ) = (&nodes[conv_id.0].op, layer(conv_id))
    else {
        return None;
    };
    let scale = bn.gamma.val() / (bn.running_var.value() + *eps).sqrt();
    let weight = conv.weight.val() * scale.clone().reshape([*out_channels, 1, 1, 1]);
    let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
    let bias = match &conv.bias {
        Some(b) => shift + b.val() * scale,
        None => shift,
    };
    let mut folded = conv.clone();
    folded.weight = burn::module::Param::from_tensor(weight);
    folded.bias = Some(burn::module::Param::from_tensor(bias));
    let op = Op::Conv2d {
        in_channels: *in_channels,
        out_channels: *out_channels,
        window: *window,
        groups: *groups,
        bias: true,
    };
    Some((op, Layer::Conv2d(folded), conv_id))
}
