//! Output parts: a fixed range of the shard's images, its rows written as one file (or one
//! folder of `.npy` files), then a small JSON manifest whose appearance commits the part.

use std::ops::Range;
use std::path::{Path, PathBuf};

use featx_output::{AtomicWriter, NamedTensor, feature_metadata, producer};
use serde::{Deserialize, Serialize};

use crate::command::CommandLine;
use crate::error::{DatasetError, Result, output_error};
use crate::listing::Shard;
use crate::loader::Item;
use crate::pool::Pool;
use crate::stats::Stats;

/// How part files are stored (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One `.safetensors` file per part, one tensor per output key.
    #[default]
    Safetensors,
    /// One folder per part holding `<key>.npy` per output key.
    Npy,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "safetensors" => Ok(OutputFormat::Safetensors),
            "npy" => Ok(OutputFormat::Npy),
            other => Err(format!(
                "unknown format {other:?}: expected safetensors or npy"
            )),
        }
    }
}

/// One stored output: its key, the graph node it came from, the shape of one image's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// The key it is stored under (tensor name, `.npy` file stem).
    pub key: String,
    /// The graph node.
    pub node: String,
    /// Shape of one image's values (after pooling).
    pub row_shape: Vec<usize>,
}

/// The preprocessing that made the model inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessSpec {
    /// Shorter-side resize, if any.
    pub resize: Option<u32>,
    /// Square center crop (required for batching).
    pub crop: u32,
    /// Normalisation mean.
    pub mean: [f32; 3],
    /// Normalisation standard deviation.
    pub std: [f32; 3],
}

/// The ordered image list the run covers, by size and fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingSpec {
    /// Images in the whole (unsharded) list.
    pub images: usize,
    /// [`crate::listing_digest`] of the whole list.
    pub digest: String,
}

/// Everything that decides a part's contents. A part on disk is reused only when its run
/// equals the current one, so a resumed run can never mix settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Model name.
    pub model: String,
    /// Where the weights came from.
    pub weights: String,
    /// `eval` or `train`.
    pub mode: String,
    /// Batch size, recorded only in train mode, where batch statistics depend on it.
    pub batch_size: Option<usize>,
    /// The stored outputs, in request order.
    pub outputs: Vec<OutputSpec>,
    /// Spatial pooling.
    pub pool: Pool,
    /// Input preprocessing.
    pub preprocess: PreprocessSpec,
    /// Images per part (the last part of a shard may hold fewer).
    pub part_size: usize,
    /// Which slice of the list.
    pub shard: Shard,
    /// The whole list.
    pub listing: ListingSpec,
    /// File format of the parts.
    pub format: OutputFormat,
}

impl RunConfig {
    /// The first field in which `self` and `other` differ, for the conflict message.
    pub(crate) fn difference(&self, other: &RunConfig) -> Option<String> {
        let (a, b) = (
            serde_json::to_value(self).ok()?,
            serde_json::to_value(other).ok()?,
        );
        let (a, b) = (a.as_object()?, b.as_object()?);
        a.iter()
            .find(|(k, v)| b.get(k.as_str()) != Some(v))
            .map(|(k, v)| {
                let theirs = b.get(k.as_str()).cloned().unwrap_or_default();
                format!("{k} was {theirs}, now {v}")
            })
    }
}

/// What happened to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Its features are stored.
    Ok,
    /// It could not be read or used; no row was stored.
    Failed,
}

/// One line of the index: an image, its fate, and where its row is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the whole (unsharded) image list.
    pub index: usize,
    /// The image path as listed.
    pub path: String,
    /// Whether its features are stored.
    pub status: Status,
    /// Row in the part's tensors, for stored images.
    pub row: Option<usize>,
    /// Why it failed, for failed images.
    pub error: Option<String>,
}

/// The committed description of one part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The featx version that wrote it.
    pub producer: String,
    /// The run's settings.
    pub run: RunConfig,
    /// Part number within the shard.
    pub part: usize,
    /// The images it covers, as positions in the whole list (`start..end`).
    pub inputs: [usize; 2],
    /// Stored rows.
    pub rows: usize,
    /// The part's data file or folder, relative to the output folder (none when no row).
    pub data: Option<String>,
    /// One record per covered image, in list order.
    pub records: Vec<Record>,
    /// Per-output statistics of the stored rows.
    pub stats: Vec<Stats>,
    /// The command line that wrote it, from which `featx dataset status` derives the command
    /// that finishes a shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandLine>,
}

/// File names of a run's outputs inside `--out`.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub dir: PathBuf,
    /// `shard-I-of-N.` or empty.
    pub prefix: String,
}

impl Layout {
    /// The file names of `shard`'s run in `dir`.
    pub fn new(dir: &Path, shard: Shard) -> Self {
        Layout {
            dir: dir.to_path_buf(),
            prefix: shard.file_prefix(),
        }
    }

    fn stem(&self, part: usize) -> String {
        format!("{}part-{part:05}", self.prefix)
    }

    pub fn manifest(&self, part: usize) -> PathBuf {
        self.dir.join(format!("{}.json", self.stem(part)))
    }

    pub fn data_name(&self, part: usize, format: OutputFormat) -> String {
        match format {
            OutputFormat::Safetensors => format!("{}.safetensors", self.stem(part)),
            OutputFormat::Npy => self.stem(part),
        }
    }

