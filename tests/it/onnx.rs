//! ONNX files as models: every node output of the fixture models (exported by torch's two
//! exporters or built with `onnx.helper`, made by `scripts/make_onnx_fixtures.py`) against
//! onnxruntime's, names and module paths as the files give them, and typed errors for bad
//! files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use featx::burn::prelude::*;
use featx::burn::tensor::TensorData;
use featx::onnx::{LoadOptions, OnnxError, load, load_with};
use featx::{FeatureExtractor, ReturnNodes};

use crate::support::{
    featx as run_featx, fixture, read_index, read_safetensors, stderr, write_image_folder,
};

/// Every fixture model: `tests/fixtures/onnx/<name>.onnx`.
const MODELS: &[&str] = &[
    "cnn_ts13",
    "cnn_dynamo18",
    "mobilenet_v3_small_ts17",
    "vit_tiny_ts17",
    "vit_tiny_dynamo18",
    "ops_upsample_ts16",
    "ops_upsample_dynamo18",
    "helper_function",
    "helper_reduce13",
    "helper_reduce18",
    "helper_resize",
    "helper_shape",
    "helper_gemm_einsum_split",
    "helper_external",
];

fn onnx_fixture(name: &str) -> PathBuf {
    fixture(&format!("onnx/{name}"))
}

/// A fixture's arrays by name: shape and values.
type Arrays = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// onnxruntime's values of a model: the input, and every float node output by value name.
fn reference(name: &str) -> (Vec<usize>, Vec<f32>, Arrays) {
    let mut values: Arrays = read_safetensors(&onnx_fixture(&format!("{name}.safetensors")))
        .into_iter()
        .map(|(k, s, v)| (k, (s, v)))
        .collect();
    let (shape, input) = values.remove("input").expect("the fixture's input");
    (shape, input, values)
}

/// Compares every node output featx computes with onnxruntime's; returns how many were
/// compared and the largest error relative to its tolerance.
fn check_model(name: &str, device: &Device) -> (usize, usize) {
    let path = onnx_fixture(&format!("{name}.onnx"));
    let (shape, input, expected) = reference(name);
    let options = LoadOptions {
        input_size: Some([shape[2], shape[3]]),
        batch: Some(shape[0]),
    };
    let model = load_with(&path, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
    let graph = &model.traced.graph;
    // The values featx has a node for: a value folded at load (shape arithmetic, a constant)
    // has none.
    let wanted: Vec<&String> = expected
        .keys()
        .filter(|k| graph.find(k).is_some())
        .collect();
    let request = ReturnNodes::aliased(wanted.iter().map(|k| (k.as_str(), k.as_str())));
    let mut extractor = FeatureExtractor::new(model.traced, &request).unwrap();
    if *device != Device::flex() {
        extractor = extractor.to_device(device).unwrap();
    }
    let dims: [usize; 4] = shape.clone().try_into().unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(input, dims), device);
    let features = extractor
        .forward(x)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for (key, feature) in features.iter() {
        let (shape, want) = &expected[key];
        let got = feature.to_vec_f32().unwrap();
        let numel: usize = shape.iter().product();
        assert_eq!(
            got.len(),
            numel.max(1),
            "{name}: {key}: {:?} vs {shape:?}",
            feature.dims()
        );
        let largest = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let tolerance = 1e-4f32.max(2e-5 * largest);
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= tolerance,
                "{name}: {key}[{i}]: featx {a}, onnxruntime {b} (tolerance {tolerance})"
            );
        }
    }
    (wanted.len(), expected.len())
}

#[test]
fn every_node_output_equals_onnxruntimes() {
    let mut report = Vec::new();
    for name in MODELS {
        let (compared, stored) = check_model(name, &Device::flex());
        report.push(format!("{name}: {compared}/{stored}"));
        // Only values computed at load (constants, shape arithmetic) may lack a node.
        assert!(
            compared * 10 >= stored * 7,
            "{name}: only {compared} of {stored} values have nodes"
        );
    }
    eprintln!("compared: {}", report.join(", "));
}

