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
    /// How many ReLUs run inside the kernel of the node they read.
    pub fused_relus: usize,
    /// How many adds run inside the convolution that produces one of their inputs (a ResNet
    /// block's residual add, on GPU devices running featx's kernels).
    pub fused_adds: usize,
    /// Each planned step as `(node name, kernel name)`, in execution order: which kernel the
    /// planner chose where (`cpu-winograd`, `cpu-gemm`, `cpu-depthwise`, `cpu-linear`,
    /// `cpu-max-pool`, `gpu-implicit-gemm`, `gpu-cooperative`, `burn`, `pass-through`).
    pub kernels: Vec<(String, &'static str)>,
}

impl PlanReport {
    /// Whether `node` runs on the kernel named `kernel`.
    pub fn ran_on(&self, node: &str, kernel: &str) -> bool {
        self.kernels.iter().any(|(n, k)| n == node && *k == kernel)
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
            planned_nodes: plan.steps.len() + plan.folded + plan.fused_adds,
            folded_convolutions: plan.folded,
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
mod tests {
    use burn::module::Param;
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;
    use featx_graph::NodeId;
    use featx_models::{FeatureModel, InputSpec, Tracer};

    use super::*;

    /// A ViT-shaped toy: a 1x1 "patch" convolution, flattened to `[N, C, tokens]`, permuted to
    /// `[N, tokens, C]`, and a linear head over each token.
    struct Tokens {
        conv: Conv2d,
        head: Linear,
    }

    impl FeatureModel for Tokens {
        fn name(&self) -> &str {
            "tokens"
        }

        fn input_spec(&self) -> InputSpec {
            InputSpec {
                channels: 2,
                size: None,
                nominal_size: [2, 2],
            }
        }

        fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
            let x = t.conv2d("conv_proj", &self.conv, x);
            let x = t.flatten(x, 2);
            let x = t.permute(x, &[0, 2, 1]);
            t.linear("head", &self.head, x)
        }
    }

    fn tokens(device: &Device) -> Tokens {
        fn tensor<const D: usize>(
            values: Vec<f32>,
            shape: [usize; D],
            device: &Device,
        ) -> Param<Tensor<D>> {
            Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
        }
        let mut conv = Conv2dConfig::new([2, 3], [1, 1])
            .with_bias(false)
            .init(device);
        // out0 = c0, out1 = c1, out2 = c0 + c1.
        conv.weight = tensor(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], [3, 2, 1, 1], device);
        let mut head = LinearConfig::new(3, 2).init(device);
        // burn's [in, out] layout: y0 = t0 + t2 + 0.5, y1 = t1 - t2.
        head.weight = tensor(vec![1.0, 0.0, 0.0, 1.0, 1.0, -1.0], [3, 2], device);
        head.bias = Some(tensor(vec![0.5, 0.0], [2], device));
        Tokens { conv, head }
    }

    #[test]
    fn rank3_token_features_extract_with_hand_computed_values() {
        let device = Device::flex();
        let model = tokens(&device);
        let request = ReturnNodes::from(["permute", "head", "flatten"].as_slice());
        let extractor = FeatureExtractor::new(model.trace(), &request).expect("resolves");
        assert_eq!(
            extractor.check_input(&[1, 2, 2, 2]).expect("fits"),
            [vec![1, 4, 3], vec![1, 4, 2], vec![1, 3, 4]]
        );
        // Channel 0 holds 1..4 over the four pixels, channel 1 holds 10..40.
        let x = Tensor::<4>::from_data(
            TensorData::new(
                vec![1.0f32, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0],
                [1, 2, 2, 2],
            ),
            &device,
        );
        let out = extractor.forward(x).expect("runs");
        let values = |key: &str| {
            let f = out.get(key).expect("requested");
            (f.dims(), f.to_vec_f32().expect("f32"))
        };
        // Token p is [c0, c1, c0 + c1] of pixel p.
        assert_eq!(
            values("permute"),
            (
                vec![1, 4, 3],
                vec![1., 10., 11., 2., 20., 22., 3., 30., 33., 4., 40., 44.]
            )
        );
        // Per token: [c0 + (c0 + c1) + 0.5, c1 - (c0 + c1)] = [2 c0 + c1 + 0.5, -c0].
        assert_eq!(
            values("head"),
            (
                vec![1, 4, 2],
                vec![12.5, -1., 24.5, -2., 36.5, -3., 48.5, -4.]
            )
        );
        assert_eq!(
            values("flatten"),
            (
                vec![1, 3, 4],
                vec![1., 2., 3., 4., 10., 20., 30., 40., 11., 22., 33., 44.]
            )
        );
        // The convolution and the Linear head ran on the CPU kernels, the token ops on burn's.
        let report = extractor.plan_report();
        assert!(
            report.ran_on("conv_proj", "cpu-gemm"),
            "{:?}",
            report.kernels
        );
        assert!(report.ran_on("head", "cpu-linear"), "{:?}", report.kernels);
        assert!(report.ran_on("permute", "burn"), "{:?}", report.kernels);
    }

