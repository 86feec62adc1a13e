use std::sync::OnceLock;

use burn::prelude::*;
use burn::tensor::DType;
use featx_models::TracedModel;

use crate::Mode;
use crate::device::max_buffer_bytes;
use crate::execute::execute;
use crate::kernel::GpuKernels;
use crate::layers::{model_device, move_layer, tensor_bytes};
use crate::plan::{Plan, Settings, Tape};
use crate::resolve::resolve;
use crate::{ExtractError, Feature, Features, Precision, Resolved, Result, ReturnNodes};

/// What an extractor's plan runs ([`FeatureExtractor::plan_report`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanReport {
    /// How many graph nodes one run executes (the placeholder included; a convolution folded
    /// into its BatchNorm, or an add into its convolution, counts as part of it).
    pub planned_nodes: usize,
    /// How many convolutions run folded into the BatchNorm after them.
    pub folded_convolutions: usize,
    /// How many per-channel scales of a Linear layer's permuted output run folded into its
    /// weights (ConvNeXt's `layer_scale`; the permute and the parameter count as part of it).
    pub folded_scales: usize,
    /// How many ReLUs run inside the kernel of the node they read.
    pub fused_relus: usize,
    /// How many adds run inside the convolution that produces one of their inputs (a ResNet
    /// block's residual add, where featx's CPU or GPU convolution runs it).
    pub fused_adds: usize,
    /// Each planned step as `(node name, kernel name)`, in execution order: which kernel the
    /// planner chose where (`cpu-winograd`, `cpu-direct`, `cpu-gemm`, `cpu-depthwise`, `cpu-batch-norm`,
    /// `cpu-squeeze-excitation`, `cpu-linear`, `cpu-max-pool`, `gpu-implicit-gemm`,
    /// `gpu-cooperative`, `burn`, `pass-through`).
    pub kernels: Vec<(String, &'static str)>,
}

impl PlanReport {
    /// Whether `node` runs on the kernel named `kernel`.
    pub fn ran_on(&self, node: &str, kernel: &str) -> bool {
        self.kernels.iter().any(|(n, k)| n == node && *k == kernel)
    }

    /// How many planned steps run on the kernel named `kernel`.
    pub fn count(&self, kernel: &str) -> usize {
        self.kernels.iter().filter(|(_, k)| *k == kernel).count()
    }
}

/// Returns the outputs of chosen nodes of a traced model.
///
/// Built by [`crate::create_feature_extractor`]: the request is resolved to nodes, then planned
/// (which nodes run, on which kernel, freed when), then each call replays the plan. Running it
/// executes only the nodes the requested outputs depend on, in execution order, and frees every
/// intermediate right after its last reader.
#[derive(Debug, Clone)]
pub struct FeatureExtractor {
    /// The recording the current mode runs.
    pub(crate) model: TracedModel,
    pub(crate) outputs: Vec<Resolved>,
    /// A requested node the current mode's graph lacks (a train-only node after switching to
    /// eval mode): running is then [`ExtractError::ModeOnly`].
    missing: Option<String>,
    /// For a model whose graph depends on the mode (GoogLeNet's auxiliary heads run in
    /// training only): the other mode's recording with the request resolved in it, which
    /// [`FeatureExtractor::with_mode`] swaps in, as torchvision's extractor keeps a graph per
    /// mode.
    other: Option<Box<ModeGraph>>,
    /// The plans of a forward pass, and of backward passes from the input and from the
    /// requested nodes, each made on first use (folding and weight packing happen once per
    /// plan) and dropped when the device, mode, precision or GPU kernels change: a chain of
    /// such changes before the first run plans once, on the final device.
    plans: [OnceLock<Plan>; 3],
    /// Mode, precision (returned values are float32 always) and GPU kernels.
    settings: Settings,
    /// Where the parameters of the nodes it runs live and inputs are moved.
    pub(crate) device: Device,
}

/// One mode's recording and the request resolved in it (see [`FeatureExtractor::with_mode`]).
#[derive(Debug, Clone)]
struct ModeGraph {
    model: TracedModel,
    outputs: Vec<Resolved>,
    /// The first query this recording has no node for.
    missing: Option<String>,
}

