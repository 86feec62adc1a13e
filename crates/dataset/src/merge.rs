//! `featx dataset merge`: one `index.csv` and one `summary.json` for all the shards of a run,
//! pointing at the shards' own part files (nothing is copied).

use std::path::Path;

use crate::error::{DatasetError, Result, output_error};
use crate::folder::DatasetFolder;
use crate::listing::Shard;
use crate::part::{Layout, Manifest};
use crate::report::{Invocation, Summary, summarize, write_index};

/// Merges the complete dataset in `dir`: writes `dir/index.csv` (every listed image in list
/// order, with its part file and row) and `dir/summary.json` (statistics combined exactly from
/// every part's sums, as one process would have), and returns that summary.
///
/// An incomplete dataset is refused with [`DatasetError::Incomplete`], and nothing is written.
pub fn merge_dataset(dir: &Path) -> Result<Summary> {
    let folder = DatasetFolder::read(dir)?;
    let status = folder.status();
    if !status.complete {
        return Err(DatasetError::Incomplete {
            dir: dir.to_path_buf(),
            missing: status.missing,
            listed: status.listed,
        });
    }
    let mut manifests: Vec<Manifest> = folder.committed().cloned().collect();
    manifests.sort_by_key(|m| m.inputs[0]);
    let layout = Layout::new(dir, Shard::ALL);
    write_index(&layout, &manifests)?;

    let mut run = folder.run.clone();
    run.shard = Shard::ALL;
    let mut summary = summarize(&run, &layout, &manifests, shards_timing(&folder));
    summary.merged_shards = Some(folder.shards.len());
    let path = layout.summary();
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| output_error(&path, e))?;
    layout.writer().bytes(&path, &json)?;
    Ok(summary)
}

/// The shards' last runs together: images computed, the longest time, the summed rate.
fn shards_timing(folder: &DatasetFolder) -> Invocation {
    let summaries: Vec<&Summary> = folder
        .shards
        .iter()
        .filter_map(|s| s.summary.as_ref())
        .collect();
    Invocation {
        batch_size: summaries.iter().map(|s| s.batch_size).max().unwrap_or(0),
        resumed_parts: summaries.iter().map(|s| s.resumed_parts).sum(),
        processed: summaries.iter().map(|s| s.processed).sum(),
        elapsed_s: summaries.iter().map(|s| s.elapsed_s).fold(0.0, f64::max),
        timing: None,
        command: folder.command.clone(),
    }
}
