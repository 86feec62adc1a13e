//! The model zoo against torchvision (`tests/fixtures/zoo`, made by
//! `scripts/make_zoo_fixtures.py`): for every architecture, the node lists, each node's FX op,
//! target, module type, inputs and shape, the state-dict keys and shapes, the published
//! weights and preprocessing; and every node's values on generated weights, at 224x224 for
//! one model per family and at 64x64 for the others.

use std::collections::BTreeMap;

use featx::burn::prelude::*;
use featx::graph::Value;
use featx::models::{Architecture, BuildArgs, MODELS, TracedModel};
use featx::{ExtractError, FeatureExtractor, Mode, ReturnNodes};
use serde_json::Value as Json;

use crate::support;
use crate::support::{NodeFixtures, NodeRecord, check_features, fill_samples, fixture};

/// Architectures checked elsewhere against their own reference files
/// (`tests/it/node_names.rs`, `tests/it/parity.rs`).
const CHECKED_ELSEWHERE: [&str; 2] = ["resnet18", "alexnet"];

fn arch(name: &str) -> &'static Architecture {
    featx::models::find(name).unwrap_or_else(|| panic!("{name} is in the registry"))
}

fn reference(name: &str) -> Json {
    let text = std::fs::read_to_string(fixture(&format!("zoo/{name}.json")))
        .unwrap_or_else(|e| panic!("zoo/{name}.json: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn dims(v: &Json) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

/// A node's value as the fixture script encodes Python values (`torch.Size` and tuples as
/// lists, a tensor inside a tuple as `{"tensor": shape}`).
fn python_value(value: &Value) -> Json {
    match value {
        Value::Tensor(shape) => serde_json::json!({ "tensor": shape }),
        Value::Size(shape) => serde_json::json!(shape),
        Value::Int(v) => serde_json::json!(v),
        Value::Bool(v) => serde_json::json!(v),
        Value::None => Json::Null,
        Value::Tuple(items) => Json::Array(items.iter().map(python_value).collect()),
    }
}

/// The node names anywhere in an FX argument (a string, or in a list or keyword map).
fn node_refs<'a>(v: &'a Json, out: &mut Vec<&'a str>) {
    match v {
        Json::String(name) => out.push(name),
        Json::Array(items) => items.iter().for_each(|i| node_refs(i, out)),
        Json::Object(map) if !map.contains_key("str") => {
            map.values().for_each(|i| node_refs(i, out))
        }
        _ => {}
    }
}

#[test]
fn every_architecture_has_a_torchvision_reference() {
    for arch in MODELS {
        if !CHECKED_ELSEWHERE.contains(&arch.name) {
            assert!(
                fixture(&format!("zoo/{}.json", arch.name)).is_file(),
                "no zoo fixture for {}",
                arch.name
            );
        }
    }
}

/// Node lists, FX ops, targets, module types, inputs and shapes at the model's nominal size
/// (1x3x224x224, Inception v3's 299x299), of each mode's graph where they differ.
fn check_nodes(name: &str) {
    let reference = reference(name);
    let traced = arch(name).random(&Device::flex());
    // Each mode's graph is traced on its own, as torchvision's are: they differ only where
    // `forward` reads `self.training` (GoogLeNet's and Inception v3's auxiliary heads).
    let (train, eval) = traced.node_names();
    assert_eq!(
        train,
        strings(&reference["train_nodes"]),
        "{name} train nodes"
    );
    assert_eq!(eval, strings(&reference["eval_nodes"]), "{name} eval nodes");
    check_graph(name, &traced, &reference["nodes"]);
    match reference.get("train_graph") {
        Some(train_graph) => {
            assert!(traced.train.is_some(), "{name} traces a train graph");
            check_graph(
                &format!("{name} (train)"),
                traced.in_mode(Mode::Train),
                train_graph,
            );
        }
        None => assert!(traced.train.is_none(), "{name} traces one graph"),
    }
}

/// `traced`'s graph against torchvision's FX nodes (`torch_nodes`), node by node.
fn check_graph(name: &str, traced: &TracedModel, torch_nodes: &Json) {
    let [h, w] = traced.input.nominal_size;
    let values = traced.graph.infer_values(&[1, 3, h, w]).unwrap();
    let torch_nodes = torch_nodes.as_array().unwrap();
    assert_eq!(torch_nodes.len(), traced.graph.nodes().len());
    for ((node, value), torch) in traced.graph.nodes().iter().zip(&values).zip(torch_nodes) {
        let at = format!("{name} node {}", node.name);
        assert_eq!(node.name, torch["name"].as_str().unwrap(), "{at}");
        assert_eq!(node.kind.as_str(), torch["op"].as_str().unwrap(), "{at}");
        assert_eq!(node.target, torch["target"].as_str().unwrap(), "{at}");
        if let Some(module_type) = torch["module_type"].as_str() {
            assert_eq!(node.module_type.as_deref(), Some(module_type), "{at}");
        }
        let inputs: Vec<&str> = node
            .inputs
            .iter()
            .map(|i| traced.graph.nodes()[i.0].name.as_str())
            .collect();
        // Nodes are strings, anywhere in the arguments (`torch.cat`'s list); constants are
        // numbers or objects (`{"str": ...}`). Keyword arguments' nodes (`weight=`, `bias=`)
        // come after the positional ones, in any order (JSON objects are read sorted).
        let mut torch_inputs = Vec::new();
        node_refs(&torch["args"], &mut torch_inputs);
        let positional = torch_inputs.len().min(inputs.len());
        assert_eq!(
            inputs[..positional],
            torch_inputs[..],
            "positional inputs of {at}"
        );
        let mut keyword = Vec::new();
        node_refs(&torch["kwargs"], &mut keyword);
        let mut ours = inputs[positional..].to_vec();
        ours.sort_unstable();
        keyword.sort_unstable();
        assert_eq!(ours, keyword, "keyword inputs of {at}");
        if torch["shape"].is_null() {
            // Not a tensor: a shape check's Python value, or a tuple.
            assert_eq!(value.type_name(), torch["type"], "type of {at}");
            assert_eq!(python_value(value), torch["value"], "value of {at}");
        } else {
            assert_eq!(
                value,
                &Value::Tensor(dims(&torch["shape"])),
                "shape of {at}"
            );
        }
    }
}

/// The expected parameter keys and shapes are torchvision's `state_dict` (less the buffers
/// loading ignores: BatchNorm's `num_batches_tracked` counters, attention's integer
/// `relative_position_index`), so a torchvision `.pth` loads as is; the parameter count
/// and the published weights and preprocessing are torchvision's DEFAULT weights'.
fn check_state_dict_and_weights(name: &str) {
    let reference = reference(name);
    let arch = arch(name);
    let mut ours = arch.expected_keys();
    ours.sort();
    let mut theirs: Vec<(String, Vec<usize>)> = reference["state_dict"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !featx::weights::is_ignored_key(k))
        .map(|(k, v)| (k.clone(), dims(&v["shape"])))
        .collect();
    theirs.sort();
    assert_eq!(ours, theirs, "{name} state dict");

    let torch = &reference["weights"];
    assert_eq!(
        arch.num_params() as u64,
        torch["num_params"].as_u64().unwrap(),
        "{name} parameters"
    );
    let published = arch.weights.expect("published weights");
    assert_eq!(published.name, torch["enum"].as_str().unwrap());
    assert_eq!(published.file_name, torch["file_name"].as_str().unwrap());
    let pre = arch.preprocess();
    assert_eq!([pre.resize], [torch["resize"][0].as_u64().unwrap() as u32]);
    assert_eq!([pre.crop], [torch["crop"][0].as_u64().unwrap() as u32]);
    assert_eq!(pre.interpolation.as_str(), torch["interpolation"]);
    for (ours, theirs) in [(pre.mean, &torch["mean"]), (pre.std, &torch["std"])] {
        for (a, b) in ours.iter().zip(theirs.as_array().unwrap()) {
            assert!((*a as f64 - b.as_f64().unwrap()).abs() < 1e-6, "{name}");
        }
    }
}

/// torchvision's values of `name`'s nodes on the generated weights (its fixture's `parity`).
fn value_fixtures(name: &str) -> NodeFixtures {
    let reference = reference(name);
    let parity = &reference["parity"];
    let mut nodes: BTreeMap<String, NodeRecord> =
        serde_json::from_value(parity["nodes"].clone()).unwrap();
    fill_samples(&mut nodes, &format!("zoo/{name}.safetensors"));
    NodeFixtures {
        input_shape: dims(&parity["input_shape"]),
        nodes,
    }
}

/// The registry's `name` with the generated weights, loaded from a `.safetensors` state dict.
fn generated_model(name: &str, device: &Device) -> TracedModel {
    let arch = arch(name);
    let dir = tempfile::tempdir().unwrap();
    let path = support::write_generated_state_dict(
        &arch.expected_keys(),
        dir.path(),
        safetensors::Dtype::F32,
    );
    arch.load(device, &path).unwrap()
}

/// Every node's values on the generated weights (loaded through the registry from a
/// `.safetensors` state dict) against torchvision's; returns the largest share of the
/// tolerance.
fn check_values(name: &str) -> f64 {
    check_values_through(name, None)
}

/// [`check_values`] for the tensor nodes up to and including the last one inside module
/// `through` (all of them for `None`): only that part of the graph runs.
fn check_values_through(name: &str, through: Option<&str>) -> f64 {
    let fx = value_fixtures(name);
    let device = Device::flex();
    let traced = generated_model(name, &device);
    // Every tensor node; the shape checks' values are compared by `check_nodes`.
    let values = traced.graph.infer_values(&fx.input_shape).unwrap();
    let eval_nodes: Vec<String> = traced
        .graph
        .names()
        .into_iter()
        .zip(&values)
        .filter(|(_, v)| v.shape().is_some())
        .map(|(name, _)| name)
        .collect();
    assert_eq!(eval_nodes.len(), fx.nodes.len());
    let eval_nodes = match through {
        None => eval_nodes,
        Some(module) => {
            let prefix = format!("{module}.");
            let last = eval_nodes
                .iter()
                .rposition(|n| n.starts_with(&prefix))
                .unwrap_or_else(|| panic!("no node inside {module}"));
            eval_nodes[..=last].to_vec()
        }
    };
    let extractor = FeatureExtractor::new(traced, &ReturnNodes::from(eval_nodes.clone())).unwrap();
    let label = format!("{name} at {:?}", fx.input_shape);
    check_features(&extractor, &eval_nodes, &fx, &label, &device)
}

/// Train-mode values of a model whose train graph differs (its fixture's `train_parity`:
/// every train-mode node a dropout mask does not reach, with BatchNorm's batch statistics)
/// through an extractor built in train mode; and the nodes both graphs have through an
/// eval-mode extractor switched to train mode, which swaps in the train graph. Returns the
/// largest share of the tolerance.
fn check_train_values(name: &str) -> f64 {
    let reference = reference(name);
    let parity = &reference["train_parity"];
    let mut nodes: BTreeMap<String, NodeRecord> =
        serde_json::from_value(parity["nodes"].clone()).unwrap();
    fill_samples(&mut nodes, &format!("zoo/{name}.train.safetensors"));
    let fx = NodeFixtures {
        input_shape: dims(&parity["input_shape"]),
        nodes,
    };
    let device = Device::flex();
    let traced = generated_model(name, &device);
    let in_train: Vec<String> = traced.in_mode(Mode::Train).graph.names();
    let requested: Vec<String> = in_train
        .into_iter()
        .filter(|n| fx.nodes.contains_key(n))
        .collect();
    assert_eq!(
        requested.len(),
        fx.nodes.len(),
        "{name} train nodes checked"
    );
    let request = ReturnNodes::from(requested.clone());
    let extractor = FeatureExtractor::new_in(traced.clone(), &request, Mode::Train).unwrap();
    let label = format!("{name} in train mode at {:?}", fx.input_shape);
    let share = check_features(&extractor, &requested, &fx, &label, &device);
    let eval_names = traced.graph.names();
    let common: Vec<String> = requested
        .into_iter()
        .filter(|n| eval_names.contains(n))
        .collect();
    let switched = FeatureExtractor::new(traced, &ReturnNodes::from(common.clone()))
        .unwrap()
        .with_mode(Mode::Train);
    let label = format!("{name} switched to train mode");
    share.max(check_features(&switched, &common, &fx, &label, &device))
}

/// The model `builder(weights=DEFAULT)` makes (the fixture's `published*`, with the generated
/// weights as the published file): node lists of both modes, the eval graph node by node, and
/// the values of the input transform, the stem and the logits.
fn check_published(name: &str) {
    let reference = reference(name);
    let arch = arch(name);
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = support::write_generated_state_dict(
        &arch.expected_keys(),
        dir.path(),
        safetensors::Dtype::F32,
    );
    let traced = arch
        .load_published(&device, &path, BuildArgs::default())
        .unwrap();
    let published = &reference["published"];
    let (train, eval) = traced.node_names();
    assert_eq!(train, strings(&published["train_nodes"]), "{name} train");
    assert_eq!(eval, strings(&published["eval_nodes"]), "{name} eval");
    check_graph(
        &format!("{name} (published)"),
        &traced,
        &reference["published_graph"],
    );
    let parity = &reference["published_parity"];
    let mut nodes: BTreeMap<String, NodeRecord> =
        serde_json::from_value(parity["nodes"].clone()).unwrap();
    fill_samples(&mut nodes, &format!("zoo/{name}.published.safetensors"));
    let fx = NodeFixtures {
        input_shape: dims(&parity["input_shape"]),
        nodes,
    };
    let requested: Vec<String> = eval
        .into_iter()
        .filter(|n| fx.nodes.contains_key(n))
        .collect();
    assert_eq!(
        requested.len(),
        fx.nodes.len(),
        "{name} published nodes checked"
    );
    let extractor = FeatureExtractor::new(traced, &ReturnNodes::from(requested.clone())).unwrap();
    let label = format!("{name} as published at {:?}", fx.input_shape);
    check_features(&extractor, &requested, &fx, &label, &device);
}

/// Models whose values are not checked (no `parity` in their fixture): node lists, shapes and
/// state-dict keys only.
macro_rules! zoo_without_values {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn nodes_equal_torchvision() {
                super::check_nodes(stringify!($name));
            }

            #[test]
            fn state_dict_and_published_weights_equal_torchvision() {
                super::check_state_dict_and_weights(stringify!($name));
            }
        }
    )*};
}

