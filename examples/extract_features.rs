//! Feature extraction the torchvision way: list ResNet-18's node names, build an extractor for
//! `layer1`, `layer3` and `fc`, run it on one preprocessed image and print each output's shape
//! and statistics.
//!
//! ```text
//! cargo run --example extract_features
//! cargo run --example extract_features -- --image cat.jpg --weights resnet18-f37072fd.pth
//! ```
//!
//! Without `--weights` the model has random weights: shapes and node names are the same, the
//! values are not. With torchvision's file the top class of `assets/chelsea.jpg` is a cat.

use std::path::PathBuf;

use clap::Parser;
use featx::burn::prelude::*;
use featx::models::ResNetConfig;
use featx::preprocess::{Preprocess, batch_tensor, load_rgb};
use featx::{Feature, create_feature_extractor, get_graph_node_names};

#[derive(Parser)]
struct Args {
    /// The image to extract features of.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/chelsea.jpg"))]
    image: PathBuf,
    /// A torchvision resnet18 state dict (`.pth` or `.safetensors`); random weights if absent.
    #[arg(long)]
    weights: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = Device::flex();

    // Field names are torchvision's parameter paths, so the state dict loads without renaming.
    let model = ResNetConfig::resnet18(1000).init(&device);
    let model = match &args.weights {
        Some(path) => featx::weights::load_state_dict(model, path)?,
        None => model,
    };

    let (_train, eval) = get_graph_node_names(&model);
    println!(
        "resnet18: {} nodes, from {} to {}",
        eval.len(),
        eval.first().map_or("?", String::as_str),
        eval.last().map_or("?", String::as_str)
    );
    let layer3: Vec<_> = eval.iter().filter(|n| n.starts_with("layer3.0.")).collect();
    println!("nodes of layer3.0: {layer3:?}");

    // A module path (`layer3`) means the last node run inside it, as in torchvision.
    let extractor = create_feature_extractor(&model, ["layer1", "layer3", "fc"])?;
    for r in extractor.outputs() {
        println!("{:>6} -> node {}", r.key, r.node_name);
    }

    // torchvision's Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet).
    let input = Preprocess::imagenet().apply(&load_rgb(&args.image)?)?;
    let x = batch_tensor(&[input], &device)?;
    let features = extractor.forward(x)?;

    for (key, feature) in features.iter() {
        print_stats(key, feature)?;
    }
    if let Some(fc) = features.get("fc") {
        let logits = fc.to_vec_f32()?;
        let (class, logit) = argmax(&logits);
        // Class names are ImageNet's: meaningful only with the published weights.
        let name = featx::models::find("resnet18")
            .and_then(|a| a.weights)
            .and_then(|w| w.class_name(class))
            .filter(|_| args.weights.is_some())
            .unwrap_or("random weights: no meaning");
        println!("top class: {class} ({name}), logit {logit:.3}");
    }
    Ok(())
}

/// Shape, range, mean, standard deviation and the share of zeros (ReLU's sparsity).
fn print_stats(key: &str, feature: &Feature) -> Result<(), Box<dyn std::error::Error>> {
    let values = feature.to_vec_f32()?;
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let zeros = values.iter().filter(|&&v| v == 0.0).count() as f64 / n;
    println!(
        "{key:>6}: shape {:?}  min {min:.3}  max {max:.3}  mean {mean:.4}  std {:.4}  \
         zeros {:.1}%",
        feature.dims(),
        var.sqrt(),
        100.0 * zeros
    );
    Ok(())
}

/// The index and value of the largest entry.
fn argmax(values: &[f32]) -> (usize, f32) {
    values
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 { (i, v) } else { best }
        })
}
