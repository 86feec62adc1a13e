use featx_graph::{Graph, Mode, NodeId};

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

    /// Records the forward pass as it runs in `mode`. torchvision's FX tracer evaluates
    /// `self.training` while tracing, so a `forward` that branches on it records one graph per
    /// mode (GoogLeNet's and Inception v3's auxiliary heads run in training only). By default
    /// the mode changes nothing: [`FeatureModel::forward_trace`].
    fn forward_trace_in(&self, t: &mut Tracer, x: NodeId, mode: Mode) -> NodeId {
        let _ = mode;
        self.forward_trace(t, x)
    }

    /// Whether [`FeatureModel::forward_trace_in`] records another graph in train mode than in
    /// eval mode; `false` unless the model says so.
    fn traces_by_mode(&self) -> bool {
        false
    }

    /// Records the forward pass in `mode` alone: the `x` placeholder, every op, and the
    /// parameter-carrying layers each `call_module` node needs (`train` is `None`).
    fn trace_in(&self, mode: Mode) -> TracedModel {
        let spec = self.input_spec();
        let mut t = Tracer::new();
        let x = t.input("x", spec.channels);
        let out = self.forward_trace_in(&mut t, x, mode);
        let (graph, layers) = t.finish(out);
        TracedModel {
            name: self.name().to_string(),
            input: spec,
            graph,
            layers,
            train: None,
        }
    }

    /// Records the whole forward pass: the eval-mode graph, with the train-mode one in
    /// [`TracedModel::train`] where the model traces them apart.
    fn trace(&self) -> TracedModel {
        let mut traced = self.trace_in(Mode::Eval);
        if self.traces_by_mode() {
            traced.train = Some(Box::new(self.trace_in(Mode::Train)));
        }
        traced
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
    /// The train-mode recording, for a model whose graph depends on the mode (see
    /// [`FeatureModel::forward_trace_in`]); `None` where `graph` serves both modes. The
    /// fields above are the eval-mode recording.
    pub train: Option<Box<TracedModel>>,
}

impl TracedModel {
    /// The recording that runs in `mode`: the train-mode one where the model has its own,
    /// else this one.
    pub fn in_mode(&self, mode: Mode) -> &TracedModel {
        match (mode, &self.train) {
            (Mode::Train, Some(train)) => train,
            _ => self,
        }
    }

    /// The node names as torchvision's `get_graph_node_names` returns them:
    /// `(train_nodes, eval_nodes)`.
    pub fn node_names(&self) -> (Vec<String>, Vec<String>) {
        (self.in_mode(Mode::Train).graph.names(), self.graph.names())
    }

    /// The two recordings apart, `(eval, train)`: the train one is `None` where the eval one
    /// serves both modes.
    pub fn into_modes(mut self) -> (TracedModel, Option<TracedModel>) {
        let train = self.train.take().map(|t| *t);
        (self, train)
    }
}
