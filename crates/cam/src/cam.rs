//! The CAM engine: one extractor for the target layers and the classifier output (run with a
//! backward pass for the gradient methods), one for the output alone (ScoreCAM's masked
//! passes), the class to explain, and the per-method maps turned into pytorch-grad-cam's
//! final maps.

use std::sync::OnceLock;

use burn::prelude::*;
use featx_extract::{Feature, FeatureExtractor, Features, ReturnNodes};
use featx_graph::MapView;
use featx_models::TracedModel;

use crate::method::{Compute, Method};
use crate::scale::{Maps, aggregate, relu, scale};
use crate::{CamError, Result, eigen, score};

/// The output key of the classifier output among the extracted values.
const LOGITS: &str = "logits";

/// Which class's score a CAM explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Each image's highest logit (pytorch-grad-cam's `targets=None`).
    Top,
    /// This class for every image (`ClassifierOutputTarget(class)`).
    Class(usize),
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "top" => Ok(Target::Top),
            n => n
                .parse()
                .map(Target::Class)
                .map_err(|_| format!("'{s}' is neither `top` nor a class index")),
        }
    }
}

/// Class activation maps of a traced classifier at chosen layers.
#[derive(Debug, Clone)]
pub struct Cam {
    /// The target layers and the classifier output.
    maps: FeatureExtractor,
    /// The classifier output alone (the fast forward path), for ScoreCAM's masked passes:
    /// made from `maps`' model on first use, so the other methods never plan it.
    classifier: OnceLock<FeatureExtractor>,
    /// The output node's name.
    output: String,
}

/// One target layer's values for a batch, with their gradients when a backward pass ran.
#[derive(Debug, Clone)]
pub struct LayerValues {
    /// The node the layer query resolved to.
    pub node: String,
    /// The activations, `[N, C, H, W]`.
    pub activations: Feature,
    /// `d score / d activations`, when the method uses gradients.
    pub gradients: Option<Feature>,
}

/// What one run of the model gives the CAM methods: every target layer's values, the
/// logits, and the class explained for each image.
#[derive(Debug, Clone)]
pub struct Activations {
    /// Per target layer, in request order.
    pub layers: Vec<LayerValues>,
    /// The logits, `[N, classes]` row-major.
    pub logits: Vec<f32>,
    /// The class explained for each image.
    pub targets: Vec<usize>,
    /// The input, as the model saw it (ScoreCAM masks it).
    input: Tensor<4>,
}

/// A finished CAM: pytorch-grad-cam's output, one `[0, 1]` map per image at the input size.
#[derive(Debug, Clone)]
pub struct CamOutput {
    /// `[N, H, W]`.
    pub maps: Maps,
    /// The class explained for each image.
    pub targets: Vec<usize>,
    /// That class's logit for each image.
    pub scores: Vec<f32>,
}

impl Cam {
    /// A CAM engine for `model` at `layers` (node queries: names or module paths). Checks at
    /// the model's nominal input size that every layer is a feature map and the output is one
    /// score per class.
    pub fn new(model: TracedModel, layers: &[&str]) -> Result<Self> {
        if layers.is_empty() {
            return Err(CamError::NoLayers);
        }
        let graph = &model.graph;
        let output = graph.nodes()[graph.output().0].name.clone();
        // Layers are keyed by position (a layer may be the output, or be given twice, as
        // pytorch-grad-cam allows), the output by `LOGITS`.
        let request = ReturnNodes::aliased(
            layers
                .iter()
                .enumerate()
                .map(|(i, l)| (l.to_string(), i.to_string()))
                .chain([(output.clone(), LOGITS.to_string())]),
        );
        let [h, w] = model.input.size.unwrap_or(model.input.nominal_size);
        let channels = model.input.channels;
        let cam = Self {
            maps: FeatureExtractor::new(model, &request)?,
            classifier: OnceLock::new(),
            output,
        };
        cam.check(&[1, channels, h, w])?;
        Ok(cam)
    }

    /// The same engine with the layers it runs on `device`.
    pub fn to_device(self, device: &Device) -> Result<Self> {
        Ok(Self {
            maps: self.maps.to_device(device)?,
            classifier: OnceLock::new(),
            output: self.output,
        })
    }

