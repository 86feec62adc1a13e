use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use featx_cam::{Cam, CamOutput, METHODS, Method, Target};
use featx_output::{AtomicWriter, NamedTensor, producer};
use featx_viz::{Figure, cam_figure, show_cam_on_image};

use crate::commands::viz::sibling;
use crate::error::CliError;
use crate::input::{PreprocessArgs, load_batch};
use crate::model::{InputShape, ModeArg, ModelArgs, Weights};

/// Arguments of `featx cam`.
#[derive(Args, Debug)]
pub struct CamArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// What to explain: a float32 NCHW `.npy` batch (already normalised), or image files
    /// (JPEG, PNG, WebP, BMP) that form one batch.
    #[arg(long, num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// Target layers, node queries (`layer4`, `layer3.1.relu_1`), repeated or comma-separated;
    /// the maps of several layers are averaged, as pytorch-grad-cam does.
    #[arg(long, value_delimiter = ',', num_args = 1.., required = true)]
    node: Vec<String>,
    /// The CAM method (pytorch-grad-cam's class in brackets): gradcam (GradCAM), gradcam++
    /// (GradCAMPlusPlus), xgradcam, hirescam, layercam, eigencam, scorecam,
    /// gradcam-elementwise (GradCAMElementWise).
    #[arg(long, value_parser = method_parser(), hide_possible_values = true)]
    method: &'static Method,
    /// The class to explain: `top` (each image's highest logit) or a class index for every
    /// image. The score is the raw logit.
    #[arg(long, default_value = "top")]
    target: Target,
    /// Output PNG: the CAM over the image. With several images, one file per image:
    /// `<stem>_<i>.png` beside it.
    #[arg(long)]
    out: PathBuf,
    /// Also write the maps as a `.safetensors` file: key `cam`, float32 `[N, H, W]` in [0, 1]
    /// at the input size, equal to pytorch-grad-cam's `cam(input_tensor=x, targets=...)`.
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Compute the maps this many times and print the median, minimum and maximum time of one
    /// computation to stderr (model loading and pictures excluded), for benchmarks.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    #[command(flatten)]
    preprocess: PreprocessArgs,
}

fn method_parser() -> impl TypedValueParser<Value = &'static Method> {
    PossibleValuesParser::new(METHODS.iter().map(|m| m.name))
        .map(|name| featx_cam::find(&name).expect("a registry name"))
}

