use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use clap::Args;
use featx_extract::{DeviceChoice, FeatureExtractor, Features, Mode, ReturnNodes, select_device};
use safetensors::tensor::TensorView;

use crate::commands::nodes::ModeArg;
use crate::error::CliError;
use crate::model::{ModelKind, Weights};
use crate::npy;

/// Arguments of `featx extract`.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// The model to run.
    #[arg(long, value_enum)]
    model: ModelKind,
    /// A torchvision state dict (.pth, .safetensors), or `random` for random initialisation.
    #[arg(long)]
    weights: Weights,
    /// A float32 NCHW `.npy` input batch.
    #[arg(long)]
    input: PathBuf,
    /// Comma-separated node queries, each `query` or `query=key` (`layer3,fc=logits`).
    #[arg(long)]
    nodes: String,
    /// Output `.safetensors` file: one float32 tensor per output key.
    #[arg(long)]
    out: PathBuf,
    /// Backend: cpu (burn-flex), ndarray, wgpu.
    #[arg(long, default_value = "cpu", env = "BURN_DEVICE")]
    device: String,
    /// Eval (running statistics, no dropout) or train behaviour.
    #[arg(long, value_enum, default_value = "eval")]
    mode: ModeArg,
}

/// Extracts the requested nodes and writes them atomically to `--out`.
pub fn run(args: &ExtractArgs) -> Result<(), CliError> {
    if args.nodes.trim().is_empty() {
        return Err(CliError::Usage(
            "nothing to extract: --nodes is empty".into(),
        ));
    }
    let request = ReturnNodes::parse(&args.nodes)?;
    let device = select_device(args.device.parse::<DeviceChoice>()?)?;
    let (shape, values) = npy::read_f32(&args.input)?;
    let traced = args.model.load(&args.weights, &device)?;
    let mode = match args.mode {
        ModeArg::Eval => Mode::Eval,
        ModeArg::Train => Mode::Train,
    };
    let extractor = FeatureExtractor::new(traced, &request)?.with_mode(mode);
    // Check the shape before building a tensor, so a wrong rank is an error, not a panic.
    extractor.check_input(&shape)?;
    let dims: [usize; 4] = shape
        .clone()
        .try_into()
        .map_err(|_| CliError::Usage(format!("expected a rank-4 input, got shape {shape:?}")))?;
    let x = Tensor::<4>::from_data(TensorData::new(values, dims), &device);
    let features = extractor.forward(x)?;
    write_safetensors(&features, &extractor, &args.out)
}

fn write_safetensors(
    features: &Features,
    extractor: &FeatureExtractor,
    out: &Path,
) -> Result<(), CliError> {
    let fail = |reason: String| CliError::Output {
        path: out.to_path_buf(),
        reason,
    };
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = features
        .iter()
        .map(|(key, f)| {
            let bytes = f
                .to_vec_f32()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (key.to_string(), f.dims(), bytes)
        })
        .collect();
    let views = tensors
        .iter()
        .map(|(k, shape, bytes)| {
            TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (k.clone(), v))
                .map_err(|e| fail(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut metadata: HashMap<String, String> = extractor
        .outputs()
        .iter()
        .map(|r| (format!("node.{}", r.key), r.node_name.clone()))
        .collect();
    metadata.insert("model".into(), extractor.model().name.clone());
    metadata.insert(
        "producer".into(),
        format!("featx {}", env!("CARGO_PKG_VERSION")),
    );
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| fail(e.to_string()))?;
    // Write next to the destination and rename, so a failure never leaves a partial file.
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail(e.to_string()))?;
    tmp.write_all(&bytes).map_err(|e| fail(e.to_string()))?;
    tmp.persist(out).map_err(|e| fail(e.to_string()))?;
    Ok(())
}
