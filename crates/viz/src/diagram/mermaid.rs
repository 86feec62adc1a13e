//! Mermaid flowcharts: module scopes as nested `subgraph`s, edges labelled with shapes.

use std::fmt::Write;

use super::fold::Diagram;
use super::scopes::{Scopes, Step};

/// The diagram as a Mermaid `flowchart TD`. Ids are `n0`, `n1`, ... (Mermaid ids cannot hold
/// every character a node name can); names, ops and shapes are the labels.
pub fn mermaid(diagram: &Diagram) -> String {
    let mut out = String::from("flowchart TD\n");
    let mut next_scope = 0;
    Scopes::of(diagram).walk(&mut |step| {
        let pad = |depth: usize| "  ".repeat(depth + 1);
        let _ = match step {
            Step::Box(b, depth) => {
                let node = &diagram.boxes[b];
                let detail = if node.op == "module" {
                    format!(
                        "{} nodes<br/>in {}",
                        node.nodes,
                        node.input_shapes.join(", ")
                    )
                } else {
                    node.op.clone()
                };
                writeln!(
                    out,
                    "{}n{b}[\"{}<br/>{}<br/>{}\"]",
                    pad(depth),
                    text(&node.name),
                    text(&detail),
                    text(&node.output_shape)
                )
            }
            Step::Open(name, depth) => {
                next_scope += 1;
                writeln!(
                    out,
                    "{}subgraph s{}[\"{}\"]",
                    pad(depth - 1),
                    next_scope - 1,
                    text(&name)
                )
            }
            Step::Close(depth) => writeln!(out, "{}end", pad(depth - 1)),
        };
    });
    for edge in &diagram.edges {
        let _ = writeln!(
            out,
            "  n{} -->|\"{}\"| n{}",
            edge.from,
            text(&edge.shape),
            edge.to
        );
    }
    out
}

/// Text inside a quoted Mermaid label: quotes as the `#quot;` entity.
fn text(s: &str) -> String {
    s.replace('"', "#quot;")
}

#[cfg(test)]
mod tests {
    use super::super::fold::fold;
    use super::super::tests::block;
    use super::*;

    #[test]
    fn scopes_become_subgraphs_and_edges_carry_shapes() {
        let text = mermaid(&fold(&block(), None));
        assert!(text.starts_with("flowchart TD\n"));
        assert!(text.contains("subgraph s0[\"layer1\"]"), "{text}");
        assert!(text.contains("subgraph s1[\"layer1.0\"]"), "{text}");
        assert!(
            text.contains("n4[\"layer1.0.add<br/>add<br/>1x4x8x8\"]"),
            "{text}"
        );
        assert!(text.contains("n1 -->|\"1x4x8x8\"| n4"), "{text}");
        assert_eq!(text.matches("end\n").count(), 2);
    }

    #[test]
    fn folded_modules_show_their_inputs() {
        let text = mermaid(&fold(&block(), Some(1)));
        assert!(
            text.contains("n2[\"layer1<br/>3 nodes<br/>in 1x4x8x8<br/>1x4x8x8\"]"),
            "{text}"
        );
        assert!(!text.contains("subgraph"));
    }
}