    /// The extractor of the output alone, on `maps`' device.
    fn classifier(&self) -> Result<&FeatureExtractor> {
        if let Some(classifier) = self.classifier.get() {
            return Ok(classifier);
        }
        let request = ReturnNodes::from([&self.output]);
        let built = FeatureExtractor::new(self.maps.model().clone(), &request)?;
        Ok(self.classifier.get_or_init(|| built))
    }

    /// The extractor of the target layers and the output.
    pub fn extractor(&self) -> &FeatureExtractor {
        &self.maps
    }

    /// The target layers' node names, in request order.
    pub fn layers(&self) -> Vec<&str> {
        let outputs = self.maps.outputs();
        outputs[..outputs.len() - 1]
            .iter()
            .map(|r| r.node_name.as_str())
            .collect()
    }

    /// Checks an input shape: every target layer must be a feature map and the output
    /// `[N, classes]`. Returns the number of classes.
    pub fn check(&self, shape: &[usize]) -> Result<usize> {
        let shapes = self.maps.check_input(shape)?;
        let outputs = self.maps.outputs();
        let graph = &self.maps.model().graph;
        for (r, s) in outputs.iter().zip(&shapes).take(outputs.len() - 1) {
            if graph.map_view(r.node, s).is_none() {
                return Err(CamError::NotFeatureMap {
                    node: r.node_name.clone(),
                    shape: s.clone(),
                });
            }
        }
        match shapes.last().map(Vec::as_slice) {
            Some(&[_, classes]) => Ok(classes),
            other => Err(CamError::NoClassifier {
                model: self.maps.model().name.clone(),
                node: self.output.clone(),
                shape: other.map(<[usize]>::to_vec).unwrap_or_default(),
            }),
        }
    }

    /// Runs the model on `x` (`[N, C, H, W]`) once, with a backward pass of the target score
    /// when `gradients` is set: what every method's maps are made from.
    pub fn activations(
        &self,
        x: Tensor<4>,
        target: Target,
        gradients: bool,
    ) -> Result<Activations> {
        let classes = self.check(&x.dims())?;
        if let Target::Class(class) = target
            && class >= classes
        {
            return Err(CamError::ClassOutOfRange { class, classes });
        }
        let (features, grads) = if gradients {
            let backward = self
                .maps
                .feature_gradients(x.clone(), |features| target_score(features, target))?;
            (backward.features, Some(backward.gradients))
        } else {
            (self.maps.forward(x.clone())?, None)
        };
        let logits = match features.get(LOGITS) {
            Some(f) => f.to_vec_f32()?,
            None => Vec::new(),
        };
        let n = x.dims()[0];
        let targets = match target {
            Target::Class(class) => vec![class; n],
            Target::Top => logits.chunks(classes.max(1)).map(argmax).collect(),
        };
        let graph = &self.maps.model().graph;
        let layers = self
            .maps
            .outputs()
            .iter()
            .zip(features.iter())
            .take(features.len() - 1)
            .map(|(r, (key, activations))| {
                let gradients = grads.as_ref().and_then(|g| g.get(key)).cloned();
                // Transformer tokens are read on their patch grid and channels-last maps
                // with their channels first, activations and gradients alike
                // (pytorch-grad-cam's `reshape_transform`).
                match graph.map_view(r.node, &activations.dims()) {
                    Some(view) if view != MapView::Map => {
                        let map = |f: Feature| {
                            view.to_map(f).ok_or_else(|| CamError::NotFeatureMap {
                                node: r.node_name.clone(),
                                shape: activations.dims(),
                            })
                        };
                        Ok(LayerValues {
                            node: r.node_name.clone(),
                            activations: map(activations.clone())?,
                            gradients: gradients.map(map).transpose()?,
                        })
                    }
                    _ => Ok(LayerValues {
                        node: r.node_name.clone(),
                        activations: activations.clone(),
                        gradients,
                    }),
                }
            })
            .collect::<Result<_>>()?;
        Ok(Activations {
            layers,
            logits,
            targets,
            input: x,
        })
    }

    /// `method`'s maps from `activations` (which must hold gradients if the method uses
    /// them): per layer the method's map, rectified, scaled and resized to the input; then
    /// the mean over layers, scaled again.
    pub fn render(&self, method: &Method, activations: &Activations) -> Result<CamOutput> {
        let [_, _, h, w] = activations.input.dims();
        let mut per_layer = Vec::with_capacity(activations.layers.len());
        for layer in &activations.layers {
            let map = self.layer_map(method, layer, activations)?;
            per_layer.push(scale(relu(map), Some([h, w])));
        }
        let classes = activations.logits.len() / activations.targets.len().max(1);
        let scores = activations
            .targets
            .iter()
            .enumerate()
            .map(|(i, &t)| activations.logits[i * classes + t])
            .collect();
        Ok(CamOutput {
            maps: aggregate(per_layer),
            targets: activations.targets.clone(),
            scores,
        })
    }

