//! The `featx` binary; the commands live in the `featx-cli` crate.

/// mimalloc keeps freed activation buffers for reuse instead of returning them to the kernel
/// after every node (see the dependency's note in Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    small_pages_only();
    featx_cli::main()
}

/// Turns transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` is set.
///
/// mimalloc asks for huge pages on its memory (`madvise`), and a kernel whose THP `defrag`
/// setting is `madvise` (a common default) then compacts memory on the faulting thread. A
/// fresh process's load and first call, which touch all their memory for the first time,
/// stalled at random for it: on a 2-core VM, ConvNeXt-T's every-node first call took 119-128
/// ms or 409 ms, ViT-B/16 spent 1.0-1.8 s of system time against 0.4-0.5 s. Steady calls
/// measured within 1-3% either way.
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
