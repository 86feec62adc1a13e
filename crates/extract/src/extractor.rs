use burn::prelude::*;
use burn::tensor::DType;
use featx_graph::NodeId;
use featx_models::{Layer, TracedModel};

use crate::exec::run_node;
use crate::plan::Plan;
use crate::resolve::resolve;
use crate::{ExtractError, Feature, Features, Resolved, Result, ReturnNodes};

/// How BatchNorm and Dropout behave, as `model.eval()` / `model.train()` in PyTorch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Running statistics, no dropout (the default).
    #[default]
    Eval,
    /// Batch statistics, active dropout. Running statistics are not updated.
    Train,
}

/// Returns the outputs of chosen nodes of a traced model.
///
/// Built by [`crate::create_feature_extractor`]. Running it executes only the nodes the
/// requested outputs depend on, in execution order, and frees every intermediate right after
/// its last reader.
#[derive(Debug, Clone)]
pub struct FeatureExtractor {
    model: TracedModel,
    outputs: Vec<Resolved>,
    plan: Plan,
    mode: Mode,
}

impl FeatureExtractor {
    /// Resolves `request` against `model` and plans the execution.
    pub fn new(model: TracedModel, request: &ReturnNodes) -> Result<Self> {
        let outputs = resolve(&model.graph, &model.name, request)?;
        let plan = Plan::new(&model.graph, &model.layers, &outputs, true);
        Ok(Self {
            model,
            outputs,
            plan,
            mode: Mode::Eval,
        })
    }