impl FeatureExtractor {
    /// Resolves `request` against `model` and plans the execution in eval mode.
    ///
    /// Fails on an unknown query or a duplicate key, and on a traced model whose parameter
    /// nodes lack their layers (a model bug). A node of the train-mode graph only (GoogLeNet's
    /// `aux1`) is [`ExtractError::ModeOnly`]: ask for it with [`FeatureExtractor::new_in`] in
    /// train mode.
    pub fn new(model: TracedModel, request: &ReturnNodes) -> Result<Self> {
        Self::new_in(model, request, Mode::Eval)
    }

    /// Resolves `request` against `model`'s graph in `mode` and plans the execution in that
    /// mode, as torchvision's `create_feature_extractor` traces a graph per mode. A query the
    /// graph of `mode` lacks is [`ExtractError::ModeOnly`] when the other mode's graph has it,
    /// else [`ExtractError::UnknownNode`]. A query only this mode's graph has is fine: the
    /// extractor then fails with [`ExtractError::ModeOnly`] if switched to the other mode
    /// and run.
    pub fn new_in(model: TracedModel, request: &ReturnNodes, mode: Mode) -> Result<Self> {
        let (eval, train) = model.into_modes();
        let (model, other) = match (mode, train) {
            (Mode::Train, Some(train)) => (train, Some(eval)),
            (Mode::Eval, Some(train)) => (eval, Some(train)),
            (_, None) => (eval, None),
        };
        check_layers(&model)?;
        let outputs = match resolve(&model.graph, &model.name, request) {
            Err(ExtractError::UnknownNode { query, .. })
                if other.as_ref().is_some_and(|o| has_node(o, &query)) =>
            {
                return Err(ExtractError::ModeOnly {
                    node: query,
                    model: model.name.clone(),
                    mode: other_mode(mode),
                });
            }
            resolved => resolved?,
        };
        check_tensors(&model, &outputs)?;
        let other = match other {
            Some(other) => {
                check_layers(&other)?;
                let (outputs, missing) = match resolve(&other.graph, &other.name, request) {
                    Ok(outputs) => {
                        check_tensors(&other, &outputs)?;
                        (outputs, None)
                    }
                    Err(ExtractError::UnknownNode { query, .. }) => (Vec::new(), Some(query)),
                    Err(e) => return Err(e),
                };
                Some(Box::new(ModeGraph {
                    model: other,
                    outputs,
                    missing,
                }))
            }
            None => None,
        };
        let device = model_device(&model).unwrap_or_else(Device::flex);
        Ok(Self {
            model,
            outputs,
            missing: None,
            other,
            plans: Default::default(),
            settings: Settings {
                mode,
                ..Settings::default()
            },
            device,
        })
    }

    /// [`ExtractError::ModeOnly`] if the current mode's graph lacks a requested node.
    fn check_available(&self) -> Result<()> {
        match &self.missing {
            Some(node) => Err(ExtractError::ModeOnly {
                node: node.clone(),
                model: self.model.name.clone(),
                mode: other_mode(self.settings.mode),
            }),
            None => Ok(()),
        }
    }

    /// Drops the plans made so far: the next run plans anew.
    fn replan(&mut self) {
        self.plans = Default::default();
    }

    /// The forward pass's plan.
    fn plan(&self) -> &Plan {
        self.tape_plan(Tape::Off)
    }

    /// The plan that records `tape` (made once).
    pub(crate) fn tape_plan(&self, tape: Tape) -> &Plan {
        let slot = match tape {
            Tape::Off => &self.plans[0],
            Tape::FromInput => &self.plans[1],
            Tape::FromRequested => &self.plans[2],
        };
        slot.get_or_init(|| {
            let model = &self.model;
            Plan::new(
                &model.graph,
                &model.layers,
                &self.outputs,
                &self.device,
                self.settings,
                tape,
            )
        })
    }

