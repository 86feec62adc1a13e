use std::path::PathBuf;

use clap::Args;
use featx_weights::{FitReport, TensorInfo, cache_dir, inspect, verify};
use serde::Serialize;

use super::Format;
use crate::error::CliError;
use crate::model::ModelKind;

/// Arguments of `featx weights`.
#[derive(Args, Debug)]
pub struct WeightsArgs {
    /// A weights file to describe; without it, only the cache is shown.
    file: Option<PathBuf>,
    /// Human-readable text or one JSON object.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Serialize)]
struct TensorJson<'a> {
    key: &'a str,
    shape: &'a [usize],
    dtype: String,
}

#[derive(Serialize)]
struct Fit {
    model: String,
    fits: bool,
    missing: Vec<String>,
    unexpected: Vec<String>,
    wrong_shape: Vec<String>,
}

#[derive(Serialize)]
struct CacheEntry {
    file: String,
    path: String,
    present: bool,
    verified: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    file: Option<String>,
    tensors: Vec<TensorJson<'a>>,
    models: Vec<Fit>,
    cache_dir: String,
    cache: Vec<CacheEntry>,
}

/// Describes a weights file (tensors, which model it fits) and the download cache.
pub fn run(args: &WeightsArgs) -> Result<(), CliError> {
    let tensors = match &args.file {
        Some(path) => inspect(path)?,
        None => Vec::new(),
    };
    let models = if args.file.is_some() {
        [ModelKind::Resnet18, ModelKind::Alexnet]
            .into_iter()
            .map(|kind| fit(kind, &tensors))
            .collect()
    } else {
        Vec::new()
    };
    let dir = cache_dir();
    let cache = [ModelKind::Resnet18, ModelKind::Alexnet]
        .into_iter()
        .filter_map(ModelKind::published)
        .map(|remote| {
            let path = dir.join(&remote.file_name);
            let present = path.is_file();
            CacheEntry {
                verified: present && verify(&path, &remote.sha256_prefix).unwrap_or(false),
                present,
                file: remote.file_name,
                path: path.display().to_string(),
            }
        })
        .collect();
    let report = Report {
        file: args.file.as_ref().map(|p| p.display().to_string()),
        tensors: tensors
            .iter()
            .map(|t| TensorJson {
                key: &t.key,
                shape: &t.shape,
                dtype: format!("{:?}", t.dtype),
            })
            .collect(),
        models,
        cache_dir: dir.display().to_string(),
        cache,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_text(&report),
    }
    Ok(())
}

fn fit(kind: ModelKind, tensors: &[TensorInfo]) -> Fit {
    let report = FitReport::new(&kind.expected_keys(), tensors);
    Fit {
        model: format!("{kind:?}").to_lowercase(),
        fits: report.fits(),
        missing: report.missing,
        unexpected: report.unexpected,
        wrong_shape: report
            .mismatched
            .into_iter()
            .map(|m| format!("{}: {}", m.key, m.reason))
            .collect(),
    }
}

fn print_text(report: &Report<'_>) {
    if let Some(file) = &report.file {
        println!("{file}: {} tensors", report.tensors.len());
        for t in &report.tensors {
            println!("  {:<40} {:<8} {:?}", t.key, t.dtype, t.shape);
        }
        for fit in &report.models {
            if fit.fits {
                println!("fits {}", fit.model);
            } else {
                println!(
                    "does not fit {}: {} missing, {} unexpected, {} wrong shape",
                    fit.model,
                    fit.missing.len(),
                    fit.unexpected.len(),
                    fit.wrong_shape.len()
                );
            }
        }
    }
    println!(
        "cache: {} (set FEATX_CACHE_DIR to move it)",
        report.cache_dir
    );
    for entry in &report.cache {
        let state = match (entry.present, entry.verified) {
            (true, true) => "present, verified",
            (true, false) => "present, FAILS verification (will be downloaded again)",
            _ => "not downloaded (fetched on first --weights imagenet)",
        };
        println!("  {}: {state}", entry.file);
    }
}
