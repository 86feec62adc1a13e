//! A traced graph as a picture: Graphviz DOT, Mermaid, or SVG laid out here.
//!
//! The input is a plain list of nodes ([`DiagramNode`]: name, op, output shape, module scope,
//! inputs), so this module knows nothing of how a model was traced or imported. [`fold`] first
//! collapses every module deeper than a depth into one box (`--fold 1`: `layer1`, `layer2`,
//! ... each one box with its input and output shapes); each writer then draws the folded
//! graph, with module scopes as clusters.

mod dot;
mod fold;
mod mermaid;
mod scopes;
mod svg;

pub use dot::dot;
pub use fold::{Diagram, DiagramBox, DiagramEdge, fold, fold_open};
pub use mermaid::mermaid;
pub use svg::{Layout, layout, svg};

/// One node of a traced graph, as the diagram needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagramNode {
    /// The name `featx nodes` lists (`layer1.0.conv1`, `/layer1/layer1.0/conv1/Conv`).
    pub name: String,
    /// What it computes: the FX target (`conv2d`, `add`) or the ONNX op type.
    pub op: String,
    /// Its output shape; `None` for a node that is not a tensor.
    pub shape: Option<Vec<usize>>,
    /// The modules it runs in, outermost first (`["layer1", "0"]`); empty at the top level.
    pub scope: Vec<String>,
    /// Indices of the nodes it reads, each earlier in the list.
    pub inputs: Vec<usize>,
}

/// A shape as the pictures print it: `1x64x56x56`, or `-` for a value that is not a tensor.
pub fn shape_label(shape: Option<&[usize]>) -> String {
    match shape {
        Some(dims) => dims
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("x"),
        None => "-".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ResNet-like chain: input, stem, a block of two convolutions and an add in `layer1.0`,
    /// then `fc`.
    pub(crate) fn block() -> Vec<DiagramNode> {
        let node =
            |name: &str, op: &str, shape: &[usize], scope: &[&str], inputs: &[usize]| DiagramNode {
                name: name.into(),
                op: op.into(),
                shape: Some(shape.to_vec()),
                scope: scope.iter().map(|s| s.to_string()).collect(),
                inputs: inputs.to_vec(),
            };
        vec![
            node("x", "placeholder", &[1, 3, 8, 8], &[], &[]),
            node("conv1", "Conv2d", &[1, 4, 8, 8], &[], &[0]),
            node(
                "layer1.0.conv1",
                "Conv2d",
                &[1, 4, 8, 8],
                &["layer1", "0"],
                &[1],
            ),
            node(
                "layer1.0.conv2",
                "Conv2d",
                &[1, 4, 8, 8],
                &["layer1", "0"],
                &[2],
            ),
            node(
                "layer1.0.add",
                "add",
                &[1, 4, 8, 8],
                &["layer1", "0"],
                &[3, 1],
            ),
            node("flatten", "flatten", &[1, 256], &[], &[4]),
            node("fc", "Linear", &[1, 10], &[], &[5]),
        ]
    }

    #[test]
    fn shapes_print_as_products() {
        assert_eq!(shape_label(Some(&[1, 64, 56, 56])), "1x64x56x56");
        assert_eq!(shape_label(None), "-");
    }
}
