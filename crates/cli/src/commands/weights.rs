use std::path::PathBuf;

use clap::Args;
use featx_models::{Architecture, BuildArgs, MODELS};
use featx_weights::{TensorInfo, WeightsFile, cache_dir, verify};
use serde::Serialize;

use super::Format;
use crate::error::CliError;

/// Arguments of `featx weights`.
#[derive(Args, Debug)]
pub struct WeightsArgs {
    /// A weights file to describe; without it, only the cache is shown.
    file: Option<PathBuf>,
    /// The input height and width a ViT is built for (as the model commands' `--input-size`):
    /// a checkpoint made for another size is reported as fitting with its position
    /// embeddings interpolated as torchvision's interpolate_embeddings does
    #[arg(long = "input-size", value_parser = clap::value_parser!(u64).range(1..))]
    image_size: Option<u64>,
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
    /// The class count the file's head has (where the model has a head the file fills).
    num_classes: Option<usize>,
    /// A ViT's input size: `--input-size`, else read from its positional embedding.
    image_size: Option<usize>,
    /// The input size the file's positional embedding was made for, where it differs from
    /// `image_size` (loading interpolates it).
    #[serde(skip_serializing_if = "Option::is_none")]
    interpolated_from: Option<usize>,
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
    /// How the state dict was found in the file (plain, or under a wrapper prefix).
    layout: Option<String>,
    tensors: Vec<TensorJson<'a>>,
    models: Vec<Fit>,
    cache_dir: String,
    cache: Vec<CacheEntry>,
}

/// Describes a weights file (tensors, which model it fits) and the download cache.
pub fn run(args: &WeightsArgs) -> Result<(), CliError> {
    let file = args
        .file
        .as_ref()
        .map(|path| WeightsFile::open(path, &[]))
        .transpose()?;
    let tensors = file.as_ref().map(WeightsFile::tensors).unwrap_or_default();
    let models = if args.file.is_some() {
        let size = args.image_size.map(|n| n as usize);
        MODELS
            .iter()
            .map(|arch| fit(arch, &tensors, size))
            .collect()
    } else {
        Vec::new()
    };
    let dir = cache_dir();
    let cache = MODELS
        .iter()
        .filter_map(|arch| arch.weights)
        .map(|published| {
            let remote = published.remote();
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
        layout: file.as_ref().map(|f| f.layout().to_string()),
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

fn fit(arch: &Architecture, tensors: &[TensorInfo], image_size: Option<usize>) -> Fit {
    // Built as the file calls for (its head's class count), keys as the model names them
    // (DenseNet's published files have older names); a ViT at `--input-size`, its positional
    // embedding interpolated.
    let given = BuildArgs {
        num_classes: None,
        image_size,
    };
    let (args, report) = arch.fit(tensors, given);
    let from = arch.file_image_size(tensors);
    Fit {
        model: arch.name.to_string(),
        fits: report.fits(),
        num_classes: args.num_classes,
        image_size: args.image_size,
        interpolated_from: from.filter(|_| args.image_size.is_some() && from != args.image_size),
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
        if let Some(layout) = &report.layout {
            println!("  read as {layout}");
        }
        for t in &report.tensors {
            println!("  {:<40} {:<8} {:?}", t.key, t.dtype, t.shape);
        }
        let fits: Vec<String> = report
            .models
            .iter()
            .filter(|f| f.fits)
            .map(|f| match (f.num_classes, f.image_size) {
                (Some(n), Some(s)) => match f.interpolated_from {
                    Some(o) => format!(
                        "{} ({n} classes, {s}x{s} input, position embeddings interpolated from {o}x{o})",
                        f.model
                    ),
                    None => format!("{} ({n} classes, {s}x{s} input)", f.model),
                },
                (Some(n), None) => format!("{} ({n} classes)", f.model),
                _ => f.model.clone(),
            })
            .collect();
        if fits.is_empty() {
            // The closest models: fewest keys missing, unexpected or of the wrong shape.
            let mut misfits: Vec<&Fit> = report.models.iter().collect();
            misfits.sort_by_key(|f| f.missing.len() + f.unexpected.len() + f.wrong_shape.len());
            println!(
                "fits none of featx's {} models; closest:",
                report.models.len()
            );
            for fit in misfits.iter().take(3) {
                println!(
                    "  {}: {} missing, {} unexpected, {} wrong shape",
                    fit.model,
                    fit.missing.len(),
                    fit.unexpected.len(),
                    fit.wrong_shape.len()
                );
            }
        } else {
            println!("fits {}", fits.join(", "));
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
