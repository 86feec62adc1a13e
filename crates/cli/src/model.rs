use std::ffi::OsStr;
use std::path::PathBuf;

use burn::prelude::Device;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use featx_extract::{
    DeviceChoice, FeatureExtractor, GpuKernels, Mode, Precision, ReturnNodes, select_device,
    wgpu_adapter,
};
use featx_models::registry::Preprocessing;
use featx_models::{Architecture, BuildArgs, MODELS, TracedModel};
use featx_weights::{base_url, cache_dir, fetch};

use crate::error::CliError;

/// The flags that choose a model, its weights and where it runs.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The model to run: a name `featx models` lists, or an ONNX file (`model.onnx`).
    #[arg(long, value_parser = ModelParser, hide_possible_values = true)]
    pub model: ModelChoice,
    /// A torchvision state dict (.pth, .safetensors), plain or in a training checkpoint, its
    /// head's class count read from it; `imagenet` for torchvision's published
    /// ImageNet weights of the model (downloaded once, verified, cached); `random` for random
    /// initialisation. Required for a zoo model, except by `bench`, whose numbers do not depend
    /// on the values; an ONNX file carries its own.
    #[arg(long)]
    pub weights: Option<Weights>,
    /// The input size `H` or `HxW` the model is built for: an ONNX model whose file leaves it
    /// open [default: the crop size, 224], or a ViT (square; a checkpoint made for another size
    /// has its position embeddings interpolated as torchvision's interpolate_embeddings does,
    /// and images are cropped to it) [default: the checkpoint's size]
    #[arg(long, value_parser = parse_size)]
    pub input_size: Option<[usize; 2]>,
    /// Backend: cpu (burn-flex), ndarray, wgpu, or auto (wgpu when an adapter works, else
    /// cpu; the choice is printed).
    #[arg(long, default_value = "cpu", env = "BURN_DEVICE")]
    pub device: String,
    /// Eval (running statistics, no dropout) or train behaviour.
    #[arg(long, value_enum, default_value = "eval")]
    pub mode: ModeArg,
    /// Float precision on GPU devices: f32 (torchvision's numbers to the parity tolerance), f16
    /// (half the memory traffic, faster where the GPU has f16 arithmetic), or mixed (float32
    /// tensors; featx's convolutions multiply in f16 on tensor cores where the GPU has them,
    /// as PyTorch's TF32 does). Reduced ones have their own tolerances (docs/src/gpu.md).
    /// Outputs are written as float32 always.
    #[arg(long, default_value = "f32", value_parser = precision_parser())]
    pub precision: Precision,
    /// Whose convolutions a GPU device runs: featx (featx's own, with the bias, residual add
    /// and ReLU in one launch, on tensor cores where the GPU has them for the precision),
    /// featx-tiled (featx's without tensor cores: to compare, or to step around a driver whose
    /// cooperative matrices misbehave) or burn (burn's autotuned kernels, then the add and
    /// ReLU). All give torchvision's numbers; `featx bench` tells which is faster on an
    /// adapter. No effect on the CPU.
    #[arg(long, default_value = "featx", value_parser = gpu_kernels_parser())]
    pub gpu_kernels: GpuKernels,
    /// Seed for `--weights random` (and train-mode dropout), for reproducible runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The classifier's output count. A weights file's own is read from it (a fine-tuned
    /// head); this overrides it (a file that disagrees is an error), or sizes a random model.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub num_classes: Option<u64>,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// BatchNorm running statistics, no dropout.
    Eval,
    /// Batch statistics, active dropout.
    Train,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::Eval => Mode::Eval,
            ModeArg::Train => Mode::Train,
        }
    }
}

