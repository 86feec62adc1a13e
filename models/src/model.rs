use featx_graph::{Graph, NodeId};

use crate::{Layer, Tracer};

/// What a model accepts as input: `[N, channels, H, W]`, with an optional fixed `H x W`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    /// Required channel count.
    pub channels: usize,
    /// Required spatial size `[H, W]`, when the model only works at one size
    /// (the article's AlexNet flattens with `view(-1, 9216)`).
    pub size: Option<[usize; 2]>,
    /// The size `get_graph_node_names`-style listings report shapes for.
    pub nominal_size: [usize; 2],
}

impl InputSpec {
    /// An RGB image of any size, listed at 224x224: what torchvision's classifiers take.
    pub const IMAGE: InputSpec = InputSpec {
        channels: 3,
        size: None,
        nominal_size: [224, 224],
    };
}

/// A model whose forward pass can be recorded as a named op graph.
pub trait FeatureModel {
    /// Short architecture name (`resnet18`).
    fn name(&self) -> &str;

    /// The input the model accepts; [`InputSpec::IMAGE`] unless the model says otherwise.
    fn input_spec(&self) -> InputSpec {
        InputSpec::IMAGE
    }

    /// Records the forward pass from the input node `x`; returns the output node.
    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId;

    /// Records the whole forward pass: the `x` placeholder, every op, and the
    /// parameter-carrying layers each `call_module` node needs.
    fn trace(&self) -> TracedModel {
        let spec = self.input_spec();
        let mut t = Tracer::new();
        let x = t.input("x", spec.channels);
        let out = self.forward_trace(&mut t, x);
        let (graph, layers) = t.finish(out);
        TracedModel {
            name: self.name().to_string(),
            input: spec,
            graph,
            layers,
        }
    }
}

/// A recorded model: its graph plus, per node, the layer holding that node's parameters.
///
/// This is all an extractor needs, independent of the concrete model type.
#[derive(Debug, Clone)]
pub struct TracedModel {
    /// Architecture name.
    pub name: String,
    /// Accepted input.
    pub input: InputSpec,
    /// The op graph in execution order.
    pub graph: Graph,
    /// `layers[i]` holds the parameters of node `i`, if it has any.
    pub layers: Vec<Option<Layer>>,
}
