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
use featx_weights::{
    FitReport, PositionGrid, RemoteWeights, TensorInfo, WeightsFile, expected_keys,
};

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
        // Only the extension goes: some names carry dots (`mnasnet0.5_top1_67.823-3ffadce67e.pth`).
        let stem = self
            .file_name
            .rsplit_once('.')
            .map_or(self.file_name, |(stem, _)| stem);
        stem.rsplit('-').next().unwrap_or(stem)
    }
}

/// The arguments of torchvision's builders that change a model's parameter shapes: the class
/// count (`num_classes`) and ViT's `image_size`. A fine-tuned checkpoint fixes both, so
/// [`Architecture::load`] reads them from the file; a field set here overrides the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildArgs {
    /// Classifier outputs. `None`: read from the file when loading, otherwise the
    /// architecture's own (1000 for torchvision's, 100 for the seed article's AlexNet).
    pub num_classes: Option<usize>,
    /// Input height and width of a ViT (its positional embedding has one entry per patch).
    /// `None`: read from the file when loading, otherwise 224. A file made for another size
    /// has its positional embedding interpolated on load, as torchvision's
    /// `interpolate_embeddings` does. Ignored by models that take any input size.
    pub image_size: Option<usize>,
}

impl BuildArgs {
    /// `num_classes` outputs, the rest from the file (or the defaults).
    pub fn num_classes(num_classes: usize) -> Self {
        Self {
            num_classes: Some(num_classes),
            image_size: None,
        }
    }

    /// The class count, or torchvision's 1000.
    pub(crate) fn classes(&self) -> usize {
        self.num_classes.unwrap_or(1000)
    }
}

impl Architecture {
    /// The model with fresh random weights on `device`, traced.
    pub fn random(&self, device: &Device) -> TracedModel {
        self.model.random(device, BuildArgs::default())
    }

    /// The model built with `args` (a class count, a ViT's image size) and fresh random
    /// weights on `device`, traced.
    pub fn random_with(&self, device: &Device, args: BuildArgs) -> TracedModel {
        self.model.random(device, args)
    }

    /// The model with the torchvision state dict at `path` (`.pth`, `.safetensors`) loaded,
    /// traced. The head is the file's: a `resnet18(num_classes=7)` checkpoint gives a model
    /// with 7 outputs (see [`Architecture::build_args`]). The state dict may be nested in a
    /// training checkpoint and carry `DataParallel` or `torch.compile` prefixes
    /// ([`featx_weights::CHECKPOINT_ENTRIES`], [`featx_weights::MODULE_PREFIXES`]).
    pub fn load(&self, device: &Device, path: &Path) -> featx_weights::Result<TracedModel> {
        self.load_with(device, path, BuildArgs::default())
    }

    /// [`Architecture::load`] with the fields `args` sets taken as given rather than read from
    /// the file. A class count the file disagrees with is an error, as in torchvision; an
    /// image size it disagrees with interpolates a ViT's positional embedding, as
    /// torchvision's `interpolate_embeddings` does (a size that is no multiple of the patch
    /// size is [`featx_weights::WeightsError::Interpolation`]).
    pub fn load_with(
        &self,
        device: &Device,
        path: &Path,
        args: BuildArgs,
    ) -> featx_weights::Result<TracedModel> {
        self.model.load(device, path, args)
    }

    /// The model with torchvision's published weights at `path` loaded, built as torchvision's
    /// builder builds it with `weights=DEFAULT`: for most architectures what
    /// [`Architecture::load_with`] builds; GoogLeNet and Inception v3 convert their input
    /// (`transform_input`), and GoogLeNet drops its auxiliary heads after loading.
    pub fn load_published(
        &self,
        device: &Device,
        path: &Path,
        args: BuildArgs,
    ) -> featx_weights::Result<TracedModel> {
        self.model.load_published(device, path, args)
    }

    /// The build arguments a state dict's tensors call for: `given`'s fields, and the others
    /// read from the tensors where the file says (the class count from the head's shape, a
    /// ViT's image size from its positional embedding). Keys are as in the file, a wrapper
    /// prefix removed ([`featx_weights::inspect`] lists them so).
    pub fn build_args(&self, tensors: &[TensorInfo], given: BuildArgs) -> BuildArgs {
        self.model.infer(&self.renamed(tensors), given)
    }

    /// How a state dict's tensors fit the model built with the arguments they call for
    /// ([`Architecture::build_args`]): those arguments and the report. A ViT's positional
    /// embedding made for another image size than `given`'s counts as it loads: interpolated.
    pub fn fit(&self, tensors: &[TensorInfo], given: BuildArgs) -> (BuildArgs, FitReport) {
        let tensors = self.renamed(tensors);
        let args = self.model.infer(&tensors, given);
        let tensors = self.model.interpolated(tensors, args);
        (
            args,
            FitReport::new(&self.model.expected_keys(args), &tensors),
        )
    }

    /// Whether the model is built for one input size (a ViT: its positional embedding has one
    /// entry per patch), which [`BuildArgs::image_size`] sets; other models take any size.
    pub fn takes_image_size(&self) -> bool {
        self.model.takes_image_size()
    }