macro_rules! zoo {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn nodes_equal_torchvision() {
                super::check_nodes(stringify!($name));
            }

            #[test]
            fn state_dict_and_published_weights_equal_torchvision() {
                super::check_state_dict_and_weights(stringify!($name));
            }

            #[test]
            fn every_node_matches_torchvision_on_cpu() {
                super::check_values(stringify!($name));
            }
        }
    )*};
}

zoo!(
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext101_32x8d,
    resnext101_64x4d,
    wide_resnet50_2,
    wide_resnet101_2,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
    tv_alexnet,
    mobilenet_v2,
    mobilenet_v3_large,
    mobilenet_v3_small,
    efficientnet_b0,
    efficientnet_b1,
    efficientnet_b2,
    efficientnet_b3,
    efficientnet_b4,
    efficientnet_b5,
    efficientnet_b6,
    efficientnet_b7,
    efficientnet_v2_s,
    efficientnet_v2_m,
    efficientnet_v2_l,
    regnet_y_400mf,
    regnet_y_800mf,
    regnet_y_1_6gf,
    regnet_y_3_2gf,
    regnet_y_8gf,
    regnet_y_16gf,
    regnet_y_32gf,
    regnet_x_400mf,
    regnet_x_800mf,
    regnet_x_1_6gf,
    regnet_x_3_2gf,
    regnet_x_8gf,
    regnet_x_16gf,
    regnet_x_32gf,
    densenet121,
    densenet161,
    densenet169,
    densenet201,
    convnext_tiny,
    convnext_small,
    convnext_base,
    convnext_large,
    vit_b_16,
    vit_b_32,
    squeezenet1_0,
    squeezenet1_1,
    mnasnet0_5,
    mnasnet0_75,
    mnasnet1_0,
    mnasnet1_3,
    shufflenet_v2_x0_5,
    shufflenet_v2_x1_0,
    shufflenet_v2_x1_5,
    shufflenet_v2_x2_0,
    swin_t,
    swin_s,
    swin_b,
    swin_v2_t,
    swin_v2_s,
    swin_v2_b,
    maxvit_t,
);

// ViT-L/16: 304M parameters and 61 GFLOPs per image at its only size, 224x224; its blocks are
// ViT-B/16's, wider. Its values are checked through the second of its 24 encoder layers, the
// same code as the rest: only that part runs.
zoo_without_values!(vit_l_16, vit_l_32, vit_h_14, regnet_y_128gf);

// Their train graphs hold the auxiliary heads: values in train mode too, and the model their
// builder makes with published weights (`transform_input`; GoogLeNet drops its heads).
zoo!(googlenet, inception_v3);

mod families;
