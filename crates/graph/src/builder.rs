use std::collections::HashMap;

use crate::ops::Input;
use crate::{Graph, Node, NodeId, NodeKind, Op};

/// How an imported node is named: see [`GraphBuilder::imported`].
#[derive(Debug, Clone, Default)]
pub struct ImportedNode {
    /// The file's node name.
    pub name: String,
    /// The file's op type (`Conv`).
    pub target: String,
    /// The module it ran in, if the file says.
    pub module_path: Option<String>,
    /// The name of the value it produces, which also selects it.
    pub alias: Option<String>,
}

/// Records a forward pass as a [`Graph`], naming nodes by torchvision's FX rules.
///
/// Module scopes are entered and left as the forward pass descends into submodules; leaf
/// module names are given relative to the current scope. How a call is named (its FX kind,
/// target and module class) is given here by the caller, the tracer; what it computes is the
/// [`Op`].
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<Node>,
    scope: Vec<String>,
    uses: HashMap<String, usize>,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the input placeholder (`x` in torchvision models).
    pub fn input(&mut self, name: &str, channels: usize) -> NodeId {
        let name = self.unique(name.to_string());
        self.push(Node {
            target: name.clone(),
            name,
            kind: NodeKind::Placeholder,
            module_type: None,
            op: Input {
                channels,
                batch: None,
            }
            .into(),
            inputs: Vec::new(),
            module_path: None,
            alias: None,
        })
    }

    /// Enters the submodule `name` of the current scope (`layer1`, then `0`).
    pub fn enter(&mut self, name: &str) {
        self.scope.push(name.to_string());
    }

    /// Leaves the innermost scope entered with [`GraphBuilder::enter`].
    pub fn exit(&mut self) {
        self.scope.pop();
    }

    /// The dotted path of the current scope (`layer1.0`, or empty at the top).
    pub fn scope_path(&self) -> String {
        self.scope.join(".")
    }

    /// Records a call of the leaf module `name` (relative to the current scope) of class
    /// `class` (`Conv2d`, `ReLU`).
    pub fn call_module(
        &mut self,
        name: &str,
        class: &str,
        op: impl Into<Op>,
        inputs: &[NodeId],
    ) -> NodeId {
        let target = self.qualify(name);
        let name = self.unique(target.clone());
        self.push(Node {
            name,
            kind: NodeKind::CallModule,
            target,
            module_type: Some(class.to_string()),
            op: op.into(),
            inputs: inputs.to_vec(),
            module_path: None,
            alias: None,
        })
    }

    /// Records a free-function call in the current scope: `name` is what FX names it by
    /// (`add`), `target` the function (`operator.add`, `torch.flatten`).
    pub fn call_function(
        &mut self,
        name: &str,
        target: &str,
        op: impl Into<Op>,
        inputs: &[NodeId],
    ) -> NodeId {
        self.call_named(NodeKind::CallFunction, name, target, op.into(), inputs)
    }

    /// Records a tensor-method call (`view`) in the current scope; a method's target is its
    /// bare name (`x.flatten(1)` targets `flatten`).
    pub fn call_method(&mut self, method: &str, op: impl Into<Op>, inputs: &[NodeId]) -> NodeId {
        self.call_named(NodeKind::CallMethod, method, method, op.into(), inputs)
    }

    /// Records a node of an imported graph under the file's own names: `name` (made unique
    /// with a suffix if the file repeats it), `target` the file's op (`Conv`), the module it
    /// ran in and the value name it also answers to. Imported nodes are function calls; a
    /// weight read is a `get_attr`.
    pub fn imported(&mut self, node: ImportedNode, op: impl Into<Op>, inputs: &[NodeId]) -> NodeId {
        let op = op.into();
        let kind = match op {
            Op::Input(_) => NodeKind::Placeholder,
            Op::Parameter(_) => NodeKind::GetAttr,
            _ => NodeKind::CallFunction,
        };
        // The file's names are kept as they are (FX's `_1` rule would rename `node_Conv_5`);
        // only a name the file repeats gets a `#2`, `#3`.
        let mut name = node.name;
        let count = self.uses.entry(name.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            name = format!("{name}#{count}");
        }
        self.push(Node {
            name,
            kind,
            target: node.target,
            module_type: None,
            op,
            inputs: inputs.to_vec(),
            module_path: node.module_path,
            alias: node.alias,
        })
    }

    /// Finishes the graph; `output` is the node the forward pass returns.
    pub fn finish(self, output: NodeId) -> Graph {
        Graph::new(self.nodes, output)
    }

    /// Records a read of the parameter `attr` (relative to the current scope) in `forward`:
    /// an FX `get_attr` node, named `<scope>.<its path with dots as underscores>`
    /// (`features.1.0.features_1_0_layer_scale`).
    pub fn get_attr(&mut self, attr: &str, op: impl Into<Op>) -> NodeId {
        let target = self.qualify(attr);
        let name = self.unique(self.qualify(&target.replace('.', "_")));
        self.push(Node {
            name,
            kind: NodeKind::GetAttr,
            target,
            module_type: None,
            op: op.into(),
            inputs: Vec::new(),
            module_path: None,
            alias: None,
        })
    }

    fn call_named(
        &mut self,
        kind: NodeKind,
        name: &str,
        target: &str,
        op: Op,
        inputs: &[NodeId],
    ) -> NodeId {
        let name = self.unique(self.qualify(name));
        self.push(Node {
            name,
            kind,
            target: target.to_string(),
            module_type: None,
            op,
            inputs: inputs.to_vec(),
            module_path: None,
            alias: None,
        })
    }

    fn qualify(&self, name: &str) -> String {
        if self.scope.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.scope_path())
        }
    }

    /// `base`, then `base_1`, `base_2`, ... for repeats. As torchvision's `NodePathTracer`, a
    /// name already ending in `_<digits>` is first cut there: the module `ln_2` after `ln_1`
    /// is the node `ln_1`, after `ln`.
    fn unique(&mut self, base: String) -> String {
        let base = match base.rsplit_once('_') {
            Some((head, digits))
                if !head.is_empty()
                    && !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                head.to_string()
            }
            _ => base,
        };
        let count = self.uses.entry(base.clone()).or_insert(0);
        let name = if *count == 0 {
            base
        } else {
            format!("{base}_{count}")
        };
        *count += 1;
        name
    }

    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        NodeId(self.nodes.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Activation, Add, Flatten};

    #[test]
    fn names_follow_fx_rules() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", 3);
        b.enter("layer1");
        b.enter("0");
        let a = b.call_module("relu", "ReLU", Activation::Relu, &[x]);
        let c = b.call_function("add", "operator.add", Add, &[a, x]);
        let d = b.call_module("relu", "ReLU", Activation::Relu, &[c]);
        b.exit();
        b.exit();
        let f = b.call_function("flatten", "torch.flatten", Flatten { start_dim: 1 }, &[d]);
        let g = b.finish(f);
        assert_eq!(
            g.names(),
            [
                "x",
                "layer1.0.relu",
                "layer1.0.add",
                "layer1.0.relu_1",
                "flatten"
            ]
        );
        assert_eq!(g.nodes()[2].target, "operator.add");
        assert_eq!(g.nodes()[3].target, "layer1.0.relu");
        assert_eq!(g.needed_for(&[c]), vec![true, true, true, false, false]);
    }
}
