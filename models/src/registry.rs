//! Every architecture featx ships, in one list: what the command line, the dataset runner and
//! the weights command offer, and nothing outside this crate lists architectures by hand.
//!
//! Each family's file ends with its rows (`ARCHITECTURES`: name, about, torchvision's DEFAULT
//! weights, constructor), as torchvision keeps its weights enums beside its builders; [`MODELS`]
//! chains them.

use std::path::Path;

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use burn::store::ModuleSnapshot;
use featx_weights::{RemoteWeights, expected_keys, load_state_dict, load_state_dict_renamed};

use crate::{FeatureModel, InputSpec, TracedModel};

/// One architecture: its name, how to build it, and what torchvision publishes for it.
#[derive(Clone, Copy)]
pub struct Architecture {
    /// The name `--model` takes: torchvision's builder name (`resnet50`, `vgg16_bn`), except
    /// `alexnet` (the seed article's model) and `tv_alexnet` (torchvision's `alexnet`).
    pub name: &'static str,
    /// The family (`ResNet`, `VGG`, ...).
    pub family: &'static str,
    /// One line about it.
    pub about: &'static str,
    /// torchvision's DEFAULT ImageNet weights, if there are any.
    pub weights: Option<Published>,
    /// Builds the model, type-erased.
    model: &'static dyn Constructor,
}

/// Published weights: torchvision's DEFAULT weights of an architecture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Published {
    /// torchvision's name for them (`ResNet50_Weights.IMAGENET1K_V2`).
    pub name: &'static str,
    /// The file under torchvision's download URL (`resnet50-11ad3fa6.pth`); the hex after
    /// its last `-` is the start of its SHA-256.
    pub file_name: &'static str,
    /// The preprocessing the weights were evaluated with.
    pub preprocess: Preprocessing,
}

/// How images are prepared for a model: `Resize(resize) -> CenterCrop(crop) -> ToTensor ->
/// Normalize(mean, std)`, as torchvision's `ImageClassification` transform does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// The shorter side is resized to this many pixels.
    pub resize: u32,
    /// Then a centred square of this size is cut out.
    pub crop: u32,
    /// The resampling filter.
    pub interpolation: Interpolation,
    /// Per-channel mean subtracted (RGB, on [0, 1] values).
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

/// A resampling filter of torchvision's `Resize` (on PIL images, antialiased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// `InterpolationMode.BILINEAR`.
    Bilinear,
    /// `InterpolationMode.BICUBIC` (EfficientNet's published weights).
    Bicubic,
}

impl Interpolation {
    /// torchvision's spelling (`bilinear`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
        }
    }
}

impl Preprocessing {
    /// `Resize(256) -> CenterCrop(224)`, bilinear, ImageNet mean and std: torchvision's
    /// `ImageClassification(crop_size=224)` and what the older weights use.
    pub const IMAGENET: Preprocessing = Preprocessing {
        resize: 256,
        crop: 224,
        interpolation: Interpolation::Bilinear,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// The same with the shorter side resized to `resize` (the V2 weights' 232).
    pub const fn resized(resize: u32) -> Preprocessing {
        Preprocessing {
            resize,
            ..Self::IMAGENET
        }
    }

    /// ImageNet's mean and std with `resize`, `crop` and `interpolation` (EfficientNet's
    /// published sizes and bicubic filter).
    pub const fn sized(resize: u32, crop: u32, interpolation: Interpolation) -> Preprocessing {
        Preprocessing {
            resize,
            crop,
            interpolation,
            ..Self::IMAGENET
        }
    }
}

/// The 1000 ImageNet-1k class names in torchvision's order and spelling (its weights'
/// `meta["categories"]`), one per line: every published file classifies into them.
const IMAGENET_CLASSES: &str = include_str!("imagenet_classes.txt");

impl Published {
    /// The name of class `index` (`281` is `tabby`), if the weights have that many classes.
    pub fn class_name(&self, index: usize) -> Option<&'static str> {
        IMAGENET_CLASSES.lines().nth(index)
    }

    /// The download: file name and expected SHA-256 prefix.
    pub fn remote(&self) -> RemoteWeights {
        RemoteWeights {
            file_name: self.file_name.into(),
            sha256_prefix: self.sha256_prefix().into(),
        }
    }

    /// The hex after the file name's last `-` (torch hub's `check_hash` convention).
    pub fn sha256_prefix(&self) -> &'static str {
        let stem = self.file_name.split('.').next().unwrap_or(self.file_name);
        stem.rsplit('-').next().unwrap_or(stem)
    }
}

impl Architecture {
    /// The model with fresh random weights on `device`, traced.
    pub fn random(&self, device: &Device) -> TracedModel {
        self.model.random(device)
    }

    /// The model with the torchvision state dict at `path` (`.pth`, `.safetensors`) loaded,
    /// traced.
    pub fn load(&self, device: &Device, path: &Path) -> featx_weights::Result<TracedModel> {
        self.model.load(device, path)
    }

