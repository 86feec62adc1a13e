use std::collections::BTreeMap;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use clap::Args;
use featx_extract::ReturnNodes;
use featx_graph::NodeId;
use serde::Serialize;

use super::Format;
use crate::error::CliError;
use crate::model::{InputShape, ModelArgs, Weights};

/// Arguments of `featx bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images per batch.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Input height and width.
    #[arg(long, default_value_t = 224)]
    size: usize,
    /// Node queries (`layer3,fc`), or `all` for every node.
    #[arg(long, default_value = "all")]
    nodes: String,
    /// Timed runs (after the warm-up).
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Untimed runs first (the first GPU call compiles shaders).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Human-readable text or one JSON object.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Serialize)]
struct Report {
    model: String,
    device: String,
    /// `f32` or a reduced GPU precision.
    precision: String,
    /// What this build's GPU backend has (`autotune+fusion+spirv`, `plain`, `none`).
    gpu_build: &'static str,
    /// Whose convolutions a GPU device ran (`featx` or `burn`; CPU devices run featx's CPU
    /// kernels either way).
    gpu_kernels: &'static str,
    /// How many planned steps each kernel runs (`gpu-cooperative`, `gpu-implicit-gemm`,
    /// `burn`, `cpu-winograd`, ...): which convolution a GPU run actually used.
    kernels: BTreeMap<&'static str, usize>,
    batch: usize,
    nodes: usize,
    planned_nodes: usize,
    iters: usize,
    load_ms: f64,
    build_ms: f64,
    first_ms: f64,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    images_per_s: f64,
    /// Peak resident memory of this process (Linux `VmHWM`), if known.
    peak_rss_mb: Option<f64>,
    /// Workers of the CPU thread pool.
    threads: usize,
    /// How many of them are pinned to a CPU of their own (0 or `threads`; see
    /// `featx_extract::init_pool`).
    pinned_threads: usize,
}

/// Times extraction in-process: weight loading and extractor construction are reported
/// separately; each timed run waits for the device to finish.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let device = args.model.device()?;
    let started = Instant::now();
    let weights = args.model.weights.clone().unwrap_or(Weights::Random);
    let shape = InputShape {
        batch: Some(args.batch),
        size: Some([args.size; 2]),
    };
    let traced = args.model.traced(&weights, shape)?;
    let load_ms = ms(started);
    // A model fixed to one input size (an ONNX file's, the article's AlexNet) runs at it.
    let [h, w] = traced.input.size.unwrap_or([args.size; 2]);
    let channels = traced.input.channels;
    let request = if args.nodes.trim() == "all" {
        // Every tensor node of `--mode`'s graph: ViT's shape checks are nodes too, but not
        // features.
        let graph = &traced.in_mode(args.model.extract_mode()).graph;
        let names: Vec<String> = (0..graph.nodes().len())
            .map(NodeId)
            .filter(|&id| graph.is_tensor(id))
            .map(|id| graph.nodes()[id.0].name.clone())
            .collect();
        ReturnNodes::from(names)
    } else {
        ReturnNodes::parse(&args.nodes)?
    };
    let started = Instant::now();
    let extractor = args.model.build(traced, &request, &device)?;
    // An extractor plans on first use; asking what it will run makes planning (weight packing
    // included) part of the build time, as it is part of no forward but the first.
    let plan = extractor.plan_report();
    let planned_nodes = plan.planned_nodes;
    let build_ms = ms(started);
    let mut kernels = BTreeMap::new();
    for (_, kernel) in plan.kernels {
        *kernels.entry(kernel).or_insert(0) += 1;
    }
    let x = Tensor::<4>::random([args.batch, channels, h, w], Distribution::Default, &device);
    extractor.check_input(&x.dims())?;
    let run_once = || -> Result<f64, CliError> {
        let started = Instant::now();
        let out = extractor.forward(x.clone())?;
        device
            .sync()
            .map_err(|e| CliError::Device(format!("{e:?}")))?;
        drop(out);
        Ok(ms(started))
    };
    let first_ms = run_once()?;
    for _ in 1..args.warmup {
        run_once()?;
    }
    let mut times = (0..args.iters.max(1))
        .map(|_| run_once())
        .collect::<Result<Vec<f64>, _>>()?;
    times.sort_by(f64::total_cmp);
    let median_ms = times[times.len() / 2];
    let report = Report {
        model: extractor.model().name.clone(),
        device: args.model.device.clone(),
        precision: extractor.precision().to_string(),
        gpu_build: featx_extract::GPU_BUILD,
        gpu_kernels: extractor.gpu_kernels().name(),
        kernels,
        batch: args.batch,
        nodes: extractor.outputs().len(),
        planned_nodes,
        iters: times.len(),
        load_ms,
        build_ms,
        first_ms,
        median_ms,
        min_ms: times[0],
        max_ms: times[times.len() - 1],
        images_per_s: args.batch as f64 / (median_ms / 1000.0),
        peak_rss_mb: peak_rss_mb(),
        threads: featx_extract::pool_workers(),
        pinned_threads: featx_extract::pinned_workers(),
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Text => println!(
            "{} on {} ({}), batch {}, {} outputs ({} nodes run): median {:.2} ms (min {:.2}, max {:.2}), {:.1} images/s; load {:.0} ms, build {:.1} ms, first run {:.1} ms; {} threads ({} pinned)",
            report.model,
            report.device,
            report.precision,
            report.batch,
            report.nodes,
            report.planned_nodes,
            report.median_ms,
            report.min_ms,
            report.max_ms,
            report.images_per_s,
            report.load_ms,
            report.build_ms,
            report.first_ms,
            report.threads,
            report.pinned_threads
        ),
    }
    Ok(())
}

/// Peak resident set size from `/proc/self/status` (Linux only).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
