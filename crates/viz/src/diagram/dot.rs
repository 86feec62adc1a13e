//! Graphviz DOT: module scopes as nested `subgraph cluster_*`, edges labelled with shapes.

use std::fmt::Write;

use super::fold::{Diagram, DiagramBox};
use super::scopes::{Scopes, Step};

/// The diagram as a DOT digraph named `title`, for Graphviz's `dot`.
pub fn dot(diagram: &Diagram, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(title));
    out.push_str("  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=8];\n");
    Scopes::of(diagram).walk(&mut |step| {
        let pad = |depth: usize| "  ".repeat(depth + 1);
        let _ = match step {
            Step::Box(b, depth) => {
                let node = &diagram.boxes[b];
                writeln!(
                    out,
                    "{}{} [label={}];",
                    pad(depth),
                    quote(&node.name),
                    quote(&label(node))
                )
            }
            Step::Open(name, depth) => writeln!(
                out,
                "{}subgraph {} {{\n{}  label={};",
                pad(depth - 1),
                quote(&format!("cluster_{name}")),
                pad(depth - 1),
                quote(&name)
            ),
            Step::Close(depth) => writeln!(out, "{}}}", pad(depth - 1)),
        };
    });
    for edge in &diagram.edges {
        let _ = writeln!(
            out,
            "  {} -> {} [label={}];",
            quote(&diagram.boxes[edge.from].name),
            quote(&diagram.boxes[edge.to].name),
            quote(&edge.shape)
        );
    }
    out.push_str("}\n");
    out
}

/// A box's text: name, op and shape; a folded module also its input shapes.
fn label(b: &DiagramBox) -> String {
    if b.op == "module" {
        format!(
            "{}\n{} nodes\nin {}\nout {}",
            b.name,
            b.nodes,
            b.input_shapes.join(", "),
            b.output_shape
        )
    } else {
        format!("{}\n{}\n{}", b.name, b.op, b.output_shape)
    }
}

/// A DOT string literal.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            _ => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::super::fold::fold;
    use super::super::tests::block;
    use super::*;

    #[test]
    fn scopes_become_nested_clusters() {
        let text = dot(&fold(&block(), None), "block");
        assert!(text.starts_with("digraph \"block\" {"));
        let outer = text
            .find("subgraph \"cluster_layer1\"")
            .expect("layer1 cluster");
        let inner = text
            .find("subgraph \"cluster_layer1.0\"")
            .expect("layer1.0 cluster");
        let conv = text.find("\"layer1.0.conv1\" [label=").expect("node");
        assert!(outer < inner && inner < conv, "{text}");
        assert!(text.contains("\"conv1\" -> \"layer1.0.add\" [label=\"1x4x8x8\"];"));
        assert!(text.contains("label=\"fc\\nLinear\\n1x10\""), "{text}");
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
