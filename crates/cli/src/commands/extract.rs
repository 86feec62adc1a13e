use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use featx_extract::{FeatureExtractor, Features, ReturnNodes};
use safetensors::tensor::TensorView;

use crate::error::CliError;
use crate::input::{PreprocessArgs, load_batch};
use crate::model::ModelArgs;

/// Arguments of `featx extract`.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A float32 NCHW `.npy` batch, or image files (JPEG, PNG, WebP, BMP) that form one batch.
    #[arg(long, num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// Comma-separated node queries, each `query` or `query=key` (`layer3,fc=logits`).
    #[arg(long)]
    nodes: String,
    /// Output `.safetensors` file: one float32 tensor per output key.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    preprocess: PreprocessArgs,
}

/// Extracts the requested nodes and writes them atomically to `--out`.
pub fn run(args: &ExtractArgs) -> Result<(), CliError> {
    if args.nodes.trim().is_empty() {
        return Err(CliError::Usage(
            "nothing to extract: --nodes is empty".into(),
        ));
    }
    let request = ReturnNodes::parse(&args.nodes)?;
    let device = args.model.device()?;
    let extractor = args.model.extractor(&request, &device)?;
    let batch = load_batch(
        &args.input,
        &args.preprocess.pipeline(),
        &extractor,
        &device,
    )?;
    let features = extractor.forward(batch.tensor)?;
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
    let mut builder = tempfile::Builder::new();
    // Temporary files are private (0600); extracted features are ordinary files.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir).map_err(|e| fail(e.to_string()))?;
    tmp.write_all(&bytes).map_err(|e| fail(e.to_string()))?;
    tmp.persist(out).map_err(|e| fail(e.to_string()))?;
    Ok(())
}
