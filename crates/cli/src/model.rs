use std::path::PathBuf;

use burn::prelude::Device;
use burn::store::ModuleSnapshot;
use clap::ValueEnum;
use featx_models::{AlexNetConfig, FeatureModel, ResNetConfig, TracedModel};

use crate::error::CliError;

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
    /// A torchvision state dict file.
    File(PathBuf),
}

impl std::str::FromStr for Weights {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "random" => Weights::Random,
            path => Weights::File(PathBuf::from(path)),
        })
    }
}

impl ModelKind {
    /// The model with the requested weights on `device`, traced.
    pub fn load(self, weights: &Weights, device: &Device) -> Result<TracedModel, CliError> {
        match self {
            ModelKind::Resnet18 => traced(ResNetConfig::resnet18(1000).init(device), weights),
            ModelKind::Alexnet => traced(AlexNetConfig::new().init(device), weights),
        }
    }
}

fn traced<M: FeatureModel + ModuleSnapshot>(
    model: M,
    weights: &Weights,
) -> Result<TracedModel, CliError> {
    let model = match weights {
        Weights::Random => model,
        Weights::File(path) => featx_weights::load_state_dict(model, path)?,
    };
    Ok(model.trace())
}
