//! A dataset folder read as a whole: every shard's committed parts, index and summary, checked
//! to belong to one run. `featx dataset status` reports on it and `featx dataset merge`
//! combines it.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::command::CommandLine;
use crate::error::{DatasetError, Result};
use crate::listing::Shard;
use crate::part::{Layout, Manifest, RunConfig, read_manifest};
use crate::report::Summary;
use crate::run::part_ranges;

/// One shard's files in the folder.
pub(crate) struct ShardFiles {
    pub shard: Shard,
    pub layout: Layout,
    /// Its parts, as positions in the whole list.
    pub parts: Vec<Range<usize>>,
    /// Its committed manifests by part; `None` for a part not committed (or whose data is gone).
    pub committed: Vec<Option<Manifest>>,
    /// Its `summary.json`, when present and readable.
    pub summary: Option<Summary>,
    /// Records in its `index.csv`, when present and readable.
    pub index_rows: Option<usize>,
}

impl ShardFiles {
    /// Images of the whole list this shard covers.
    pub fn images(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    /// Whether its last run got to the end: an index and a summary that cover all its parts.
    pub fn finished(&self) -> bool {
        let summary_current = self
            .summary
            .as_ref()
            .is_some_and(|s| s.shard == self.shard && s.parts == self.parts.len());
        summary_current && self.index_rows == Some(self.images())
    }
}

/// Every shard of the run a folder holds.
pub(crate) struct DatasetFolder {
    pub dir: PathBuf,
    /// The run's settings (as recorded by the first part found).
    pub run: RunConfig,
    /// Shards `0..N`, in order.
    pub shards: Vec<ShardFiles>,
    /// The command line that wrote a part, if any recorded one.
    pub command: Option<CommandLine>,
}

impl DatasetFolder {
    /// Reads `dir`: lists its part manifests, checks they belong to one run split one way,
    /// and reads each shard's summary and index.
    pub fn read(dir: &Path) -> Result<Self> {
        let not_a_dataset = |reason: String| DatasetError::NotADataset {
            dir: dir.to_path_buf(),
            reason,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| not_a_dataset(e.to_string()))?;
        let mut found: Vec<(Shard, usize, PathBuf)> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let (shard, part) = manifest_name(name.to_str()?)?;
                Some((shard, part, entry.path()))
            })
            .collect();
        found.sort_by_key(|(shard, part, _)| (shard.count, shard.index, *part));

