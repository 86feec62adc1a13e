//! Loading torchvision state dicts written by torch itself, and the errors for bad files.

use std::io::Read;
use std::path::{Path, PathBuf};

use featx::burn::prelude::*;
use featx::create_feature_extractor;
use featx::models::{AlexNetConfig, ResNetConfig};
use featx::weights::{WeightsError, load_state_dict};

use crate::support;
use crate::support::{compare, fixture, generated_input, node_fixtures};

/// Un-gzips a fixture into `dir` under `name`.
fn gunzip(fixture_name: &str, dir: &Path, name: &str) -> PathBuf {
    let file = std::fs::File::open(fixture(fixture_name)).unwrap();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn check_pattern_model(path: &Path) {
    let device = Device::flex();
    let model = load_state_dict(ResNetConfig::resnet18(1000).init(&device), path).unwrap();
    let fx = node_fixtures(
        "resnet18_pattern.json",
        "resnet18_pattern_nodes.safetensors",
    );
    // Every parameter holds torch's value, in torchvision's layout.
    let params = support::torch_layout_params(&model);
    assert_eq!(params.len(), 102);
    for (key, shape, values) in params {
        let expected = pattern(&key, &shape);
        let worst = values
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-6, "{key}: differs from the file by {worst}");
    }
    // And the model computes what torch computed with it.
    // The convolutions are requested too, so nothing is folded: this test is about the file.
    let extractor = create_feature_extractor(
        &model,
        [
            "layer1",
            "conv1",
            "layer1.0.conv1",
            "layer1.0.conv2",
            "layer1.1.conv1",
            "layer1.1.conv2",
        ],
    )
    .unwrap();
    let out = extractor
        .forward(generated_input([1, 3, 64, 64], &device))
        .unwrap();
    let layer1 = out.get("layer1").unwrap();
    compare(
        "layer1",
        &layer1.dims(),
        &layer1.to_vec_f32().unwrap(),
        &fx.nodes["layer1"],
    );
}

/// The patterned values `scripts/make_fixtures.py` wrote for `key`.
fn pattern(key: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    (0..n)
        .map(|i| {
            let step = ((i % 7) as f32 - 3.0) / 3.0;
            if key.ends_with("running_var") {
                1.0 + 0.3 * step
            } else if key.ends_with("weight") && shape.len() == 1 {
                1.0 + 0.2 * step
            } else if shape.len() == 1 {
                0.05 * step
            } else {
                step * (3.0 / (n / shape[0]) as f64).sqrt() as f32
            }
        })
        .collect()
}

#[test]
fn torch_saved_pth_loads_and_matches_torch_outputs() {
    let dir = tempfile::tempdir().unwrap();
    check_pattern_model(&gunzip(
        "resnet18_pattern.pth.gz",
        dir.path(),
        "resnet18.pth",
    ));
}

#[test]
fn torch_saved_safetensors_loads_and_matches_torch_outputs() {
    let dir = tempfile::tempdir().unwrap();
    check_pattern_model(&gunzip(
        "resnet18_pattern.safetensors.gz",
        dir.path(),
        "resnet18.safetensors",
    ));
}

