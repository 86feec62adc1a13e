//! Resolving `return_nodes`: torchvision's behaviour where it is right, SPEC section 2 where
//! featx does better. Cases come from torchvision's recorded outcomes.

use featx::burn::prelude::*;
use featx::models::{AlexNetConfig, ResNet, ResNetConfig};
use featx::{ExtractError, ReturnNodes, create_feature_extractor};
use serde_json::Value;

use crate::support;
use crate::support::{fixture, generated_input};

fn resnet() -> ResNet {
    ResNetConfig::resnet18(1000).init(&Device::flex())
}

/// `(key, node)` pairs featx resolves `request` to, in output order.
fn resolved(request: ReturnNodes) -> Result<Vec<(String, String)>, ExtractError> {
    let extractor = create_feature_extractor(&resnet(), request)?;
    Ok(extractor
        .outputs()
        .iter()
        .map(|r| (r.key.clone(), r.node_name.clone()))
        .collect())
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect()
}

/// Parses the Python literal of a `return_nodes` argument when it is a list or dict of str.
fn python_request(literal: &str) -> Option<ReturnNodes> {
    let value: Value = serde_json::from_str(&literal.replace('\'', "\"")).ok()?;
    match value {
        Value::Array(items) => Some(ReturnNodes::from(
            items
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()?,
        )),
        Value::Object(map) => Some(ReturnNodes::aliased(
            map.iter()
                .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect::<Option<Vec<_>>>()?,
        )),
        _ => None,
    }
}

#[test]
fn torchvision_cases_resolve_as_torchvision_or_better() {
    let text = std::fs::read_to_string(fixture("torchvision_return_nodes_cases.json")).unwrap();
    let cases: Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for case in cases["cases"].as_array().unwrap() {
        let name = case["case"].as_str().unwrap();
        let kwargs = &case["kwargs"];
        let python_only = kwargs.get("train_return_nodes").is_some();
        let request = kwargs["return_nodes"].as_str().and_then(python_request);
        let (false, Some(request)) = (python_only, request) else {
            continue; // Python-only argument forms (tuple, str, None, train/eval split).
        };
        let ours = resolved(request.clone());
        checked += 1;
        // Where torchvision is wrong or silent (SPEC section 2), featx's own expectation.
        if name.starts_with("overlapping") {
            let ours = ours.unwrap();
            assert_eq!(ours.len(), 2, "{name}: both keys come back");
            assert!(
                ours.iter().all(|(_, n)| n == "layer3.1.relu_1"),
                "{name}: {ours:?}"
            );
            continue;
        }
        if name.starts_with("duplicate aliases") {
            let err = ours.unwrap_err();
            assert!(
                matches!(&err, ExtractError::DuplicateKey { key, .. } if key == "feat"),
                "{name}: {err}"
            );
            continue;
        }
        if name.starts_with("regex") {
            assert!(
                matches!(ours, Err(ExtractError::UnknownNode { .. })),
                "{name}: queries are literal, so this names no node"
            );
            continue;
        }
        match case["outcome"].as_str().unwrap() {
            "ok" => {
                let mut ours = ours.unwrap_or_else(|e| panic!("{name}: {e}"));
                let mut theirs: Vec<(String, String)> = case["resolved_nodes"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                ours.sort();
                theirs.sort();
                assert_eq!(ours, theirs, "{name}");
            }
            _ => assert!(
                matches!(ours, Err(ExtractError::UnknownNode { .. })),
                "{name}: expected an unknown-node error, got {ours:?}"
            ),
        }
    }
    assert!(checked >= 25, "only {checked} cases checked");
}

#[test]
fn alexnet_module_prefixes_resolve_to_last_node() {
    let model = AlexNetConfig::new().init(&Device::flex());
    let extractor =
        create_feature_extractor(&model, ["conv1", "conv2", "conv3", "fc", "view"]).unwrap();
    let nodes: Vec<&str> = extractor
        .outputs()
        .iter()
        .map(|r| r.node_name.as_str())
        .collect();
    assert_eq!(nodes, ["conv1.2", "conv2.2", "conv3.6", "fc.6", "view"]);
    let err = create_feature_extractor(&model, ["conv4"]).unwrap_err();
    assert!(matches!(err, ExtractError::UnknownNode { .. }));
}

#[test]
fn unknown_name_error_names_the_query_and_closest_names() {
    let err = resolved(ReturnNodes::from(["conv1", "layer9", "fc"])).unwrap_err();
    let ExtractError::UnknownNode {
        query, suggestions, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(query, "layer9");
    assert_eq!(suggestions, &["layer1", "layer2", "layer3"]);
    let message = err.to_string();
    assert!(
        message.contains("'layer9'") && message.contains("did you mean layer1"),
        "{message}"
    );
}

#[test]
fn near_misses_are_unknown_with_useful_suggestions() {
    for (query, suggestion) in [
        ("layer", "layer1"),
        ("layer1.", "layer1"),
        ("layer1.0.con", "layer1.0.conv1"),
        ("layer.", "layer1"),
        ("layer1(", "layer1"),
        ("layer1.0.conv1.weight", "layer1.0.conv1"),
    ] {
        match resolved(ReturnNodes::from([query])) {
            Err(ExtractError::UnknownNode {
                query: q,
                suggestions,
                ..
            }) => {
                assert_eq!(q, query);
                assert_eq!(suggestions[0], suggestion, "suggestions for {query}");
            }
            other => panic!("{query}: {other:?}"),
        }
    }
}

#[test]
fn same_node_under_two_keys_returns_both_with_equal_values() {
    let model = resnet();
    let extractor = create_feature_extractor(&model, ["layer3", "layer3.1.relu_1"]).unwrap();
    let x = generated_input([1, 3, 64, 64], &Device::flex());
    let out = extractor.forward(x).unwrap();
    assert_eq!(
        out.keys().collect::<Vec<_>>(),
        ["layer3", "layer3.1.relu_1"]
    );
    let a = out.get("layer3").unwrap().to_vec_f32().unwrap();
    let b = out.get("layer3.1.relu_1").unwrap().to_vec_f32().unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|&v| v > 0.0));
}

