//! One dataset run: plan the shard's parts, skip the committed ones, stream the rest through
//! the loader and the model, commit each part, then write the index and the summary.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::Device;
use featx_extract::{ExtractError, FeatureExtractor, Mode};
use featx_output::{npy_file_name, producer};
use featx_preprocess::{Preprocess, Preprocessed, batch_tensor};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::command::CommandLine;
use crate::error::{DatasetError, Result, output_error};
use crate::listing::{Shard, listing_digest};
use crate::loader::{self, BatchPlan, Item, LoadedBatch};
use crate::part::{
    Layout, ListingSpec, Manifest, OutputFormat, OutputSpec, PartBuffer, PreprocessSpec, RunConfig,
    Status,
};
use crate::pool::Pool;
use crate::stats::Stats;

/// How a dataset run batches, pools, splits and stores.
#[derive(Debug, Clone)]
pub struct DatasetOptions {
    /// Images per model call.
    pub batch_size: usize,
    /// Images per output part; `None` picks a power of two that keeps a part near 256 MiB.
    pub part_size: Option<usize>,
    /// Spatial pooling of feature maps.
    pub pool: Pool,
    /// Which slice of the list this process covers.
    pub shard: Shard,
    /// Part file format.
    pub format: OutputFormat,
    /// Decoding threads.
    pub workers: usize,
    /// Draw a progress bar on stderr (only where stderr is a terminal).
    pub progress: bool,
    /// Input preprocessing; it must crop, so that every image has one size.
    pub preprocess: Preprocess,
    /// Where the weights came from, recorded with the run (a path, `random`, ...).
    pub weights: String,
    /// The command line that started the run, recorded with each part so that `featx dataset
    /// status` can say how to finish an interrupted shard.
    pub command: Option<CommandLine>,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            batch_size: 16,
            part_size: None,
            pool: Pool::None,
            shard: Shard::ALL,
            format: OutputFormat::Safetensors,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            progress: false,
            preprocess: Preprocess::imagenet(),
            weights: String::new(),
            command: None,
        }
    }
}

/// Statistics of one stored output over the run's rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputSummary {
    /// Stored key.
    pub key: String,
    /// Graph node.
    pub node: String,
    /// Shape of all stored rows together: `[rows, ...row_shape]`.
    pub shape: Vec<usize>,
    /// Smallest value.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Mean value.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
    /// NaN and infinite values.
    pub nonfinite: u64,
    /// Finite values: with `sum` and `sum_squares`, what summaries of shards combine exactly
    /// (mean and std alone would not).
    #[serde(default)]
    pub count: u64,
    /// Sum of the finite values.
    #[serde(default)]
    pub sum: f64,
    /// Sum of squares of the finite values.
    #[serde(default)]
    pub sum_squares: f64,
}

/// What a run did, also written as `summary.json` (by `featx dataset merge`, for the shards of
/// a run together).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The featx version.
    pub producer: String,
    /// Model name.
    pub model: String,
    /// Where the weights came from.
    pub weights: String,
    /// This process's slice.
    pub shard: Shard,
    /// Images in the whole list.
    pub listed: usize,
    /// Images in this shard.
    pub images: usize,
    /// Images whose rows are stored.
    pub ok: usize,
    /// Images that could not be used (see the index).
    pub failed: usize,
    /// Spatial pooling.
    pub pool: Pool,
    /// Part format.
    pub format: OutputFormat,
    /// Images per part.
    pub part_size: usize,
    /// Images per model call in this invocation.
    pub batch_size: usize,
    /// Parts of this shard.
    pub parts: usize,
    /// Parts found committed and reused.
    pub resumed_parts: usize,
    /// Images computed by this invocation.
    pub processed: usize,
    /// Seconds this invocation took.
    pub elapsed_s: f64,
    /// `processed / elapsed_s`.
    pub images_per_s: f64,
    /// Per-output shapes and statistics.
    pub outputs: Vec<OutputSummary>,
    /// The index file (CSV: index, path, status, file, row, error).
    pub index: String,
    /// The part data files or folders, in order.
    pub files: Vec<String>,
    /// Where this invocation's time went, and so what limits its rate (absent in merged
    /// summaries and in those of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// For a merged dataset: how many shards it combines. Its timing fields then describe the
    /// shards' last runs together (images computed by all, the longest time, the images over
    /// that time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_shards: Option<usize>,
    /// The command line of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandLine>,
}

/// Where a run's time went: decoding runs on worker threads while the model computes, so the
/// time the model loop waits for decoded images says whether decoding or the model sets the
/// rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Seconds the model loop waited for the next decoded batch.
    pub waiting_for_images_s: f64,
    /// Seconds in the model: upload, forward pass, read-back and pooling.
    pub model_s: f64,
    /// Seconds writing and committing parts.
    pub writing_s: f64,
    /// The largest of the three.
    pub limit: Limit,
}

