//! Decoding and preprocessing on worker threads, a few batches ahead of the model.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use featx_preprocess::{Preprocess, Preprocessed, load_rgb};

/// An image to load: its place in the whole listing and its path.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub index: usize,
    pub path: PathBuf,
}

/// A batch to load, and which output part it belongs to.
pub(crate) struct BatchPlan {
    pub part: usize,
    pub items: Vec<Item>,
}

/// A loaded image, preprocessed, or why it could not be used.
pub(crate) struct Loaded {
    pub item: Item,
    pub result: std::result::Result<Preprocessed, String>,
}

/// A batch in the order it was planned.
pub(crate) struct LoadedBatch {
    pub part: usize,
    pub images: Vec<Loaded>,
}

/// Batches still queued when the consumer is busy: memory stays bounded by `DEPTH + 1`
/// batches of decoded images, whatever the dataset size.
const DEPTH: usize = 2;

/// Starts a thread that loads `plans` in order, each batch's images spread over `workers`
/// threads, and hands them over through a bounded queue. Dropping the receiver stops it.
pub(crate) fn spawn(
    plans: Vec<BatchPlan>,
    pre: Preprocess,
    workers: usize,
) -> (Receiver<LoadedBatch>, JoinHandle<()>) {
    let (send, receive) = sync_channel(DEPTH);
    let workers = workers.max(1);
    let handle = std::thread::spawn(move || {
        for plan in plans {
            let images = load_all(plan.items, &pre, workers);
            if send
                .send(LoadedBatch {
                    part: plan.part,
                    images,
                })
                .is_err()
            {
                return;
            }
        }
    });
    (receive, handle)
}

fn load_all(items: Vec<Item>, pre: &Preprocess, workers: usize) -> Vec<Loaded> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Loaded>> = (0..items.len()).map(|_| None).collect();
    let done: Vec<Vec<(usize, Loaded)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, load_one(item.clone(), pre)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (i, loaded) in done.into_iter().flatten() {
        results[i] = Some(loaded);
    }
    // A worker that died (it cannot: decoding is unwind-guarded) would leave a hole; report it
    // as a failed image rather than dropping the row.
    results
        .into_iter()
        .zip(items)
        .map(|(r, item)| {
            r.unwrap_or(Loaded {
                item,
                result: Err("image loader stopped".into()),
            })
        })
        .collect()
}

fn load_one(item: Item, pre: &Preprocess) -> Loaded {
    // Decoders are third-party code fed untrusted bytes: a panic in one must cost one row,
    // not the run.
    let result = catch_unwind(AssertUnwindSafe(|| {
        let image = load_rgb(&item.path).map_err(|e| e.to_string())?;
        pre.apply(&image).map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|_| Err("the image decoder panicked on this file".into()));
    Loaded { item, result }
}