#[test]
fn one_key_for_two_nodes_is_an_error_naming_the_key() {
    let err = resolved(ReturnNodes::aliased([
        ("layer1", "feat"),
        ("layer2", "feat"),
    ]))
    .unwrap_err();
    match &err {
        ExtractError::DuplicateKey { key, first, second } => {
            assert_eq!(key, "feat");
            assert_eq!(first, "layer1.1.relu_1");
            assert_eq!(second, "layer2.1.relu_1");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("'feat'"));
}

#[test]
fn empty_request_returns_nothing_and_computes_nothing() {
    let extractor = create_feature_extractor(&resnet(), ReturnNodes::default()).unwrap();
    assert_eq!(extractor.plan_report().planned_nodes, 0);
    // Not even the input is looked at: a wrong shape is no error when nothing is asked.
    let x = Tensor::<4>::zeros([1, 1, 1, 1], &Device::flex());
    assert!(extractor.forward(x).unwrap().is_empty());
}

#[test]
fn outputs_come_back_in_request_order() {
    let ours = resolved(ReturnNodes::from(["fc", "conv1", "layer2"])).unwrap();
    assert_eq!(
        ours,
        pairs(&[
            ("fc", "fc"),
            ("conv1", "conv1"),
            ("layer2", "layer2.1.relu_1")
        ])
    );
    let x = generated_input([1, 3, 32, 32], &Device::flex());
    let extractor = create_feature_extractor(&resnet(), ["fc", "conv1", "layer2"]).unwrap();
    let out = extractor.forward(x).unwrap();
    assert_eq!(out.keys().collect::<Vec<_>>(), ["fc", "conv1", "layer2"]);
    assert_eq!(out.get("fc").unwrap().dims(), [1, 1000]);
}

#[test]
fn in_place_relu_does_not_change_earlier_nodes() {
    let model = support::with_generated_weights(resnet());
    let extractor =
        create_feature_extractor(&model, ["bn1", "relu", "layer1.0.add", "layer1.0.relu_1"])
            .unwrap();
    let out = extractor
        .forward(generated_input([1, 3, 64, 64], &Device::flex()))
        .unwrap();
    let bn1 = out.get("bn1").unwrap().to_vec_f32().unwrap();
    let relu = out.get("relu").unwrap().to_vec_f32().unwrap();
    assert!(
        bn1.iter().any(|&v| v < 0.0),
        "bn1 keeps its negative values"
    );
    assert!(bn1.iter().zip(&relu).all(|(b, r)| *r == b.max(0.0)));
    let add = out.get("layer1.0.add").unwrap().to_vec_f32().unwrap();
    assert!(
        add.iter().any(|&v| v < 0.0),
        "add is returned before the ReLU that follows it"
    );
}

#[test]
fn only_the_needed_prefix_of_the_graph_runs() {
    let model = resnet();
    let planned = |q: &[&str]| {
        create_feature_extractor(&model, q)
            .unwrap()
            .plan_report()
            .planned_nodes
    };
    assert_eq!(planned(&["x"]), 1);
    assert_eq!(planned(&["conv1"]), 2);
    // layer1.0.relu needs x, conv1, bn1, relu, maxpool, conv1, bn1, relu of the block.
    assert_eq!(planned(&["layer1.0.relu"]), 8);
    assert_eq!(planned(&["layer3"]), 51);
    assert_eq!(planned(&["fc"]), 70);
    // A downsample branch does not need the main branch of its block.
    assert_eq!(
        planned(&["layer2.0.downsample.0"]),
        planned(&["layer1"]) + 1
    );
}
