//! Node outputs kept between requests, bounded in bytes: the least recently used image's
//! outputs go first.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::RgbImage;

/// One node's output for one image, on the CPU.
#[derive(Debug)]
pub(crate) struct Output {
    /// Its shape, batch of one first.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

/// What is kept of one image: the outputs computed so far and the 8-bit image the model saw.
#[derive(Default)]
pub(crate) struct Entry {
    /// Node name to output.
    pub outputs: HashMap<String, Arc<Output>>,
    /// The preprocessed image (for overlays).
    pub image: Option<RgbImage>,
    /// Whether the one-pass forward has run for it.
    pub passed: bool,
}

impl Entry {
    fn bytes(&self) -> usize {
        let outputs: usize = self.outputs.values().map(|o| o.values.len() * 4).sum();
        outputs + self.image.as_ref().map_or(0, |i| i.as_raw().len())
    }
}

/// Entries by image id, at most `limit` bytes together.
pub(crate) struct Cache {
    limit: usize,
    entries: HashMap<String, (Entry, u64)>,
    clock: u64,
    /// Bytes held now, readable from other threads (the server's `/api/info`).
    used: Arc<AtomicUsize>,
}

impl Cache {
    /// An empty cache of at most `limit` bytes whose size is published in `used`.
    pub(crate) fn new(limit: usize, used: Arc<AtomicUsize>) -> Self {
        Cache {
            limit,
            entries: HashMap::new(),
            clock: 0,
            used,
        }
    }

    /// Takes the entry of `id` out to work on (an empty one if none is kept).
    pub(crate) fn take(&mut self, id: &str) -> Entry {
        let entry = self.entries.remove(id).map(|(e, _)| e).unwrap_or_default();
        self.publish();
        entry
    }

    /// Puts `entry` back as the most recently used, evicting the least recently used others
    /// until everything fits; an entry larger than the whole limit is not kept.
    pub(crate) fn put(&mut self, id: &str, entry: Entry) {
        self.clock += 1;
        if entry.bytes() <= self.limit {
            self.entries.insert(id.to_string(), (entry, self.clock));
        }
        while self.total() > self.limit {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.publish();
    }

    fn total(&self) -> usize {
        self.entries.values().map(|(e, _)| e.bytes()).sum()
    }

    fn publish(&self) {
        self.used.store(self.total(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(floats: usize) -> Entry {
        let mut e = Entry::default();
        e.outputs.insert(
            "n".into(),
            Arc::new(Output {
                shape: vec![floats],
                values: vec![0.0; floats],
            }),
        );
        e
    }

    #[test]
    fn least_recently_used_images_go_first_and_the_limit_holds() {
        let used = Arc::new(AtomicUsize::new(0));
        let mut cache = Cache::new(100, used.clone());
        cache.put("a", entry(10));
        cache.put("b", entry(10));
        let a = cache.take("a");
        cache.put("a", a);
        cache.put("c", entry(10));
        // 120 bytes do not fit in 100: b, the least recently used, goes.
        assert!(cache.entries.contains_key("a") && cache.entries.contains_key("c"));
        assert!(!cache.entries.contains_key("b"));
        assert_eq!(used.load(Ordering::Relaxed), 80);
        // Larger than the whole limit: served, not kept.
        cache.put("big", entry(30));
        assert!(!cache.entries.contains_key("big"));
        assert!(used.load(Ordering::Relaxed) <= 100);
    }
}
