//! The `featx` binary; the commands live in the `featx-cli` crate.

/// mimalloc keeps freed activation buffers for reuse instead of returning them to the kernel
/// after every node (see the dependency's note in Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    small_pages_only();
    keep_freed_memory();
    featx_cli::main()
}

/// mimalloc's `mi_option_purge_delay` (mimalloc.h's `mi_option_e`, the same in its v2 and v3;
/// the Rust bindings leave it out of their constants).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Stops mimalloc from returning freed memory to the kernel, unless `MIMALLOC_PURGE_DELAY` is
/// set.
///
/// By default mimalloc purges (decommits) memory freed for 10 ms. A forward pass frees an
/// activation buffer after its last reader and allocates the next node's a few milliseconds
/// later, often after the purge: every node's output then faults in fresh pages that the kernel
/// zeroes first, on every call. Kept, the same pages are reused from the second call on. Peak
/// memory is unchanged (it is the largest set of live buffers either way); the process holds
/// its peak until it exits, as PyTorch's caching allocator does. Measured on a 2-core VM:
/// ResNet50's every-node extraction at batch 8 took 0.82 of the time (570-581 ms against
/// 693-716), other models 0.95-1.0, first calls and peak memory the same.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; main has started no other thread yet, as
        // `mi_option_set`'s thread-safety note asks.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// Turns transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` is set.
///
/// mimalloc asks for huge pages on its memory (`madvise`), and a kernel whose THP `defrag`
/// setting is `madvise` (a common default) then compacts memory on the faulting thread. A
/// fresh process's load and first call, which touch all their memory for the first time,
/// stalled at random for it: on a 2-core VM, ConvNeXt-T's every-node first call took 119-128
/// ms or 409 ms, ViT-B/16 spent 1.0-1.8 s of system time against 0.4-0.5 s. Huge pages do make
/// steady calls faster (with freed memory kept, ResNet18's and EfficientNet-B0's at batch 8
/// took 0.89-0.92 of the time, ViT-B/16's at batch 1 0.92-0.97), and that is given up for
/// predictable first calls: with them, ConvNeXt-T's every-node first call took 243-441 ms
/// against 133-152, ViT-B/16's build 2.2-2.7 s against 0.86-0.96.
#[cfg(target_os = "linux")]
fn small_pages_only() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes no pointers; it sets a flag on this process only.
        // A kernel that lacks it returns an error, and the process keeps its huge pages.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

/// Huge pages are left as they are elsewhere.
#[cfg(not(target_os = "linux"))]
fn small_pages_only() {}
