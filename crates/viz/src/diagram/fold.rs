//! Folding: every module deeper than the fold depth becomes one box.

use std::collections::HashMap;

use super::{DiagramNode, shape_label};

/// A box of the folded graph: one node, or one whole module.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagramBox {
    /// The node's name, or the module's dotted path (`layer1`).
    pub name: String,
    /// The node's op, or `module` for a folded module.
    pub op: String,
    /// The modules the box sits in, outermost first (for a folded module, its parents).
    pub scope: Vec<String>,
    /// The shapes flowing in from outside the box (a folded module's inputs), in order.
    pub input_shapes: Vec<String>,
    /// The box's output shape: the node's, or the module's last node's.
    pub output_shape: String,
    /// How many traced nodes the box stands for.
    pub nodes: usize,
}

/// A data-flow edge between two boxes, labelled with the shape it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagramEdge {
    /// Index of the box the value comes from.
    pub from: usize,
    /// Index of the box that reads it.
    pub to: usize,
    /// The tensor's shape (`1x64x56x56`).
    pub shape: String,
}

/// A graph ready to draw: boxes in the traced order and the edges between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagram {
    /// The boxes, each after the boxes it reads.
    pub boxes: Vec<DiagramBox>,
    /// Edges between different boxes, each once.
    pub edges: Vec<DiagramEdge>,
}

/// Folds `nodes` to `depth` module levels (`None`: every node its own box). With `Some(1)`,
/// every node inside `layer1` (at any depth) is part of one box `layer1`; top-level nodes
/// stay themselves.
pub fn fold(nodes: &[DiagramNode], depth: Option<usize>) -> Diagram {
    fold_open(nodes, depth, &[])
}

/// [`fold`], with each module named in `open` (a dotted path, `layer1` or `layer2.0`)
/// unfolded one level further: a browser's click on a folded box. A name that is no module
/// changes nothing.
pub fn fold_open(nodes: &[DiagramNode], depth: Option<usize>, open: &[String]) -> Diagram {
    let is_open = |scope: &[String]| open.iter().any(|o| *o == scope.join("."));
    let mut boxes: Vec<DiagramBox> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    // The box each node went into.
    let mut owner = Vec::with_capacity(nodes.len());
    for node in nodes {
        let folded = depth.map(|d| d.max(1)).and_then(|mut d| {
            while d <= node.scope.len() && is_open(&node.scope[..d]) {
                d += 1;
            }
            (node.scope.len() >= d).then_some(d)
        });
        let b = match folded {
            Some(d) => {
                let d = d.max(1);
                let key = node.scope[..d].join(".");
                *index_of.entry(key.clone()).or_insert_with(|| {
                    boxes.push(DiagramBox {
                        name: key,
                        op: "module".into(),
                        scope: node.scope[..d - 1].to_vec(),
                        input_shapes: Vec::new(),
                        output_shape: String::new(),
                        nodes: 0,
                    });
                    boxes.len() - 1
                })
            }
            None => {
                boxes.push(DiagramBox {
                    name: node.name.clone(),
                    op: node.op.clone(),
                    scope: node.scope.clone(),
                    input_shapes: Vec::new(),
                    output_shape: String::new(),
                    nodes: 0,
                });
                boxes.len() - 1
            }
        };
        boxes[b].nodes += 1;
        boxes[b].output_shape = shape_label(node.shape.as_deref());
        owner.push(b);
    }
    let mut edges: Vec<DiagramEdge> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for &input in &node.inputs {
            let (Some(&from), to) = (owner.get(input), owner[i]) else {
                continue;
            };
            if from == to {
                continue;
            }
            let shape = shape_label(nodes[input].shape.as_deref());
            if !edges.iter().any(|e| e.from == from && e.to == to) {
                edges.push(DiagramEdge {
                    from,
                    to,
                    shape: shape.clone(),
                });
                if boxes[to].op == "module" {
                    boxes[to].input_shapes.push(shape);
                }
            }
        }
    }
    Diagram { boxes, edges }
}

#[cfg(test)]
mod tests {
    use super::super::tests::block;
    use super::*;

    #[test]
    fn unfolded_every_node_is_a_box_and_every_input_an_edge() {
        let d = fold(&block(), None);
        assert_eq!(d.boxes.len(), 7);
        assert_eq!(d.edges.len(), 7);
        let add = &d.boxes[4];
        assert_eq!(
            (add.name.as_str(), add.op.as_str()),
            ("layer1.0.add", "add")
        );
        assert_eq!(add.scope, ["layer1", "0"]);
        // The residual edge from the stem into the add.
        assert!(d.edges.contains(&DiagramEdge {
            from: 1,
            to: 4,
            shape: "1x4x8x8".into()
        }));
    }

    #[test]
    fn fold_one_makes_each_top_level_module_one_box() {
        let d = fold(&block(), Some(1));
        let names: Vec<&str> = d.boxes.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["x", "conv1", "layer1", "flatten", "fc"]);
        let layer1 = &d.boxes[2];
        assert_eq!(layer1.op, "module");
        assert_eq!(layer1.nodes, 3);
        // Two edges come in from conv1 (into conv1 of the block and into the add): one edge.
        assert_eq!(layer1.input_shapes, ["1x4x8x8"]);
        assert_eq!(layer1.output_shape, "1x4x8x8");
        let pairs: Vec<(usize, usize)> = d.edges.iter().map(|e| (e.from, e.to)).collect();
        assert_eq!(pairs, [(0, 1), (1, 2), (2, 3), (3, 4)]);
    }

    #[test]
    fn an_open_module_unfolds_one_level() {
        let d = fold_open(&block(), Some(1), &["layer1".into()]);
        let names: Vec<&str> = d.boxes.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["x", "conv1", "layer1.0", "flatten", "fc"]);
        let d = fold_open(&block(), Some(1), &["layer1".into(), "layer1.0".into()]);
        assert_eq!(d.boxes.len(), 7);
        // A name that is no module changes nothing.
        assert_eq!(
            fold_open(&block(), Some(1), &["layer1.0".into(), "fc".into()]),
            fold(&block(), Some(1))
        );
    }

    #[test]
    fn fold_two_keeps_the_block_level() {
        let d = fold(&block(), Some(2));
        let layer = d.boxes.iter().find(|b| b.name == "layer1.0").expect("box");
        assert_eq!(layer.scope, ["layer1"]);
        assert_eq!(layer.nodes, 3);
    }
}