/// What limits a run's rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    /// Decoding and preprocessing images (more `--workers`, or a faster disk, would help).
    Decoding,
    /// The model (a faster device, a larger batch or a reduced precision would help).
    #[default]
    Model,
    /// Writing parts.
    Writing,
}

impl Limit {
    /// The name in reports (`decoding`, `model`, `writing`).
    pub fn name(self) -> &'static str {
        match self {
            Limit::Decoding => "decoding",
            Limit::Model => "model",
            Limit::Writing => "writing",
        }
    }
}

impl Timing {
    /// `self` with `limit` set to the largest of its parts.
    fn with_limit(mut self) -> Self {
        let parts = [
            (self.waiting_for_images_s, Limit::Decoding),
            (self.model_s, Limit::Model),
            (self.writing_s, Limit::Writing),
        ];
        self.limit = parts
            .into_iter()
            .fold((f64::MIN, Limit::Model), |best, p| {
                if p.0 > best.0 { p } else { best }
            })
            .1;
        self
    }
}

/// Parts keep near this many bytes when `--part-size` is not given.
const PART_BYTES: usize = 256 << 20;
/// And never more images than this.
const MAX_PART_IMAGES: usize = 4096;

fn auto_part_size(bytes_per_image: usize) -> usize {
    let fits = (PART_BYTES / bytes_per_image.max(1)).clamp(1, MAX_PART_IMAGES);
    // A power of two: independent of the batch size (so a resumed run may change it) and
    // a multiple of the usual batch sizes.
    1 << fits.ilog2()
}

/// Extracts `extractor`'s outputs for every image of `images` in `options.shard` into `out`,
/// resuming from the parts already committed there.
///
/// Unreadable images are recorded as failed in the index and counted in the summary; only
/// problems with the run itself (options, output folder, model) return an error.
pub fn extract_dataset(
    extractor: &FeatureExtractor,
    device: &Device,
    images: &[PathBuf],
    out: &Path,
    options: &DatasetOptions,
) -> Result<Summary> {
    let started = Instant::now();
    let run = run_config(extractor, images, options)?;
    std::fs::create_dir_all(out).map_err(|e| output_error(out, e))?;
    let layout = Layout::new(out, options.shard);
    layout.remove_leftovers()?;

    let shard = options.shard.range(images.len());
    let parts = part_ranges(shard.clone(), run.part_size);
    let mut manifests = (0..parts.len())
        .map(|k| layout.committed(k, &run))
        .collect::<Result<Vec<_>>>()?;
    let resumed_parts = manifests.iter().flatten().count();
    let todo: Vec<usize> = (0..parts.len())
        .filter(|&k| manifests[k].is_none())
        .collect();
    let plans = batch_plans(&todo, &parts, images, options.batch_size);
    let processed: usize = todo.iter().map(|&k| parts[k].len()).sum();

    let bar = progress_bar(options.progress, shard.len(), shard.len() - processed);
    let (batches, loader) = loader::spawn(plans, options.preprocess.clone(), options.workers);
    let crop = run.preprocess.crop as usize;
    let mut filling: Option<PartBuffer> = None;
    let mut failed_now = 0;
    let mut timing = Timing::default();
    let outcome = (|| -> Result<()> {
        let mut batches = batches.iter();
        loop {
            let waiting = Instant::now();
            let Some(batch) = batches.next() else { break };
            timing.waiting_for_images_s += waiting.elapsed().as_secs_f64();
            if filling.as_ref().is_some_and(|p| p.part() != batch.part)
                && let Some(done) = filling.take()
            {
                let writing = Instant::now();
                let k = done.part();
                manifests[k] = Some(done.commit(&layout, &run, options.command.as_ref())?);
                timing.writing_s += writing.elapsed().as_secs_f64();
            }
            let part = filling.get_or_insert_with(|| {
                PartBuffer::new(batch.part, parts[batch.part].clone(), run.outputs.len())
            });
            let count = batch.images.len() as u64;
            let model = Instant::now();
            failed_now += run_batch(extractor, device, &run, [crop, crop], batch, part)?;
            timing.model_s += model.elapsed().as_secs_f64();
            bar.inc(count);
            bar.set_message(format!("{failed_now} failed"));
        }
        if let Some(done) = filling.take() {
            let writing = Instant::now();
            let k = done.part();
            manifests[k] = Some(done.commit(&layout, &run, options.command.as_ref())?);
            timing.writing_s += writing.elapsed().as_secs_f64();
        }
        Ok(())
    })();
    drop(batches);
    let _ = loader.join();
    bar.finish_and_clear();
    outcome?;

    let manifests: Vec<Manifest> = manifests.into_iter().flatten().collect();
    write_index(&layout, &manifests)?;
    let this_run = Invocation {
        batch_size: options.batch_size,
        resumed_parts,
        processed,
        elapsed_s: started.elapsed().as_secs_f64(),
        timing: (processed > 0).then(|| timing.with_limit()),
        command: options.command.clone(),
    };
    let summary = summarize(&run, &layout, &manifests, this_run);
    let path = layout.summary();
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| output_error(&path, e))?;
    layout.writer().bytes(&path, &json)?;
    Ok(summary)
}

