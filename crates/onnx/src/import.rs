//! The walk over an ONNX graph: values known at load are computed on the host
//! ([`crate::constant`]); every other node becomes featx nodes through its op's rule
//! ([`crate::ops`]), keeping the file's node names.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use featx_graph::ops::{Input, Parameter};
use featx_graph::{GraphBuilder, ImportedNode, Layer, NodeId, Op, ParamTensor, Value};
use featx_models::{InputSpec, TracedModel};
use onnx_ir::{ModelProto, NodeProto};

use crate::attrs::Attrs;
use crate::constant::Const;
use crate::error::{OnnxError, Result};
use crate::file::{dtype_of, read_tensor};
use crate::inline::inline_functions;
use crate::naming::module_path;
use crate::ops;
use crate::{LoadOptions, OnnxModel};

/// The most elements one node's output may have (16 GiB of float32).
const MAX_ELEMENTS: usize = 1 << 32;

/// A value of the ONNX graph: known at load, or computed by a featx node.
#[derive(Debug, Clone)]
pub enum Val {
    /// Known when the file is opened.
    Const(Const),
    /// The output of a featx node.
    Node(NodeId),
}

/// One ONNX node being imported: its names, attributes and input values.
pub struct Call<'a> {
    /// The file's node.
    pub node: &'a NodeProto,
    /// Its name (the file's, or made from its first output when it has none).
    pub name: String,
    /// The opset of its domain.
    pub opset: i64,
    /// Its attributes.
    pub attrs: Attrs<'a>,
    /// Its inputs; `None` for an omitted optional input.
    pub inputs: Vec<Option<Val>>,
    /// The module it ran in.
    pub module_path: Option<String>,
}

impl Call<'_> {
    /// An error about this node.
    pub fn err(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            node: self.name.clone(),
            op: self.node.op_type.clone(),
            reason: reason.into(),
        }
    }

    /// Input `i`, which the op requires.
    pub fn input(&self, i: usize) -> Result<&Val> {
        self.opt(i)
            .ok_or_else(|| self.err(format!("input {i} is missing")))
    }

    /// Input `i`, if given.
    pub fn opt(&self, i: usize) -> Option<&Val> {
        self.inputs.get(i).and_then(Option::as_ref)
    }

    /// Input `i` as a value known at load (a weight, a shape): featx computes shapes once.
    pub fn constant(&self, i: usize) -> Result<&Const> {
        match self.input(i)? {
            Val::Const(c) => Ok(c),
            Val::Node(_) => Err(self.err(format!(
                "input {i} ('{}') must be known when the file is opened (a weight or a shape computed from the input's size), but it is computed from the image",
                self.node.input.get(i).map_or("", String::as_str)
            ))),
        }
    }

    /// Optional input `i` as a constant.
    pub fn opt_constant(&self, i: usize) -> Result<Option<&Const>> {
        match self.opt(i) {
            None => Ok(None),
            Some(_) => self.constant(i).map(Some),
        }
    }

    /// Every input is known at load.
    pub fn all_constant(&self) -> bool {
        self.inputs
            .iter()
            .all(|v| matches!(v, None | Some(Val::Const(_))))
    }

    /// How output `k`'s featx node is named: output 0 under the node's name, others under
    /// their value names; each also answers to its value name.
    pub fn naming(&self, k: usize) -> ImportedNode {
        let value = self.node.output.get(k).cloned();
        ImportedNode {
            name: if k == 0 {
                self.name.clone()
            } else {
                value
                    .clone()
                    .unwrap_or_else(|| format!("{}:{k}", self.name))
            },
            target: self.node.op_type.clone(),
            module_path: self.module_path.clone(),
            alias: value.filter(|v| *v != self.name),
        }
    }

    /// How a helper node of this node's computation is named (`<node>/<what>`).
    pub fn helper(&self, what: &str) -> ImportedNode {
        ImportedNode {
            name: format!("{}/{what}", self.name),
            target: self.node.op_type.clone(),
            module_path: self.module_path.clone(),
            alias: None,
        }
    }
}

/// Builds featx nodes while walking the file.
pub struct Importer {
    builder: GraphBuilder,
    layers: Vec<Option<Layer>>,
    values: Vec<Value>,
    /// Constants already made nodes, by value name.
    materialised: HashMap<String, NodeId>,
    /// Where weights are built.
    pub device: Device,
}

impl Importer {
    /// Records a featx node computing `op` of `inputs`, its output inferred by the op.
    pub fn emit(
        &mut self,
        naming: ImportedNode,
        op: impl Into<Op>,
        inputs: &[NodeId],
        layer: Option<Layer>,
    ) -> Result<NodeId> {
        let op = op.into();
        let values: Vec<&Value> = inputs.iter().map(|i| &self.values[i.0]).collect();
        let value = op.def().infer(&values).map_err(|reason| OnnxError::Shape {
            node: naming.name.clone(),
            reason,
        })?;
        // A hostile file can ask for any shape; featx computes tensors it can hold.
        if let Some(shape) = value.shape()
            && shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .is_none_or(|n| n > MAX_ELEMENTS)
        {
            return Err(OnnxError::Shape {
                node: naming.name.clone(),
                reason: format!("an output of shape {shape:?} is too large"),
            });
        }
        if !op.def().fits(layer.as_ref()) {
            return Err(OnnxError::Shape {
                node: naming.name.clone(),
                reason: "the op's parameters were not built (a bug)".into(),
            });
        }
        let id = self.builder.imported(naming, op, inputs);
        self.layers.push(layer);
        self.values.push(value);
        Ok(id)
    }