    /// The image size a state dict was made for, read from a ViT's positional embedding;
    /// `None` for models that take any input size. Where it differs from the size a model is
    /// built for, loading interpolates the embedding.
    pub fn file_image_size(&self, tensors: &[TensorInfo]) -> Option<usize> {
        self.model
            .infer(&self.renamed(tensors), BuildArgs::default())
            .image_size
    }

    /// The torchvision `state_dict` keys and shapes the model expects.
    pub fn expected_keys(&self) -> Vec<(String, Vec<usize>)> {
        self.model.expected_keys(BuildArgs::default())
    }

    /// How many parameters the model has, as torchvision counts them (BatchNorm's running
    /// statistics are buffers, not parameters), without allocating them. Where torchvision's
    /// builder makes another model with its published weights, that model's, as its weights'
    /// metadata counts them (GoogLeNet without its auxiliary heads).
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

    /// `tensors` with their keys as the model names them.
    fn renamed(&self, tensors: &[TensorInfo]) -> Vec<TensorInfo> {
        tensors
            .iter()
            .map(|t| TensorInfo {
                key: self.current_key(&t.key),
                ..t.clone()
            })
            .collect()
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
    fn random(&self, device: &Device, args: BuildArgs) -> TracedModel;
    fn load(
        &self,
        device: &Device,
        path: &Path,
        args: BuildArgs,
    ) -> featx_weights::Result<TracedModel>;
    /// [`Constructor::load`] as torchvision's builder loads its published weights.
    fn load_published(
        &self,
        device: &Device,
        path: &Path,
        args: BuildArgs,
    ) -> featx_weights::Result<TracedModel>;
    /// `given` with its unset fields read from `tensors` (keys as the model names them).
    fn infer(&self, tensors: &[TensorInfo], given: BuildArgs) -> BuildArgs;
    /// `tensors` as loading with `args` leaves them: a positional embedding interpolated to
    /// `args.image_size` has that size's shape.
    fn interpolated(&self, tensors: Vec<TensorInfo>, args: BuildArgs) -> Vec<TensorInfo>;
    /// Whether the model is built for one input size.
    fn takes_image_size(&self) -> bool;
    fn expected_keys(&self, args: BuildArgs) -> Vec<(String, Vec<usize>)>;
    fn num_params(&self) -> usize;
    fn input_spec(&self) -> InputSpec;
    #[cfg(test)]
    fn model_name(&self) -> String;
    /// A key of a published file as the model names it now (DenseNet's legacy keys).
    fn current_key(&self, key: &str) -> Option<String>;
}

/// A model constructor (`|device, args| ResNetConfig::resnet50(args.classes()).init(device)`),
/// with what its family needs beyond it: a renaming of legacy keys (DenseNet), the positional
/// embedding that holds the image size (ViT).
pub(crate) struct Init<M> {
    build: fn(&Device, BuildArgs) -> M,
    rename: fn(&str) -> Option<String>,
    grid: Option<PositionGrid>,
    published: Option<PublishedBuild<M>>,
}

/// How torchvision's builder makes a model with its published weights, where that differs
/// from `build`: the model the file loads into, and what the builder does after loading.
type PublishedBuild<M> = (fn(&Device, BuildArgs) -> M, fn(M) -> M);

impl<M> Init<M> {
    /// Builds with `build`; keys kept as they are, any input size.
    pub(crate) const fn new(build: fn(&Device, BuildArgs) -> M) -> Self {
        Self {
            build,
            rename: keep_key,
            grid: None,
            published: None,
        }
    }

    /// torchvision's builder makes the model otherwise with `weights=DEFAULT`: the published
    /// file loads into `build`'s model, then `finish` runs on it (GoogLeNet is built with
    /// `transform_input`, and its auxiliary heads are dropped after loading).
    pub(crate) const fn published(
        mut self,
        build: fn(&Device, BuildArgs) -> M,
        finish: fn(M) -> M,
    ) -> Self {
        self.published = Some((build, finish));
        self
    }

    /// Published files need their keys renamed on load: `rename` gives a file key's current
    /// name, or `None` to keep it (DenseNet's legacy `norm.1` keys, see
    /// [`crate::densenet::legacy_key`]).
    pub(crate) const fn renamed(mut self, rename: fn(&str) -> Option<String>) -> Self {
        self.rename = rename;
        self
    }