    pub fn index(&self) -> PathBuf {
        self.dir.join(format!("{}index.csv", self.prefix))
    }

    pub fn summary(&self) -> PathBuf {
        self.dir.join(format!("{}summary.json", self.prefix))
    }

    /// Writes this run's files; its temporary names carry the shard prefix, so that another
    /// shard's are left alone.
    pub fn writer(&self) -> AtomicWriter {
        AtomicWriter::tagged(&self.prefix)
    }

    /// Removes temporary files an interrupted run of this shard left behind.
    pub fn remove_leftovers(&self) -> Result<()> {
        let writer = self.writer();
        let prefix = writer.temp_prefix();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| output_error(&self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // With no shard prefix, ours is a prefix of every shard's: leave theirs alone.
            let rest = name.strip_prefix(prefix);
            if rest.is_some_and(|r| !self.prefix.is_empty() || !r.starts_with("shard-")) {
                let path = entry.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(|e| output_error(&path, e))?;
            }
        }
        Ok(())
    }

    /// The committed manifest of `part`, if any, checked against `run`.
    pub fn committed(&self, part: usize, run: &RunConfig) -> Result<Option<Manifest>> {
        let path = self.manifest(part);
        let Some(manifest) = read_manifest(&path)? else {
            return Ok(None);
        };
        if let Some(reason) = manifest.run.difference(run) {
            return Err(DatasetError::Conflict { path, reason });
        }
        // A manifest whose data went missing is not a finished part: redo it.
        Ok(self.data_present(&manifest).then_some(manifest))
    }

    /// Whether the data file or folder `manifest` names is there.
    pub fn data_present(&self, manifest: &Manifest) -> bool {
        manifest
            .data
            .as_ref()
            .is_none_or(|name| self.dir.join(name).exists())
    }
}

/// The part manifest at `path`; `None` when there is none.
pub(crate) fn read_manifest(path: &Path) -> Result<Option<Manifest>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(output_error(path, e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| DatasetError::Conflict {
            path: path.to_path_buf(),
            reason: format!("not a featx part manifest: {e}"),
        })
}

/// The rows of one part while it fills.
pub(crate) struct PartBuffer {
    part: usize,
    inputs: Range<usize>,
    rows: usize,
    values: Vec<Vec<f32>>,
    records: Vec<Record>,
    stats: Vec<Stats>,
}

impl PartBuffer {
    pub fn new(part: usize, inputs: Range<usize>, outputs: usize) -> Self {
        PartBuffer {
            part,
            inputs,
            rows: 0,
            values: vec![Vec::new(); outputs],
            records: Vec::new(),
            stats: vec![Stats::default(); outputs],
        }
    }

    pub fn part(&self) -> usize {
        self.part
    }

    pub fn failed(&mut self, item: &Item, error: String) {
        self.records.push(Record {
            index: item.index,
            path: item.path.to_string_lossy().into_owned(),
            status: Status::Failed,
            row: None,
            error: Some(error),
        });
    }

    /// Appends one row per output for `item`; `rows[o]` is its values for output `o`.
    pub fn stored(&mut self, item: &Item, rows: &[&[f32]]) {
        for ((values, stats), row) in self.values.iter_mut().zip(&mut self.stats).zip(rows) {
            values.extend_from_slice(row);
            stats.add(row);
        }
        self.records.push(Record {
            index: item.index,
            path: item.path.to_string_lossy().into_owned(),
            status: Status::Ok,
            row: Some(self.rows),
            error: None,
        });
        self.rows += 1;
    }

    /// Writes the part's data, then its manifest; the manifest's rename is the commit.
    pub fn commit(
        mut self,
        layout: &Layout,
        run: &RunConfig,
        command: Option<&CommandLine>,
    ) -> Result<Manifest> {
        self.records.sort_by_key(|r| r.index);
        let data = (self.rows > 0)
            .then(|| self.write_data(layout, run))
            .transpose()?;
        let manifest = Manifest {
            producer: producer(),
            run: run.clone(),
            part: self.part,
            inputs: [self.inputs.start, self.inputs.end],
            rows: self.rows,
            data,
            records: self.records,
            stats: self.stats,
            command: command.cloned(),
        };
        let path = layout.manifest(self.part);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| output_error(&path, e))?;
        layout.writer().bytes(&path, &json)?;
        Ok(manifest)
    }

    fn write_data(&self, layout: &Layout, run: &RunConfig) -> Result<String> {
        let name = layout.data_name(self.part, run.format);
        let path = layout.dir.join(&name);
        let shapes: Vec<Vec<usize>> = run
            .outputs
            .iter()
            .map(|o| [vec![self.rows], o.row_shape.clone()].concat())
            .collect();
        let tensors: Vec<NamedTensor> = run
            .outputs
            .iter()
            .zip(shapes)
            .zip(&self.values)
            .map(|((o, shape), values)| NamedTensor {
                name: &o.key,
                shape,
                values,
            })
            .collect();
        let writer = layout.writer();
        match run.format {
            OutputFormat::Safetensors => {
                let nodes = run
                    .outputs
                    .iter()
                    .map(|o| (o.key.as_str(), o.node.as_str()));
                let mut metadata = feature_metadata(&run.model, nodes);
                metadata.insert("part".into(), self.part.to_string());
                writer.safetensors(&path, &tensors, metadata)?;
            }
            OutputFormat::Npy => writer.npy_folder(&path, &tensors)?,
        }
        Ok(name)
    }
}