    /// `method`'s CAM of `x` for `target`: [`Cam::activations`] then [`Cam::render`].
    pub fn run(&self, method: &Method, x: Tensor<4>, target: Target) -> Result<CamOutput> {
        let activations = self.activations(x, target, method.uses_gradients())?;
        self.render(method, &activations)
    }

    /// One layer's `[N, h, w]` map before rectification.
    fn layer_map(
        &self,
        method: &Method,
        layer: &LayerValues,
        activations: &Activations,
    ) -> Result<Maps> {
        let shape = layer.activations.dims();
        let &[n, c, h, w] = shape.as_slice() else {
            return Err(CamError::NotFeatureMap {
                node: layer.node.clone(),
                shape,
            });
        };
        let a = layer.activations.to_vec_f32()?;
        let gradients = || -> Result<Vec<f32>> {
            match &layer.gradients {
                Some(g) => Ok(g.to_vec_f32()?),
                // A method that uses gradients always gets them from `run`; activations made
                // without them give zero gradients, hence a zero map.
                None => Ok(vec![0.0; a.len()]),
            }
        };
        let hw = h * w;
        let weighted = |weights: &[f64]| -> Vec<f32> {
            let mut out = vec![0.0f32; n * hw];
            for i in 0..n {
                let map = &mut out[i * hw..(i + 1) * hw];
                for ch in 0..c {
                    let weight = weights[i * c + ch] as f32;
                    let plane = &a[(i * c + ch) * hw..(i * c + ch + 1) * hw];
                    map.iter_mut()
                        .zip(plane)
                        .for_each(|(m, &v)| *m += weight * v);
                }
            }
            out
        };
        let values =
            match method.compute {
                Compute::ChannelWeights(weight) => {
                    let g = gradients()?;
                    let weights: Vec<f64> = (0..n * c)
                        .map(|k| weight(&a[k * hw..(k + 1) * hw], &g[k * hw..(k + 1) * hw]))
                        .collect();
                    weighted(&weights)
                }
                Compute::Elementwise(f) => {
                    let g = gradients()?;
                    let mut out = vec![0.0f32; n * hw];
                    for i in 0..n {
                        let map = &mut out[i * hw..(i + 1) * hw];
                        for ch in 0..c {
                            let k = (i * c + ch) * hw;
                            for (p, m) in map.iter_mut().enumerate() {
                                *m += f(a[k + p], g[k + p]);
                            }
                        }
                    }
                    out
                }
                Compute::Eigen => (0..n)
                    .flat_map(|i| eigen::projection(&a[i * c * hw..(i + 1) * c * hw], c, hw))
                    .collect(),
                Compute::Score => {
                    let maps: Tensor<4> = layer.activations.clone().into_rank().map_err(|f| {
                        CamError::NotFeatureMap {
                            node: layer.node.clone(),
                            shape: f.dims(),
                        }
                    })?;
                    let weights = score::weights(
                        self.classifier()?,
                        &activations.input,
                        maps,
                        &activations.targets,
                    )?;
                    weighted(&weights)
                }
            };
        Ok(Maps {
            values,
            shape: [n, h, w],
        })
    }
}

/// The score a backward pass differentiates: the sum over images of each image's target
/// logit (pytorch-grad-cam sums `ClassifierOutputTarget` over the batch).
fn target_score(features: &Features, target: Target) -> Tensor<1> {
    let logits = features
        .get(LOGITS)
        .and_then(|f| f.clone().into_rank::<2>().ok());
    let Some(logits) = logits else {
        // `check` proved the output is `[N, classes]`; nothing to differentiate otherwise.
        return Tensor::zeros([1], &Device::flex());
    };
    match target {
        Target::Top => {
            let top = logits.clone().detach().argmax(1);
            logits.gather(1, top).sum()
        }
        Target::Class(class) => {
            let [n, _] = logits.dims();
            logits.slice([0..n, class..class + 1]).sum()
        }
    }
}

/// The index of the largest value (the first, on ties, as numpy's `argmax`).
fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}
