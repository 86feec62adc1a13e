use std::path::PathBuf;

use burn::prelude::Device;
use burn::store::ModuleSnapshot;
use clap::{Args, ValueEnum};
use featx_extract::{
    DeviceChoice, FeatureExtractor, Mode, ReturnNodes, select_device, wgpu_adapter,
};
use featx_models::{AlexNetConfig, FeatureModel, ResNetConfig, TracedModel};
use featx_weights::{RemoteWeights, base_url, cache_dir, expected_keys, fetch, load_state_dict};

use crate::error::CliError;

/// The flags that choose a model, its weights and where it runs.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// The model to run.
    #[arg(long, value_enum)]
    pub model: ModelKind,
    /// A torchvision state dict (.pth, .safetensors); `imagenet` for torchvision's published
    /// ImageNet weights (ResNet18; downloaded once, verified, cached); `random` for random
    /// initialisation.
    #[arg(long)]
    pub weights: Weights,
    /// Backend: cpu (burn-flex), ndarray, wgpu, or auto (wgpu when an adapter works, else
    /// cpu; the choice is printed).
    #[arg(long, default_value = "cpu", env = "BURN_DEVICE")]
    pub device: String,
    /// Eval (running statistics, no dropout) or train behaviour.
    #[arg(long, value_enum, default_value = "eval")]
    pub mode: ModeArg,
    /// Seed for `--weights random` (and train-mode dropout), for reproducible runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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
        Ok(device)
    }

    /// How `--weights` is recorded with a dataset run (a resumed run must name the same).
    pub fn weights_label(&self) -> String {
        match &self.weights {
            Weights::Random => format!("random (seed {})", self.seed),
            Weights::Imagenet => "imagenet".into(),
            Weights::File(path) => path.display().to_string(),
        }
    }

    /// Loads the model on `device` and builds an extractor for `request` in `--mode`.
    pub fn extractor(
        &self,
        request: &ReturnNodes,
        device: &Device,
    ) -> Result<FeatureExtractor, CliError> {
        let traced = self.model.load(&self.weights, device)?;
        Ok(self.with_mode(FeatureExtractor::new(traced, request)?))
    }

    /// `extractor` switched to `--mode`.
    pub fn with_mode(&self, extractor: FeatureExtractor) -> FeatureExtractor {
        extractor.with_mode(match self.mode {
            ModeArg::Eval => Mode::Eval,
            ModeArg::Train => Mode::Train,
        })
    }
}

/// The architectures the CLI knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// torchvision's ResNet18 (1000 classes).
    Resnet18,
    /// The seed article's AlexNet (100 classes).
    Alexnet,
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

impl ModelKind {
    /// The model with the requested weights on `device`, traced.
    pub fn load(self, weights: &Weights, device: &Device) -> Result<TracedModel, CliError> {
        match self {
            ModelKind::Resnet18 => self.traced(ResNetConfig::resnet18(1000).init(device), weights),
            ModelKind::Alexnet => self.traced(AlexNetConfig::new().init(device), weights),
        }
    }

    /// The published weights of this architecture, if any.
    pub fn published(self) -> Option<RemoteWeights> {
        match self {
            ModelKind::Resnet18 => Some(RemoteWeights::resnet18_imagenet()),
            ModelKind::Alexnet => None,
        }
    }

    /// The torchvision `state_dict` keys and shapes this architecture expects.
    pub fn expected_keys(self) -> Vec<(String, Vec<usize>)> {
        let device = Device::flex();
        match self {
            ModelKind::Resnet18 => expected_keys(&ResNetConfig::resnet18(1000).init(&device)),
            ModelKind::Alexnet => expected_keys(&AlexNetConfig::new().init(&device)),
        }
    }

    fn traced<M: FeatureModel + ModuleSnapshot>(
        self,
        model: M,
        weights: &Weights,
    ) -> Result<TracedModel, CliError> {
        let model = match weights {
            Weights::Random => model,
            Weights::File(path) => load_state_dict(model, path)?,
            Weights::Imagenet => {
                let remote = self.published().ok_or_else(|| {
                    CliError::Usage(format!(
                        "no published ImageNet weights for {}; pass a .pth file or random",
                        model.name()
                    ))
                })?;
                let path = fetch(&remote, &base_url(), &cache_dir(), true)?;
                load_state_dict(model, &path)?
            }
        };
        Ok(model.trace())
    }
}