    /// Records the graph input, of `shape`.
    fn placeholder(&mut self, name: &str, channels: usize, shape: Vec<usize>) -> NodeId {
        let naming = ImportedNode {
            name: name.to_string(),
            target: "input".into(),
            module_path: None,
            alias: None,
        };
        let op = Input {
            channels,
            batch: Some(shape[0]),
        };
        let id = self.builder.imported(naming, op, &[]);
        self.layers.push(None);
        self.values.push(Value::Tensor(shape));
        id
    }

    /// The shape of a value.
    pub fn shape(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::Const(c) => c.shape.clone(),
            Val::Node(id) => self.values[id.0]
                .shape()
                .map(<[usize]>::to_vec)
                .unwrap_or_default(),
        }
    }

    /// The node of a value: a constant becomes a parameter node (`get_attr`) named `name`,
    /// once per name.
    pub fn node_of(&mut self, v: &Val, name: &str) -> Result<NodeId> {
        let c = match v {
            Val::Node(id) => return Ok(*id),
            Val::Const(c) => c,
        };
        if let Some(&id) = self.materialised.get(name) {
            return Ok(id);
        }
        // Feature tensors have rank 1 to 6: a scalar is a one-element vector, which broadcasts
        // the same way.
        let shape = if c.shape.is_empty() {
            vec![1]
        } else {
            c.shape.clone()
        };
        let tensor =
            ParamTensor::from_f32(c.as_floats(), &shape, &self.device).ok_or_else(|| {
                OnnxError::TensorData {
                    tensor: name.to_string(),
                    reason: format!("shape {:?} cannot be a featx tensor (rank 1 to 6)", c.shape),
                }
            })?;
        let naming = ImportedNode {
            name: name.to_string(),
            target: "initializer".into(),
            module_path: None,
            alias: None,
        };
        let id = self.emit(
            naming,
            Parameter { shape },
            &[],
            Some(Layer::Parameter(tensor)),
        )?;
        self.materialised.insert(name.to_string(), id);
        Ok(id)
    }

    /// The node of input `i` of `call`, a constant made a parameter node.
    pub fn input_node(&mut self, call: &Call, i: usize) -> Result<NodeId> {
        let v = call.input(i)?.clone();
        let name = call.node.input.get(i).cloned().unwrap_or_default();
        self.node_of(&v, &name)
    }

    /// A float tensor on the import device.
    pub fn tensor<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(burn::tensor::TensorData::new(values, shape), &self.device)
    }
}

