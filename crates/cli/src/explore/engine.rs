//! The model side of the explorer: node outputs for an image, the pictures of them, CAMs.
//! Everything here runs on the compute thread ([`super::pool`]) and draws with the same
//! functions as `featx viz` and `featx cam`, so a picture's bytes equal the command's.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use burn::prelude::Device;
use featx_cam::{Cam, Method, Target};
use featx_extract::{FeatureExtractor, Mode, ReturnNodes, one_pass_nodes, resolve_nodes};
use featx_models::TracedModel;
use featx_models::registry::Published;
use featx_preprocess::Preprocess;
use featx_viz::diagram::DiagramNode;
use image::RgbImage;
use serde::Serialize;

use super::cache::{Cache, Entry, Output};
use super::images::{ImageItem, Images};
use crate::commands::cam::{Explained, picture as cam_picture};
use crate::commands::explore::ExploreArgs;
use crate::error::CliError;
use crate::input::load_batch;
use crate::model::{InputShape, ModeArg, ModelArgs, Weights};
use crate::picture::{self, PictureOptions};

/// Why the engine cannot answer.
#[derive(Debug)]
pub(crate) enum EngineError {
    /// No image with that id.
    NoImage(String),
    /// The model or the request failed (an unknown node, a picture of a non-map).
    Cli(CliError),
}

impl From<CliError> for EngineError {
    fn from(e: CliError) -> Self {
        EngineError::Cli(e)
    }
}

type Result<T> = std::result::Result<T, EngineError>;

/// What the server learns once, when the model is loaded.
pub(crate) struct Ready {
    /// `featx nodes --format json` of the model.
    pub nodes_json: String,
    /// The graph, for `/api/graph.svg`.
    pub diagram: Vec<DiagramNode>,
    /// `/api/info`'s model part.
    pub info: ModelInfo,
}

/// The model as `/api/info` describes it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ModelInfo {
    /// The registry name or the ONNX file.
    pub model: String,
    /// Where the weights came from.
    pub weights: String,
    /// Whether class indices have ImageNet's names.
    pub imagenet: bool,
}

/// A class of `/api/top5`.
#[derive(Debug, Serialize)]
pub(crate) struct Class {
    index: usize,
    label: Option<&'static str>,
    logit: f32,
    prob: f32,
}

/// `/api/stats`.
#[derive(Debug, Serialize)]
pub(crate) struct Stats {
    node: String,
    shape: Vec<usize>,
    min: f32,
    max: f32,
    mean: f64,
    zeros: f64,
    channels: usize,
}

/// The model, its extractors and the kept outputs.
pub(crate) struct Engine {
    model: ModelArgs,
    traced: TracedModel,
    device: Device,
    pipeline: Preprocess,
    /// The extractor of every node one pass gives as single requests do (built on first use).
    pass: Option<FeatureExtractor>,
    pass_nodes: HashSet<String>,
    /// Extractors of single nodes outside the pass, most recently used last.
    alone: Vec<(String, FeatureExtractor)>,
    cache: Cache,
    images: Arc<Images>,
    classes: Option<&'static Published>,
}

/// Single-node extractors kept: each holds its folded weights.
const ALONE_KEPT: usize = 4;