    /// The model's `image_size` is read from the positional embedding `grid` names (a ViT's
    /// `encoder.pos_embedding`), which is interpolated on load when the model is built for
    /// another size.
    pub(crate) const fn image_size_from(mut self, grid: PositionGrid) -> Self {
        self.grid = Some(grid);
        self
    }
}

impl<M: FeatureModel + ModuleSnapshot> Init<M> {
    /// `build`'s model (sized by `args`, else by the file) with the file at `path` loaded.
    fn load_built(
        &self,
        build: fn(&Device, BuildArgs) -> M,
        device: &Device,
        path: &Path,
        args: BuildArgs,
    ) -> featx_weights::Result<M> {
        let keys: Vec<String> = expected_keys(&build(&Device::flex(), args))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut file = WeightsFile::open(path, &keys)?;
        file.rename(self.rename);
        let args = self.infer(&file.tensors(), args);
        // A checkpoint made for another input size: its embedding resized to the model's,
        // as torchvision's `interpolate_embeddings` does before `load_state_dict`.
        if let (Some(grid), Some(size)) = (self.grid, args.image_size) {
            file.interpolate_positions(grid, size)?;
        }
        file.load_into(build(device, args))
    }
}

fn keep_key(_: &str) -> Option<String> {
    None
}

/// The class count a model's head takes, read from `tensors` with no list of head keys: the
/// model is built twice with class counts one apart, and the dimensions that change between
/// the two are the head's outputs. The file's size there is the count, when every head tensor
/// agrees on it and matches the model in every other dimension; otherwise `None` (loading then
/// reports the mismatch as it is).
fn classes_from<M: ModuleSnapshot>(
    build: impl Fn(usize) -> M,
    tensors: &[TensorInfo],
) -> Option<usize> {
    const PROBE: usize = 1000;
    let a = expected_keys(&build(PROBE));
    let b = expected_keys(&build(PROBE + 1));
    let mut found = None;
    for ((key, sa), (_, sb)) in a.iter().zip(&b).filter(|((_, sa), (_, sb))| sa != sb) {
        let t = tensors.iter().find(|t| &t.key == key)?;
        if t.shape.len() != sa.len() {
            return None;
        }
        for (d, (x, y)) in sa.iter().zip(sb).enumerate() {
            if x == y {
                if t.shape[d] != *x {
                    return None;
                }
            } else if *found.get_or_insert(t.shape[d]) != t.shape[d] {
                return None;
            }
        }
    }
    found.filter(|&n| n > 0)
}

impl<M: FeatureModel + ModuleSnapshot> Constructor for Init<M> {
    fn random(&self, device: &Device, args: BuildArgs) -> TracedModel {
        (self.build)(device, args).trace()
    }

    fn load(
        &self,
        device: &Device,
        path: &Path,
        args: BuildArgs,
    ) -> featx_weights::Result<TracedModel> {
        Ok(self.load_built(self.build, device, path, args)?.trace())
    }

    fn load_published(
        &self,
        device: &Device,
        path: &Path,
        args: BuildArgs,
    ) -> featx_weights::Result<TracedModel> {
        let Some((build, finish)) = self.published else {
            return self.load(device, path, args);
        };
        Ok(finish(self.load_built(build, device, path, args)?).trace())
    }

    // Burn initialises parameters lazily: building a model only to read its shapes never
    // draws its random weights.
    fn infer(&self, tensors: &[TensorInfo], given: BuildArgs) -> BuildArgs {
        let image_size = given
            .image_size
            .or_else(|| self.grid.and_then(|g| g.image_size(tensors)));
        let num_classes = given.num_classes.or_else(|| {
            let build = |n| {
                let args = BuildArgs {
                    num_classes: Some(n),
                    image_size,
                };
                (self.build)(&Device::flex(), args)
            };
            classes_from(build, tensors)
        });
        BuildArgs {
            num_classes,
            image_size,
        }
    }

    fn takes_image_size(&self) -> bool {
        self.grid.is_some()
    }

    fn interpolated(&self, tensors: Vec<TensorInfo>, args: BuildArgs) -> Vec<TensorInfo> {
        match (self.grid, args.image_size) {
            (Some(grid), Some(size)) => grid.interpolated_info(&tensors, size),
            _ => tensors,
        }
    }

    fn expected_keys(&self, args: BuildArgs) -> Vec<(String, Vec<usize>)> {
        expected_keys(&(self.build)(&Device::flex(), args))
    }

    fn num_params(&self) -> usize {
        let mut count = ParamCount::default();
        let (device, args) = (Device::flex(), BuildArgs::default());
        match self.published {
            Some((build, finish)) => finish(build(&device, args)).visit(&mut count),
            None => (self.build)(&device, args).visit(&mut count),
        };
        count.params
    }

    fn input_spec(&self) -> InputSpec {
        (self.build)(&Device::flex(), BuildArgs::default()).input_spec()
    }

    #[cfg(test)]
    fn model_name(&self) -> String {
        (self.build)(&Device::flex(), BuildArgs::default())
            .name()
            .to_string()
    }

    fn current_key(&self, key: &str) -> Option<String> {
        (self.rename)(key)
    }
}

/// Counts parameters as torchvision does: BatchNorm's running statistics and Swin V2's
/// `relative_coords_table`, which Burn visits like parameters, are buffers there. Reads shapes only, so nothing is initialised.
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
            Some("running_mean" | "running_var" | "relative_coords_table")
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
    crate::squeezenet::ARCHITECTURES,
    crate::mnasnet::ARCHITECTURES,
    crate::shufflenet::ARCHITECTURES,
    crate::swin::ARCHITECTURES,
    crate::maxvit::ARCHITECTURES,
    crate::googlenet::ARCHITECTURES,
    crate::inception::ARCHITECTURES,
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
mod tests;
