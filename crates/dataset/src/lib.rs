//! Feature extraction over image collections: the job "features of layer X for every image in
//! this folder".
//!
//! Inputs are folders, glob patterns or list files ([`list_images`]), in a recorded order. Images
//! are decoded on worker threads a few batches ahead of the model, so memory stays bounded. The
//! rows go into parts (one `.safetensors` file, or a folder of `.npy` files, per part); a part is
//! committed by its manifest, written last and atomically, so an interrupted run resumes at the
//! first uncommitted part without losing or repeating a row. `--shard I/N` ([`Shard`]) gives
//! each of N processes a contiguous slice; `--shard auto` ([`ShardSpec`]) reads I and N from a
//! Kubernetes Indexed Job or a Slurm job array. Each run ends with an `index.csv` (image,
//! status, file, row) and a `summary.json` (shapes, statistics, counts, throughput).
//!
//! A folder of shards is read as one dataset: [`dataset_status`] says what is done, missing or
//! failed and which commands finish it; [`merge_dataset`] writes one index and one summary for
//! the whole list, statistics combined exactly.

mod command;
mod error;
mod folder;
mod listing;
mod loader;
mod merge;
mod part;
mod pool;
mod report;
mod run;
mod scheduler;
mod stats;
mod status;

pub use command::CommandLine;
pub use error::{DatasetError, Result};
pub use listing::{IMAGE_EXTENSIONS, Shard, is_collection, list_images, listing_digest};
pub use merge::merge_dataset;
pub use part::{
    ListingSpec, Manifest, OutputFormat, OutputSpec, PreprocessSpec, Record, RunConfig, Status,
};
pub use pool::Pool;
pub use report::{Limit, OutputSummary, Summary, Timing};
pub use run::{DatasetOptions, extract_dataset};
pub use scheduler::{
    KUBERNETES_INDEX, KUBERNETES_SHARDS, SLURM_TASK_COUNT, SLURM_TASK_ID, SLURM_TASK_MAX,
    SLURM_TASK_MIN, SLURM_TASK_STEP, ShardSource, ShardSpec,
};
pub use stats::Stats;
pub use status::{DatasetStatus, Finish, ShardState, ShardStatus, dataset_status};
