use featx_graph::{Graph, NodeId};

use crate::{ExtractError, Result, ReturnNodes};

/// One requested output: the key it is returned under and the node it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Output key.
    pub key: String,
    /// The query as given.
    pub query: String,
    /// The node that produces it.
    pub node: NodeId,
    /// That node's name.
    pub node_name: String,
}

/// Resolves every query to a node, keeping request order.
///
/// Queries are literal (never regular expressions). An exact node name wins; otherwise a
/// module path at a dot boundary means the last node executed inside that module. The same
/// `(node, key)` asked twice is returned once; one key for two different nodes is an error.
pub(crate) fn resolve(graph: &Graph, model: &str, request: &ReturnNodes) -> Result<Vec<Resolved>> {
    let mut out: Vec<Resolved> = Vec::with_capacity(request.0.len());
    for (query, key) in &request.0 {
        let node = find_node(graph, query).ok_or_else(|| ExtractError::UnknownNode {
            query: query.clone(),
            model: model.to_string(),
            suggestions: suggest(graph, query),
        })?;
        let node_name = graph.nodes()[node.0].name.clone();
        match out.iter().find(|r| r.key == *key) {
            Some(prev) if prev.node == node => continue,
            Some(prev) => {
                return Err(ExtractError::DuplicateKey {
                    key: key.clone(),
                    first: prev.node_name.clone(),
                    second: node_name,
                });
            }
            None => out.push(Resolved {
                key: key.clone(),
                query: query.clone(),
                node,
                node_name,
            }),
        }
    }
    Ok(out)
}

fn find_node(graph: &Graph, query: &str) -> Option<NodeId> {
    graph.find(query).or_else(|| graph.find_module(query))
}

/// Up to three node or module names closest to `query` by edit distance.
fn suggest(graph: &Graph, query: &str) -> Vec<String> {
    let candidates = graph.module_paths();
    let mut scored: Vec<(usize, usize, String)> = candidates
        .into_iter()
        .enumerate()
        .map(|(order, c)| (strsim::levenshtein(query, &c), order, c))
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, _, c)| c).collect()
}
