use std::path::{Path, PathBuf};

use clap::Args;
use featx_dataset::{
    CommandLine, DatasetOptions, OutputFormat, Pool, ShardSource, ShardSpec, extract_dataset,
    is_collection, list_images,
};
use featx_extract::{FeatureExtractor, ReturnNodes};
use featx_output::{AtomicWriter, NamedTensor, feature_metadata};

use crate::error::CliError;
use crate::input::{PreprocessArgs, load_batch};
use crate::model::{InputShape, ModelArgs, ModelChoice};

/// Arguments of `featx extract`.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// What to run on: a float32 NCHW `.npy` batch; image files (JPEG, PNG, WebP, BMP) that form
    /// one batch; or a dataset: a folder (searched recursively), a glob pattern (quote it), or a
    /// `.txt` list of image paths, extracted in batches into the folder `--out`.
    #[arg(long, num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// Comma-separated node queries, each `query` or `query=key` (`layer3,fc=logits`).
    #[arg(long)]
    nodes: String,
    /// Output: a `.safetensors` file (one float32 tensor per output key); for a dataset, a
    /// folder of parts plus `index.csv` and `summary.json`.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    preprocess: PreprocessArgs,
    /// Spatial pooling of feature maps before they are stored: `avg`, `max` or `none`.
    #[arg(long, default_value = "none")]
    pool: Pool,
    /// Dataset: images per model call.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Dataset: take slice I of N of the image list (`--shard 0/4`); N processes with
    /// I = 0..N-1 cover it exactly once and may share one `--out`. `auto` takes I and N from a
    /// Kubernetes Indexed Job (JOB_COMPLETION_INDEX, FEATX_SHARDS) or a Slurm job array
    /// (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN).
    #[arg(long)]
    shard: Option<ShardSpec>,
    /// Dataset: images per output part [default: about 256 MiB per part].
    #[arg(long)]
    part_size: Option<usize>,
    /// Dataset: part format, `safetensors` (one file per part) or `npy` (a folder of
    /// `<key>.npy` per part) [default: safetensors].
    #[arg(long)]
    format: Option<OutputFormat>,
    /// Dataset: decoding threads [default: one per CPU].
    #[arg(long)]
    workers: Option<usize>,
    /// Dataset: no progress bar (it is only drawn on a terminal anyway).
    #[arg(long)]
    quiet: bool,
}

/// Extracts the requested nodes: one batch into a `.safetensors` file, or a dataset into a
/// folder of parts. A dataset run with unreadable images finishes and exits with code 3.
pub fn run(args: &ExtractArgs) -> Result<(), CliError> {
    if args.nodes.trim().is_empty() {
        return Err(CliError::Usage(
            "nothing to extract: --nodes is empty".into(),
        ));
    }
    let request = ReturnNodes::parse(&args.nodes)?;
    if args.input.iter().any(|p| is_collection(p)) {
        return run_dataset(args, &request);
    }
    let dataset_only = [
        ("--shard", args.shard.is_some()),
        ("--part-size", args.part_size.is_some()),
        ("--format", args.format.is_some()),
        ("--workers", args.workers.is_some()),
    ];
    if let Some((flag, _)) = dataset_only.iter().find(|(_, given)| *given) {
        return Err(CliError::Usage(format!(
            "{flag} applies to datasets (a folder, glob pattern or .txt list as --input)"
        )));
    }
    let device = args.model.device()?;
    let pipeline = args.preprocess.pipeline(args.model.preprocessing()?);
    let shape = InputShape::new(args.input.len(), pipeline.crop);
    let extractor = args.model.extractor(&request, &device, shape)?;
    let batch = load_batch(&args.input, &pipeline, &extractor, &device)?;
    let features = extractor.forward(batch.tensor)?;
    let pooled: Vec<(String, Vec<usize>, Vec<f32>)> = features
        .into_iter()
        .map(|(key, f)| {
            let f = args.pool.apply(f);
            Ok((key, f.dims(), f.to_vec_f32()?))
        })
        .collect::<Result<_, featx_extract::ExtractError>>()?;
    write_safetensors(&pooled, &extractor, &args.out)
}

fn run_dataset(args: &ExtractArgs, request: &ReturnNodes) -> Result<(), CliError> {
    let is_file_name = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["safetensors", "npy"].contains(&e));
    if is_file_name || args.out.is_file() {
        return Err(CliError::Usage(format!(
            "a dataset is written to a folder, but --out {} names a file",
            args.out.display()
        )));
    }
    let shard = match args.shard {
        None => Default::default(),
        Some(spec) => {
            let (shard, source) = spec.resolve()?;
            if source != ShardSource::Fixed {
                eprintln!("shard {}/{} ({source})", shard.index, shard.count);
            }
            shard
        }
    };
    let images = list_images(&args.input)?;
    let device = args.model.device()?;
    let pipeline = args.preprocess.pipeline(args.model.preprocessing()?);
    // An ONNX graph is imported for one batch size: its runs go one image at a time, so the
    // last, smaller batch needs no graph of its own.
    let batch_size = match args.model.model {
        ModelChoice::Zoo(_) => args.batch_size,
        ModelChoice::Onnx(_) => 1,
    };
    let extractor =
        args.model
            .extractor(request, &device, InputShape::new(batch_size, pipeline.crop))?;
    let defaults = DatasetOptions::default();
    let options = DatasetOptions {
        batch_size,
        part_size: args.part_size,
        pool: args.pool,
        shard,
        format: args.format.unwrap_or_default(),
        workers: args.workers.unwrap_or(defaults.workers),
        progress: !args.quiet,
        preprocess: pipeline,
        weights: args.model.weights_label(),
        command: Some(CommandLine::current()),
    };
    let summary = extract_dataset(&extractor, &images, &args.out, &options)?;
    let index = args.out.join(&summary.index);
    eprintln!(
        "{} of {} images stored in {} ({} parts, {} reused); {:.1} images/s; index {}",
        summary.ok,
        summary.images,
        args.out.display(),
        summary.parts,
        summary.resumed_parts,
        summary.images_per_s,
        index.display()
    );
    if let Some(t) = summary.timing {
        eprintln!(
            "time: {:.1} s waiting for decoded images, {:.1} s in the model, {:.1} s writing: \
             the limit is {}",
            t.waiting_for_images_s,
            t.model_s,
            t.writing_s,
            t.limit.name()
        );
    }
    if summary.failed > 0 {
        return Err(CliError::Incomplete {
            failed: summary.failed,
            images: summary.images,
            index,
        });
    }
    Ok(())
}

fn write_safetensors(
    features: &[(String, Vec<usize>, Vec<f32>)],
    extractor: &FeatureExtractor,
    out: &Path,
) -> Result<(), CliError> {
    let tensors: Vec<NamedTensor> = features
        .iter()
        .map(|(key, shape, values)| NamedTensor {
            name: key,
            shape: shape.clone(),
            values,
        })
        .collect();
    let nodes = extractor
        .outputs()
        .iter()
        .map(|r| (r.key.as_str(), r.node_name.as_str()));
    let metadata = feature_metadata(&extractor.model().name, nodes);
    // Written next to the destination and renamed, so a failure never leaves a partial file.
    AtomicWriter::default().safetensors(out, &tensors, metadata)?;
    Ok(())
}