impl Engine {
    /// Loads the model as the other commands do.
    pub(crate) fn new(
        args: &ExploreArgs,
        images: Arc<Images>,
        used: Arc<AtomicUsize>,
    ) -> std::result::Result<(Engine, Ready), CliError> {
        let model = args.model.clone();
        let weights = model.weights()?.clone();
        let device = model.device()?;
        let pipeline = args.preprocess.pipeline(model.preprocessing()?);
        let traced = model.traced(&weights, InputShape::new(1, pipeline.crop))?;
        let mode = match model.mode {
            ModeArg::Eval => Mode::Eval,
            ModeArg::Train => Mode::Train,
        };
        let (train_nodes, eval_nodes) = traced.node_names();
        // A session runs one mode: its graph is that mode's (GoogLeNet's aux heads in train).
        let traced = traced.in_mode(mode).clone();
        let nodes_json = crate::commands::nodes::nodes_json(&traced, train_nodes, eval_nodes)?;
        let diagram = crate::commands::graph::diagram_nodes(&traced)?;
        // One pass is exact on the CPU; a GPU's fused residual adds would make its values
        // depend on the request, so there every node is its own request.
        let pass_nodes = if device == Device::flex() {
            one_pass_nodes(&traced, mode)
                .0
                .into_iter()
                .map(|id| traced.graph.nodes()[id.0].name.clone())
                .collect()
        } else {
            HashSet::new()
        };
        let classes = match (&weights, model.model.architecture()) {
            (Weights::Imagenet, Some(arch)) => arch.weights.as_ref(),
            _ => None,
        };
        let info = ModelInfo {
            model: model.model.name(),
            weights: model.weights_label(),
            imagenet: classes.is_some(),
        };
        let limit = usize::try_from(args.cache_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let mut engine = Engine {
            model,
            traced,
            device,
            pipeline,
            pass: None,
            pass_nodes,
            alone: Vec::new(),
            cache: Cache::new(limit, used),
            images,
            classes,
        };
        // Folding and weight packing happen here rather than in the first click.
        engine.build_pass()?;
        if let Some(pass) = &engine.pass {
            pass.plan_report();
        }
        Ok((
            engine,
            Ready {
                nodes_json,
                diagram,
                info,
            },
        ))
    }

    /// The one-pass extractor, built once.
    fn build_pass(&mut self) -> std::result::Result<(), CliError> {
        if self.pass.is_none() && !self.pass_nodes.is_empty() {
            let mut names: Vec<&String> = self.pass_nodes.iter().collect();
            names.sort_by_key(|n| self.traced.graph.find(n).map(|id| id.0));
            let request = ReturnNodes::from(names.into_iter().cloned().collect::<Vec<_>>());
            self.pass = Some(
                self.model
                    .build(self.traced.clone(), &request, &self.device)?,
            );
        }
        Ok(())
    }

    /// The node `query` resolves to, and the label pictures give it.
    pub(crate) fn resolve(&self, query: &str) -> Result<(String, String, Vec<usize>)> {
        let query = query.trim();
        if query.is_empty() || query.contains(',') {
            return Err(CliError::Usage("name one node: a node name or module path".into()).into());
        }
        let request = ReturnNodes::parse(query).map_err(CliError::from)?;
        let resolved = resolve_nodes(&self.traced, &request).map_err(CliError::from)?;
        let r = resolved
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Usage("name one node".into()))?;
        let [h, w] = self
            .traced
            .input
            .size
            .unwrap_or(self.traced.input.nominal_size);
        let shapes = self
            .traced
            .graph
            .infer_shapes(&[1, self.traced.input.channels, h, w])
            .map_err(CliError::from)?;
        Ok((
            picture::label(&r.key, &r.node_name),
            r.node_name,
            shapes.get(r.node.0).cloned().unwrap_or_default(),
        ))
    }

    /// The output of the node `query` names for image `image`, with its label and the image
    /// the model saw: from the kept outputs, or by a forward (one pass over every node it
    /// gives, or the node's own request).
    fn output(&mut self, image: &str, query: &str) -> Result<Looked> {
        let item = self
            .images
            .get(image)
            .ok_or_else(|| EngineError::NoImage(image.to_string()))?;
        let (label, node, _) = self.resolve(query)?;
        let mut entry = self.cache.take(&item.id);
        let filled = self.fill(&item, &node, &mut entry);
        let output = entry.outputs.get(&node).cloned();
        let image = entry.image.clone();
        self.cache.put(&item.id, entry);
        filled?;
        let output = output
            .ok_or_else(|| CliError::Usage(format!("{node} was not computed for {}", item.name)))?;
        Ok(Looked {
            label,
            node,
            output,
            image,
        })
    }

    fn fill(&mut self, item: &ImageItem, node: &str, entry: &mut Entry) -> Result<()> {
        if entry.outputs.contains_key(node) {
            return Ok(());
        }
        let one_pass = self.pass_nodes.contains(node) && !entry.passed;
        let extractor = if one_pass {
            self.build_pass()?;
            self.pass.as_ref()
        } else {
            if let Some(i) = self.alone.iter().position(|(n, _)| n == node) {
                let kept = self.alone.remove(i);
                self.alone.push(kept);
            } else {
                let request = ReturnNodes::from(vec![node.to_string()]);
                let extractor = self
                    .model
                    .build(self.traced.clone(), &request, &self.device)?;
                if self.alone.len() >= ALONE_KEPT {
                    self.alone.remove(0);
                }
                self.alone.push((node.to_string(), extractor));
            }
            self.alone.last().map(|(_, e)| e)
        }
        .ok_or_else(|| CliError::Usage("no extractor".into()))?;
        let batch = load_batch(
            std::slice::from_ref(&item.path),
            &self.pipeline,
            extractor,
            &self.device,
        )?;
        let features = extractor.forward(batch.tensor).map_err(CliError::from)?;
        for (key, feature) in features.iter() {
            let values = feature.to_vec_f32().map_err(CliError::from)?;
            let output = Output {
                shape: feature.dims(),
                values,
            };
            entry.outputs.insert(key.to_string(), Arc::new(output));
        }
        if entry.image.is_none() {
            entry.image = batch.images.into_iter().next();
        }
        entry.passed |= one_pass;
        Ok(())
    }

    /// The PNG `featx viz` draws for `query` on `image` with `options`; with `with`, a
    /// heatmap on one colour scale with that image's.
    pub(crate) fn picture(
        &mut self,
        image: &str,
        query: &str,
        mut options: PictureOptions,
        with: Option<&str>,
    ) -> Result<Vec<u8>> {
        let a = self.output(image, query)?;
        let layout = self.layout(&a.node);
        if let Some(other) = with {
            let b = self.output(other, query)?;
            options.scale = Some(picture::shared_scale(
                options.reduce,
                layout,
                &[
                    (&a.output.shape, &a.output.values),
                    (&b.output.shape, &b.output.values),
                ],
            )?);
        }
        let figure = picture::draw(
            &options,
            &a.output.shape,
            layout,
            &a.output.values,
            &a.label,
            a.image.as_ref(),
        )?;
        Ok(figure.png_bytes().map_err(CliError::from)?)
    }