        let mut manifests =
            found
                .into_iter()
                .filter_map(|(shard, part, path)| match read_manifest(&path) {
                    // Removed since it was listed: as if never committed.
                    Ok(None) => None,
                    Ok(Some(manifest)) => Some(Ok((shard, part, path, manifest))),
                    Err(e) => Some(Err(e)),
                });
        let Some(first) = manifests.next().transpose()? else {
            return Err(not_a_dataset(
                "no part manifest (part-00000.json, shard-I-of-N.part-00000.json, ...) in it yet"
                    .into(),
            ));
        };
        let (first_shard, _, first_path, first_manifest) = &first;
        let run = first_manifest.run.clone();
        if run.part_size == 0 {
            return Err(DatasetError::Conflict {
                path: first_path.clone(),
                reason: "it records a part size of 0".into(),
            });
        }
        let count = first_shard.count;
        let mut folder = DatasetFolder {
            dir: dir.to_path_buf(),
            shards: (0..count)
                .map(|index| ShardFiles::read(dir, Shard { index, count }, &run))
                .collect(),
            command: None,
            run,
        };
        for next in std::iter::once(Ok(first.clone())).chain(manifests) {
            let (shard, part, path, manifest) = next?;
            if shard.count != count {
                return Err(DatasetError::Mixed {
                    first: first_path.clone(),
                    other: path,
                    reason: format!("the list split into {} shards, not {count}", shard.count),
                });
            }
            folder.add(shard, part, path, manifest, first_path)?;
        }
        Ok(folder)
    }

    /// Records `manifest`, the manifest of `part` of `shard` at `path`, after checking it.
    fn add(
        &mut self,
        shard: Shard,
        part: usize,
        path: PathBuf,
        manifest: Manifest,
        first_path: &Path,
    ) -> Result<()> {
        let mut theirs = manifest.run.clone();
        theirs.shard = self.run.shard;
        if let Some(reason) = theirs.difference(&self.run) {
            return Err(DatasetError::Mixed {
                first: first_path.to_path_buf(),
                other: path,
                reason,
            });
        }
        let files = &mut self.shards[shard.index];
        let expected = files.parts.get(part).cloned();
        let conflict = |reason: String| DatasetError::Conflict {
            path: path.clone(),
            reason,
        };
        if manifest.run.shard != shard || manifest.part != part {
            return Err(conflict(format!(
                "it holds part {} of shard {}/{}",
                manifest.part, manifest.run.shard.index, manifest.run.shard.count
            )));
        }
        let Some(range) = expected.filter(|r| manifest.inputs == [r.start, r.end]) else {
            return Err(conflict(format!(
                "it covers images {}..{}, which is not part {part} of shard {}/{}",
                manifest.inputs[0], manifest.inputs[1], shard.index, shard.count
            )));
        };
        let indexes: Vec<usize> = manifest.records.iter().map(|r| r.index).collect();
        if !indexes.iter().copied().eq(range.clone()) {
            return Err(conflict(format!(
                "its records are not one per image of {}..{} in order",
                range.start, range.end
            )));
        }
        if files.layout.data_present(&manifest) {
            if self.command.is_none() {
                self.command = manifest.command.clone();
            }
            files.committed[part] = Some(manifest);
        }
        Ok(())
    }

    /// All committed manifests, in list order.
    pub fn committed(&self) -> impl Iterator<Item = &Manifest> {
        self.shards
            .iter()
            .flat_map(|s| s.committed.iter().flatten())
    }
}

impl ShardFiles {
    fn read(dir: &Path, shard: Shard, run: &RunConfig) -> Self {
        let layout = Layout::new(dir, shard);
        let parts = part_ranges(shard.range(run.listing.images), run.part_size);
        let summary = std::fs::read(layout.summary())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Summary>(&bytes).ok());
        let index_rows = csv::Reader::from_path(layout.index())
            .ok()
            .and_then(|mut index| index.records().try_fold(0, |n, r| r.ok().map(|_| n + 1)));
        ShardFiles {
            shard,
            committed: vec![None; parts.len()],
            parts,
            layout,
            summary,
            index_rows,
        }
    }
}

/// `(shard, part)` of a manifest's file name: `part-00003.json` (an unsharded run) or
/// `shard-1-of-4.part-00003.json`; `None` for any other file.
fn manifest_name(name: &str) -> Option<(Shard, usize)> {
    let (shard, rest) = match name.strip_prefix("shard-") {
        Some(rest) => {
            let (spec, rest) = rest.split_once('.')?;
            let (index, count) = spec.split_once("-of-")?;
            let shard: Shard = format!("{index}/{count}").parse().ok()?;
            (shard.count > 1).then_some((shard, rest))?
        }
        None => (Shard::ALL, name),
    };
    let digits = rest.strip_prefix("part-")?.strip_suffix(".json")?;
    if digits.len() < 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((shard, digits.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_give_shard_and_part() {
        assert_eq!(manifest_name("part-00003.json"), Some((Shard::ALL, 3)));
        assert_eq!(
            manifest_name("shard-1-of-4.part-00012.json"),
            Some((Shard { index: 1, count: 4 }, 12))
        );
        assert_eq!(
            manifest_name("part-123456.json"),
            Some((Shard::ALL, 123_456))
        );
        for other in [
            "part-00003.safetensors",
            "summary.json",
            "shard-1-of-4.summary.json",
            "shard-4-of-4.part-00000.json",
            "shard-0-of-1.part-00000.json",
            "part-3.json",
            "part-0000x.json",
            ".featx-tmp-part-00000.json",
        ] {
            assert_eq!(manifest_name(other), None, "{other}");
        }
    }
}
