use serde::Serialize;

use crate::{GraphError, Kind, Op, Result, Value};

/// Index of a node in its [`Graph`], in execution order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeId(pub usize);

/// The FX kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The graph input.
    Placeholder,
    /// A call of a leaf module (`Conv2d`, `ReLU`, ...), named by its module path.
    CallModule,
    /// A free function such as `operator.add` or `torch.flatten`.
    CallFunction,
    /// A tensor method such as `view`.
    CallMethod,
    /// A parameter read in `forward` (`layer_scale`, `class_token`).
    GetAttr,
}

impl NodeKind {
    /// The FX spelling (`call_module`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Placeholder => "placeholder",
            NodeKind::CallModule => "call_module",
            NodeKind::CallFunction => "call_function",
            NodeKind::CallMethod => "call_method",
            NodeKind::GetAttr => "get_attr",
        }
    }
}

/// One recorded op, with how FX saw the call that made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// The torchvision node name (`layer1.0.relu_1`).
    pub name: String,
    /// FX kind.
    pub kind: NodeKind,
    /// FX target: the module path for `call_module`, else `operator.add`, `torch.flatten`, ...
    pub target: String,
    /// The module's class for `call_module` nodes (`Conv2d`, `ReLU`, `Conv2dNormActivation`):
    /// FX's `module_type`.
    pub module_type: Option<String>,
    /// What the node computes.
    pub op: Op,
    /// Nodes whose outputs this node reads, in argument order.
    pub inputs: Vec<NodeId>,
    /// The module the node ran in, where its name does not say it: an imported ONNX node
    /// (`/layer1/layer1.0/conv1/Conv` ran in `layer1.0.conv1`). `None` for traced nodes,
    /// whose names are their module paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module_path: Option<String>,
    /// Another name the node answers to: an imported ONNX node's first output value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// A recorded forward pass: nodes in execution order and the node the model returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) output: NodeId,
    /// What each node's value is ([`Graph::kind`]), from its op and its inputs' kinds.
    pub(crate) kinds: Vec<Kind>,
}

impl Graph {
    /// A graph of `nodes` in execution order returning `output`.
    pub(crate) fn new(nodes: Vec<Node>, output: NodeId) -> Self {
        let mut kinds: Vec<Kind> = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let inputs: Vec<Kind> = node
                .inputs
                .iter()
                .map(|i| kinds.get(i.0).copied().unwrap_or(Kind::Tensor))
                .collect();
            kinds.push(node.op.def().kind(&inputs));
        }
        Graph {
            nodes,
            output,
            kinds,
        }
    }

    /// All nodes, in execution order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> Result<&Node> {
        self.nodes.get(id.0).ok_or(GraphError::UnknownNodeId(id.0))
    }

    /// What node `id`'s value is: a tensor, a Python value known from the input's shape
    /// (never computed), or a tuple.
    pub fn kind(&self, id: NodeId) -> Kind {
        self.kinds.get(id.0).copied().unwrap_or(Kind::Tensor)
    }

    /// Whether node `id`'s value is a tensor, a feature that can be extracted.
    pub fn is_tensor(&self, id: NodeId) -> bool {
        self.kind(id) == Kind::Tensor
    }

    /// What node `id`'s value is, said in an error, when it is not a tensor.
    pub fn non_tensor(&self, id: NodeId) -> Option<&'static str> {
        let node = self.nodes.get(id.0)?;
        let inputs: Vec<Kind> = node.inputs.iter().map(|&i| self.kind(i)).collect();
        (!self.is_tensor(id)).then(|| node.op.def().non_tensor(&inputs))
    }

    /// The node the model's forward returns.
    pub fn output(&self) -> NodeId {
        self.output
    }

    /// Node names in execution order (what `get_graph_node_names` returns).
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The node with exactly this name (or alias).
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .or_else(|| {
                self.nodes
                    .iter()
                    .position(|n| n.alias.as_deref() == Some(name))
            })
            .map(NodeId)
    }

    /// The last node executed inside the module `path` (`layer3`): of a traced graph, the
    /// last whose name is below `path` at a dot boundary; of an imported one, the last whose
    /// module path is `path` or below it.
    pub fn find_module(&self, path: &str) -> Option<NodeId> {
        let prefix = format!("{path}.");
        let inside = |name: &str| name == path || name.starts_with(&prefix);
        self.nodes
            .iter()
            .rposition(|n| match &n.module_path {
                Some(module) => inside(module),
                None => n.name.starts_with(&prefix),
            })
            .map(NodeId)
    }

    /// Every module path with nodes inside it, and every node name, for suggestions.
    pub fn module_paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for node in &self.nodes {
            for path in [Some(&node.name), node.module_path.as_ref()]
                .into_iter()
                .flatten()
            {
                let parts: Vec<&str> = path.split('.').collect();
                for end in 1..=parts.len() {
                    let name = parts[..end].join(".");
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
        }
        out
    }

    /// Output shape of every node, in execution order, for an input of shape `input`.
    ///
    /// This is how inputs are checked before any compute: the first node that cannot take
    /// the shape reaching it is reported with that shape and the reason.
    ///
    /// A node that is not a tensor (a shape check) gets the shape of the tensor it carries
    /// (the output of a `(output, None)` attention tuple), else an empty shape; see
    /// [`Graph::infer_values`].
    pub fn infer_shapes(&self, input: &[usize]) -> Result<Vec<Vec<usize>>> {
        Ok(self
            .infer_values(input)?
            .into_iter()
            .map(|v| match v {
                Value::Tensor(shape) => shape,
                Value::Tuple(items) => items
                    .into_iter()
                    .find_map(|i| match i {
                        Value::Tensor(shape) => Some(shape),
                        _ => None,
                    })
                    .unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect())
    }

    /// What every node produces, in execution order, for an input of shape `input`: tensor
    /// shapes, and the Python values of the shape checks FX records (`x.shape`, `size[2]`,
    /// `h == 224`, `torch._assert(...)`). A failing check is an error with its message.
    pub fn infer_values(&self, input: &[usize]) -> Result<Vec<Value>> {
        let mut values: Vec<Value> = Vec::with_capacity(self.nodes.len());
        let input = Value::Tensor(input.to_vec());
        for node in &self.nodes {
            let inputs: Vec<&Value> = if node.kind == NodeKind::Placeholder {
                vec![&input]
            } else {
                node.inputs.iter().map(|i| &values[i.0]).collect()
            };
            let value = node
                .op
                .def()
                .infer(&inputs)
                .map_err(|reason| GraphError::Shape {
                    node: node.name.clone(),
                    input: inputs
                        .first()
                        .and_then(|v| v.shape())
                        .map(<[usize]>::to_vec)
                        .unwrap_or_default(),
                    reason,
                })?;
            values.push(value);
        }
        Ok(values)
    }

    /// For each node, whether it must run to produce all of `targets`.
    pub fn needed_for(&self, targets: &[NodeId]) -> Vec<bool> {
        let mut needed = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = targets.to_vec();
        while let Some(id) = stack.pop() {
            if let Some(flag) = needed.get_mut(id.0)
                && !*flag
            {
                *flag = true;
                stack.extend(self.nodes[id.0].inputs.iter().copied());
            }
        }
        needed
    }
}
