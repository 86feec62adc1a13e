use std::path::PathBuf;

use burn::prelude::Device;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use featx_extract::{
    DeviceChoice, FeatureExtractor, GpuKernels, Mode, Precision, ReturnNodes, select_device,
    wgpu_adapter,
};
use featx_models::{Architecture, BuildArgs, MODELS, TracedModel};
use featx_weights::{base_url, cache_dir, fetch};

use crate::error::CliError;

/// The flags that choose a model, its weights and where it runs.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// The model to run (`featx models` lists them).
    #[arg(long, value_parser = model_parser(), hide_possible_values = true)]
    pub model: &'static Architecture,
    /// A torchvision state dict (.pth, .safetensors), plain or in a training checkpoint, its
    /// head's class count read from it; `imagenet` for torchvision's published
    /// ImageNet weights of the model (downloaded once, verified, cached); `random` for random
    /// initialisation. Required, except by `bench`, whose numbers do not depend on the values.
    #[arg(long)]
    pub weights: Option<Weights>,
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

    /// `--weights`, which every command but `bench` requires.
    pub fn weights(&self) -> Result<&Weights, CliError> {
        self.weights.as_ref().ok_or_else(|| {
            CliError::Usage(
                "--weights is required: a .pth/.safetensors file, imagenet, or random".into(),
            )
        })
    }

    /// How `--weights` is recorded with a dataset run (a resumed run must name the same), with
    /// `--num-classes` and a reduced `--precision` after it: parts computed with another head
    /// or in another precision are other numbers.
    pub fn weights_label(&self) -> String {
        let weights = match self.weights.as_ref().unwrap_or(&Weights::Random) {
            Weights::Random => format!("random (seed {})", self.seed),
            Weights::Imagenet => "imagenet".into(),
            Weights::File(path) => path.display().to_string(),
        };
        let weights = match self.num_classes {
            Some(n) => format!("{weights}, {n} classes"),
            None => weights,
        };
        match self.precision {
            Precision::F32 => weights,
            p => format!("{weights}, {p}"),
        }
    }

    /// The model with `weights`, built and traced on the CPU.
    pub fn traced(&self, weights: &Weights) -> Result<TracedModel, CliError> {
        let args = BuildArgs {
            num_classes: self.num_classes.map(|n| n as usize),
            image_size: None,
        };
        load(self.model, weights, args, &Device::flex())
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
        let extractor = FeatureExtractor::new(traced, request)?;
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
    /// `--mode`.
    pub fn extractor(
        &self,
        request: &ReturnNodes,
        device: &Device,
    ) -> Result<FeatureExtractor, CliError> {
        let traced = self.traced(self.weights()?)?;
        self.build(traced, request, device)
    }

    /// `extractor` switched to `--mode`.
    pub fn with_mode(&self, extractor: FeatureExtractor) -> FeatureExtractor {
        extractor.with_mode(match self.mode {
            ModeArg::Eval => Mode::Eval,
            ModeArg::Train => Mode::Train,
        })
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

/// `--model NAME`: a name from the registry (`featx models` lists them).
pub fn model_parser() -> impl TypedValueParser<Value = &'static Architecture> {
    PossibleValuesParser::new(MODELS.iter().map(|a| a.name))
        .map(|name| featx_models::find(&name).expect("a registry name"))
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
            arch.load_with(device, &path, args)?
        }
    })
}