    /// The same extractor in `mode`. Eval mode folds BatchNorms into the convolutions before
    /// them where the convolution's own output is not requested; train mode cannot.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        if mode != self.mode {
            let graph = &self.model.graph;
            self.plan = Plan::new(graph, &self.model.layers, &self.outputs, mode == Mode::Eval);
            self.mode = mode;
        }
        self
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The traced model this extractor runs.
    pub fn model(&self) -> &TracedModel {
        &self.model
    }

    /// Requested outputs in request order, with the nodes they resolved to.
    pub fn outputs(&self) -> &[Resolved] {
        &self.outputs
    }

    /// How many graph nodes one run executes (the placeholder included; a convolution folded
    /// into its BatchNorm counts as part of it).
    pub fn planned_nodes(&self) -> usize {
        self.plan.steps.len() + self.folded_convolutions()
    }

    /// How many convolutions run folded into the BatchNorm after them.
    pub fn folded_convolutions(&self) -> usize {
        let folded = &self.plan.folded;
        self.plan
            .steps
            .iter()
            .filter(|s| folded[s.0].is_some())
            .count()
    }

    /// How many ReLUs run inside the kernel of the node they read.
    pub fn fused_relus(&self) -> usize {
        self.plan.fused_relu.iter().filter(|&&f| f).count()
    }

    /// The device holding the model's parameters, where inputs are moved before running.
    pub fn device(&self) -> Option<Device> {
        self.model
            .layers
            .iter()
            .flatten()
            .next()
            .map(|layer| match layer {
                Layer::Conv2d(c) => c.weight.device(),
                Layer::BatchNorm(b) => b.gamma.device(),
                Layer::Linear(l) => l.weight.device(),
            })
    }

    /// Checks an input shape against the model without computing anything; returns the
    /// shape of every requested output, in request order.
    pub fn check_input(&self, shape: &[usize]) -> Result<Vec<Vec<usize>>> {
        let shapes = self.infer_shapes(shape)?;
        Ok(self
            .outputs
            .iter()
            .map(|r| shapes[r.node.0].clone())
            .collect())
    }

    fn infer_shapes(&self, shape: &[usize]) -> Result<Vec<Vec<usize>>> {
        let invalid = |reason: String| ExtractError::InvalidInput {
            model: self.model.name.clone(),
            found: shape.to_vec(),
            reason,
        };
        let spec = self.model.input;
        if let (Some([h, w]), [_, _, ih, iw]) = (spec.size, shape)
            && (*ih != h || *iw != w)
        {
            return Err(invalid(format!(
                "expected [N, {}, {h}, {w}]: this model only accepts {h}x{w} inputs",
                spec.channels
            )));
        }
        self.model
            .graph
            .infer_shapes(shape)
            .map_err(|e| invalid(e.to_string()))
    }

    /// Runs the extractor on a batch `x` of shape `[N, 3, H, W]`.
    ///
    /// The input is checked before any compute. It is moved to the model's device if it is
    /// elsewhere. An empty request returns an empty result without computing.
    pub fn forward(&self, x: Tensor<4>) -> Result<Features> {
        if self.outputs.is_empty() {
            return Ok(Features::default());
        }
        let dims = x.dims();
        if x.dtype() != DType::F32 {
            return Err(ExtractError::InvalidInput {
                model: self.model.name.clone(),
                found: dims.to_vec(),
                reason: format!("expected float32 values, got {:?}", x.dtype()),
            });
        }
        let shapes = self.infer_shapes(&dims)?;
        let x = match self.device() {
            Some(device) if x.device() != device => x.to_device(&device),
            _ => x,
        };
        self.execute(Feature::Map(x), &shapes)
    }

    fn execute(&self, input: Feature, shapes: &[Vec<usize>]) -> Result<Features> {
        let nodes = self.model.graph.nodes();
        let mut slots: Vec<Option<Feature>> = vec![None; nodes.len()];
        let mut results: Vec<Option<Feature>> = vec![None; self.outputs.len()];
        let mut input = Some(input);
        for &id in &self.plan.steps {
            let node = &nodes[id.0];
            let args = if self.plan.inputs[id.0].is_empty() {
                vec![input.take().ok_or_else(|| ExtractError::Internal {
                    node: node.name.clone(),
                    reason: "more than one placeholder".into(),
                })?]
            } else {
                self.take_inputs(id, &mut slots)?
            };
            let relu = self.plan.fused_relu[id.0];
            let value = match &self.plan.folded[id.0] {
                Some(folded) => match args.into_iter().next() {
                    Some(Feature::Map(x)) => Feature::Map(folded.forward(x, relu)),
                    _ => {
                        return Err(ExtractError::Internal {
                            node: node.name.clone(),
                            reason: "a folded convolution needs one rank-4 input".into(),
                        });
                    }
                },
                // The producer already applied this ReLU.
                None if self.plan.passes_on(&self.model.graph, id) => args
                    .into_iter()
                    .next()
                    .ok_or_else(|| ExtractError::Internal {
                        node: node.name.clone(),
                        reason: "no input value".into(),
                    })?,
                None => match self.try_cpu_conv(id, args, relu) {
                    Ok(value) => value,
                    Err(args) => {
                        let layer = self.model.layers.get(id.0).and_then(Option::as_ref);
                        let value = run_node(node, layer, args, &shapes[id.0], self.mode)?;
                        if relu { value.relu() } else { value }
                    }
                },
            };
            for &pos in &self.plan.outputs_at[id.0] {
                results[pos] = Some(value.clone());
            }
            if self.plan.last_reader[id.0].is_some() {
                slots[id.0] = Some(value);
            }
        }
        let mut features = Features::with_capacity(self.outputs.len());
        for (r, value) in self.outputs.iter().zip(results) {
            let value = value.ok_or_else(|| ExtractError::Internal {
                node: r.node_name.clone(),
                reason: "requested node was not computed".into(),
            })?;
            features.push(r.key.clone(), value);
        }
        Ok(features)
    }

    /// Runs convolution `id` on the CPU kernel (through ReLU when `relu`) when it has one and
    /// its input suits it; otherwise hands the arguments back for the general path.
    fn try_cpu_conv(
        &self,
        id: NodeId,
        mut args: Vec<Feature>,
        relu: bool,
    ) -> std::result::Result<Feature, Vec<Feature>> {
        let Some(cpu) = &self.plan.cpu_convs[id.0] else {
            return Err(args);
        };
        match (args.len(), args.pop()) {
            (1, Some(Feature::Map(x))) => cpu
                .forward(x, relu)
                .map(Feature::Map)
                .map_err(|x| vec![Feature::Map(x)]),
            (_, last) => {
                args.extend(last);
                Err(args)
            }
        }
    }

    /// The input values of node `id`: moved out of their slot at their last read (so the
    /// backend may reuse the buffer), cloned (a reference count) otherwise.
    fn take_inputs(&self, id: NodeId, slots: &mut [Option<Feature>]) -> Result<Vec<Feature>> {
        let inputs = &self.plan.inputs[id.0];
        let mut args = Vec::with_capacity(inputs.len());
        for (k, input) in inputs.iter().enumerate() {
            let last =
                self.plan.last_reader[input.0] == Some(id) && !inputs[k + 1..].contains(input);
            let value = if last {
                slots[input.0].take()
            } else {
                slots[input.0].clone()
            };
            args.push(value.ok_or_else(|| ExtractError::Internal {
                node: self.model.graph.nodes()[id.0].name.clone(),
                reason: format!("input node {} has no value", input.0),
            })?);
        }
        Ok(args)
    }
}
