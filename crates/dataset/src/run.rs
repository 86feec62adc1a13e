//! One dataset run: plan the shard's parts, skip the committed ones, stream the rest through
//! the loader and the model, commit each part, then write the index and the summary.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Instant;

use featx_extract::{ExtractError, FeatureExtractor, Mode};
use featx_output::npy_file_name;
use featx_preprocess::{Preprocess, Preprocessed, batch_tensor};
use indicatif::{ProgressBar, ProgressStyle};

use crate::command::CommandLine;
use crate::error::{DatasetError, Result, output_error};
use crate::listing::{Shard, listing_digest};
use crate::loader::{self, BatchPlan, Item, LoadedBatch};
use crate::part::{
    Layout, ListingSpec, Manifest, OutputFormat, OutputSpec, PartBuffer, PreprocessSpec, RunConfig,
};
use crate::pool::Pool;
use crate::report::{Invocation, Summary, Timing, summarize, write_index};

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
/// resuming from the parts already committed there. The model runs on `extractor.device()`.
///
/// Unreadable images are recorded as failed in the index and counted in the summary; only
/// problems with the run itself (options, output folder, model) return an error.
pub fn extract_dataset(
    extractor: &FeatureExtractor,
    images: &[PathBuf],
    out: &Path,
    options: &DatasetOptions,
) -> Result<Summary> {
    let started = Instant::now();
    let config = run_config(extractor, images, options)?;
    std::fs::create_dir_all(out).map_err(|e| output_error(out, e))?;
    let layout = Layout::new(out, options.shard);
    layout.remove_leftovers()?;

    let shard = options.shard.range(images.len());
    let parts = part_ranges(shard.clone(), config.part_size);
    let manifests = (0..parts.len())
        .map(|k| layout.committed(k, &config))
        .collect::<Result<Vec<_>>>()?;
    let resumed_parts = manifests.iter().flatten().count();
    let todo: Vec<usize> = (0..parts.len())
        .filter(|&k| manifests[k].is_none())
        .collect();
    let plans = batch_plans(&todo, &parts, images, options.batch_size);
    let processed: usize = todo.iter().map(|&k| parts[k].len()).sum();

    let bar = progress_bar(options.progress, shard.len(), shard.len() - processed);
    let (batches, loader) = loader::spawn(plans, options.preprocess.clone(), options.workers);
    let mut run = Run {
        extractor,
        config: &config,
        layout: &layout,
        command: options.command.as_ref(),
        parts,
        manifests,
        filling: None,
        failed: 0,
        timing: Timing::default(),
    };
    let outcome = run.consume(&batches, &bar);
    drop(batches);
    let _ = loader.join();
    bar.finish_and_clear();
    outcome?;

    let manifests: Vec<Manifest> = run.manifests.into_iter().flatten().collect();
    write_index(&layout, &manifests)?;
    let this_run = Invocation {
        batch_size: options.batch_size,
        resumed_parts,
        processed,
        elapsed_s: started.elapsed().as_secs_f64(),
        timing: (processed > 0).then(|| run.timing.with_limit()),
        command: options.command.clone(),
    };
    let summary = summarize(&config, &layout, &manifests, this_run);
    let path = layout.summary();
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| output_error(&path, e))?;
    layout.writer().bytes(&path, &json)?;
    Ok(summary)
}

/// The streaming half of a run: batches in, rows into the part being filled, each part
/// committed when the next one starts and the last one when the batches end.
struct Run<'a> {
    extractor: &'a FeatureExtractor,
    config: &'a RunConfig,
    layout: &'a Layout,
    command: Option<&'a CommandLine>,
    /// The shard's parts, by part number.
    parts: Vec<Range<usize>>,
    /// Each part's manifest once committed (before the run, or by it).
    manifests: Vec<Option<Manifest>>,
    /// The part receiving rows.
    filling: Option<PartBuffer>,
    /// Images this invocation could not use.
    failed: usize,
    timing: Timing,
}

impl Run<'_> {
    /// Runs every batch of `batches`, then commits the last part.
    fn consume(&mut self, batches: &Receiver<LoadedBatch>, bar: &ProgressBar) -> Result<()> {
        let mut batches = batches.iter();
        loop {
            let waiting = Instant::now();
            let Some(batch) = batches.next() else { break };
            self.timing.waiting_for_images_s += waiting.elapsed().as_secs_f64();
            let count = batch.images.len() as u64;
            self.run_batch(batch)?;
            bar.inc(count);
            bar.set_message(format!("{} failed", self.failed));
        }
        self.commit()
    }

    /// Commits the part being filled, if there is one.
    fn commit(&mut self) -> Result<()> {
        let Some(done) = self.filling.take() else {
            return Ok(());
        };
        let writing = Instant::now();
        let k = done.part();
        self.manifests[k] = Some(done.commit(self.layout, self.config, self.command)?);
        self.timing.writing_s += writing.elapsed().as_secs_f64();
        Ok(())
    }

    /// Runs the model on a batch's good images and stores their rows in the batch's part; the
    /// others are recorded as failed.
    fn run_batch(&mut self, batch: LoadedBatch) -> Result<()> {
        // Batches come part by part, so one of another part means the filled one is complete.
        if self.filling.as_ref().map(PartBuffer::part) != Some(batch.part) {
            self.commit()?;
        }
        let part = self.filling.get_or_insert_with(|| {
            PartBuffer::new(
                batch.part,
                self.parts[batch.part].clone(),
                self.config.outputs.len(),
            )
        });
        let model = Instant::now();
        self.failed += extract_batch(self.extractor, self.config, batch, part)?;
        self.timing.model_s += model.elapsed().as_secs_f64();
        Ok(())
    }
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

/// Runs the model on a batch's good images and stores their rows in `part`; returns how many
/// failed (unreadable, or not the run's crop size).
fn extract_batch(
    extractor: &FeatureExtractor,
    run: &RunConfig,
    batch: LoadedBatch,
    part: &mut PartBuffer,
) -> Result<usize> {
    let crop = run.preprocess.crop as usize;
    let size = [crop, crop];
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
    let tensor = batch_tensor(&inputs, extractor.device())
        .map_err(|e| DatasetError::Options(e.to_string()))?;
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
