//! Node names, FX kinds, targets, inputs and shapes equal torchvision's.

use featx::burn::prelude::*;
use featx::get_graph_node_names;
use featx::models::{AlexNetConfig, FeatureModel, ResNetConfig};
use serde_json::Value;

use crate::support::fixture;

fn reference(model: &str) -> Value {
    let path = fixture(&format!("torchvision_nodes_{model}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn check(model: &impl FeatureModel, name: &str, count: usize) {
    let reference = reference(name);
    let (train, eval) = get_graph_node_names(model);
    assert_eq!(eval.len(), count);
    assert_eq!(train, strings(&reference["train_nodes"]));
    assert_eq!(eval, strings(&reference["eval_nodes"]));

    let traced = model.trace();
    let shapes = traced.graph.infer_shapes(&[1, 3, 224, 224]).unwrap();
    let torch_nodes: Vec<&Value> = reference["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["op"] != "output")
        .collect();
    assert_eq!(torch_nodes.len(), traced.graph.nodes().len());
    for ((node, shape), torch) in traced.graph.nodes().iter().zip(&shapes).zip(torch_nodes) {
        assert_eq!(node.name, torch["name"].as_str().unwrap());
        assert_eq!(
            node.kind.as_str(),
            torch["op"].as_str().unwrap(),
            "{}",
            node.name
        );
        assert_eq!(
            node.target,
            torch["target"].as_str().unwrap(),
            "{}",
            node.name
        );
        if let Some(module_type) = torch["module_type"].as_str() {
            assert_eq!(
                node.module_type.as_deref(),
                Some(module_type),
                "{}",
                node.name
            );
        }
        let inputs: Vec<&str> = node
            .inputs
            .iter()
            .map(|i| traced.graph.nodes()[i.0].name.as_str())
            .collect();
        let torch_inputs: Vec<&str> = torch["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(inputs, torch_inputs, "inputs of {}", node.name);
        let torch_shape: Vec<usize> = torch["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(shape, &torch_shape, "shape of {}", node.name);
    }
}

#[test]
fn resnet18_nodes_equal_torchvision() {
    check(
        &ResNetConfig::resnet18(1000).init(&Device::flex()),
        "resnet18",
        70,
    );
}

#[test]
fn alexnet_nodes_equal_torchvision() {
    check(&AlexNetConfig::new().init(&Device::flex()), "alexnet", 22);
}

#[test]
fn parameter_keys_equal_torchvision_state_dict_keys() {
    let model = ResNetConfig::resnet18(1000).init(&Device::flex());
    let ours: Vec<(String, Vec<usize>)> = featx::weights::expected_keys(&model);
    let text = std::fs::read_to_string(fixture("resnet18_pattern.json")).unwrap();
    let torch: Value = serde_json::from_str(&text).unwrap();
    let mut theirs: Vec<(String, Vec<usize>)> = torch["state_dict"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            (k.clone(), shape)
        })
        .collect();
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    theirs.sort();
    assert_eq!(ours_sorted, theirs);
    assert!(
        ours.iter()
            .any(|(k, _)| k == "layer2.0.downsample.0.weight")
    );
}

#[test]
fn alexnet_parameter_keys_keep_sequential_gaps() {
    let model = AlexNetConfig::new().init(&Device::flex());
    let keys: Vec<String> = featx::weights::expected_keys(&model)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let expected = [
        "conv1.0.weight",
        "conv1.0.bias",
        "conv2.0.weight",
        "conv2.0.bias",
        "conv3.0.weight",
        "conv3.0.bias",
        "conv3.2.weight",
        "conv3.2.bias",
        "conv3.4.weight",
        "conv3.4.bias",
        "fc.0.weight",
        "fc.0.bias",
        "fc.3.weight",
        "fc.3.bias",
        "fc.6.weight",
        "fc.6.bias",
    ];
    let mut sorted = keys.clone();
    sorted.sort();
    let mut expected_sorted = expected.map(String::from).to_vec();
    expected_sorted.sort();
    assert_eq!(sorted, expected_sorted);
}