    /// The node's output as a float32 `.npy` file, and the node's name.
    pub(crate) fn features(&mut self, image: &str, query: &str) -> Result<(String, Vec<u8>)> {
        let a = self.output(image, query)?;
        let npy = featx_output::npy_bytes(&a.output.shape, &a.output.values).map_err(|e| {
            CliError::Output {
                path: "npy".into(),
                reason: e.to_string(),
            }
        })?;
        Ok((a.node, npy))
    }

    /// Where node `node` keeps its channels (the graph's [`featx_graph::Graph::layout`]).
    fn layout(&self, node: &str) -> featx_graph::Layout {
        let graph = &self.traced.graph;
        graph
            .find(node)
            .map(|id| graph.layout(id))
            .unwrap_or_default()
    }

    /// Shape and value statistics of the node's output; `channels` are those of the map a
    /// picture draws (a token's or a channels-last map's last axis).
    pub(crate) fn stats(&mut self, image: &str, query: &str) -> Result<Stats> {
        let a = self.output(image, query)?;
        let shape = &a.output.shape;
        let channels = featx_graph::MapView::of(shape, self.layout(&a.node))
            .and_then(|view| view.map_shape(shape))
            .map_or(shape.get(1).copied().unwrap_or(1), |[_, c, _, _]| c);
        let values = &a.output.values;
        let (mut min, mut max, mut sum, mut zeros) = (f32::INFINITY, f32::NEG_INFINITY, 0f64, 0);
        for &v in values {
            min = min.min(v);
            max = max.max(v);
            sum += f64::from(v);
            zeros += usize::from(v == 0.0);
        }
        let n = values.len().max(1) as f64;
        Ok(Stats {
            node: a.node,
            channels,
            shape: a.output.shape.clone(),
            min,
            max,
            mean: sum / n,
            zeros: zeros as f64 / n,
        })
    }

    /// The five highest-scoring classes of the model's output for `image`.
    pub(crate) fn top5(&mut self, image: &str) -> Result<Vec<Class>> {
        let output = self.traced.graph.nodes()[self.traced.graph.output().0]
            .name
            .clone();
        let a = self.output(image, &output)?;
        let logits = &a.output.values;
        if a.output.shape.len() != 2 || logits.is_empty() {
            return Err(CliError::Usage(format!(
                "the model's output {output} has shape {:?}, not one score per class",
                a.output.shape
            ))
            .into());
        }
        let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f64 = logits.iter().map(|&l| f64::from(l - top).exp()).sum();
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        Ok(order
            .into_iter()
            .take(5)
            .map(|index| Class {
                index,
                label: self.classes.and_then(|p| p.class_name(index)),
                logit: logits[index],
                prob: (f64::from(logits[index] - top).exp() / total) as f32,
            })
            .collect())
    }

    /// The PNG `featx cam` draws for `image` at `query` with `method` and `target`.
    pub(crate) fn cam(
        &mut self,
        image: &str,
        query: &str,
        method: &'static Method,
        target: Target,
    ) -> Result<Vec<u8>> {
        if matches!(self.model.mode, ModeArg::Train) {
            return Err(CliError::Usage("a CAM explains the model in eval mode".into()).into());
        }
        if self.model.precision != featx_extract::Precision::F32 {
            return Err(
                CliError::Usage("a CAM's gradients are computed in f32 only".into()).into(),
            );
        }
        let item = self
            .images
            .get(image)
            .ok_or_else(|| EngineError::NoImage(image.to_string()))?;
        let query = query.trim();
        let mut cam = Cam::new(self.traced.clone(), &[query]).map_err(CliError::from)?;
        if self.device != Device::flex() {
            cam = cam.to_device(&self.device).map_err(CliError::from)?;
        }
        let batch = load_batch(
            std::slice::from_ref(&item.path),
            &self.pipeline,
            cam.extractor(),
            &self.device,
        )?;
        let [_, _, h, w] = batch.tensor.dims();
        let output = cam
            .run(method, batch.tensor, target)
            .map_err(CliError::from)?;
        let base: Vec<f32> = batch
            .images
            .first()
            .map(|im| im.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect())
            .unwrap_or_default();
        let nodes = cam.layers().join(",");
        let figure = cam_picture(
            &Explained {
                method,
                model: &self.model.model.name(),
                nodes: &nodes,
                class: self.classes.and_then(|p| p.class_name(output.targets[0])),
            },
            &output,
            0,
            &base,
            [w, h],
        )?;
        Ok(figure.png_bytes().map_err(CliError::from)?)
    }
}

/// A node's output for an image, as a picture needs it.
struct Looked {
    label: String,
    node: String,
    output: Arc<Output>,
    image: Option<RgbImage>,
}
