use featx_graph::{Graph, NodeId};

use crate::Resolved;

/// Which nodes to run for a set of requested outputs, and when each result can be freed.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Nodes to execute, in execution order: only ancestors of requested nodes.
    pub steps: Vec<NodeId>,
    /// `last_reader[i]`: the last planned node that reads node `i`'s output, if any.
    pub last_reader: Vec<Option<NodeId>>,
    /// `outputs_at[i]`: positions in the resolved request list that node `i` produces.
    pub outputs_at: Vec<Vec<usize>>,
}

impl Plan {
    pub fn new(graph: &Graph, requested: &[Resolved]) -> Self {
        let n = graph.nodes().len();
        let targets: Vec<NodeId> = requested.iter().map(|r| r.node).collect();
        let needed = graph.needed_for(&targets);
        let steps: Vec<NodeId> = (0..n).filter(|&i| needed[i]).map(NodeId).collect();
        let mut last_reader = vec![None; n];
        for &step in &steps {
            for input in &graph.nodes()[step.0].inputs {
                last_reader[input.0] = Some(step);
            }
        }
        let mut outputs_at = vec![Vec::new(); n];
        for (pos, r) in requested.iter().enumerate() {
            outputs_at[r.node.0].push(pos);
        }
        Self {
            steps,
            last_reader,
            outputs_at,
        }
    }
}
