use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use featx_extract::{Feature, ReturnNodes};
use featx_viz::{Channels, FeatureMap, Figure, Reduce, bars, grid, heatmap, overlay};
use image::RgbImage;

use crate::error::CliError;
use crate::input::{PreprocessArgs, load_batch};
use crate::model::{InputShape, ModelArgs};

/// Arguments of `featx viz`.
#[derive(Args, Debug)]
pub struct VizArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The image to run the model on (JPEG, PNG, WebP, BMP).
    #[arg(long)]
    image: PathBuf,
    /// Node queries, repeated or comma-separated; each gives one picture.
    #[arg(long, value_delimiter = ',', num_args = 1.., required = true)]
    node: Vec<String>,
    /// Picture kind; `auto` draws heatmaps for feature maps and bars for vectors.
    #[arg(long, value_enum, default_value = "auto")]
    kind: Kind,
    /// How heatmaps and overlays combine channels.
    #[arg(long, value_enum, default_value = "sum")]
    reduce: ReduceArg,
    /// Grid: number of channels to show.
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Grid: the most active channels (`top`) or the first ones (`first`).
    #[arg(long, value_enum, default_value = "top")]
    select: Select,
    /// Bars: number of largest values to show.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// Overlay: weight of the heatmap over the image (0..1).
    #[arg(long, default_value_t = 0.5)]
    alpha: f32,
    /// Output PNG. With several nodes, one file per node: `<stem>_<key>.png` beside it.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    preprocess: PreprocessArgs,
}

/// `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Auto,
    Heatmap,
    Grid,
    Overlay,
    Bars,
}

/// `--reduce`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReduceArg {
    Sum,
    Mean,
    Max,
}

/// `--select`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Select {
    Top,
    First,
}

/// Runs the model on the image and writes one picture per requested node.
pub fn run(args: &VizArgs) -> Result<(), CliError> {
    let queries = super::node_queries(&args.node);
    if queries.is_empty() {
        return Err(CliError::Usage("nothing to draw: --node is empty".into()));
    }
    let request = ReturnNodes::parse(&queries.join(","))?;
    let device = args.model.device()?;
    let pipeline = args.preprocess.pipeline(args.model.preprocessing()?);
    let extractor = args
        .model
        .extractor(&request, &device, InputShape::new(1, pipeline.crop))?;
    let batch = load_batch(
        std::slice::from_ref(&args.image),
        &pipeline,
        &extractor,
        &device,
    )?;
    let features = extractor.forward(batch.tensor)?;
    let several = features.len() > 1;
    for (resolved, (key, feature)) in extractor.outputs().iter().zip(features.iter()) {
        let label = if resolved.node_name == key {
            key.to_string()
        } else {
            format!("{key} ({})", resolved.node_name)
        };
        let figure = draw(args, feature, &label, batch.images.first())?;
        let path = if several {
            sibling(&args.out, key)
        } else {
            args.out.clone()
        };
        figure.save_png(&path)?;
        println!("{}", path.display());
    }
    Ok(())
}

fn draw(
    args: &VizArgs,
    feature: &Feature,
    label: &str,
    image: Option<&RgbImage>,
) -> Result<Figure, CliError> {
    let shape = feature.dims();
    let values = feature.to_vec_f32()?;
    let map = FeatureMap::sample(&values, &shape, 0)?;
    let is_vector = map.shape[1] == 1 && map.shape[2] == 1;
    let reduce = match args.reduce {
        ReduceArg::Sum => Reduce::Sum,
        ReduceArg::Mean => Reduce::Mean,
        ReduceArg::Max => Reduce::Max,
    };
    let figure = match (args.kind, is_vector) {
        (Kind::Bars, _) | (Kind::Auto, true) => bars(map.values, args.top_k, label, &shape),
        (Kind::Heatmap, _) | (Kind::Auto, false) => heatmap(&map, reduce, label),
        (Kind::Grid, _) => {
            let channels = match args.select {
                Select::Top => Channels::Top(args.channels),
                Select::First => Channels::First(args.channels),
            };
            grid(&map, channels, label)
        }
        (Kind::Overlay, _) => match image {
            Some(base) => overlay(&map, reduce, base, args.alpha, label),
            None => return Err(CliError::Usage("overlay needs an image input".into())),
        },
    };
    Ok(figure?)
}

/// `out/dir/stem_key.png` for `out/dir/stem.png`.
pub(crate) fn sibling(out: &Path, key: &str) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("featx");
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.with_file_name(format!("{stem}_{safe}.png"))
}