/// The same on wgpu (lavapipe on CI): featx's GPU convolution, and burn's ops for the rest.
#[cfg(feature = "wgpu")]
#[test]
fn onnx_models_match_onnxruntime_on_wgpu() {
    let Some(device) = crate::wgpu::gpu() else {
        return;
    };
    for name in ["cnn_ts13", "vit_tiny_dynamo18", "ops_upsample_ts16"] {
        check_model(name, &device);
    }
}

#[test]
fn nodes_answer_to_onnx_names_value_names_and_module_paths() {
    let model = load(&onnx_fixture("cnn_ts13.onnx")).unwrap();
    let graph = &model.traced.graph;
    let conv = graph
        .find("/layer1/layer1.0/conv1/Conv")
        .expect("the ONNX node name");
    assert_eq!(
        graph.find("/layer1/layer1.0/conv1/Conv_output_0"),
        Some(conv)
    );
    let node = &graph.nodes()[conv.0];
    assert_eq!(node.module_path.as_deref(), Some("layer1.0.conv1"));
    assert_eq!(node.target, "Conv");
    // A module path selects the last node inside the module, as in the zoo.
    let layer1 = graph.find_module("layer1").unwrap();
    assert_eq!(graph.nodes()[layer1.0].name, "/layer1/layer1.0/relu_1/Relu");

    // The dynamo exporter's scopes.
    let model = load(&onnx_fixture("cnn_dynamo18.onnx")).unwrap();
    let graph = &model.traced.graph;
    let last = graph.find_module("layer1").unwrap();
    assert_eq!(
        graph.nodes()[last.0].module_path.as_deref(),
        Some("layer1.0.relu")
    );
    assert!(graph.find("node_Conv_121").is_some());
}

#[test]
fn a_module_path_extracts_like_the_last_node_in_it() {
    let path = onnx_fixture("cnn_ts13.onnx");
    let (shape, input, expected) = reference("cnn_ts13");
    let model = load(&path).unwrap();
    let extractor = FeatureExtractor::new(model.traced, &ReturnNodes::from(["layer2"])).unwrap();
    let dims: [usize; 4] = shape.try_into().unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(input, dims), &Device::flex());
    let out = extractor.forward(x).unwrap();
    let got = out.get("layer2").unwrap().to_vec_f32().unwrap();
    let (_, want) = &expected["/layer2/layer2.0/relu_1/Relu_output_0"];
    let err = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-4, "{err}");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn bad_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(onnx_fixture("cnn_ts13.onnx")).unwrap();

    let not_onnx = write(dir.path(), "a.onnx", b"\x89PNG\r\n\x1a\n not a model");
    assert!(
        matches!(load(&not_onnx), Err(OnnxError::NotOnnx { .. })),
        "png"
    );
    let empty = write(dir.path(), "empty.onnx", b"");
    assert!(
        matches!(load(&empty), Err(OnnxError::NotOnnx { .. })),
        "empty"
    );
    for cut in [good.len() / 3, good.len() - 7] {
        let truncated = write(dir.path(), "cut.onnx", &good[..cut]);
        let err = load(&truncated).expect_err("a truncated file");
        assert!(
            matches!(
                err,
                OnnxError::NotOnnx { .. }
                    | OnnxError::TensorData { .. }
                    | OnnxError::Undefined { .. }
            ),
            "{err}"
        );
    }
    assert!(matches!(
        load(&dir.path().join("missing.onnx")),
        Err(OnnxError::Io { .. })
    ));
}