fn run_config(
    extractor: &FeatureExtractor,
    images: &[PathBuf],
    options: &DatasetOptions,
) -> Result<RunConfig> {
    let pre = &options.preprocess;
    let crop = pre.crop.ok_or_else(|| {
        DatasetError::Options(
            "images are batched, so they need one size: set a center crop (--crop)".into(),
        )
    })?;
    if options.batch_size == 0 {
        return Err(DatasetError::Options(
            "the batch size must be at least 1".into(),
        ));
    }
    if options.part_size == Some(0) {
        return Err(DatasetError::Options(
            "the part size must be at least 1".into(),
        ));
    }
    if extractor.outputs().is_empty() {
        return Err(DatasetError::Options(
            "nothing to extract: no nodes requested".into(),
        ));
    }
    let crop_px = crop as usize;
    let shapes = extractor.check_input(&[1, 3, crop_px, crop_px])?;
    let outputs: Vec<OutputSpec> = extractor
        .outputs()
        .iter()
        .zip(shapes)
        .map(|(r, shape)| OutputSpec {
            key: r.key.clone(),
            node: r.node_name.clone(),
            row_shape: options.pool.row_shape(&shape[1..]),
        })
        .collect();
    if options.format == OutputFormat::Npy {
        let mut names: Vec<String> = outputs.iter().map(|o| npy_file_name(&o.key)).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(DatasetError::Options(format!(
                "two output keys would share the file {}: rename one (query=key)",
                w[0]
            )));
        }
    }
    let bytes_per_image = outputs
        .iter()
        .map(|o| o.row_shape.iter().product::<usize>() * 4)
        .sum();
    let train = extractor.mode() == Mode::Train;
    Ok(RunConfig {
        model: extractor.model().name.clone(),
        weights: options.weights.clone(),
        mode: if train { "train" } else { "eval" }.into(),
        batch_size: train.then_some(options.batch_size),
        outputs,
        pool: options.pool,
        preprocess: PreprocessSpec {
            resize: pre.resize,
            crop,
            mean: pre.mean,
            std: pre.std,
        },
        part_size: options
            .part_size
            .unwrap_or_else(|| auto_part_size(bytes_per_image)),
        shard: options.shard,
        listing: ListingSpec {
            images: images.len(),
            digest: listing_digest(images),
        },
        format: options.format,
    })
}

pub(crate) fn part_ranges(shard: Range<usize>, part_size: usize) -> Vec<Range<usize>> {
    (shard.start..shard.end)
        .step_by(part_size)
        .map(|s| s..(s + part_size).min(shard.end))
        .collect()
}

fn batch_plans(
    todo: &[usize],
    parts: &[Range<usize>],
    images: &[PathBuf],
    batch_size: usize,
) -> Vec<BatchPlan> {
    let mut plans = Vec::new();
    for &k in todo {
        let items: Vec<Item> = parts[k]
            .clone()
            .map(|index| Item {
                index,
                path: images[index].clone(),
            })
            .collect();
        for chunk in items.chunks(batch_size) {
            plans.push(BatchPlan {
                part: k,
                items: chunk.to_vec(),
            });
        }
    }
    plans
}

/// Runs the model on a batch's good images and stores their rows; returns how many failed.
fn run_batch(
    extractor: &FeatureExtractor,
    device: &Device,
    run: &RunConfig,
    size: [usize; 2],
    batch: LoadedBatch,
    part: &mut PartBuffer,
) -> Result<usize> {
    let mut good = Vec::with_capacity(batch.images.len());
    let mut failed = 0;
    for loaded in batch.images {
        match loaded.result {
            Ok(input) if input.size == size => good.push((loaded.item, input)),
            Ok(input) => {
                failed += 1;
                let got = input.size;
                part.failed(
                    &loaded.item,
                    format!(
                        "preprocessed to {}x{}, not the run's {}x{}",
                        got[0], got[1], size[0], size[1]
                    ),
                );
            }
            Err(error) => {
                failed += 1;
                part.failed(&loaded.item, error);
            }
        }
    }
    if good.is_empty() {
        return Ok(failed);
    }
    let (items, inputs): (Vec<Item>, Vec<Preprocessed>) = good.into_iter().unzip();
    let tensor = batch_tensor(&inputs, device).map_err(|e| DatasetError::Options(e.to_string()))?;
    drop(inputs);
    let features = extractor.forward(tensor)?;
    let columns: Vec<Vec<f32>> = features
        .into_iter()
        .map(|(_, f)| Ok(run.pool.apply(f).to_vec_f32()?))
        .collect::<std::result::Result<_, ExtractError>>()?;
    let row_lens: Vec<usize> = run
        .outputs
        .iter()
        .map(|o| o.row_shape.iter().product())
        .collect();
    for (i, item) in items.iter().enumerate() {
        let rows: Vec<&[f32]> = columns
            .iter()
            .zip(&row_lens)
            .map(|(c, &len)| &c[i * len..(i + 1) * len])
            .collect();
        part.stored(item, &rows);
    }
    Ok(failed)
}