/// Imports the parsed `model` (from a file in `folder`).
pub fn import(
    model: &ModelProto,
    folder: &Path,
    name: &str,
    options: &LoadOptions,
) -> Result<OnnxModel> {
    let graph = &model.graph;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    let nodes = inline_functions(model)?;

    let mut env: HashMap<String, Val> = HashMap::new();
    for init in &graph.initializer {
        env.insert(init.name.clone(), Val::Const(read_tensor(init, folder)?));
    }
    let mut im = Importer {
        builder: GraphBuilder::new(),
        layers: Vec::new(),
        values: Vec::new(),
        materialised: HashMap::new(),
        device: Device::flex(),
    };

    // The image input: the one graph input without an initializer.
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !env.contains_key(&i.name))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(OnnxError::Input(format!(
            "the model has {} inputs ({}); featx feeds one image batch",
            inputs.len(),
            inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let (shape, channels, size) = input_shape(input, options)?;
    let id = im.placeholder(&input.name, channels, shape.clone());
    env.insert(input.name.clone(), Val::Node(id));

    for (index, node) in nodes.iter().enumerate() {
        let call_name = if node.name.is_empty() {
            node.output
                .first()
                .filter(|o| !o.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("{}_{index}", node.op_type))
        } else {
            node.name.clone()
        };
        let mut values = Vec::with_capacity(node.input.len());
        for name in &node.input {
            if name.is_empty() {
                values.push(None);
                continue;
            }
            let v = env.get(name).cloned().ok_or_else(|| OnnxError::Undefined {
                node: call_name.clone(),
                value: name.clone(),
            })?;
            values.push(Some(v));
        }
        let domain = if node.domain == "ai.onnx" {
            ""
        } else {
            node.domain.as_str()
        };
        let node_opset = model
            .opset_import
            .iter()
            .find(|o| o.domain == domain || (domain.is_empty() && o.domain == "ai.onnx"))
            .map_or(opset, |o| o.version);
        let call = Call {
            node,
            name: call_name.clone(),
            opset: node_opset,
            attrs: Attrs::of(node),
            inputs: values,
            module_path: module_path(node),
        };
        let unsupported = || OnnxError::UnsupportedOp {
            node: call_name.clone(),
            op: node.op_type.clone(),
            domain: if domain.is_empty() {
                String::new()
            } else {
                format!("{domain}::")
            },
            opset: node_opset,
            supported: ops::supported().join(", "),
        };
        let rule = if domain.is_empty() {
            ops::find(&node.op_type).ok_or_else(unsupported)?
        } else {
            return Err(unsupported());
        };
        let outputs = match (rule.fold, rule.import) {
            (Some(fold), _) if call.all_constant() => {
                fold(&call)?.into_iter().map(Val::Const).collect()
            }
            (_, Some(import)) => import(&mut im, &call)?,
            (Some(_), None) => {
                return Err(call.err(
                    "computes only shapes and constants here, but an input comes from the image",
                ));
            }
            (None, None) => return Err(unsupported()),
        };
        for (name, value) in node.output.iter().zip(outputs) {
            if !name.is_empty() {
                env.insert(name.clone(), value);
            }
        }
    }

    let output_name = graph
        .output
        .first()
        .map(|o| o.name.clone())
        .ok_or_else(|| OnnxError::Input("the graph has no output".into()))?;
    let output = match env.get(&output_name) {
        Some(Val::Node(id)) => *id,
        Some(Val::Const(_)) => {
            return Err(OnnxError::Input(format!(
                "output '{output_name}' does not depend on the input"
            )));
        }
        None => {
            return Err(OnnxError::Undefined {
                node: "graph output".into(),
                value: output_name,
            });
        }
    };
    let Importer {
        builder, layers, ..
    } = im;
    let graph = builder.finish(output);
    Ok(OnnxModel {
        traced: TracedModel {
            name: name.to_string(),
            input: InputSpec {
                channels,
                size: Some(size),
                nominal_size: size,
            },
            graph,
            layers,
            // An ONNX file holds one graph, exported in one mode.
            train: None,
        },
        input_name: input.name.clone(),
        opset,
        batch: shape[0],
    })
}

/// The input's `[N, C, H, W]`: fixed dims from the file, open ones from the options.
fn input_shape(
    input: &onnx_ir::ValueInfoProto,
    options: &LoadOptions,
) -> Result<(Vec<usize>, usize, [usize; 2])> {
    let tensor = input.type_.tensor_type();
    let not_image = |why: String| {
        OnnxError::Input(format!(
            "input '{}' is not an image batch [N, C, H, W]: {why}",
            input.name
        ))
    };
    if dtype_of(tensor.elem_type) != Some(crate::constant::Dtype::Float) {
        return Err(not_image(format!(
            "its element type is {}, not a float",
            tensor.elem_type
        )));
    }
    let dims = &tensor.shape.dim;
    if dims.len() != 4 {
        return Err(not_image(format!("it has rank {}", dims.len())));
    }
    let fixed = |i: usize| {
        let d = &dims[i];
        (d.has_dim_value() && d.dim_value() > 0).then(|| d.dim_value() as usize)
    };
    let param = |i: usize| {
        let d = &dims[i];
        if d.has_dim_param() {
            d.dim_param().to_string()
        } else {
            "?".to_string()
        }
    };
    let channels = fixed(1).ok_or_else(|| OnnxError::DynamicInput {
        input: input.name.clone(),
        dim: "channel count",
        param: param(1),
    })?;
    let batch = match (fixed(0), options.batch) {
        (Some(n), Some(b)) if n != b => {
            return Err(OnnxError::Input(format!(
                "input '{}' fixes the batch at {n}; {b} was asked for",
                input.name
            )));
        }
        (Some(n), _) => n,
        (None, b) => b.unwrap_or(1),
    };
    let mut size = [0usize; 2];
    for (k, (i, what)) in [(2, "height"), (3, "width")].into_iter().enumerate() {
        size[k] = match (fixed(i), options.input_size) {
            (Some(v), Some(s)) if s[k] != v => {
                return Err(OnnxError::Input(format!(
                    "input '{}' fixes the {what} at {v}; {} was asked for",
                    input.name, s[k]
                )));
            }
            (Some(v), _) => v,
            (None, Some(s)) => s[k],
            (None, None) => {
                return Err(OnnxError::DynamicInput {
                    input: input.name.clone(),
                    dim: what,
                    param: param(i),
                });
            }
        };
    }
    Ok((vec![batch, channels, size[0], size[1]], channels, size))
}

/// The fixed `[H, W]` of the model's one image input, if the file fixes both.
pub fn fixed_input_size(model: &ModelProto) -> Option<[usize; 2]> {
    let graph = &model.graph;
    let mut inputs = graph
        .input
        .iter()
        .filter(|i| !graph.initializer.iter().any(|t| t.name == i.name));
    let input = inputs.next()?;
    let dims = &input.type_.tensor_type().shape.dim;
    let fixed = |i: usize| {
        dims.get(i)
            .filter(|d| d.has_dim_value() && d.dim_value() > 0)
            .map(|d| d.dim_value() as usize)
    };
    Some([fixed(2)?, fixed(3)?])
}