#[test]
fn external_data_loads_and_may_not_leave_the_folder() {
    assert!(load(&onnx_fixture("helper_external.onnx")).is_ok());
    // The same model in another folder without its data file.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("helper_external.onnx");
    std::fs::copy(onnx_fixture("helper_external.onnx"), &copy).unwrap();
    match load(&copy) {
        Err(OnnxError::TensorData { reason, .. }) => {
            assert!(reason.contains("external"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // A location that climbs out of the folder.
    let bytes = std::fs::read(&copy).unwrap();
    let escaped = replace_bytes(
        &bytes,
        b"helper_external.onnx.data",
        b"../../../../etc/passwd___",
    );
    let path = write(dir.path(), "escape.onnx", &escaped);
    assert!(matches!(load(&path), Err(OnnxError::ExternalPath { .. })));
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = haystack.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
    out
}

#[test]
fn the_cli_lists_extracts_and_explains_an_onnx_model() {
    let model = onnx_fixture("cnn_ts13.onnx");
    let model = model.to_str().unwrap();
    let out = run_featx(&["nodes", "--model", model, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let node = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "/layer1/layer1.0/conv1/Conv")
        .unwrap();
    assert_eq!(node["target"], "Conv");
    assert_eq!(node["module_path"], "layer1.0.conv1");
    let (_, _, expected) = reference("cnn_ts13");
    let shape = &expected["/layer1/layer1.0/conv1/Conv_output_0"].0;
    assert_eq!(node["shape"], serde_json::json!(shape));

    let dir = tempfile::tempdir().unwrap();
    let image = fixture("images/chelsea.jpg");
    let image = image.to_str().unwrap();
    let out_file = dir.path().join("f.safetensors");
    let out = run_featx(&[
        "extract",
        "--model",
        model,
        "--input",
        image,
        "--nodes",
        "layer2,fc",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let features = read_safetensors(&out_file);
    let fc = features.iter().find(|(k, _, _)| k == "fc").unwrap();
    assert_eq!(fc.1, [1, 10]);

    let cam = dir.path().join("cam.png");
    let out = run_featx(&[
        "cam",
        "--model",
        model,
        "--input",
        image,
        "--node",
        "layer2",
        "--method",
        "gradcam",
        "--out",
        cam.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let picture = image::open(&cam).unwrap();
    assert!(picture.width() >= 48);

    // Pictures of a module and of the classifier.
    let pic = dir.path().join("pic.png");
    let out = run_featx(&[
        "viz",
        "--model",
        model,
        "--image",
        image,
        "--node",
        "layer1,fc",
        "--out",
        pic.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        image::open(dir.path().join("pic_layer1.png"))
            .unwrap()
            .width()
            > 100
    );
    assert!(image::open(dir.path().join("pic_fc.png")).is_ok());

    // bench runs at the file's input size.
    let out = run_featx(&[
        "bench", "--model", model, "--nodes", "all", "--iters", "2", "--warmup", "0", "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["nodes"].as_u64().unwrap() > 40, "{report}");

    // A dataset run, one image per forward.
    let images = dir.path().join("images");
    write_image_folder(&images, 3);
    let run = dir.path().join("run");
    let out = run_featx(&[
        "extract",
        "--model",
        model,
        "--input",
        images.to_str().unwrap(),
        "--nodes",
        "fc",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    // The corrupt files among them are reported, as in any dataset run.
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let rows = read_index(&run.join("index.csv"));
    assert_eq!(rows.iter().filter(|r| r.status == "ok").count(), 3);

    // An ONNX file carries its weights.
    let out = run_featx(&[
        "extract",
        "--model",
        model,
        "--weights",
        "random",
        "--input",
        image,
        "--nodes",
        "fc",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// A fixture model, edited.
fn edited(name: &str, edit: impl FnOnce(&mut onnx_ir::ModelProto)) -> (tempfile::TempDir, PathBuf) {
    use onnx_ir::Message;
    let bytes = std::fs::read(onnx_fixture(&format!("{name}.onnx"))).unwrap();
    let mut model = onnx_ir::ModelProto::parse_from_bytes(&bytes).unwrap();
    edit(&mut model);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "edited.onnx", &model.write_to_bytes().unwrap());
    (dir, path)
}

#[test]
fn unsupported_ops_cycles_and_bad_weights_say_where() {
    // An op featx does not compute: the op, the node and the opset.
    let (_d, path) = edited("cnn_ts13", |m| {
        m.graph.mut_or_insert_default().node[2].op_type = "Celu".into()
    });
    match load(&path) {
        Err(OnnxError::UnsupportedOp {
            node, op, opset, ..
        }) => {
            assert_eq!(
                (node.as_str(), op.as_str(), opset),
                ("/relu/Relu", "Celu", 13)
            );
        }
        other => panic!("{other:?}"),
    }
    // A node reading a value produced only after it: a cycle.
    let (_d, path) = edited("cnn_ts13", |m| {
        let graph = m.graph.mut_or_insert_default();
        let later = graph.node[5].output[0].clone();
        graph.node[1].input[0] = later;
    });
    match load(&path) {
        Err(OnnxError::Undefined { node, .. }) => assert_eq!(node, "/bn1/BatchNormalization"),
        other => panic!("{other:?}"),
    }
    // A weight cut short.
    let (_d, path) = edited("cnn_ts13", |m| {
        let w = &mut m.graph.mut_or_insert_default().initializer[0];
        if w.raw_data.is_empty() {
            w.float_data.truncate(3);
        } else {
            w.raw_data = w.raw_data.slice(..12);
        }
    });
    match load(&path) {
        Err(OnnxError::TensorData { tensor, reason }) => {
            assert!(
                !tensor.is_empty() && reason.contains("expected"),
                "{tensor}: {reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A shape that does not fit: a convolution weight for other input channels.
    let (_d, path) = edited("cnn_ts13", |m| {
        let w = m
            .graph
            .mut_or_insert_default()
            .initializer
            .iter_mut()
            .find(|t| t.name == "conv1.weight")
            .unwrap();
        w.dims[1] = 1;
        let keep = w.raw_data.len() / 3;
        w.raw_data = w.raw_data.slice(..keep);
    });
    match load(&path) {
        Err(OnnxError::Shape { node, reason }) => {
            assert_eq!(node, "/conv1/Conv");
            assert!(reason.contains("channels"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn dynamic_input_sizes_come_from_the_caller() {
    let (_d, path) = edited("mobilenet_v3_small_ts17", |m| {
        let dims = &mut m.graph.mut_or_insert_default().input[0]
            .type_
            .mut_or_insert_default()
            .mut_tensor_type()
            .shape
            .mut_or_insert_default()
            .dim;
        dims[2].set_dim_param("height".into());
        dims[3].set_dim_param("width".into());
    });
    match load(&path) {
        Err(OnnxError::DynamicInput { dim, param, .. }) => {
            assert_eq!((dim, param.as_str()), ("height", "height"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(featx::onnx::input_size(&path).unwrap(), None);
    let options = LoadOptions {
        input_size: Some([96, 80]),
        batch: None,
    };
    let model = load_with(&path, &options).unwrap();
    let shapes = model.traced.graph.infer_shapes(&[1, 3, 96, 80]).unwrap();
    assert_eq!(shapes.last().unwrap(), &[1, 10]);
    // featx feeds images: a model with another input is a clear error.
    let (_d, path) = edited("cnn_ts13", |m| {
        let input = &mut m.graph.mut_or_insert_default().input[0];
        let dims = &mut input
            .type_
            .mut_or_insert_default()
            .mut_tensor_type()
            .shape
            .mut_or_insert_default()
            .dim;
        dims.truncate(2);
    });
    match load(&path) {
        Err(OnnxError::Input(reason)) => assert!(reason.contains("not an image batch"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A fixed size the caller contradicts.
    let options = LoadOptions {
        input_size: Some([96, 80]),
        batch: None,
    };
    assert!(matches!(
        load_with(&onnx_fixture("cnn_ts13.onnx"), &options),
        Err(OnnxError::Input(_))
    ));
}
