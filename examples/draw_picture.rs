//! Pictures of a feature map: extract one node of ResNet-18 for an image and draw it three ways
//! with `featx::viz`: the channel sum as a heatmap with a colour bar, a grid of the most active
//! channels, and the map blended over the image the model saw.
//!
//! ```text
//! cargo run --example draw_picture
//! cargo run --example draw_picture -- --node layer2.1.relu_1 --out layer2.png
//! ```
//!
//! The heatmap goes to `--out` (by default `featx-<node>.png` in the system's temporary
//! folder), the grid and the overlay beside it as `<stem>_grid.png` and `<stem>_overlay.png`.

use std::path::{Path, PathBuf};

use clap::Parser;
use featx::burn::prelude::*;
use featx::preprocess::{Preprocess, batch_tensor, load_rgb};
use featx::viz::{Channels, FeatureMap, Reduce, grid, heatmap, overlay};
use featx::{FeatureExtractor, ReturnNodes};

#[derive(Parser)]
struct Args {
    /// The node to draw: a node name or a module path (`featx nodes --model resnet18`).
    #[arg(long, default_value = "layer1")]
    node: String,
    /// The image to run the model on.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/chelsea.jpg"))]
    image: PathBuf,
    /// Where to write the heatmap (PNG).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A torchvision resnet18 state dict; random weights if absent.
    #[arg(long)]
    weights: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = Device::flex();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("featx-{}.png", args.node)));

    // The registry's builder traces the model; an extractor takes any traced model.
    let resnet18 = featx::models::find("resnet18").ok_or("resnet18 is not in the registry")?;
    let traced = match &args.weights {
        Some(path) => resnet18.load(&device, path)?,
        None => resnet18.random(&device),
    };
    let extractor = FeatureExtractor::new(traced, &ReturnNodes::from([args.node.as_str()]))?;

    let input = Preprocess::imagenet().apply(&load_rgb(&args.image)?)?;
    // The 224x224 crop the model sees, kept for the overlay.
    let seen = input.image.clone();
    let features = extractor.forward(batch_tensor(&[input], &device)?)?;
    let feature = features
        .get(&args.node)
        .ok_or("the extractor returned no output")?;
    let (shape, values) = (feature.dims(), feature.to_vec_f32()?);
    println!("{}: shape {shape:?}", args.node);

    // One sample of the batch, `[C, H, W]` (a vector `[N, F]` is drawn as `[F, 1, 1]`).
    let map = FeatureMap::sample(&values, &shape, 0)?;
    let label = format!("resnet18 {}", args.node);
    let pictures = [
        (out.clone(), heatmap(&map, Reduce::Sum, &label)?),
        (
            sibling(&out, "grid"),
            grid(&map, Channels::Top(16), &label)?,
        ),
        (
            sibling(&out, "overlay"),
            overlay(&map, Reduce::Mean, &seen, 0.6, &label)?,
        ),
    ];
    for (path, figure) in pictures {
        figure.save_png(&path)?;
        let (w, h) = figure.image.dimensions();
        println!("wrote {} ({w}x{h})", path.display());
    }
    Ok(())
}

/// `dir/stem.png` -> `dir/stem_<what>.png`.
fn sibling(out: &Path, what: &str) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("featx");
    out.with_file_name(format!("{stem}_{what}.png"))
}