    /// The same extractor running on `device`: the parameters of the nodes it runs move
    /// there, the others are never uploaded (extracting `conv1` leaves the classifier's
    /// weights where they are). A needed parameter larger than the device's largest buffer is
    /// [`ExtractError::LayerTooLarge`], found before anything moves; a device that cannot
    /// compute in the extractor's precision is [`ExtractError::PrecisionUnsupported`].
    pub fn to_device(mut self, device: &Device) -> Result<Self> {
        self.settings.precision.check(device)?;
        check_fits(&self.model, &self.outputs, device)?;
        if let Some(other) = &self.other {
            check_fits(&other.model, &other.outputs, device)?;
        }
        move_needed(&mut self.model, &self.outputs, device);
        if let Some(other) = &mut self.other {
            move_needed(&mut other.model, &other.outputs, device);
        }
        self.device = device.clone();
        self.replan();
        Ok(self)
    }

    /// The same extractor in `mode`. Eval mode folds BatchNorms into the convolutions before
    /// them where the convolution's own output is not requested; train mode cannot. A model
    /// whose graph depends on the mode runs that mode's graph; where it lacks a requested node
    /// (GoogLeNet's `aux1` in eval mode), running is [`ExtractError::ModeOnly`].
    pub fn with_mode(mut self, mode: Mode) -> Self {
        if mode != self.settings.mode {
            self.settings.mode = mode;
            if let Some(other) = self.other.as_deref_mut() {
                std::mem::swap(&mut self.model, &mut other.model);
                std::mem::swap(&mut self.outputs, &mut other.outputs);
                std::mem::swap(&mut self.missing, &mut other.missing);
            }
            self.replan();
        }
        self
    }

    /// The same extractor computing in `precision` on its device: parameters are cast once
    /// (after BatchNorm folding, which stays float32), inputs as they arrive, and returned
    /// values back to float32. Move it to its device first: a precision the device cannot
    /// compute in (any reduced one on the CPU) is [`ExtractError::PrecisionUnsupported`].
    pub fn with_precision(mut self, precision: Precision) -> Result<Self> {
        precision.check(&self.device)?;
        if precision != self.settings.precision {
            self.settings.precision = precision;
            self.replan();
        }
        Ok(self)
    }

    /// The precision it computes in.
    pub fn precision(&self) -> Precision {
        self.settings.precision
    }

    /// The same extractor running `gpu_kernels`' convolutions on GPU devices (featx's own by
    /// default); devices without featx's GPU kernels (the CPU) are unaffected.
    pub fn with_gpu_kernels(mut self, gpu_kernels: GpuKernels) -> Self {
        if gpu_kernels != self.settings.gpu_kernels {
            self.settings.gpu_kernels = gpu_kernels;
            self.replan();
        }
        self
    }

    /// Whose convolutions it runs on GPU devices.
    pub fn gpu_kernels(&self) -> GpuKernels {
        self.settings.gpu_kernels
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.settings.mode
    }

    /// The traced model this extractor runs: the recording of its current mode.
    pub fn model(&self) -> &TracedModel {
        &self.model
    }

    /// Requested outputs in request order, with the nodes they resolved to.
    pub fn outputs(&self) -> &[Resolved] {
        &self.outputs
    }

    /// What one run executes and how the planner rewrote it: node counts, folds, fusions and
    /// the kernel of every step. Planning happens here if no run has planned yet.
    pub fn plan_report(&self) -> PlanReport {
        let plan = self.plan();
        let nodes = self.model.graph.nodes();
        PlanReport {
            planned_nodes: plan.steps.len()
                + plan.folded
                + plan.fused_adds
                + 2 * plan.folded_scales,
            folded_convolutions: plan.folded,
            folded_scales: plan.folded_scales,
            fused_relus: plan.fused_relus,
            fused_adds: plan.fused_adds,
            kernels: plan
                .steps
                .iter()
                .map(|s| (nodes[s.node.0].name.clone(), s.kernel.name()))
                .collect(),
        }
    }

