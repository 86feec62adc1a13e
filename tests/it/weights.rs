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
        WeightsError::UnknownLayout {
            path: p,
            found,
            expected,
        } => {
            assert_eq!(p, &path);
            assert!(
                found.contains("top-level entries bn1, conv1, fc"),
                "{found}"
            );
            assert!(found.contains("122 tensor(s)"), "{found}");
            assert!(expected.contains("conv1.0.weight"), "{expected}");
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
        Err(WeightsError::UnknownLayout { .. }) => {}
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

/// The fine-tuned `resnet18(num_classes=7)` fixtures: each layout checkpoints are saved in.
const FINE_TUNED: [&str; 4] = [
    "resnet18_c7.pth.gz",
    "resnet18_c7.safetensors.gz",
    "resnet18_c7_ddp.pth.gz",
    "resnet18_c7_compiled.pth.gz",
];

/// The 7 logits torch computed for the fine-tuned fixture on the pattern tests' input.
fn fine_tuned_logits() -> Vec<f64> {
    let text = std::fs::read_to_string(fixture("resnet18_c7.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn fine_tuned_checkpoints_load_with_their_head_in_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let resnet18 = featx::models::find("resnet18").unwrap();
    let fx = node_fixtures("resnet18_c7.json", "resnet18_c7_nodes.safetensors");
    let logits = fine_tuned_logits();
    assert_eq!(logits.len(), 7);
    for name in FINE_TUNED {
        let file = name.trim_end_matches(".gz");
        let path = gunzip(name, dir.path(), file);
        // `Architecture::load` reads the class count from the file: no flag, no config.
        let traced = resnet18.load(&device, &path).unwrap();
        let request = featx::ReturnNodes::from(["layer4", "fc"]);
        let extractor = featx::FeatureExtractor::new(traced, &request).unwrap();
        let out = extractor
            .forward(generated_input([1, 3, 64, 64], &device))
            .unwrap();
        let fc = out.get("fc").unwrap();
        assert_eq!(fc.dims(), [1, 7], "{name}");
        let values = fc.to_vec_f32().unwrap();
        let tol = support::tolerance(&fx.nodes["fc"]);
        for (k, (got, want)) in values.iter().zip(&logits).enumerate() {
            assert!(
                (f64::from(*got) - want).abs() <= tol,
                "{name}: logit {k}: featx {got}, torch {want} (tolerance {tol})"
            );
        }
        compare("fc", &fc.dims(), &values, &fx.nodes["fc"]);
        let top = (0..7).max_by(|&a, &b| values[a].total_cmp(&values[b]));
        assert_eq!(top, Some(1), "{name}: torch's top class");
        let layer4 = out.get("layer4").unwrap();
        compare(
            "layer4",
            &layer4.dims(),
            &layer4.to_vec_f32().unwrap(),
            &fx.nodes["layer4"],
        );
        // The file is read without a model as the same 7-class state dict.
        let tensors = featx::weights::inspect(&path).unwrap();
        let fc_weight = tensors.iter().find(|t| t.key == "fc.weight").unwrap();
        assert_eq!(fc_weight.shape, [7, 512], "{name}");
        let args = resnet18.build_args(&tensors, featx::models::BuildArgs::default());
        assert_eq!(args.num_classes, Some(7), "{name}");
    }
}

#[test]
fn a_class_count_given_against_the_file_is_a_mismatch_naming_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = gunzip("resnet18_c7.pth.gz", dir.path(), "c7.pth");
    let resnet18 = featx::models::find("resnet18").unwrap();
    let given = featx::models::BuildArgs::num_classes(10);
    let err = match resnet18.load_with(&Device::flex(), &path, given) {
        Err(err) => err,
        Ok(_) => panic!("loaded 7 classes as 10"),
    };
    // Every tensor that does not fit is listed with its shapes.
    assert!(
        err.to_string()
            .ends_with("also 'fc.bias': expected shape [10], found [7]"),
        "{err}"
    );
    match err {
        WeightsError::Mismatch { key, reason, .. } => {
            assert_eq!(key, "fc.weight");
            assert_eq!(reason, "expected shape [10, 512], found [7, 512]");
        }
        other => panic!("{other}"),
    }
    // The same count as the file's loads.
    let seven = featx::models::BuildArgs::num_classes(7);
    assert!(resnet18.load_with(&Device::flex(), &path, seven).is_ok());
    // Another architecture's file is still named as such, not taken for a head.
    let resnet34 = featx::models::find("resnet34").unwrap();
    match resnet34.load(&Device::flex(), &path) {
        Err(WeightsError::MissingKeys { keys, .. }) => {
            assert!(
                keys.contains(&"layer1.2.conv1.weight".to_string()),
                "{keys:?}"
            );
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a resnet18 file loaded into resnet34"),
    }
}

#[test]
fn a_checkpoint_without_model_weights_says_what_it_holds() {
    let path = fixture("bad_weights/optimizer_only.pth");
    let resnet18 = featx::models::find("resnet18").unwrap();
    let err = match resnet18.load(&Device::flex(), &path) {
        Err(err) => err,
        Ok(_) => panic!("an optimizer checkpoint loaded"),
    };
    let text = err.to_string();
    match err {
        WeightsError::UnknownLayout {
            found, expected, ..
        } => {
            // The file's own entries, tensors with their shapes.
            assert!(
                found.contains("top-level entries epoch, lr, optimizer"),
                "{found}"
            );
            assert!(
                found.contains("optimizer.state.0.momentum_buffer [2, 4]"),
                "{found}"
            );
            // What was looked for: the model's keys and the wrappers tried.
            assert!(expected.contains("conv1.weight, bn1.weight"), "{expected}");
            assert!(expected.contains("`state_dict` or `model`"), "{expected}");
            assert!(expected.contains("`module.`, `_orig_mod.`"), "{expected}");
        }
        other => panic!("{other}"),
    }
    assert!(text.contains("optimizer_only.pth"), "{text}");
}

#[test]
fn the_cli_reads_a_fine_tuned_head_and_takes_an_override() {
    let dir = tempfile::tempdir().unwrap();
    let weights = gunzip("resnet18_c7_ddp.pth.gz", dir.path(), "ddp.pth");
    let input = dir.path().join("x.npy");
    support::write_npy(
        &input,
        &[1, 3, 64, 64],
        &support::generated("input", &[1, 3, 64, 64]),
    );
    let out_path = dir.path().join("logits.safetensors");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "extract",
            "--model",
            "resnet18",
            "--weights",
            weights.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--nodes",
            "fc=logits",
            "--out",
            out_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        support::featx(&args)
    };
    let out = run(&[]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let tensors = support::read_safetensors(&out_path);
    let (_, shape, values) = &tensors[0];
    assert_eq!(shape, &[1, 7]);
    let fx = node_fixtures("resnet18_c7.json", "resnet18_c7_nodes.safetensors");
    let tol = support::tolerance(&fx.nodes["fc"]);
    for (got, want) in values.iter().zip(fine_tuned_logits()) {
        assert!((f64::from(*got) - want).abs() <= tol, "{got} vs {want}");
    }
    // `--num-classes` overrides the file: one that disagrees is an error naming both shapes.
    std::fs::remove_file(&out_path).unwrap();
    let out = run(&["--num-classes", "10"]);
    assert_eq!(out.status.code(), Some(2));
    let err = support::stderr(&out);
    assert!(
        err.contains("fc.weight") && err.contains("expected shape [10, 512], found [7, 512]"),
        "{err}"
    );
    assert!(!out_path.exists());
    assert!(run(&["--num-classes", "7"]).status.success());
    // It also sizes a random model.
    let out = support::featx(&[
        "extract",
        "--model",
        "resnet18",
        "--weights",
        "random",
        "--num-classes",
        "3",
        "--input",
        input.to_str().unwrap(),
        "--nodes",
        "fc",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert_eq!(support::read_safetensors(&out_path)[0].1, [1, 3]);
}

#[test]
fn the_weights_command_reports_the_layout_and_the_class_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = gunzip("resnet18_c7_compiled.pth.gz", dir.path(), "compiled.pth");
    let out = support::featx(&["weights", path.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["layout"],
        "a state dict with every key under `model._orig_mod.`"
    );
    let models = report["models"].as_array().unwrap();
    let fitting: Vec<&str> = models
        .iter()
        .filter(|m| m["fits"] == true)
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(fitting, ["resnet18"]);
    let resnet18 = models.iter().find(|m| m["model"] == "resnet18").unwrap();
    assert_eq!(resnet18["num_classes"], 7);
    let text = support::featx(&["weights", path.to_str().unwrap()]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("fits resnet18 (7 classes)"), "{text}");
}
