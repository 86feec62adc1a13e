//! rayon's global pool built with one worker per CPU, each worker kept on its own CPU.
//!
//! A forward pass runs on the pool's workers, all of them busy for the whole run (the walker
//! and the workers it keeps awake, `featx-extract`'s `execute`). Left to the scheduler, the
//! workers of a fresh process were started on one CPU while the main thread packed weights on
//! the other, and the first call then ran both on that one CPU in 4 ms time slices for tens of
//! milliseconds, the other CPU idle, until Linux's load balancer moved one (seen with `perf
//! sched` on a 2-core VM). Measured there, first calls at batch 1: EfficientNet-B0 23-35 ms
//! unpinned against 13-16 pinned, MobileNetV3-Large 12-17 against 7.4-7.7, ResNet18 25-44
//! against 17.5-18, steady calls the same.
//!
//! Workers are pinned only when they are exactly as many as the CPUs this process may run on
//! (its affinity mask: `taskset`, a cgroup cpuset, a Slurm allocation): the process then owns
//! those CPUs. With fewer workers (a CPU quota, a `RAYON_NUM_THREADS` below the CPU count) the
//! process shares CPUs it cannot choose well, and with more it oversubscribes them, so the
//! scheduler keeps them. `FEATX_PIN_THREADS=0` turns pinning off.
//!
//! The affinity calls are the `core_affinity` crate's (Linux, Windows, macOS, FreeBSD).

use std::sync::atomic::{AtomicUsize, Ordering};

use core_affinity::CoreId;

/// The environment variable that turns pinning off when set to `0`.
pub const PIN_THREADS_ENV: &str = "FEATX_PIN_THREADS";

/// Workers that have pinned themselves to their CPU.
static PINNED: AtomicUsize = AtomicUsize::new(0);

/// How [`init_pool`] left rayon's global pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolInit {
    /// Built with this many workers, each pinned to its own CPU.
    Pinned(usize),
    /// Built with this many workers, left to the scheduler (see the module's note for when).
    Unpinned(usize),
    /// The pool existed already (an application's own, or built by an earlier rayon call) and
    /// is left as it is.
    Existing,
}

/// Builds rayon's global pool, which featx's CPU kernels and burn-flex share, with
/// `RAYON_NUM_THREADS` workers or one per available CPU, pinning each to its own CPU where the
/// process owns exactly that many.
///
/// Call it before anything else uses rayon (the `featx` binary does, first thing): rayon builds
/// its global pool on first use and it cannot be rebuilt. A program that builds its own
/// global pool keeps it ([`PoolInit::Existing`]).
pub fn init_pool() -> PoolInit {
    let threads = worker_count();
    let opted_out = std::env::var(PIN_THREADS_ENV).is_ok_and(|v| v.trim() == "0");
    let cpus = if opted_out {
        None
    } else {
        core_affinity::get_core_ids().and_then(|cpus| pinning(threads, cpus))
    };
    let pinned = cpus.is_some();
    let mut builder = rayon::ThreadPoolBuilder::new().num_threads(threads);
    if let Some(cpus) = cpus {
        builder = builder.start_handler(move |worker| {
            if core_affinity::set_for_current(cpus[worker]) {
                PINNED.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    match builder.build_global() {
        Ok(()) if pinned => PoolInit::Pinned(threads),
        Ok(()) => PoolInit::Unpinned(threads),
        Err(_) => PoolInit::Existing,
    }
}

/// How many workers have pinned themselves to a CPU so far (0 unless [`init_pool`] pinned the
/// pool; a worker pins itself as it starts).
pub fn pinned_workers() -> usize {
    PINNED.load(Ordering::Relaxed)
}

/// Workers of rayon's global pool (built with rayon's defaults if nothing has built it yet).
pub fn pool_workers() -> usize {
    rayon::current_num_threads()
}

/// rayon's own default: `RAYON_NUM_THREADS` if it is a positive number, else the available
/// parallelism (which counts the affinity mask and a cgroup CPU quota).
fn worker_count() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The CPU of each worker, or `None` to leave them to the scheduler: pinned only when there is
/// exactly one allowed CPU per worker.
fn pinning(threads: usize, cpus: Vec<CoreId>) -> Option<Vec<CoreId>> {
    (threads > 0 && cpus.len() == threads).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(ids: &[usize]) -> Vec<CoreId> {
        ids.iter().map(|&id| CoreId { id }).collect()
    }

    #[test]
    fn workers_are_pinned_only_when_they_own_the_allowed_cpus() {
        let ids = |p: Option<Vec<CoreId>>| p.map(|c| c.iter().map(|c| c.id).collect::<Vec<_>>());
        // A taskset or cpuset of CPUs 4 and 6: worker 0 on CPU 4, worker 1 on CPU 6.
        assert_eq!(ids(pinning(2, cpus(&[4, 6]))), Some(vec![4, 6]));
        // A CPU quota of 2 on a 4-CPU mask: the scheduler picks.
        assert_eq!(ids(pinning(2, cpus(&[0, 1, 2, 3]))), None);
        // Oversubscribed.
        assert_eq!(ids(pinning(4, cpus(&[0, 1]))), None);
        assert_eq!(ids(pinning(0, cpus(&[]))), None);
    }
}
