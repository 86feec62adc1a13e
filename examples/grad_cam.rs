//! Grad-CAM: which part of the image made ResNet-18 choose its top class. The map is made from
//! `layer4`'s activations and their gradients, as pytorch-grad-cam computes it, and drawn over
//! the image the model saw with pytorch-grad-cam's `show_cam_on_image`.
//!
//! ```text
//! cargo run --example grad_cam
//! cargo run --example grad_cam -- --weights resnet18-f37072fd.pth --method gradcam++ \
//!     --out cam.png
//! ```
//!
//! Without `--weights` the model has random weights, so the map shows nothing about cats. The
//! picture goes to `--out`, by default `featx-grad-cam.png` in the system's temporary folder.

use std::path::PathBuf;

use clap::Parser;
use featx::burn::prelude::*;
use featx::cam::{Cam, Target};
use featx::preprocess::{Preprocess, batch_tensor, load_rgb};
use featx::viz::{cam_figure, show_cam_on_image};

#[derive(Parser)]
struct Args {
    /// The image to explain.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/chelsea.jpg"))]
    image: PathBuf,
    /// A torchvision resnet18 state dict; random weights if absent.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The layer whose activations the map is made of.
    #[arg(long, default_value = "layer4")]
    layer: String,
    /// The method: gradcam, gradcam++, xgradcam, hirescam, layercam, eigencam, scorecam,
    /// gradcam-elementwise.
    #[arg(long, default_value = "gradcam")]
    method: String,
    /// The class to explain: `top` (the highest logit) or a class index.
    #[arg(long, default_value = "top")]
    target: Target,
    /// Where to write the picture (PNG).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = Device::flex();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("featx-grad-cam.png"));
    let method = featx::cam::find(&args.method)?;

    let resnet18 = featx::models::find("resnet18").ok_or("resnet18 is not in the registry")?;
    let traced = match &args.weights {
        Some(path) => resnet18.load(&device, path)?,
        None => resnet18.random(&device),
    };
    // Checks up front that the layer is a feature map and the model ends in class scores.
    let cam = Cam::new(traced, &[args.layer.as_str()])?;

    let input = Preprocess::imagenet().apply(&load_rgb(&args.image)?)?;
    let [h, w] = input.size;
    // pytorch-grad-cam blends over the RGB image in [0, 1], channels last: the crop the model
    // saw, before normalisation.
    let base: Vec<f32> = input
        .image
        .as_raw()
        .iter()
        .map(|&v| f32::from(v) / 255.0)
        .collect();
    let x = batch_tensor(&[input], &device)?;

    let start = std::time::Instant::now();
    let output = cam.run(method, x, args.target)?;
    let class = output.targets[0];
    let name = resnet18
        .weights
        .and_then(|p| p.class_name(class))
        .filter(|_| args.weights.is_some())
        .unwrap_or("random weights");
    println!(
        "{} at {:?} for class {class} ({name}), logit {:.3}: {:.0} ms",
        method.name,
        cam.layers(),
        output.scores[0],
        start.elapsed().as_secs_f64() * 1e3
    );
    // The map is in [0, 1] at the input size; where is it hottest?
    let map = output.maps.image(0);
    let hottest = (0..map.len()).fold(0, |best, i| if map[i] > map[best] { i } else { best });
    println!(
        "map {:?}, mean {:.3}, hottest at (x {}, y {})",
        output.maps.shape,
        map.iter().sum::<f32>() / map.len().max(1) as f32,
        hottest % w,
        hottest / w
    );

    let blended = show_cam_on_image(&base, map, w, h)?;
    let title = format!(
        "{} of resnet18 at {} for class {class}",
        method.name, args.layer
    );
    cam_figure(&blended, &title)?.save_png(&out)?;
    println!("wrote {}", out.display());
    Ok(())
}
