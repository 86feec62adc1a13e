//! featx's integration tests, in one test binary with a module per area.
//!
//! Each test target under `tests/` is its own crate, and each one links all of burn: hundreds
//! of megabytes of binary per target. Fifteen targets cost fifteen such links on CI's two
//! cores; as modules of one binary they cost one, and `support` (the fixtures, the generated
//! weights and the comparisons) is compiled once instead of into every target.
//!
//! All the tests share one process. None sets environment variables or changes the current
//! directory; what differs per run (the scheduler's variables, a cache folder, `PATH`) is given
//! to the `featx` processes they start (`env!("CARGO_BIN_EXE_featx")`). Run one area with a
//! filter: `cargo test --features wgpu --test it -- zoo::`.

mod support;

mod cam;
mod cli;
mod dataset;
mod download;
mod explore;
mod gradients;
mod graph;
mod input_size;
mod inputs;
mod node_names;
mod onnx;
mod parity;
mod pictures;
mod preprocess;
mod return_nodes;
mod scaleout;
mod weights;
// The wgpu tests: skipped without an adapter unless `FEATX_REQUIRE_GPU=1`.
#[cfg(feature = "wgpu")]
mod wgpu;
mod zoo;