#[test]
fn another_models_file_is_not_a_state_dict_for_this_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = gunzip("resnet18_pattern.pth.gz", dir.path(), "resnet18.pth");
    let err = load_state_dict(AlexNetConfig::new().init(&Device::flex()), &path).unwrap_err();
    match &err {
        WeightsError::NotAStateDict { path: p, reason } => {
            assert_eq!(p, &path);
            assert!(
                reason.contains("none of the model's 16 parameters"),
                "{reason}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("resnet18.pth"));
}

#[test]
fn missing_parameters_are_listed_by_torchvision_key() {
    let dir = tempfile::tempdir().unwrap();
    let full = ResNetConfig::resnet18(1000).init(&Device::flex());
    // A file written for a model without layer4.1 lacks that block's 10 parameters.
    let small = ResNetConfig::new([2, 2, 2, 1]).init(&Device::flex());
    let path = support::write_generated_weights(&small, dir.path());
    match load_state_dict(full, &path).unwrap_err() {
        WeightsError::MissingKeys { keys, .. } => {
            assert_eq!(keys.len(), 10, "{keys:?}");
            assert!(
                keys.contains(&"layer4.1.bn2.weight".to_string()),
                "{keys:?}"
            );
            assert!(
                keys.contains(&"layer4.1.conv1.weight".to_string()),
                "{keys:?}"
            );
        }
        other => panic!("{other}"),
    }
}

#[test]
fn shape_mismatch_names_the_key_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = gunzip(
        "resnet18_pattern.safetensors.gz",
        dir.path(),
        "r.safetensors",
    );
    let err = load_state_dict(ResNetConfig::resnet18(10).init(&Device::flex()), &path).unwrap_err();
    match &err {
        WeightsError::Mismatch { key, reason, .. } => {
            assert!(key.starts_with("fc."), "{key}");
            assert!(reason.contains("10") && reason.contains("1000"), "{reason}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn extra_tensors_are_unexpected_keys_but_batch_counters_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let model = ResNetConfig::resnet18(1000).init(&Device::flex());
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = featx::weights::expected_keys(&model)
        .into_iter()
        .map(|(k, s)| {
            let bytes = support::generated(&k, &s)
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (k, s, bytes)
        })
        .collect();
    tensors.push((
        "bn1.num_batches_tracked".into(),
        vec![],
        0f32.to_le_bytes().to_vec(),
    ));
    tensors.push((
        "head.weight".into(),
        vec![2],
        [0f32; 2].iter().flat_map(|v| v.to_le_bytes()).collect(),
    ));
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(k, s, b)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let path = dir.path().join("extra.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    match load_state_dict(model, &path).unwrap_err() {
        WeightsError::UnexpectedKeys { keys, .. } => assert_eq!(keys, ["head.weight"]),
        other => panic!("{other}"),
    }
}

#[test]
fn truncated_empty_and_foreign_files_are_corrupt_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let full = gunzip("resnet18_pattern.pth.gz", dir.path(), "full.pth");
    let bytes = std::fs::read(&full).unwrap();
    let cases = [
        ("truncated.pth", bytes[..bytes.len() / 2].to_vec()),
        ("empty.pth", Vec::new()),
        ("text.pth", b"not a checkpoint".to_vec()),
        ("empty.safetensors", Vec::new()),
        ("garbage.safetensors", vec![0xff; 64]),
    ];
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let model = ResNetConfig::resnet18(1000).init(&Device::flex());
        match load_state_dict(model, &path) {
            Err(WeightsError::Corrupt { path: p, .. }) => assert_eq!(p, path),
            Err(other) => panic!("{name}: {other}"),
            Ok(_) => panic!("{name}: loaded"),
        }
    }
}

#[test]
fn directories_missing_files_and_unknown_formats_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = || ResNetConfig::resnet18(1000).init(&Device::flex());
    let sub = dir.path().join("weights.pth");
    std::fs::create_dir(&sub).unwrap();
    assert!(matches!(
        load_state_dict(model(), &sub),
        Err(WeightsError::Io { .. })
    ));
    let missing = dir.path().join("missing.pth");
    assert!(matches!(
        load_state_dict(model(), &missing),
        Err(WeightsError::Io { .. })
    ));
    let onnx = dir.path().join("model.onnx");
    std::fs::write(&onnx, b"x").unwrap();
    assert!(matches!(
        load_state_dict(model(), &onnx),
        Err(WeightsError::UnsupportedFormat { .. })
    ));
}

#[test]
fn legacy_and_nested_checkpoints_load() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["legacy", "nested", "model_key"] {
        let path = gunzip(
            &format!("resnet18_pattern_{name}.pth.gz"),
            dir.path(),
            &format!("{name}.pth"),
        );
        check_pattern_model(&path);
    }
}

#[test]
fn float64_weights_are_converted() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let model = ResNetConfig::resnet18(1000).init(&device);
    let path = support::write_generated_weights_as(&model, dir.path(), safetensors::Dtype::F64);
    let loaded = load_state_dict(model, &path).unwrap();
    let params = support::torch_layout_params(&loaded);
    let (key, shape, values) = &params[0];
    assert_eq!(values, &support::generated(key, shape));
}

#[test]
fn integer_tensors_and_non_dicts_are_rejected_by_name() {
    let model = || ResNetConfig::resnet18(1000).init(&Device::flex());
    let bad = |name: &str| fixture(&format!("bad_weights/{name}"));
    match load_state_dict(model(), &bad("int_bn.pth")).unwrap_err() {
        WeightsError::Mismatch { key, reason, .. } => {
            assert!(key.starts_with("layer4.1.bn2."), "{key}");
            assert!(
                reason.contains("floating-point") && reason.contains("I32"),
                "{reason}"
            );
        }
        other => panic!("{other}"),
    }
    for name in ["list.pth", "tensor.pth"] {
        match load_state_dict(model(), &bad(name)) {
            Err(WeightsError::NotAStateDict { path, .. }) => assert_eq!(path, bad(name)),
            other => panic!("{name}: {other:?}"),
        }
    }
    // A real state dict of another model entirely.
    match load_state_dict(
        AlexNetConfig::new().init(&Device::flex()),
        &bad("double_bn.pth"),
    ) {
        Err(WeightsError::NotAStateDict { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn inspect_lists_keys_shapes_and_dtypes_without_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = gunzip("resnet18_pattern_nested.pth.gz", dir.path(), "nested.pth");
    let tensors = featx::weights::inspect(&path).unwrap();
    assert_eq!(tensors.len(), 122);
    let fc = tensors.iter().find(|t| t.key == "fc.weight").unwrap();
    assert_eq!(fc.shape, [1000, 512]);
    assert_eq!(fc.dtype, featx::burn::tensor::DType::F32);
}
