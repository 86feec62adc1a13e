use featx_graph::{Graph, NodeId, Op};
use featx_models::Layer;

use crate::Resolved;
use crate::cpu_conv::CpuConv;
use crate::fold::{FoldedConv, conv_options, fold_conv_bn};

/// Which nodes to run for a set of requested outputs, what each reads, and when each result
/// can be freed.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Nodes to execute, in execution order: only ancestors of requested nodes, minus
    /// convolutions folded into their BatchNorm.
    pub steps: Vec<NodeId>,
    /// `inputs[i]`: the values node `i` reads when it runs (a folded BatchNorm reads its
    /// convolution's input).
    pub inputs: Vec<Vec<NodeId>>,
    /// `folded[i]`: for a BatchNorm node, the convolution folded into it.
    pub folded: Vec<Option<FoldedConv>>,
    /// `cpu_convs[i]`: for a planned convolution on the flex device, its packed CPU kernel.
    pub cpu_convs: Vec<Option<CpuConv>>,
    /// `fused_relu[i]`: node `i` (a convolution on the CPU kernel, or a folded BatchNorm)
    /// applies the ReLU that is its only reader, whose own step then passes the value on.
    pub fused_relu: Vec<bool>,
    /// `last_reader[i]`: the last planned node that reads node `i`'s output, if any.
    pub last_reader: Vec<Option<NodeId>>,
    /// `outputs_at[i]`: positions in the resolved request list that node `i` produces.
    pub outputs_at: Vec<Vec<usize>>,
}

impl Plan {
    /// Whether node `id` is a ReLU whose producer already applied it.
    pub fn passes_on(&self, graph: &Graph, id: NodeId) -> bool {
        matches!(graph.nodes()[id.0].op, Op::Relu)
            && matches!(self.inputs[id.0].as_slice(), [p] if self.fused_relu[p.0])
    }

    /// Plans `requested`; with `fold`, eval-mode BatchNorms absorb their convolutions.
    pub fn new(
        graph: &Graph,
        layers: &[Option<Layer>],
        requested: &[Resolved],
        fold: bool,
    ) -> Self {
        let n = graph.nodes().len();
        let targets: Vec<NodeId> = requested.iter().map(|r| r.node).collect();
        let needed = graph.needed_for(&targets);
        let mut is_requested = vec![false; n];
        for t in &targets {
            is_requested[t.0] = true;
        }
        let folded = if fold {
            fold_conv_bn(graph, layers, &needed, &is_requested)
        } else {
            vec![None; n]
        };
        let skipped: Vec<bool> = {
            let mut s = vec![false; n];
            for f in folded.iter().flatten() {
                s[f.conv.0] = true;
            }
            s
        };
        let inputs: Vec<Vec<NodeId>> = graph
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, node)| match &folded[i] {
                Some(f) => graph.nodes()[f.conv.0].inputs.clone(),
                None => node.inputs.clone(),
            })
            .collect();
        let steps: Vec<NodeId> = (0..n)
            .filter(|&i| needed[i] && !skipped[i])
            .map(NodeId)
            .collect();
        let mut cpu_convs = vec![None; n];
        for &step in &steps {
            if let (Some(options), Some(Some(Layer::Conv2d(conv)))) =
                (conv_options(&graph.nodes()[step.0].op), layers.get(step.0))
            {
                let bias = conv.bias.as_ref().map(|b| b.val());
                cpu_convs[step.0] = CpuConv::new(&conv.weight.val(), bias.as_ref(), &options);
            }
        }
        let mut last_reader = vec![None; n];
        let mut readers = vec![0usize; n];
        for &step in &steps {
            for input in &inputs[step.0] {
                last_reader[input.0] = Some(step);
                readers[input.0] += 1;
            }
        }
        // ReLU(x) is computed inside x's kernel when nothing else sees x: not requested, not
        // the graph's output, read by that ReLU alone.
        let mut fused_relu = vec![false; n];
        for &step in &steps {
            let (Op::Relu, [producer]) = (&graph.nodes()[step.0].op, inputs[step.0].as_slice())
            else {
                continue;
            };
            let p = producer.0;
            let has_kernel = folded[p].is_some() || cpu_convs[p].is_some();
            if has_kernel && readers[p] == 1 && !is_requested[p] && graph.output() != *producer {
                fused_relu[p] = true;
            }
        }
        let mut outputs_at = vec![Vec::new(); n];
        for (pos, r) in requested.iter().enumerate() {
            outputs_at[r.node.0].push(pos);
        }
        Self {
            steps,
            inputs,
            folded,
            cpu_convs,
            fused_relu,
            last_reader,
            outputs_at,
        }
    }
}