impl ModelArgs {
    /// The device named by `--device`.
    pub fn device(&self) -> Result<Device, CliError> {
        let device = if self.device == "auto" {
            match select_device(DeviceChoice::Wgpu) {
                Ok(device) => {
                    let adapter = wgpu_adapter().unwrap_or_else(|| "default adapter".into());
                    eprintln!("device: wgpu on {adapter}");
                    device
                }
                Err(e) => {
                    eprintln!("device: cpu ({e})");
                    select_device(DeviceChoice::Cpu)?
                }
            }
        } else {
            select_device(self.device.parse::<DeviceChoice>()?)?
        };
        device.seed(self.seed);
        // Models are built (and randomly initialised) on the CPU, then moved.
        Device::flex().seed(self.seed);
        Ok(device)
    }

    /// `--weights`, which every command but `bench` requires of a zoo model.
    pub fn weights(&self) -> Result<&Weights, CliError> {
        if let ModelChoice::Onnx(path) = &self.model {
            return match &self.weights {
                None => Ok(&Weights::Random),
                Some(_) => Err(CliError::Usage(format!(
                    "{} carries its own weights: drop --weights",
                    path.display()
                ))),
            };
        }
        self.weights.as_ref().ok_or_else(|| {
            CliError::Usage(
                "--weights is required: a .pth/.safetensors file, imagenet, or random".into(),
            )
        })
    }

    /// How `--weights` is recorded with a dataset run (a resumed run must name the same), with
    /// `--num-classes`, a zoo model's `--input-size` and a reduced `--precision` after it: parts computed
    /// with another head, input size or precision are other numbers.
    pub fn weights_label(&self) -> String {
        let weights = match self.weights.as_ref().unwrap_or(&Weights::Random) {
            _ if matches!(self.model, ModelChoice::Onnx(_)) => self.model.name(),
            Weights::Random => format!("random (seed {})", self.seed),
            Weights::Imagenet => "imagenet".into(),
            Weights::File(path) => path.display().to_string(),
        };
        let weights = match self.num_classes {
            Some(n) => format!("{weights}, {n} classes"),
            None => weights,
        };
        let weights = match (&self.model, self.input_size) {
            (ModelChoice::Zoo(_), Some([h, w])) => format!("{weights}, {h}x{w} input"),
            _ => weights,
        };
        match self.precision {
            Precision::F32 => weights,
            p => format!("{weights}, {p}"),
        }
    }

    /// The input size `--input-size` builds a zoo model for: a ViT's (square), `None` when not
    /// given; a usage error for a model that takes any size.
    fn zoo_image_size(&self, arch: &Architecture) -> Result<Option<usize>, CliError> {
        match self.input_size {
            None => Ok(None),
            Some([h, w]) if h == w && arch.takes_image_size() => Ok(Some(h)),
            Some([h, w]) if arch.takes_image_size() => Err(CliError::Usage(format!(
                "{} takes square inputs: --input-size {h}, not {h}x{w}",
                arch.name
            ))),
            Some(_) => Err(CliError::Usage(format!(
                "{} takes any input size: --input-size is for ViTs and for ONNX files that \
                 leave it open",
                arch.name
            ))),
        }
    }

    /// The model with `weights`, built and traced on the CPU; an ONNX model is imported for
    /// the batch and image size in `shape`.
    pub fn traced(&self, weights: &Weights, shape: InputShape) -> Result<TracedModel, CliError> {
        match &self.model {
            ModelChoice::Zoo(arch) => {
                let args = BuildArgs {
                    num_classes: self.num_classes.map(|n| n as usize),
                    image_size: self.zoo_image_size(arch)?,
                };
                load(arch, weights, args, &Device::flex())
            }
            ModelChoice::Onnx(path) => {
                self.weights()?;
                if self.num_classes.is_some() {
                    return Err(CliError::Usage(format!(
                        "{} has its own head: drop --num-classes",
                        path.display()
                    )));
                }
                // The command's size is a default for a file that leaves it open; a size the
                // file fixes wins (`--input-size` must agree with it).
                let fixed = featx_onnx::input_size(path)?;
                let options = featx_onnx::LoadOptions {
                    input_size: self
                        .input_size
                        .or(if fixed.is_some() { None } else { shape.size }),
                    batch: shape.batch,
                };
                Ok(featx_onnx::load_with(path, &options)?.traced)
            }
        }
    }

