use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use featx_models::TracedModel;
use featx_viz::diagram::{self, DiagramNode};

use crate::error::CliError;
use crate::model::{InputShape, ModelArgs, Weights};

/// Arguments of `featx graph`.
#[derive(Args, Debug)]
pub struct GraphArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// dot (Graphviz), mermaid, or svg (the layout featx computes itself).
    #[arg(long, value_enum, default_value = "dot")]
    format: GraphFormat,
    /// Collapse every module deeper than DEPTH into one box (`--fold 1`: `layer1`, `layer2`,
    /// ... each one box with its input and output shapes); every node by default.
    #[arg(long, value_name = "DEPTH", value_parser = clap::value_parser!(u64).range(1..))]
    fold: Option<u64>,
    /// The file to write; standard output when absent.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `featx graph --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    /// Graphviz DOT, module scopes as `subgraph cluster_*`.
    Dot,
    /// A Mermaid flowchart, module scopes as `subgraph`.
    Mermaid,
    /// A standalone SVG document.
    Svg,
}

/// Writes the traced graph as a picture.
pub fn run(args: &GraphArgs) -> Result<(), CliError> {
    // The structure does not depend on the weights' values: random ones unless a file is
    // given (whose head may change the class count and so the shapes).
    let weights = args.model.weights.clone().unwrap_or(Weights::Random);
    let shape = InputShape {
        batch: Some(1),
        size: None,
    };
    let traced = args.model.traced(&weights, shape)?;
    let nodes = diagram_nodes(&traced)?;
    let folded = diagram::fold(&nodes, args.fold.map(|d| d as usize));
    let text = match args.format {
        GraphFormat::Dot => diagram::dot(&folded, &traced.name),
        GraphFormat::Mermaid => diagram::mermaid(&folded),
        GraphFormat::Svg => diagram::svg(&folded),
    };
    match &args.out {
        Some(path) => std::fs::write(path, text).map_err(|e| CliError::Output {
            path: path.clone(),
            reason: e.to_string(),
        }),
        None => match std::io::stdout().lock().write_all(text.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output {
                path: "stdout".into(),
                reason: e.to_string(),
            }),
            _ => Ok(()),
        },
    }
}

/// Every node `featx nodes` lists, with its op, shape for one image, and module scope: an
/// imported node's module path, or a traced node's dotted name less its last part (FX names a
/// node inside `layer1.0` `layer1.0.conv1` or `layer1.0.add`).
pub(crate) fn diagram_nodes(traced: &TracedModel) -> Result<Vec<DiagramNode>, CliError> {
    let [h, w] = traced.input.size.unwrap_or(traced.input.nominal_size);
    let values = traced
        .graph
        .infer_values(&[1, traced.input.channels, h, w])?;
    Ok(traced
        .graph
        .nodes()
        .iter()
        .zip(&values)
        .map(|(node, value)| {
            let scope: Vec<String> = match (&node.module_path, &node.alias) {
                (Some(path), _) => path.split('.').map(str::to_string).collect(),
                // An imported node outside any module: its name is no dotted path.
                (None, Some(_)) => Vec::new(),
                (None, None) => {
                    let mut parts: Vec<String> = node.name.split('.').map(str::to_string).collect();
                    parts.pop();
                    parts
                }
            };
            DiagramNode {
                name: node.name.clone(),
                op: node
                    .module_type
                    .clone()
                    .unwrap_or_else(|| node.target.clone()),
                shape: value.shape().map(<[usize]>::to_vec),
                scope,
                inputs: node.inputs.iter().map(|i| i.0).collect(),
            }
        })
        .collect())
}
