//! Execution: walks a [`Plan`]'s steps, handing each kernel its inputs and freeing every value
//! at its last read. No choice is made here.

use featx_graph::Graph;

use crate::plan::Plan;
use crate::{ExtractError, Feature, Result};

/// Runs `plan` on the graph input `input`; returns the value for each of the `requested`
/// positions (`None` for one no step produced, which a correct plan never leaves). `shapes`
/// are every node's inferred output shapes for this input.
pub(crate) fn execute(
    plan: &Plan,
    graph: &Graph,
    input: Feature,
    shapes: &[Vec<usize>],
    requested: usize,
) -> Result<Vec<Option<Feature>>> {
    let nodes = graph.nodes();
    let internal = |node: usize, reason: String| ExtractError::Internal {
        node: nodes[node].name.clone(),
        reason,
    };
    let mut slots: Vec<Option<Feature>> = vec![None; nodes.len()];
    let mut results: Vec<Option<Feature>> = vec![None; requested];
    let mut input = Some(input);
    for step in &plan.steps {
        let id = step.node.0;
        let args = if matches!(nodes[id].op, featx_graph::Op::Input { .. }) {
            let x = input.take();
            vec![x.ok_or_else(|| internal(id, "more than one graph input".into()))?]
        } else {
            step.reads
                .iter()
                .map(|read| {
                    let slot = &mut slots[read.node.0];
                    let value = if read.last { slot.take() } else { slot.clone() };
                    value.ok_or_else(|| {
                        internal(id, format!("{} has no value", nodes[read.node.0].name))
                    })
                })
                .collect::<Result<Vec<_>>>()?
        };
        let value = step
            .kernel
            .run(args, &shapes[id])
            .map_err(|reason| internal(id, format!("{} kernel: {reason}", step.kernel.name())))?;
        for &pos in &step.outputs {
            results[pos] = Some(value.clone());
        }
        if step.keep {
            slots[id] = Some(value);
        }
    }
    Ok(results)
}