    /// The torchvision `state_dict` keys and shapes the model expects.
    pub fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        self.model.expected_keys()
    }

    /// How many parameters the model has, as torchvision counts them (BatchNorm's running
    /// statistics are buffers, not parameters), without allocating them.
    pub fn num_params(&self) -> usize {
        self.model.num_params()
    }

    /// The input the model accepts.
    pub fn input_spec(&self) -> InputSpec {
        self.model.input_spec()
    }

    /// The state-dict key `key` of a weights file as this model names it: torchvision's
    /// published DenseNet files use keys older than its module names (`norm.1.weight` for
    /// `norm1.weight`), renamed on load as torchvision renames them. Other keys are kept.
    pub fn current_key(&self, key: &str) -> String {
        self.model
            .current_key(key)
            .unwrap_or_else(|| key.to_string())
    }

    /// The preprocessing for images: the published weights', else [`Preprocessing::IMAGENET`].
    pub fn preprocess(&self) -> Preprocessing {
        self.weights
            .map_or(Preprocessing::IMAGENET, |w| w.preprocess)
    }
}

impl std::fmt::Debug for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Architecture")
            .field("name", &self.name)
            .field("family", &self.family)
            .field("weights", &self.weights)
            .finish_non_exhaustive()
    }
}

/// The architecture called `name`, if featx has it.
pub fn find(name: &str) -> Option<&'static Architecture> {
    MODELS.iter().find(|a| a.name == name)
}

/// What an [`Architecture`] needs from a concrete model type, object-safe: each entry holds
/// one [`Init`] whose methods are compiled for its model type.
pub(crate) trait Constructor: Sync {
    fn random(&self, device: &Device) -> TracedModel;
    fn load(&self, device: &Device, path: &Path) -> featx_weights::Result<TracedModel>;
    fn expected_keys(&self) -> Vec<(String, Vec<usize>)>;
    fn num_params(&self) -> usize;
    fn input_spec(&self) -> InputSpec;
    #[cfg(test)]
    fn model_name(&self) -> String;
    /// A key of a published file as the model names it now (DenseNet's legacy keys).
    fn current_key(&self, _key: &str) -> Option<String> {
        None
    }
}

/// A model constructor (`|device| ResNetConfig::resnet50(1000).init(device)`).
pub(crate) struct Init<M>(pub(crate) fn(&Device) -> M);

impl<M: FeatureModel + ModuleSnapshot> Constructor for Init<M> {
    fn random(&self, device: &Device) -> TracedModel {
        (self.0)(device).trace()
    }

    fn load(&self, device: &Device, path: &Path) -> featx_weights::Result<TracedModel> {
        Ok(load_state_dict((self.0)(device), path)?.trace())
    }

    // Burn initialises parameters lazily: building a model only to read its shapes never
    // draws its random weights.
    fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        expected_keys(&(self.0)(&Device::flex()))
    }

    fn num_params(&self) -> usize {
        let mut count = ParamCount::default();
        (self.0)(&Device::flex()).visit(&mut count);
        count.params
    }

    fn input_spec(&self) -> InputSpec {
        (self.0)(&Device::flex()).input_spec()
    }

    #[cfg(test)]
    fn model_name(&self) -> String {
        (self.0)(&Device::flex()).name().to_string()
    }
}

/// A model constructor whose published files need their keys renamed on load
/// (DenseNet's legacy `norm.1` keys, see [`crate::densenet::legacy_key`]).
pub(crate) struct Renamed<M>(
    pub(crate) fn(&Device) -> M,
    pub(crate) fn(&str) -> Option<String>,
);

impl<M: FeatureModel + ModuleSnapshot> Constructor for Renamed<M> {
    fn random(&self, device: &Device) -> TracedModel {
        Init(self.0).random(device)
    }

    fn load(&self, device: &Device, path: &Path) -> featx_weights::Result<TracedModel> {
        Ok(load_state_dict_renamed((self.0)(device), path, self.1)?.trace())
    }

    fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        Init(self.0).expected_keys()
    }

    fn num_params(&self) -> usize {
        Init(self.0).num_params()
    }

    fn input_spec(&self) -> InputSpec {
        Init(self.0).input_spec()
    }

    #[cfg(test)]
    fn model_name(&self) -> String {
        Init(self.0).model_name()
    }

    fn current_key(&self, key: &str) -> Option<String> {
        (self.1)(key)
    }
}

/// Counts parameters as torchvision does: BatchNorm's running statistics, which Burn visits
/// like parameters, are buffers there. Reads shapes only, so nothing is initialised.
#[derive(Default)]
struct ParamCount {
    path: Vec<String>,
    params: usize,
}

impl ModuleVisitor for ParamCount {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let buffer = matches!(
            self.path.last().map(String::as_str),
            Some("running_mean" | "running_var")
        );
        if !buffer {
            self.params += param.lazy_shape().num_elements();
        }
    }
}

