//! A dataset run: features of chosen nodes for every image of a folder, batched, written as
//! parts with an `index.csv` and a `summary.json` that other tools read, resumable after an
//! interruption. This is what `featx extract --input FOLDER --out DIR` runs.
//!
//! ```text
//! cargo run --example dataset_run
//! cargo run --example dataset_run -- --input photos/ --out features/ --nodes layer4,fc
//! ```
//!
//! Without `--input` it makes a small folder in the system's temporary folder: two copies of
//! `assets/chelsea.jpg` and one file that is no image, which the index records as failed while
//! the run goes on. The run is then started again on the same folder, as after an
//! interruption: it finds every part committed and reuses it.

use std::path::{Path, PathBuf};

use clap::Parser;
use featx::burn::prelude::*;
use featx::dataset::{DatasetOptions, Pool, extract_dataset, list_images};
use featx::{FeatureExtractor, ReturnNodes};

#[derive(Parser)]
struct Args {
    /// A folder of images (searched recursively), a glob pattern or a `.txt` list.
    #[arg(long)]
    input: Option<PathBuf>,
    /// The output folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Comma-separated node queries, each `query` or `query=key`.
    #[arg(long, default_value = "layer4=features,fc=logits")]
    nodes: String,
    /// Spatial pooling before storing: `avg`, `max` or `none`.
    #[arg(long, default_value = "avg")]
    pool: Pool,
    /// A torchvision resnet18 state dict; random weights if absent.
    #[arg(long)]
    weights: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = Device::flex();
    let scratch = std::env::temp_dir().join("featx-dataset-example");
    let input = match &args.input {
        Some(input) => input.clone(),
        None => sample_folder(&scratch.join("images"))?,
    };
    let out = match &args.out {
        Some(out) => out.clone(),
        None => {
            // The example's own scratch folder, started afresh: random weights differ from
            // one process to the next, and a resumed run must be the same run.
            let out = scratch.join("out");
            if out.exists() {
                std::fs::remove_dir_all(&out)?;
            }
            out
        }
    };

    // The list is recorded in the output, so a resumed run can check it is the same one.
    let images = list_images(std::slice::from_ref(&input))?;
    println!("{} images listed in {}", images.len(), input.display());

    let resnet18 = featx::models::find("resnet18").ok_or("resnet18 is not in the registry")?;
    let (traced, weights) = match &args.weights {
        Some(path) => (resnet18.load(&device, path)?, path.display().to_string()),
        None => (resnet18.random(&device), "random".to_string()),
    };
    let extractor = FeatureExtractor::new(traced, &ReturnNodes::parse(&args.nodes)?)?;

    let options = DatasetOptions {
        batch_size: 2,
        // Two images per part, to show several parts on a small folder.
        part_size: Some(2),
        pool: args.pool,
        // Recorded with every part: a resumed run must name the same weights.
        weights,
        ..DatasetOptions::default()
    };
    for run in ["first run", "again"] {
        let summary = extract_dataset(&extractor, &images, &out, &options)?;
        println!(
            "{run}: {} of {} images stored, {} failed; {} parts ({} reused); {} computed, \
             {:.1} images/s",
            summary.ok,
            summary.images,
            summary.failed,
            summary.parts,
            summary.resumed_parts,
            summary.processed,
            summary.images_per_s
        );
    }

    // summary.json describes every output; index.csv says where each image's row is.
    let summary = std::fs::read_to_string(out.join("summary.json"))?;
    println!(
        "{}: {} bytes",
        out.join("summary.json").display(),
        summary.len()
    );
    let index = out.join("index.csv");
    println!("{}:", index.display());
    for line in std::fs::read_to_string(&index)?.lines() {
        println!("  {line}");
    }
    let mut files: Vec<_> = std::fs::read_dir(&out)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    files.sort();
    println!("files in {}: {}", out.display(), files.join(", "));
    Ok(())
}

/// `dir` holding two copies of the sample image and one file that only looks like an image.
fn sample_folder(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let chelsea = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/chelsea.jpg");
    for name in ["chelsea-1.jpg", "chelsea-2.jpg"] {
        std::fs::copy(&chelsea, dir.join(name))?;
    }
    std::fs::write(dir.join("truncated.jpg"), b"not a JPEG")?;
    Ok(dir.to_path_buf())
}
