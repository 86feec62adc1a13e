//! The `featx` command line: list a CNN's nodes and extract their outputs,
//! torchvision-compatible. The binary is the root package's `featx`; this crate holds the
//! commands so they can be tested and reused.
//!
//! Exit codes: 0 success, 1 a failure after the input was accepted (the device, writing the
//! results, a bug), 2 bad usage or bad input (unknown node, unreadable input or weights, wrong
//! shapes), 3 a dataset run that finished but could not use some images (listed in its index),
//! or a dataset folder that is not complete yet (`featx dataset status`, `featx dataset merge`).

mod commands;
mod error;
mod explore;
mod input;
mod model;
mod npy;
mod picture;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// torchvision-style feature extraction for CNNs, in pure Rust.
#[derive(Parser, Debug)]
#[command(name = "featx", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List a model's graph nodes in execution order (torchvision's get_graph_node_names).
    Nodes(commands::nodes::NodesArgs),
    /// Run a model on an input and save chosen nodes' outputs as .safetensors; over a folder,
    /// glob or list of images, write resumable, shardable parts with an index and a summary.
    Extract(commands::extract::ExtractArgs),
    /// Check how complete a (sharded) dataset folder is, and merge its shards into one index
    /// and summary.
    Dataset(commands::dataset::DatasetArgs),
    /// Draw chosen nodes' outputs for an image as PNG pictures.
    Viz(commands::viz::VizArgs),
    /// Draw the traced graph itself: DOT, Mermaid or SVG, module scopes as clusters,
    /// optionally folded to top-level modules.
    Graph(commands::graph::GraphArgs),
    /// Class activation maps (Grad-CAM and its relatives): which part of each image made the
    /// model score a class, as pytorch-grad-cam computes it, drawn over the image.
    Cam(commands::cam::CamArgs),
    /// Describe a weights file (tensors, which model it fits) and the download cache.
    Weights(commands::weights::WeightsArgs),
    /// List the models: parameters, nodes, input, preprocessing, published weights.
    Models(commands::models::ModelsArgs),
    /// Look inside a model in a browser: its graph, every node's output for your images as
    /// pictures, statistics and .npy, and CAMs, served locally.
    Explore(commands::explore::ExploreArgs),
    /// Time extraction in-process (median/min/max ms, images/s).
    Bench(commands::bench::BenchArgs),
}

/// Parses the process arguments, runs the command, prints any error to stderr and returns
/// the exit code.
pub fn main() -> ExitCode {
    give_drivers_a_runtime_dir();
    // Before anything uses rayon: its global pool is built once, on first use.
    featx_extract::init_pool();
    let cli = Cli::parse();
    let result: Result<(), CliError> = match cli.command {
        Command::Nodes(args) => commands::nodes::run(&args),
        Command::Extract(args) => commands::extract::run(&args),
        Command::Dataset(args) => commands::dataset::run(&args),
        Command::Viz(args) => commands::viz::run(&args),
        Command::Graph(args) => commands::graph::run(&args),
        Command::Cam(args) => commands::cam::run(&args),
        Command::Weights(args) => commands::weights::run(&args),
        Command::Models(args) => commands::models::run(&args),
        Command::Bench(args) => commands::bench::run(&args),
        Command::Explore(args) => commands::explore::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// Vulkan's window-system layers look for a display server through `XDG_RUNTIME_DIR` and print
/// an error line for each look when it is unset (servers, containers, CI). featx never draws to
/// a display: where the variable is unset, point it at a private empty folder so stderr keeps
/// only featx's own messages.
fn give_drivers_a_runtime_dir() {
    #[cfg(unix)]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join("featx-runtime");
        let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        if made.is_ok() || dir.is_dir() {
            // SAFETY: the first thing `main` does, before any other thread exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}