    /// The device holding the parameters of the nodes it runs, where inputs are moved before
    /// running.
    pub fn device(&self) -> &Device {
        &self.device
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

    pub(crate) fn infer_shapes(&self, shape: &[usize]) -> Result<Vec<Vec<usize>>> {
        self.check_available()?;
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
        self.check_available()?;
        if self.outputs.is_empty() {
            return Ok(Features::default());
        }
        let (x, shapes) = self.accept(x)?;
        let executed = execute(
            self.plan(),
            &self.model.graph,
            Feature::from(x),
            &shapes,
            self.outputs.len(),
        )?;
        self.collect(executed.values)
    }

    /// `x` checked (float32, a shape the model takes) and on the extractor's device, with
    /// every node's shape for it.
    pub(crate) fn accept(&self, x: Tensor<4>) -> Result<(Tensor<4>, Vec<Vec<usize>>)> {
        let dims = x.dims();
        if x.dtype() != DType::F32 {
            return Err(ExtractError::InvalidInput {
                model: self.model.name.clone(),
                found: dims.to_vec(),
                reason: format!("expected float32 values, got {:?}", x.dtype()),
            });
        }
        let shapes = self.infer_shapes(&dims)?;
        let x = if x.device() != self.device {
            x.to_device(&self.device)
        } else {
            x
        };
        Ok((self.settings.precision.cast(x), shapes))
    }

    /// The requested values, keyed in request order.
    pub(crate) fn collect(&self, values: Vec<Option<Feature>>) -> Result<Features> {
        let mut features = Features::with_capacity(self.outputs.len());
        for (r, value) in self.outputs.iter().zip(values) {
            let value = value.ok_or_else(|| ExtractError::Internal {
                node: r.node_name.clone(),
                reason: "requested node was not computed".into(),
            })?;
            let value = value.map_float(Precision::F32);
            features.push(r.key.clone(), value);
        }
        Ok(features)
    }
}

/// The mode that is not `mode`.
fn other_mode(mode: Mode) -> Mode {
    match mode {
        Mode::Eval => Mode::Train,
        Mode::Train => Mode::Eval,
    }
}

/// Whether `query` names a node or module of `model`'s graph.
fn has_node(model: &TracedModel, query: &str) -> bool {
    let graph = &model.graph;
    graph
        .find(query)
        .or_else(|| graph.find_module(query))
        .is_some()
}

/// [`ExtractError::LayerTooLarge`] if a parameter `outputs` need is larger than `device`'s
/// largest buffer.
fn check_fits(model: &TracedModel, outputs: &[Resolved], device: &Device) -> Result<()> {
    let Some(limit) = max_buffer_bytes(device) else {
        return Ok(());
    };
    let targets: Vec<_> = outputs.iter().map(|r| r.node).collect();
    let needed = model.graph.needed_for(&targets);
    let nodes = model.graph.nodes();
    for (i, layer) in model.layers.iter().enumerate() {
        let Some(layer) = layer.as_ref().filter(|_| needed[i]) else {
            continue;
        };
        for (tensor, bytes) in tensor_bytes(layer) {
            if bytes > limit {
                return Err(ExtractError::LayerTooLarge {
                    layer: nodes[i].name.clone(),
                    tensor,
                    bytes,
                    limit,
                });
            }
        }
    }
    Ok(())
}

/// Moves the parameters of the nodes `outputs` need to `device`; the others stay.
fn move_needed(model: &mut TracedModel, outputs: &[Resolved], device: &Device) {
    let targets: Vec<_> = outputs.iter().map(|r| r.node).collect();
    let needed = model.graph.needed_for(&targets);
    for (layer, _) in model.layers.iter_mut().zip(&needed).filter(|(_, n)| **n) {
        *layer = layer.take().map(|l| move_layer(l, device));
    }
}

/// Every requested node is a tensor: FX also records shape checks (`x.shape`, `h == 224`,
/// `torch._assert`) and tuples (attention's `(output, None)`), which are not features.
fn check_tensors(model: &TracedModel, outputs: &[Resolved]) -> Result<()> {
    for r in outputs {
        if let Some(what) = model.graph.non_tensor(r.node) {
            return Err(ExtractError::NotATensor {
                node: r.node_name.clone(),
                what: what.to_string(),
            });
        }
    }
    Ok(())
}

/// Every parameter op has a layer of its kind: a [`featx_models::Tracer`] guarantees it, a
/// hand-built [`TracedModel`] may not.
fn check_layers(model: &TracedModel) -> Result<()> {
    for (i, node) in model.graph.nodes().iter().enumerate() {
        let layer = model.layers.get(i).and_then(Option::as_ref);
        if !node.op.def().fits(layer) {
            return Err(ExtractError::Internal {
                node: node.name.clone(),
                reason: format!("no {} parameters were traced for this node", node.op.name()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
