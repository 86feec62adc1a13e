//! `featx dataset status`: how far a (sharded) dataset run has got, whether every listed image
//! is committed exactly once, and the commands that would finish it.

use std::path::Path;

use serde::Serialize;

use crate::command::CommandLine;
use crate::error::Result;
use crate::folder::{DatasetFolder, ShardFiles};
use crate::listing::Shard;
use crate::part::Status;

/// How far one shard has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardState {
    /// Every part is committed.
    Done,
    /// Some parts are committed: the shard was interrupted (or is still running).
    Partial,
    /// No part is committed: the shard never ran, or not far enough.
    Missing,
}

impl std::fmt::Display for ShardState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShardState::Done => "done",
            ShardState::Partial => "partial",
            ShardState::Missing => "missing",
        })
    }
}

/// A command that finishes a shard: the run's own command line with `--shard I/N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finish {
    /// The program and its arguments.
    pub args: Vec<String>,
    /// The folder to run it in.
    pub dir: String,
    /// The same for a POSIX shell: `cd DIR && ...`.
    pub shell: String,
}

impl From<CommandLine> for Finish {
    fn from(command: CommandLine) -> Self {
        Finish {
            shell: command.shell(),
            args: command.args,
            dir: command.dir,
        }
    }
}

/// One shard's progress.
#[derive(Debug, Clone, Serialize)]
pub struct ShardStatus {
    /// Which shard.
    pub shard: Shard,
    /// Done, partial or missing.
    pub state: ShardState,
    /// Images of the list in this shard.
    pub images: usize,
    /// Its parts.
    pub parts: usize,
    /// Its committed parts.
    pub committed_parts: usize,
    /// Images whose features are stored.
    pub done: usize,
    /// Images committed as failed (unreadable; a re-run fails them again).
    pub failed: usize,
    /// Images in no committed part yet.
    pub missing: usize,
    /// Whether its last run got to the end and wrote an index and a summary of all its parts.
    pub finished: bool,
    /// The command that finishes it, for a shard not done (when the run recorded its command).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish: Option<Finish>,
}

/// The state of a whole dataset folder.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetStatus {
    /// The folder.
    pub dir: String,
    /// Every listed image is committed, exactly once: `featx dataset merge` can combine it.
    pub complete: bool,
    /// No listed image is missing and none is committed twice.
    pub covered_exactly_once: bool,
    /// Images in the whole list.
    pub listed: usize,
    /// Images in committed parts.
    pub committed: usize,
    /// Images whose features are stored.
    pub ok: usize,
    /// Images committed as failed.
    pub failed: usize,
    /// Images in no committed part.
    pub missing: usize,
    /// Images committed more than once.
    pub duplicated: usize,
    /// The model.
    pub model: String,
    /// The stored output keys.
    pub outputs: Vec<String>,
    /// Whether `index.csv` and `summary.json` describe the whole, complete dataset (after
    /// `featx dataset merge`, or an unsharded run that finished).
    pub merged: bool,
    /// Per shard, in order.
    pub shards: Vec<ShardStatus>,
    /// The shell commands that finish the shards not done, in shard order.
    pub finish: Vec<String>,
}

/// Reads the dataset in `dir` and reports how complete it is.
pub fn dataset_status(dir: &Path) -> Result<DatasetStatus> {
    Ok(DatasetFolder::read(dir)?.status())
}

impl DatasetFolder {
    /// The status of what was read.
    pub(crate) fn status(&self) -> DatasetStatus {
        let listed = self.run.listing.images;
        let mut times = vec![0u32; listed];
        for manifest in self.committed() {
            for record in &manifest.records {
                if let Some(t) = times.get_mut(record.index) {
                    *t += 1;
                }
            }
        }
        let missing = times.iter().filter(|&&t| t == 0).count();
        let duplicated = times.iter().filter(|&&t| t > 1).count();
        let shards: Vec<ShardStatus> = self
            .shards
            .iter()
            .map(|files| self.shard_status(files))
            .collect();
        let ok = shards.iter().map(|s| s.done).sum();
        let failed = shards.iter().map(|s| s.failed).sum();
        let complete = missing == 0 && duplicated == 0;
        DatasetStatus {
            dir: self.dir.to_string_lossy().into_owned(),
            complete,
            covered_exactly_once: complete,
            listed,
            committed: ok + failed,
            ok,
            failed,
            missing,
            duplicated,
            model: self.run.model.clone(),
            outputs: self.run.outputs.iter().map(|o| o.key.clone()).collect(),
            merged: complete && self.merged(),
            finish: shards
                .iter()
                .filter_map(|s| s.finish.as_ref().map(|f| f.shell.clone()))
                .collect(),
            shards,
        }
    }

    fn shard_status(&self, files: &ShardFiles) -> ShardStatus {
        let committed: Vec<_> = files.committed.iter().flatten().collect();
        let done: usize = committed.iter().map(|m| m.rows).sum();
        let failed = committed
            .iter()
            .flat_map(|m| &m.records)
            .filter(|r| r.status == Status::Failed)
            .count();
        let state = match committed.len() {
            n if n == files.parts.len() => ShardState::Done,
            0 => ShardState::Missing,
            _ => ShardState::Partial,
        };
        let finish = (state != ShardState::Done)
            .then_some(self.command.as_ref())
            .flatten()
            .map(|c| Finish::from(c.for_shard(files.shard)));
        ShardStatus {
            shard: files.shard,
            state,
            images: files.images(),
            parts: files.parts.len(),
            committed_parts: committed.len(),
            done,
            failed,
            missing: files.images() - done - failed,
            finished: files.finished(),
            finish,
        }
    }

    /// Whether the folder's unprefixed index and summary describe the whole dataset.
    fn merged(&self) -> bool {
        match self.shards.as_slice() {
            [whole] => whole.finished(),
            shards => {
                let layout = crate::part::Layout::new(&self.dir, Shard::ALL);
                let parts: usize = shards.iter().map(|s| s.parts.len()).sum();
                let summary = std::fs::read(layout.summary())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<crate::report::Summary>(&b).ok());
                summary.is_some_and(|s| {
                    s.merged_shards == Some(shards.len())
                        && s.images == self.run.listing.images
                        && s.parts == parts
                }) && layout.index().exists()
            }
        }
    }
}