    #[test]
    fn a_token_model_checks_its_input_rank_before_compute() {
        let device = Device::flex();
        let extractor = FeatureExtractor::new(
            tokens(&device).trace(),
            &ReturnNodes::from(["head"].as_slice()),
        )
        .expect("resolves");
        // Rank 3 input: the placeholder wants rank 4.
        let err = extractor.check_input(&[1, 2, 4]).unwrap_err();
        assert!(matches!(err, ExtractError::InvalidInput { .. }), "{err}");
    }

    /// A model whose `forward` branches on `self.training`: train mode records an extra
    /// head (`aux`, a ReLU of the input) before the output, so node ids differ between the
    /// graphs.
    struct WithAux;

    impl FeatureModel for WithAux {
        fn name(&self) -> &str {
            "with_aux"
        }

        fn input_spec(&self) -> InputSpec {
            InputSpec {
                channels: 1,
                size: None,
                nominal_size: [1, 4],
            }
        }

        fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
            self.forward_trace_in(t, x, Mode::Eval)
        }

        fn traces_by_mode(&self) -> bool {
            true
        }

        fn forward_trace_in(&self, t: &mut Tracer, x: NodeId, mode: Mode) -> NodeId {
            if mode == Mode::Train {
                t.relu("aux", x);
            }
            let x = t.mul_scalar(x, 2.0);
            t.add_scalar(x, 1.0)
        }
    }

    #[test]
    fn each_mode_runs_its_own_graph_and_train_only_nodes_say_so() {
        let device = Device::flex();
        let traced = WithAux.trace();
        assert_eq!(
            traced.node_names(),
            (
                vec!["x".into(), "aux".into(), "mul".into(), "add".into()],
                vec!["x".into(), "mul".into(), "add".into()]
            )
        );
        let x = || {
            Tensor::<4>::from_data(
                TensorData::new(vec![-1.0f32, 0.5, 2.0, -3.0], [1, 1, 1, 4]),
                &device,
            )
        };
        let values = |e: &FeatureExtractor, key: &str| {
            let out = e.forward(x()).expect("runs");
            out.get(key).expect("requested").to_vec_f32().expect("f32")
        };
        // Built in eval mode, switched to train: `add` is node 2 in one graph, 3 in the other.
        let both = FeatureExtractor::new(traced.clone(), &ReturnNodes::from(["add"].as_slice()))
            .expect("resolves");
        assert_eq!(values(&both, "add"), [-1.0, 2.0, 5.0, -5.0]);
        let both = both.with_mode(Mode::Train);
        assert_eq!(both.model().graph.names().len(), 4);
        assert_eq!(values(&both, "add"), [-1.0, 2.0, 5.0, -5.0]);
        // `aux` exists in train mode only.
        let err = FeatureExtractor::new(traced.clone(), &ReturnNodes::from(["aux"].as_slice()))
            .unwrap_err();
        assert!(
            matches!(&err, ExtractError::ModeOnly { node, mode: Mode::Train, .. } if node == "aux"),
            "{err}"
        );
        let train =
            FeatureExtractor::new_in(traced, &ReturnNodes::from(["aux"].as_slice()), Mode::Train)
                .expect("resolves in train mode");
        assert_eq!(values(&train, "aux"), [0.0, 0.5, 2.0, 0.0]);
        let eval = train.with_mode(Mode::Eval);
        let err = eval.forward(x()).unwrap_err();
        assert!(matches!(err, ExtractError::ModeOnly { .. }), "{err}");
        assert!(eval.check_input(&[1, 1, 1, 4]).is_err());
        // Back in train mode it runs again.
        assert_eq!(
            values(&eval.with_mode(Mode::Train), "aux"),
            [0.0, 0.5, 2.0, 0.0]
        );
    }

    /// The mobile nets' parameter-free ops on their own: every activation, a broadcasting
    /// product with the per-channel mean, and stochastic depth.
    struct Activations;

    impl FeatureModel for Activations {
        fn name(&self) -> &str {
            "activations"
        }

        fn input_spec(&self) -> InputSpec {
            InputSpec {
                channels: 1,
                size: None,
                nominal_size: [1, 6],
            }
        }

        fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
            use featx_graph::Activation::*;
            for (name, a) in [
                ("relu6", Relu6),
                ("hardswish", Hardswish),
                ("hardsigmoid", Hardsigmoid),
                ("silu", Silu),
                ("sigmoid", Sigmoid),
            ] {
                t.activation(name, a, x);
            }
            let mean = t.functional_adaptive_avg_pool2d([1, 1], x);
            let scaled = t.mul(mean, x);
            t.stochastic_depth("stochastic_depth", 1.0, true, scaled)
        }
    }

    #[test]
    fn activations_mul_and_stochastic_depth_follow_pytorchs_definitions() {
        let device = Device::flex();
        let input = [-7.0f32, -2.0, -0.5, 0.0, 1.5, 8.0];
        let x = || Tensor::<4>::from_data(TensorData::new(input.to_vec(), [1, 1, 1, 6]), &device);
        let nodes = [
            "relu6",
            "hardswish",
            "hardsigmoid",
            "silu",
            "sigmoid",
            "mul",
            "stochastic_depth",
        ];
        let extractor =
            FeatureExtractor::new(Activations.trace(), &ReturnNodes::from(nodes.as_slice()))
                .expect("resolves");
        let out = extractor.forward(x()).expect("runs");
        let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
        let relu6 = |v: f32| v.clamp(0.0, 6.0);
        let mean = input.iter().sum::<f32>() / 6.0;
        type Scalar = Box<dyn Fn(f32) -> f32>;
        let expected: [(&str, Scalar); 6] = [
            ("relu6", Box::new(relu6)),
            ("hardswish", Box::new(move |v| v * relu6(v + 3.0) / 6.0)),
            ("hardsigmoid", Box::new(move |v| relu6(v + 3.0) / 6.0)),
            ("silu", Box::new(move |v| v * sigmoid(v))),
            ("sigmoid", Box::new(sigmoid)),
            ("mul", Box::new(move |v| v * mean)),
        ];
        for (name, f) in &expected {
            let got = out.get(name).expect("requested").to_vec_f32().expect("f32");
            for (g, v) in got.iter().zip(input) {
                assert!((g - f(v)).abs() < 1e-6, "{name}({v}): {g} vs {}", f(v));
            }
        }
        // Eval: stochastic depth is the identity; train with p = 1: every sample dropped.
        let mul = out
            .get("mul")
            .expect("requested")
            .to_vec_f32()
            .expect("f32");
        let sd = out.get("stochastic_depth").expect("requested");
        assert_eq!(sd.to_vec_f32().expect("f32"), mul);
        let train = extractor.with_mode(Mode::Train).forward(x()).expect("runs");
        let dropped = train.get("stochastic_depth").expect("requested");
        assert!(dropped.to_vec_f32().expect("f32").iter().all(|&v| v == 0.0));
    }
}
