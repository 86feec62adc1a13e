use std::path::{Path, PathBuf};

use clap::Args;
use featx_extract::ReturnNodes;

use crate::error::CliError;
use crate::input::{PreprocessArgs, load_batch};
use crate::model::{InputShape, ModelArgs};
use crate::picture::{self, Kind, PictureOptions, ReduceArg, Select};

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

impl VizArgs {
    /// The picture flags.
    fn options(&self) -> PictureOptions {
        PictureOptions {
            kind: self.kind,
            reduce: self.reduce,
            channels: self.channels,
            select: self.select,
            page: 0,
            top_k: self.top_k,
            alpha: self.alpha,
            scale: None,
        }
    }
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
        let label = picture::label(key, &resolved.node_name);
        let values = feature.to_vec_f32()?;
        let figure = picture::draw(
            &args.options(),
            &feature.dims(),
            extractor.model().graph.layout(resolved.node),
            &values,
            &label,
            batch.images.first(),
        )?;
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