fn progress_bar(enabled: bool, total: usize, done: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    let style =
        ProgressStyle::with_template("{bar:32} {pos}/{len} images  {per_sec}  ETA {eta}  {msg}");
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_position(done as u64);
    bar.reset_eta();
    bar
}

pub(crate) fn write_index(layout: &Layout, manifests: &[Manifest]) -> Result<()> {
    let path = layout.index();
    let fail = |e: &dyn std::fmt::Display| output_error(&path, e.to_string());
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["index", "path", "status", "file", "row", "error"])
        .map_err(|e| fail(&e))?;
    for m in manifests {
        for r in &m.records {
            let ok = r.status == Status::Ok;
            let file = if ok {
                m.data.as_deref().unwrap_or("")
            } else {
                ""
            };
            let row = r.row.map(|x| x.to_string()).unwrap_or_default();
            let status = if ok { "ok" } else { "failed" };
            csv.write_record([
                r.index.to_string().as_str(),
                r.path.as_str(),
                status,
                file,
                row.as_str(),
                r.error.as_deref().unwrap_or(""),
            ])
            .map_err(|e| fail(&e))?;
        }
    }
    let bytes = csv.into_inner().map_err(|e| fail(&e))?;
    layout.writer().bytes(&path, &bytes)?;
    Ok(())
}

/// What this invocation did, as opposed to what the output folder holds.
pub(crate) struct Invocation {
    pub batch_size: usize,
    pub resumed_parts: usize,
    pub processed: usize,
    pub elapsed_s: f64,
    pub timing: Option<Timing>,
    pub command: Option<CommandLine>,
}

/// The summary of `manifests` (in list order), their statistics combined part by part.
pub(crate) fn summarize(
    run: &RunConfig,
    layout: &Layout,
    manifests: &[Manifest],
    this_run: Invocation,
) -> Summary {
    let ok: usize = manifests.iter().map(|m| m.rows).sum();
    let images: usize = manifests.iter().map(|m| m.records.len()).sum();
    let outputs = run
        .outputs
        .iter()
        .enumerate()
        .map(|(o, spec)| {
            let mut stats = Stats::default();
            for m in manifests {
                if let Some(s) = m.stats.get(o) {
                    stats.merge(s);
                }
            }
            OutputSummary {
                key: spec.key.clone(),
                node: spec.node.clone(),
                shape: [vec![ok], spec.row_shape.clone()].concat(),
                min: stats.min,
                max: stats.max,
                mean: stats.mean(),
                std: stats.std(),
                nonfinite: stats.nonfinite,
                count: stats.count,
                sum: stats.sum,
                sum_squares: stats.sum_squares,
            }
        })
        .collect();
    let file_name = |p: PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    Summary {
        producer: producer(),
        model: run.model.clone(),
        weights: run.weights.clone(),
        shard: run.shard,
        listed: run.listing.images,
        images,
        ok,
        failed: images - ok,
        pool: run.pool,
        format: run.format,
        part_size: run.part_size,
        batch_size: this_run.batch_size,
        parts: manifests.len(),
        resumed_parts: this_run.resumed_parts,
        processed: this_run.processed,
        elapsed_s: this_run.elapsed_s,
        images_per_s: this_run.processed as f64 / this_run.elapsed_s.max(1e-9),
        outputs,
        index: file_name(layout.index()),
        files: manifests.iter().filter_map(|m| m.data.clone()).collect(),
        timing: this_run.timing,
        merged_shards: None,
        command: this_run.command,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_the_shard_and_keep_a_power_of_two_size() {
        assert_eq!(part_ranges(10..21, 4), [10..14, 14..18, 18..21]);
        assert!(part_ranges(5..5, 4).is_empty());
        // layer4 unpooled: 512*7*7 floats = 100352 bytes per image.
        assert_eq!(auto_part_size(512 * 7 * 7 * 4), 2048);
        assert_eq!(auto_part_size(512 * 4), 4096);
        assert_eq!(auto_part_size(usize::MAX / 2), 1);
    }
}
