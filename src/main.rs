//! The `featx` binary; the commands live in the `featx-cli` crate.

/// mimalloc keeps freed activation buffers for reuse instead of returning them to the kernel
/// after every node (see the dependency's note in Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    featx_cli::main()
}