/// Computes the CAM of every input image and writes one picture per image (and the raw maps).
pub fn run(args: &CamArgs) -> Result<(), CliError> {
    if matches!(args.model.mode, ModeArg::Train) {
        return Err(CliError::Usage(
            "a CAM explains the model in eval mode (as pytorch-grad-cam does); drop --mode train"
                .into(),
        ));
    }
    if args.model.precision != featx_extract::Precision::F32 {
        return Err(CliError::Usage(
            "a CAM's gradients are computed in f32 only; drop --precision".into(),
        ));
    }
    let queries = super::node_queries(&args.node);
    let weights = args.model.weights()?;
    let device = args.model.device()?;
    let pipeline = args.preprocess.pipeline(args.model.preprocessing()?);
    let shape = InputShape::new(args.input.len(), pipeline.crop);
    let traced = args.model.traced(weights, shape)?;
    let mut cam = Cam::new(traced, &queries)?;
    if device != burn::prelude::Device::flex() {
        cam = cam.to_device(&device)?;
    }
    let batch = load_batch(&args.input, &pipeline, cam.extractor(), &device)?;
    let [n, _, h, w] = batch.tensor.dims();
    let x = batch.tensor.clone();
    let mut times = Vec::with_capacity(args.repeat as usize);
    let mut output = None;
    for _ in 0..args.repeat {
        let start = std::time::Instant::now();
        output = Some(cam.run(args.method, batch.tensor.clone(), args.target)?);
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let output = output.ok_or_else(|| CliError::Usage("--repeat must be at least 1".into()))?;
    if args.repeat > 1 {
        times.sort_by(f64::total_cmp);
        eprintln!(
            "cam: median {:.1} ms, min {:.1}, max {:.1} over {} runs",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            times.len()
        );
    }
    let nodes = cam.layers().join(",");
    if let Some(raw) = &args.raw {
        write_raw(raw, &output, args, &nodes)?;
    }
    // The picture's base: the cropped images, or the de-normalised input.
    let bases: Vec<Vec<f32>> = if batch.images.is_empty() {
        let values = featx_extract::Feature::from(x).to_vec_f32()?;
        (0..n)
            .map(|i| {
                let plane = |c: usize| &values[(i * 3 + c) * h * w..(i * 3 + c + 1) * h * w];
                (0..h * w)
                    .flat_map(|p| {
                        std::array::from_fn::<f32, 3, _>(|c| {
                            (plane(c)[p] * pipeline.std[c] + pipeline.mean[c]).clamp(0.0, 1.0)
                        })
                    })
                    .collect()
            })
            .collect()
    } else {
        batch
            .images
            .iter()
            .map(|im| im.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect())
            .collect()
    };
    let published = args.model.model.architecture().and_then(|a| a.weights);
    let names = match (weights, published) {
        (Weights::Imagenet, Some(published)) => Some(published),
        _ => None,
    };
    for (i, base) in bases.iter().enumerate() {
        let target = output.targets[i];
        let figure = picture(
            &Explained {
                method: args.method,
                model: &args.model.model.name(),
                nodes: &nodes,
                class: names.and_then(|p| p.class_name(target)),
            },
            &output,
            i,
            base,
            [w, h],
        )?;
        let path = if n > 1 {
            sibling(&args.out, &i.to_string())
        } else {
            args.out.clone()
        };
        figure.save_png(&path)?;
        println!("{}", path.display());
    }
    Ok(())
}

/// What a CAM picture's title says besides the numbers.
pub(crate) struct Explained<'a> {
    /// The method.
    pub method: &'static Method,
    /// The model's name.
    pub model: &'a str,
    /// The target layers, comma-separated.
    pub nodes: &'a str,
    /// The target class's name, when the weights have class names.
    pub class: Option<&'a str>,
}

/// The picture `featx cam` draws for image `i` of `output`: the map over `base` (the image's
/// RGB values in 0..1, `[w, h]`) with a title naming the method, layers, class and logit.
pub(crate) fn picture(
    what: &Explained<'_>,
    output: &CamOutput,
    i: usize,
    base: &[f32],
    [w, h]: [usize; 2],
) -> Result<Figure, CliError> {
    let target = output.targets[i];
    let class = match what.class {
        Some(name) => format!("class {target} ({name})"),
        None => format!("class {target}"),
    };
    let title = format!(
        "{} of {}  at {}  for {class}, logit {:.2}",
        what.method.name, what.model, what.nodes, output.scores[i]
    );
    let blended = show_cam_on_image(base, output.maps.image(i), w, h)?;
    Ok(cam_figure(&blended, &title)?)
}

/// The maps as safetensors key `cam`, with what made them in the metadata.
fn write_raw(path: &Path, output: &CamOutput, args: &CamArgs, nodes: &str) -> Result<(), CliError> {
    let metadata = HashMap::from([
        ("model".to_string(), args.model.model.name()),
        ("method".to_string(), args.method.name.to_string()),
        ("nodes".to_string(), nodes.to_string()),
        (
            "targets".to_string(),
            output
                .targets
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("producer".to_string(), producer()),
    ]);
    let tensor = NamedTensor {
        name: "cam",
        shape: output.maps.shape.to_vec(),
        values: &output.maps.values,
    };
    AtomicWriter::tagged("cam").safetensors(path, &[tensor], metadata)?;
    Ok(())
}