/// An [`Architecture`] as a family's file writes it, one call per column: `Row::new(name,
/// family, about)`, then the published weights if there are any, then `.model(constructor)`.
pub(crate) struct Row {
    name: &'static str,
    family: &'static str,
    about: &'static str,
    weights: Option<(&'static str, &'static str)>,
    preprocess: Preprocessing,
}

impl Row {
    /// The architecture `name` of `family`, described by `about`, without published weights.
    pub(crate) const fn new(name: &'static str, family: &'static str, about: &'static str) -> Row {
        Row {
            name,
            family,
            about,
            weights: None,
            preprocess: Preprocessing::IMAGENET,
        }
    }

    /// torchvision's DEFAULT weights: their name and the file under its download URL,
    /// evaluated with [`Preprocessing::IMAGENET`] unless `resize` or `preprocess` says more.
    pub(crate) const fn weights(mut self, name: &'static str, file_name: &'static str) -> Row {
        self.weights = Some((name, file_name));
        self
    }

    /// The weights were evaluated with the shorter side resized to `resize` (the V2 weights'
    /// 232) before the 224 crop.
    pub(crate) const fn resize(mut self, resize: u32) -> Row {
        self.preprocess = Preprocessing::resized(resize);
        self
    }

    /// The weights were evaluated with `preprocess` (EfficientNet's sizes and filters).
    pub(crate) const fn preprocess(mut self, preprocess: Preprocessing) -> Row {
        self.preprocess = preprocess;
        self
    }

    /// The architecture, built by `model`.
    pub(crate) const fn model(self, model: &'static dyn Constructor) -> Architecture {
        let weights = match self.weights {
            Some((name, file_name)) => Some(Published {
                name,
                file_name,
                preprocess: self.preprocess,
            }),
            None => None,
        };
        Architecture {
            name: self.name,
            family: self.family,
            about: self.about,
            weights,
            model,
        }
    }
}

/// Each family's rows, in the order `featx models` lists them: a new family adds its file's
/// `ARCHITECTURES` here.
const FAMILIES: &[&[Architecture]] = &[
    crate::resnet::ARCHITECTURES,
    crate::vgg::ARCHITECTURES,
    crate::alexnet::ARCHITECTURES,
    crate::mobilenet::ARCHITECTURES,
    crate::efficientnet::ARCHITECTURES,
    crate::regnet::ARCHITECTURES,
    crate::densenet::ARCHITECTURES,
    crate::convnext::ARCHITECTURES,
    crate::vit::ARCHITECTURES,
];

/// Every architecture, in the order `featx models` lists them.
pub static MODELS: &[Architecture] = &chain::<{ count(FAMILIES) }>(FAMILIES);

/// How many rows `families` hold together.
const fn count(families: &[&[Architecture]]) -> usize {
    let mut total = 0;
    let mut f = 0;
    while f < families.len() {
        total += families[f].len();
        f += 1;
    }
    total
}

/// The rows of `families` one after the other (evaluated at compile time, so a wrong `N`
/// fails the build rather than a run).
const fn chain<const N: usize>(families: &[&[Architecture]]) -> [Architecture; N] {
    let mut all = [families[0][0]; N];
    let mut k = 0;
    let mut f = 0;
    while f < families.len() {
        let mut i = 0;
        while i < families[f].len() {
            all[k] = families[f][i];
            k += 1;
            i += 1;
        }
        f += 1;
    }
    assert!(k == N, "the families hold another number of rows");
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_each_model_reports_its_own() {
        for (i, arch) in MODELS.iter().enumerate() {
            assert!(
                MODELS[..i].iter().all(|a| a.name != arch.name),
                "{} twice",
                arch.name
            );
            assert_eq!(arch.model.model_name(), arch.name);
        }
    }

    #[test]
    fn hash_prefix_is_the_file_name_after_the_last_dash() {
        let alexnet = find("tv_alexnet").unwrap().weights.unwrap();
        assert_eq!(alexnet.sha256_prefix(), "7be5be79");
        for arch in MODELS {
            if let Some(w) = arch.weights {
                let prefix = w.sha256_prefix();
                assert!(
                    prefix.len() >= 8 && prefix.chars().all(|c| c.is_ascii_hexdigit()),
                    "{}: {prefix}",
                    w.file_name
                );
                assert!(w.file_name.starts_with(arch.name.trim_start_matches("tv_")));
            }
        }
    }

    #[test]
    fn only_densenet_renames_legacy_keys() {
        let legacy = "features.denseblock1.denselayer1.norm.1.weight";
        for name in ["densenet121", "densenet161", "densenet169", "densenet201"] {
            assert_eq!(
                find(name).unwrap().current_key(legacy),
                "features.denseblock1.denselayer1.norm1.weight"
            );
        }
        assert_eq!(find("convnext_tiny").unwrap().current_key(legacy), legacy);
    }
}
