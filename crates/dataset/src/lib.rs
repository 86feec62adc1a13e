//! Feature extraction over image collections: the job "features of layer X for every image in
//! this folder".
//!
//! Inputs are folders, glob patterns or list files ([`list_images`]), in a recorded order. Images
//! are decoded on worker threads a few batches ahead of the model, so memory stays bounded. The
//! rows go into parts (one `.safetensors` file, or a folder of `.npy` files, per part); a part is
//! committed by its manifest, written last and atomically, so an interrupted run resumes at the
//! first uncommitted part without losing or repeating a row. `--shard I/N` ([`Shard`]) gives
//! each of N processes a contiguous slice. Each run ends with an `index.csv` (image, status,
//! file, row) and a `summary.json` (shapes, statistics, counts, throughput).

mod error;
mod listing;
mod loader;
mod part;
mod pool;
mod run;
mod stats;

pub use error::{DatasetError, Result};
pub use listing::{IMAGE_EXTENSIONS, Shard, is_collection, list_images, listing_digest};
pub use part::{
    ListingSpec, Manifest, OutputFormat, OutputSpec, PreprocessSpec, Record, RunConfig, Status,
};
pub use pool::Pool;
pub use run::{DatasetOptions, OutputSummary, Summary, extract_dataset};
pub use stats::Stats;
