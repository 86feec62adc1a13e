use burn::prelude::Device;
use clap::Args;
use featx_models::registry::Preprocessing;
use featx_models::{Architecture, MODELS};
use featx_weights::{DEFAULT_BASE_URL, cache_dir};
use serde::Serialize;

use super::Format;
use crate::error::CliError;

/// Arguments of `featx models`.
#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// A table for people or one JSON object for programs.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Serialize)]
struct ModelJson {
    name: &'static str,
    family: &'static str,
    about: &'static str,
    parameters: usize,
    nodes: usize,
    input: InputJson,
    preprocess: PreprocessJson,
    weights: Option<WeightsJson>,
}

#[derive(Serialize)]
struct InputJson {
    channels: usize,
    /// The only size the model takes, if it has one.
    size: Option<[usize; 2]>,
    /// The size `featx nodes` reports shapes for.
    nominal_size: [usize; 2],
}

#[derive(Serialize)]
struct PreprocessJson {
    resize: u32,
    crop: u32,
    interpolation: &'static str,
    mean: [f32; 3],
    std: [f32; 3],
}

#[derive(Serialize)]
struct WeightsJson {
    name: &'static str,
    file: &'static str,
    url: String,
    sha256_prefix: &'static str,
    /// Whether the file is in the cache (it is verified when used).
    cached: bool,
    path: String,
}

#[derive(Serialize)]
struct Report {
    cache_dir: String,
    models: Vec<ModelJson>,
}

/// Lists every architecture: parameters, nodes, input, preprocessing, published weights.
pub fn run(args: &ModelsArgs) -> Result<(), CliError> {
    let dir = cache_dir();
    let device = Device::flex();
    let models = MODELS
        .iter()
        .map(|arch| describe(arch, &device, &dir))
        .collect();
    let report = Report {
        cache_dir: dir.display().to_string(),
        models,
    };
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Usage(e.to_string()))?
        ),
        Format::Text => print_text(&report),
    }
    Ok(())
}

fn describe(arch: &'static Architecture, device: &Device, dir: &std::path::Path) -> ModelJson {
    let spec = arch.input_spec();
    let Preprocessing {
        resize,
        crop,
        interpolation,
        mean,
        std,
    } = arch.preprocess();
    ModelJson {
        name: arch.name,
        family: arch.family,
        about: arch.about,
        parameters: arch.num_params(),
        nodes: arch.random(device).graph.nodes().len(),
        input: InputJson {
            channels: spec.channels,
            size: spec.size,
            nominal_size: spec.nominal_size,
        },
        preprocess: PreprocessJson {
            resize,
            crop,
            interpolation: interpolation.as_str(),
            mean,
            std,
        },
        weights: arch.weights.map(|w| {
            let path = dir.join(w.file_name);
            WeightsJson {
                name: w.name,
                file: w.file_name,
                url: format!("{DEFAULT_BASE_URL}{}", w.file_name),
                sha256_prefix: w.sha256_prefix(),
                cached: path.is_file(),
                path: path.display().to_string(),
            }
        }),
    }
}

fn print_text(report: &Report) {
    println!(
        "{:<18} {:>7} {:>6}  {:<13} {:<18} weights (--weights imagenet)",
        "model", "params", "nodes", "input", "preprocess"
    );
    for m in &report.models {
        let input = match m.input.size {
            Some([h, w]) => format!("{}x{h}x{w} only", m.input.channels),
            None => format!("{}xHxW", m.input.channels),
        };
        let preprocess = format!(
            "{} {}/{}",
            m.preprocess.interpolation, m.preprocess.resize, m.preprocess.crop
        );
        let weights = match &m.weights {
            Some(w) if w.cached => format!("{} (cached)", w.file),
            Some(w) => w.file.to_string(),
            None => "none".to_string(),
        };
        println!(
            "{:<18} {:>6.1}M {:>6}  {:<13} {:<18} {weights}",
            m.name,
            m.parameters as f64 / 1e6,
            m.nodes,
            input,
            preprocess
        );
    }
    println!(
        "cache: {} (set FEATX_CACHE_DIR to move it)",
        report.cache_dir
    );
}
