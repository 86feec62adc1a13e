//! Mermaid flowcharts: module scopes as nested `subgraph`s, edges labelled with shapes.

use std::fmt::Write;

use super::fold::Diagram;
use super::scopes::Scopes;

/// The diagram as a Mermaid `flowchart TD`. Ids are `n0`, `n1`, ... (Mermaid ids cannot hold
/// every character a node name can); names, ops and shapes are the labels.
pub fn mermaid(diagram: &Diagram) -> String {
    let mut out = String::from("flowchart TD\n");
    let scopes = Scopes::of(diagram);
    let mut next_scope = 0;
    write_scope(&mut out, diagram, &scopes, &[], 1, &mut next_scope);
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

fn write_scope(
    out: &mut String,
    diagram: &Diagram,
    scopes: &Scopes,
    path: &[String],
    indent: usize,
    next_scope: &mut usize,
) {
    let pad = "  ".repeat(indent);
    for &b in scopes.boxes_in(path) {
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
        let _ = writeln!(
            out,
            "{pad}n{b}[\"{}<br/>{}<br/>{}\"]",
            text(&node.name),
            text(&detail),
            text(&node.output_shape)
        );
    }
    for child in scopes.children(path) {
        let id = *next_scope;
        *next_scope += 1;
        let _ = writeln!(out, "{pad}subgraph s{id}[\"{}\"]", text(&child.join(".")));
        write_scope(out, diagram, scopes, child, indent + 1, next_scope);
        let _ = writeln!(out, "{pad}end");
    }
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
