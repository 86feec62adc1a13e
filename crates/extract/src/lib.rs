//! torchvision's `get_graph_node_names` and `create_feature_extractor`, in Rust, on Burn.
//!
//! A [`FeatureExtractor`] is built from a traced model and a list of node queries
//! ([`ReturnNodes`]) in three stages, one file each: `resolve` (queries to nodes), `plan`
//! (which nodes run, on which kernel, freed when) and `execute` (walk the plan's steps).
//! Queries are literal node names or module paths at a dot boundary
//! (`layer3` means the last node executed inside `layer3`); each resolves to one node, and an
//! unknown query is an error that names the closest real names. Running the extractor replays
//! only the part of the graph the requested nodes depend on, frees each intermediate as soon as
//! nothing later reads it, and returns the requested tensors in request order.

mod device;
mod error;
mod execute;
mod extractor;
mod features;
mod gradients;
mod kernel;
mod layers;
mod one_pass;
mod plan;
mod precision;
mod query;
mod resolve;

pub use device::{
    DeviceChoice, GPU_BUILD, gpu_cache_dir, max_buffer_bytes, select_device, wgpu_adapter,
};
pub use error::{ExtractError, Result};
pub use extractor::{FeatureExtractor, PlanReport};
pub use features::Features;
pub use featx_graph::{Feature, MAX_RANK, Mode};
pub use featx_kernels::cpu::{PIN_THREADS_ENV, PoolInit, init_pool, pinned_workers, pool_workers};
pub use gradients::Backward;
pub use kernel::GpuKernels;
pub use one_pass::one_pass_nodes;
pub use precision::Precision;
pub use query::ReturnNodes;
pub use resolve::Resolved;

use featx_models::FeatureModel;

/// The node names of `model`'s forward pass, as `(train_nodes, eval_nodes)`, as torchvision
/// returns them: each mode's graph is traced on its own. They are equal unless the model's
/// `forward` reads `self.training` (GoogLeNet's and Inception v3's auxiliary heads are in the
/// train list only).
pub fn get_graph_node_names(model: &impl FeatureModel) -> (Vec<String>, Vec<String>) {
    model.trace().node_names()
}

/// The nodes `request` names in `model`, as an extractor would resolve them: an unknown name
/// is [`ExtractError::UnknownNode`] with the closest names, a value that is not a tensor
/// [`ExtractError::NotATensor`]. Nothing is built or run.
pub fn resolve_nodes(
    model: &featx_models::TracedModel,
    request: &ReturnNodes,
) -> Result<Vec<Resolved>> {
    let resolved = resolve::resolve(&model.graph, &model.name, request)?;
    for r in &resolved {
        if let Some(what) = model.graph.non_tensor(r.node) {
            return Err(ExtractError::NotATensor {
                node: r.node_name.clone(),
                what: what.to_string(),
            });
        }
    }
    Ok(resolved)
}

/// An extractor returning the outputs of `return_nodes`, keyed as requested, in eval mode.
///
/// Fails if a query names no node (with suggestions) or two different nodes are asked to
/// share an output key; a node of the train-mode graph only is [`ExtractError::ModeOnly`]
/// (see [`create_feature_extractor_in`]).
pub fn create_feature_extractor(
    model: &impl FeatureModel,
    return_nodes: impl Into<ReturnNodes>,
) -> Result<FeatureExtractor> {
    FeatureExtractor::new(model.trace(), &return_nodes.into())
}

/// [`create_feature_extractor`] in `mode`, resolving `return_nodes` in that mode's graph: in
/// train mode, GoogLeNet's `aux1.fc2` is a node.
pub fn create_feature_extractor_in(
    model: &impl FeatureModel,
    return_nodes: impl Into<ReturnNodes>,
    mode: Mode,
) -> Result<FeatureExtractor> {
    FeatureExtractor::new_in(model.trace(), &return_nodes.into(), mode)
}
