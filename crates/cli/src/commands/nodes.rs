use clap::Args;
use featx_models::TracedModel;
use serde::Serialize;

use super::Format;
use crate::error::CliError;
use crate::model::{ModeArg, ModelChoice, ModelParser};

/// Arguments of `featx nodes`.
#[derive(Args, Debug)]
pub struct NodesArgs {
    /// The model to list: a name `featx models` lists, or an ONNX file.
    #[arg(long, value_parser = ModelParser, hide_possible_values = true)]
    model: ModelChoice,
    /// The input size `H` or `HxW` an ONNX file that leaves it open is listed for [default: 224]
    #[arg(long, value_parser = crate::model::parse_size)]
    input_size: Option<[usize; 2]>,
    /// Which mode's graph to print: its node names in text form, its nodes in JSON (which
    /// lists both modes' names). They differ only where `forward` runs layers in training
    /// alone (GoogLeNet's and Inception v3's auxiliary heads).
    #[arg(long, value_enum, default_value = "eval")]
    mode: ModeArg,
    /// Plain names, one per line, or JSON with FX op, target, inputs and shape.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Serialize)]
struct NodeJson<'a> {
    name: &'a str,
    op: &'a str,
    target: &'a str,
    inputs: Vec<&'a str>,
    /// The tensor's shape; `null` for a node that is not a tensor.
    shape: Option<&'a [usize]>,
    /// The module's class for a `call_module` node (`Conv2d`, `MultiheadAttention`).
    #[serde(skip_serializing_if = "Option::is_none")]
    module_type: Option<&'a str>,
    /// The module an imported ONNX node ran in (`layer1.0.conv1`), which selects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    module_path: Option<&'a str>,
    /// The value an imported ONNX node produces, a name that also selects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
    /// What a node that is not a tensor holds (`int 14`, `torch.Size([1, 3, 224, 224])`,
    /// `tuple (Tensor[1, 197, 768], None)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

#[derive(Serialize)]
struct NodesJson<'a> {
    model: &'a str,
    train_nodes: Vec<String>,
    eval_nodes: Vec<String>,
    nodes: Vec<NodeJson<'a>>,
}

/// Prints the node list.
pub fn run(args: &NodesArgs) -> Result<(), CliError> {
    let traced = match &args.model {
        // Listing needs no weights and no compute: random init on the CPU is enough.
        ModelChoice::Zoo(arch) => arch.random(&burn::prelude::Device::flex()),
        ModelChoice::Onnx(path) => {
            let options = featx_onnx::LoadOptions {
                input_size: args
                    .input_size
                    .or(Some([224, 224]))
                    .filter(|_| featx_onnx::input_size(path).is_ok_and(|fixed| fixed.is_none())),
                batch: None,
            };
            featx_onnx::load_with(path, &options)?.traced
        }
    };
    // Each mode's graph is traced on its own, as torchvision's `get_graph_node_names` does.
    let (train_nodes, eval_nodes) = traced.node_names();
    match args.format {
        Format::Text => {
            let list = match args.mode {
                ModeArg::Eval => &eval_nodes,
                ModeArg::Train => &train_nodes,
            };
            for name in list {
                println!("{name}");
            }
        }
        Format::Json => {
            let graph = traced.in_mode(args.mode.into());
            println!("{}", nodes_json(graph, train_nodes, eval_nodes)?)
        }
    }
    Ok(())
}

pub(crate) fn nodes_json(
    traced: &TracedModel,
    train_nodes: Vec<String>,
    eval_nodes: Vec<String>,
) -> Result<String, CliError> {
    let [h, w] = traced.input.nominal_size;
    let values = traced
        .graph
        .infer_values(&[1, traced.input.channels, h, w])?;
    let graph = &traced.graph;
    let nodes = graph
        .nodes()
        .iter()
        .zip(&values)
        .map(|(node, value)| NodeJson {
            name: &node.name,
            op: node.kind.as_str(),
            target: &node.target,
            inputs: node
                .inputs
                .iter()
                .map(|i| graph.nodes()[i.0].name.as_str())
                .collect(),
            shape: value.shape(),
            module_type: node.module_type.as_deref(),
            module_path: node.module_path.as_deref(),
            output: node.alias.as_deref(),
            value: value.shape().is_none().then(|| value.to_string()),
        })
        .collect();
    let doc = NodesJson {
        model: &traced.name,
        train_nodes,
        eval_nodes,
        nodes,
    };
    Ok(serde_json::to_string_pretty(&doc)?)
}
