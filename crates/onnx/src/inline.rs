//! ONNX local functions (`ModelProto.functions`), inlined: a call becomes the function's nodes,
//! named `<call>/<inner node>`, so each stays addressable.

use std::collections::HashMap;

use onnx_ir::{AttributeProto, ModelProto, NodeProto};

use crate::error::{OnnxError, Result};

/// How deep functions may call functions: deeper is taken for recursion.
const MAX_DEPTH: usize = 16;

/// The most nodes a graph may have once its functions are inlined (a function calling
/// another twice at every level would otherwise grow without bound).
const MAX_NODES: usize = 1 << 20;

/// One local function, by the fields inlining needs.
struct Function {
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// Attribute defaults (`attribute_proto`); attributes without one must come from the call.
    defaults: Vec<AttributeProto>,
    nodes: Vec<NodeProto>,
}

/// The graph's nodes with every call of a local function replaced by its body.
pub fn inline_functions(model: &ModelProto) -> Result<Vec<NodeProto>> {
    let functions: HashMap<(String, String), Function> = model
        .functions
        .iter()
        .map(|f| {
            (
                (f.domain.clone(), f.name.clone()),
                Function {
                    inputs: f.input.clone(),
                    outputs: f.output.clone(),
                    defaults: f.attribute_proto.clone(),
                    nodes: f.node.clone(),
                },
            )
        })
        .collect();
    let mut out = Vec::with_capacity(model.graph.node.len());
    for node in &model.graph.node {
        expand(node, &functions, 0, &mut out)?;
    }
    Ok(out)
}

fn expand(
    node: &NodeProto,
    functions: &HashMap<(String, String), Function>,
    depth: usize,
    out: &mut Vec<NodeProto>,
) -> Result<()> {
    if out.len() >= MAX_NODES {
        return Err(OnnxError::Node {
            node: node.name.clone(),
            op: node.op_type.clone(),
            reason: format!("more than {MAX_NODES} nodes once local functions are inlined"),
        });
    }
    let Some(function) = functions.get(&(node.domain.clone(), node.op_type.clone())) else {
        out.push(node.clone());
        return Ok(());
    };
    if depth >= MAX_DEPTH {
        return Err(OnnxError::Node {
            node: node.name.clone(),
            op: node.op_type.clone(),
            reason: format!("local functions nest deeper than {MAX_DEPTH} (recursion?)"),
        });
    }
    let call = if node.name.is_empty() {
        node.output.first().cloned().unwrap_or_default()
    } else {
        node.name.clone()
    };
    // Formal names to actual ones; everything else inside gets the call's prefix.
    let mut names: HashMap<&str, String> = HashMap::new();
    for (formal, actual) in function.inputs.iter().zip(&node.input) {
        names.insert(formal, actual.clone());
    }
    for (formal, actual) in function.outputs.iter().zip(&node.output) {
        names.insert(formal, actual.clone());
    }
    let rename = |v: &String| -> String {
        if v.is_empty() {
            return String::new();
        }
        names
            .get(v.as_str())
            .cloned()
            .unwrap_or_else(|| format!("{call}/{v}"))
    };
    for inner in &function.nodes {
        let mut inner = inner.clone();
        inner.name = format!(
            "{call}/{}",
            if inner.name.is_empty() {
                inner.op_type.clone()
            } else {
                inner.name.clone()
            }
        );
        inner.input = inner.input.iter().map(rename).collect();
        inner.output = inner.output.iter().map(rename).collect();
        let mut attributes = Vec::with_capacity(inner.attribute.len());
        for attr in &inner.attribute {
            if attr.ref_attr_name.is_empty() {
                attributes.push(attr.clone());
                continue;
            }
            // A reference to the caller's attribute, or the function's default for it.
            let value = node
                .attribute
                .iter()
                .chain(&function.defaults)
                .find(|a| a.name == attr.ref_attr_name);
            if let Some(value) = value {
                let mut value = value.clone();
                value.name = attr.name.clone();
                attributes.push(value);
            }
        }
        inner.attribute = attributes;
        expand(&inner, functions, depth + 1, out)?;
    }
    Ok(())
}
