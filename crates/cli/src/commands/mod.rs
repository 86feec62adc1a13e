//! One module per subcommand.

use clap::ValueEnum;

/// `--format` of the reporting commands: text for people, JSON for programs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON object.
    Json,
}

/// `--node` values, trimmed, without empty ones (`--node layer1,,layer2` is two queries).
pub(crate) fn node_queries(node: &[String]) -> Vec<&str> {
    node.iter()
        .map(|q| q.trim())
        .filter(|q| !q.is_empty())
        .collect()
}

pub mod bench;
pub mod cam;
pub mod dataset;
pub mod explore;
pub mod extract;
pub mod graph;
pub mod models;
pub mod nodes;
pub mod viz;
pub mod weights;