    /// The preprocessing a model's images get unless flags say otherwise: the published
    /// weights' for a zoo model; for an ONNX model, ImageNet's mean and std with a centre crop
    /// of the file's input size (or `--input-size`, or 224) after resizing by 256/224, as
    /// torchvision evaluates its models.
    pub fn preprocessing(&self) -> Result<Preprocessing, CliError> {
        match &self.model {
            ModelChoice::Zoo(arch) => {
                let published = arch.preprocess();
                Ok(match self.zoo_image_size(arch)? {
                    // Another size keeps the published resize-to-crop ratio.
                    Some(size) => Preprocessing {
                        resize: (size as u64 * published.resize as u64)
                            .div_ceil(published.crop.max(1) as u64)
                            as u32,
                        crop: size as u32,
                        ..published
                    },
                    None => published,
                })
            }
            ModelChoice::Onnx(path) => {
                let size = featx_onnx::input_size(path)?
                    .or(self.input_size)
                    .unwrap_or([224, 224]);
                let crop = size[0].min(size[1]) as u32;
                Ok(Preprocessing {
                    resize: (crop * 256).div_ceil(224),
                    crop,
                    ..Preprocessing::IMAGENET
                })
            }
        }
    }

    /// An extractor of `request` from `traced` on `device` in `--mode`: only the layers the
    /// request needs move to `device` (the others are never uploaded, so a classifier larger
    /// than a GPU's buffers does not stop a request for an early layer).
    pub fn build(
        &self,
        traced: TracedModel,
        request: &ReturnNodes,
        device: &Device,
    ) -> Result<FeatureExtractor, CliError> {
        // Resolved in `--mode`'s graph: GoogLeNet's `aux1` exists in train mode only.
        let extractor = FeatureExtractor::new_in(traced, request, self.extract_mode())?;
        let extractor = if *device == Device::flex() {
            extractor
        } else {
            extractor.to_device(device)?
        };
        Ok(self
            .with_mode(extractor)
            .with_gpu_kernels(self.gpu_kernels)
            .with_precision(self.precision)?)
    }

    /// Loads the model with `--weights` and builds an extractor for `request` on `device` in
    /// `--mode`, for inputs of `shape`.
    pub fn extractor(
        &self,
        request: &ReturnNodes,
        device: &Device,
        shape: InputShape,
    ) -> Result<FeatureExtractor, CliError> {
        let traced = self.traced(self.weights()?, shape)?;
        self.build(traced, request, device)
    }

    /// `extractor` switched to `--mode`.
    pub fn with_mode(&self, extractor: FeatureExtractor) -> FeatureExtractor {
        extractor.with_mode(self.extract_mode())
    }

    /// `--mode` as the extractor's [`Mode`].
    pub fn extract_mode(&self) -> Mode {
        self.mode.into()
    }
}

/// Where a model's weights come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weights {
    /// Fresh random initialisation, asked for explicitly.
    Random,
    /// torchvision's published ImageNet weights, from the verified cache.
    Imagenet,
    /// A torchvision state dict file.
    File(PathBuf),
}

impl std::str::FromStr for Weights {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "random" => Weights::Random,
            "imagenet" => Weights::Imagenet,
            path => Weights::File(PathBuf::from(path)),
        })
    }
}

/// What `--model` names.
#[derive(Debug, Clone)]
pub enum ModelChoice {
    /// An architecture of the registry (`featx models` lists them).
    Zoo(&'static Architecture),
    /// An ONNX file.
    Onnx(PathBuf),
}

impl ModelChoice {
    /// The registry name, or the ONNX file's path.
    pub fn name(&self) -> String {
        match self {
            ModelChoice::Zoo(arch) => arch.name.to_string(),
            ModelChoice::Onnx(path) => path.display().to_string(),
        }
    }

