//! What a run reports: the summary (`summary.json`) with its per-output statistics and
//! timing, and the index (`index.csv`); also what `featx dataset merge` writes for the shards
//! of a run together.

use std::path::PathBuf;

use featx_output::producer;
use serde::{Deserialize, Serialize};

use crate::command::CommandLine;
use crate::error::{Result, output_error};
use crate::listing::Shard;
use crate::part::{Layout, Manifest, OutputFormat, RunConfig, Status};
use crate::pool::Pool;
use crate::stats::Stats;

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
    pub(crate) fn with_limit(mut self) -> Self {
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

/// Writes `index.csv`: one line per image of `manifests` (in list order), with its status,
/// part file, row and error.
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