    /// The architecture, for a zoo model.
    pub fn architecture(&self) -> Option<&'static Architecture> {
        match self {
            ModelChoice::Zoo(arch) => Some(arch),
            ModelChoice::Onnx(_) => None,
        }
    }
}

/// The batch and image size a command will feed, which an ONNX model whose file leaves them
/// open is imported for.
#[derive(Debug, Clone, Copy, Default)]
pub struct InputShape {
    /// Images per forward.
    pub batch: Option<usize>,
    /// `[H, W]` of the preprocessed images.
    pub size: Option<[usize; 2]>,
}

impl InputShape {
    /// `batch` images cropped to `crop` (0 or none: unknown).
    pub fn new(batch: usize, crop: Option<u32>) -> Self {
        InputShape {
            batch: Some(batch.max(1)),
            size: crop.filter(|&c| c > 0).map(|c| [c as usize; 2]),
        }
    }
}

/// `--model NAME|FILE.onnx`: a name from the registry, or a path ending in `.onnx`.
#[derive(Debug, Clone, Copy)]
pub struct ModelParser;

impl TypedValueParser for ModelParser {
    type Value = ModelChoice;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<ModelChoice, clap::Error> {
        let text = value.to_string_lossy();
        if let Some(arch) = featx_models::find(&text) {
            return Ok(ModelChoice::Zoo(arch));
        }
        if featx_onnx::is_onnx_path(&text) {
            return Ok(ModelChoice::Onnx(PathBuf::from(value)));
        }
        // Not a name: clap's error, with the closest names.
        PossibleValuesParser::new(MODELS.iter().map(|a| a.name))
            .parse_ref(cmd, arg, value)
            .map(|_| ModelChoice::Onnx(PathBuf::from(value)))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(MODELS.iter().map(|a| PossibleValue::new(a.name))))
    }
}

/// `--input-size H` or `HxW`.
pub fn parse_size(text: &str) -> Result<[usize; 2], String> {
    let parse = |s: &str| {
        s.trim()
            .parse::<usize>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("'{text}' is not a size: expected H or HxW, positive"))
    };
    match text.split_once(['x', 'X']) {
        Some((h, w)) => Ok([parse(h)?, parse(w)?]),
        None => parse(text).map(|s| [s, s]),
    }
}

/// `--precision NAME`: `f32`, `f16` or `mixed`.
fn precision_parser() -> impl TypedValueParser<Value = Precision> {
    PossibleValuesParser::new(Precision::ALL.map(Precision::name))
        .try_map(|name| name.parse::<Precision>())
}

/// `--gpu-kernels NAME`: `featx`, `featx-tiled` or `burn`.
fn gpu_kernels_parser() -> impl TypedValueParser<Value = GpuKernels> {
    PossibleValuesParser::new(GpuKernels::ALL.map(GpuKernels::name)).map(|name| {
        GpuKernels::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .unwrap_or_default()
    })
}

/// The model `arch` with `weights` on `device`, traced: built with `args` where they are set,
/// else with what a weights file says (its class count), else the defaults.
pub fn load(
    arch: &'static Architecture,
    weights: &Weights,
    args: BuildArgs,
    device: &Device,
) -> Result<TracedModel, CliError> {
    Ok(match weights {
        Weights::Random => arch.random_with(device, args),
        Weights::File(path) => arch.load_with(device, path, args)?,
        Weights::Imagenet => {
            let published = arch.weights.ok_or_else(|| {
                let hint = if arch.name == "alexnet" {
                    " (torchvision's AlexNet is tv_alexnet)"
                } else {
                    ""
                };
                CliError::Usage(format!(
                    "no published ImageNet weights for {}{hint}; pass a .pth file or random",
                    arch.name
                ))
            })?;
            let path = fetch(&published.remote(), &base_url(), &cache_dir(), true)?;
            // As torchvision's builder with `weights=DEFAULT` (GoogLeNet's `transform_input`).
            arch.load_published(device, &path, args)?
        }
    })
}
