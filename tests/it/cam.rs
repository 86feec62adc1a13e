//! Class activation maps equal pytorch-grad-cam's (`tests/fixtures/cam/cam_resnet18.*`, made
//! by `scripts/make_cam_fixtures.py` with the `grad-cam` package): every method, each image's
//! top class and a fixed class, one layer and two, through the library and the command line.
//! The picture equals the package's `show_cam_on_image`.

use std::collections::BTreeMap;

use featx::burn::prelude::*;
use featx::burn::tensor::TensorData;
use featx::cam::{Activations, Cam, CamError, CamOutput, METHODS, Target, find};
use featx::models::{FeatureModel, ResNetConfig};
use serde::Deserialize;
use serde_json::Value;

use crate::support::*;

#[derive(Debug, Deserialize)]
struct CamCase {
    method: String,
    layers: Vec<String>,
    target: Value,
    shape: Vec<usize>,
    stride: usize,
    sum: f64,
    #[serde(skip)]
    samples: Vec<f32>,
}

#[derive(Debug, Deserialize)]
struct CamFixture {
    input_key: String,
    input_shape: Vec<usize>,
    top: Vec<usize>,
    cams: BTreeMap<String, CamCase>,
}

fn load() -> CamFixture {
    load_named("cam_resnet18")
}

fn load_named(name: &str) -> CamFixture {
    let text = std::fs::read_to_string(fixture(&format!("cam/{name}.json"))).expect("fixture");
    let mut fx: CamFixture = serde_json::from_str(&text).expect("fixture parses");
    let bytes = std::fs::read(fixture(&format!("cam/{name}.safetensors"))).expect("samples");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("samples parse");
    for (key, case) in fx.cams.iter_mut() {
        case.samples = st
            .tensor(key)
            .expect("samples per case")
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
    }
    fx
}

fn target(case: &CamCase) -> Target {
    match &case.target {
        Value::String(s) if s == "top" => Target::Top,
        v => Target::Class(v.as_u64().expect("a class") as usize),
    }
}

fn input(fx: &CamFixture, device: &Device) -> Tensor<4> {
    let shape: [usize; 4] = fx.input_shape.clone().try_into().unwrap();
    Tensor::from_data(
        TensorData::new(generated(&fx.input_key, &shape), shape),
        device,
    )
}

/// Mean and largest difference between `values` and the case's samples; the mean must stay
/// within 1e-3, as pytorch-grad-cam's own float32 results would.
fn check(key: &str, case: &CamCase, shape: &[usize], values: &[f32]) -> (f64, f64) {
    assert_eq!(shape, case.shape.as_slice(), "{key}: shape");
    let diffs: Vec<f64> = case
        .samples
        .iter()
        .enumerate()
        .map(|(k, &e)| (f64::from(values[k * case.stride]) - f64::from(e)).abs())
        .collect();
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let max = diffs.iter().copied().fold(0.0, f64::max);
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    eprintln!("{key}: mean difference {mean:.2e}, largest {max:.2e}");
    assert!(
        mean < 1e-3,
        "{key}: mean difference {mean} to pytorch-grad-cam"
    );
    assert!(
        (sum - case.sum).abs() / values.len() as f64 <= 1e-3,
        "{key}: mean value {} vs pytorch-grad-cam's {}",
        sum / values.len() as f64,
        case.sum / values.len() as f64
    );
    (mean, max)
}

fn resnet18(device: &Device) -> featx::models::TracedModel {
    with_generated_weights(ResNetConfig::resnet18(1000).init(device)).trace()
}

#[test]
fn every_method_matches_pytorch_grad_cam() {
    let fx = load();
    let device = Device::flex();
    let x = input(&fx, &device);
    // One run of the model (with a backward pass) per layer set and target serves every
    // method of that group.
    let mut groups: BTreeMap<(Vec<String>, String), Vec<&str>> = BTreeMap::new();
    for (key, case) in &fx.cams {
        groups
            .entry((case.layers.clone(), case.target.to_string()))
            .or_default()
            .push(key);
    }
    let mut checked = 0;
    for ((layers, _), keys) in groups {
        let layers: Vec<&str> = layers.iter().map(String::as_str).collect();
        let cam = Cam::new(resnet18(&device), &layers).unwrap();
        let target = target(&fx.cams[keys[0]]);
        let activations: Activations = cam.activations(x.clone(), target, true).unwrap();
        if target == Target::Top {
            assert_eq!(activations.targets, fx.top, "top classes");
        }
        for key in keys {
            let case = &fx.cams[key];
            let out: CamOutput = cam
                .render(find(&case.method).unwrap(), &activations)
                .unwrap();
            check(key, case, &out.maps.shape, &out.maps.values);
            checked += 1;
        }
    }
    // Every method, with both target modes at layer4.
    for method in METHODS {
        for t in ["top", "7"] {
            assert!(fx.cams.contains_key(&format!("{}/layer4/{t}", method.name)));
        }
    }
    assert_eq!(checked, fx.cams.len());
}

/// A vision transformer's tokens `[N, 1 + 4*4, 16]` at the last block's `ln_1`: every method
/// equals pytorch-grad-cam with its ViT `reshape_transform` (class token dropped, patches as a
/// 4x4 map), for the top class and class 3.
#[test]
fn vit_tokens_match_pytorch_grad_cam_with_its_reshape_transform() {
    let fx = load_named("cam_vit_tiny");
    let device = Device::flex();
    let x = input(&fx, &device);
    let config = featx::models::VitConfig {
        name: "vit_tiny".into(),
        image_size: 32,
        patch_size: 8,
        num_layers: 2,
        num_heads: 2,
        hidden_dim: 16,
        mlp_dim: 32,
        num_classes: 10,
    };
    let model = with_generated_weights(config.init(&device)).trace();
    // The block's first LayerNorm is module `ln_1`, which FX names `ln` (and `ln_2` `ln_1`);
    // the fixture keys by the module, as pytorch-grad-cam's `target_layers` name it. After
    // the last block's attention only the class token reaches the head, so later layers have
    // no gradient on the patches (pytorch-grad-cam's ViT tutorial uses this layer too).
    let node = "encoder.layers.encoder_layer_1.ln";
    let key = "encoder.layers.encoder_layer_1.ln_1";
    check_transformer_cams(
        &fx,
        model,
        x,
        &[
            (node, key, Target::Top, [2, 16, 4, 4]),
            (node, key, Target::Class(3), [2, 16, 4, 4]),
        ],
    );
}

/// Every method at each `(node, fixture layer name, target, map shape)` of `cases` on
/// `model` equals the fixture's pytorch-grad-cam maps, and every fixture case is checked.
fn check_transformer_cams(
    fx: &CamFixture,
    model: featx::models::TracedModel,
    x: Tensor<4>,
    cases: &[(&str, &str, Target, [usize; 4])],
) {
    let mut checked = 0;
    for &(node, layer, target, map) in cases {
        let cam = Cam::new(model.clone(), &[node]).unwrap();
        let activations = cam.activations(x.clone(), target, true).unwrap();
        if target == Target::Top {
            assert_eq!(activations.targets, fx.top, "top classes");
        }
        assert_eq!(activations.layers[0].activations.dims(), map, "{layer}");
        let label = match target {
            Target::Top => "top".to_string(),
            Target::Class(class) => class.to_string(),
        };
        for method in METHODS {
            let key = format!("{}/{layer}/{label}", method.name);
            let case = &fx.cams[&key];
            let out = cam.render(method, &activations).unwrap();
            check(&key, case, &out.maps.shape, &out.maps.values);
            checked += 1;
        }
    }
    assert_eq!(checked, fx.cams.len());
}

/// A Swin Transformer's channels-last maps `[N, H, W, C]`: every method equals
/// pytorch-grad-cam with its `reshape_transform` for torchvision's Swin
/// (`tensor.permute(0, 3, 1, 2)`), at the last `norm` (4x4, the top class and class 3) and
/// at the first stage (8x8 tokens in shifted, masked windows, the top class). The graph, not
/// the shape, says the channels are last.
#[test]
fn swin_channels_last_maps_match_pytorch_grad_cam_with_its_reshape_transform() {
    let fx = load_named("cam_swin_tiny");
    let device = Device::flex();
    let x = input(&fx, &device);
    let config = featx::models::SwinConfig {
        name: "swin_tiny".into(),
        patch_size: 4,
        embed_dim: 16,
        depths: vec![2, 2],
        num_heads: vec![2, 2],
        window: 4,
        stochastic_depth_prob: 0.1,
        v2: false,
        num_classes: 10,
    };
    let model = with_generated_weights(config.init(&device)).trace();
    check_transformer_cams(
        &fx,
        model,
        x,
        &[
            ("norm", "norm", Target::Top, [2, 32, 4, 4]),
            ("norm", "norm", Target::Class(3), [2, 32, 4, 4]),
            ("features.1", "features.1", Target::Top, [2, 16, 8, 8]),
        ],
    );
}

#[test]
fn gradient_free_methods_run_without_a_backward_pass() {
    let fx = load();
    let device = Device::flex();
    let cam = Cam::new(resnet18(&device), &["layer4"]).unwrap();
    let key = "eigencam/layer4/top";
    let out = cam
        .run(find("eigencam").unwrap(), input(&fx, &device), Target::Top)
        .unwrap();
    check(key, &fx.cams[key], &out.maps.shape, &out.maps.values);
    assert_eq!(out.targets, fx.top);
}

#[test]
fn bad_requests_are_typed_errors() {
    let device = Device::flex();
    let traced = resnet18(&device);
    // A vector, not a feature map.
    let err = Cam::new(traced.clone(), &["flatten"]).unwrap_err();
    assert!(
        matches!(&err, CamError::NotFeatureMap { node, shape } if node == "flatten" && shape == &[1, 512]),
        "{err}"
    );
    assert!(matches!(
        Cam::new(traced.clone(), &[]),
        Err(CamError::NoLayers)
    ));
    let err = Cam::new(traced.clone(), &["layer5"]).unwrap_err();
    assert!(
        err.to_string().contains("did you mean layer"),
        "suggests real names: {err}"
    );
    let cam = Cam::new(traced, &["layer4"]).unwrap();
    let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
    let err = cam
        .run(find("gradcam").unwrap(), x, Target::Class(1000))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CamError::ClassOutOfRange {
                class: 1000,
                classes: 1000
            }
        ),
        "{err}"
    );
    let err = find("grad-cam").unwrap_err();
    assert!(matches!(err, CamError::UnknownMethod { .. }), "{err}");
}

/// A model whose output is a feature map, not class scores.
struct Backbone(featx::burn::nn::conv::Conv2d);

impl FeatureModel for Backbone {
    fn name(&self) -> &str {
        "backbone"
    }

    fn input_spec(&self) -> featx::models::InputSpec {
        featx::models::InputSpec {
            channels: 3,
            size: None,
            nominal_size: [8, 8],
        }
    }

    fn forward_trace(
        &self,
        t: &mut featx::models::Tracer,
        x: featx::graph::NodeId,
    ) -> featx::graph::NodeId {
        t.conv2d("conv", &self.0, x)
    }
}

#[test]
fn a_model_without_class_scores_is_a_typed_error() {
    let device = Device::flex();
    let conv = featx::burn::nn::conv::Conv2dConfig::new([3, 4], [3, 3]).init(&device);
    let err = Cam::new(Backbone(conv).trace(), &["conv"]).unwrap_err();
    assert!(
        matches!(&err, CamError::NoClassifier { node, shape, .. } if node == "conv" && shape.len() == 4),
        "{err}"
    );
}

#[test]
fn the_picture_equals_show_cam_on_image() {
    let image: Vec<f32> = uniform("overlay_image", 64 * 64 * 3)
        .iter()
        .map(|v| (v + 1.0) / 2.0)
        .collect();
    let mask: Vec<f32> = uniform("overlay_mask", 64 * 64)
        .iter()
        .map(|v| (v + 1.0) / 2.0)
        .collect();
    let ours = featx::viz::show_cam_on_image(&image, &mask, 64, 64).unwrap();
    let theirs = image::open(fixture("cam/overlay.png")).unwrap().to_rgb8();
    assert_eq!(ours.dimensions(), theirs.dimensions());
    let differing = ours
        .pixels()
        .zip(theirs.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 0, "{differing} of 4096 pixels differ");
    let jet: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("cam/jet.json")).unwrap()).unwrap();
    for (i, rgb) in jet["rgb"].as_array().unwrap().iter().enumerate() {
        let rgb: Vec<u8> = serde_json::from_value(rgb.clone()).unwrap();
        assert_eq!(featx::viz::JET[i].to_vec(), rgb, "jet entry {i}");
    }
}

#[test]
fn featx_cam_writes_raw_maps_and_one_picture_per_image() {
    let fx = load();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    let weights = write_generated_weights(&model, dir.path());
    let shape: [usize; 4] = fx.input_shape.clone().try_into().unwrap();
    let npy = dir.path().join("x.npy");
    write_npy(
        &npy,
        &shape.map(|d| d as u64),
        &generated(&fx.input_key, &shape),
    );
    let out = dir.path().join("cam.png");
    let raw = dir.path().join("cam.safetensors");
    let base = [
        "cam",
        "--model",
        "resnet18",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        npy.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let args = with(&["--node", "layer4", "--method", "gradcam++", "--target", "7"]);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--raw", raw.to_str().unwrap()]);
    let run = featx(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    let tensors = read_safetensors(&raw);
    let (name, shape, values) = &tensors[0];
    assert_eq!(name, "cam");
    let key = "gradcam++/layer4/7";
    check(key, &fx.cams[key], shape, values);
    for i in 0..2 {
        let picture = image::open(dir.path().join(format!("cam_{i}.png"))).unwrap();
        assert!(picture.width() > 128 && picture.height() > 128);
    }

    // Bad requests exit with 2 and say what is wrong.
    for (extra, says) in [
        (
            [
                "--node", "layer4", "--method", "gradcam", "--target", "1000",
            ],
            "out of range",
        ),
        (
            ["--node", "fc", "--method", "gradcam", "--target", "top"],
            "not a feature map",
        ),
        (
            [
                "--node", "layer4", "--method", "gradcam+", "--target", "top",
            ],
            "gradcam++",
        ),
        (
            ["--node", "layer9", "--method", "gradcam", "--target", "top"],
            "did you mean layer",
        ),
    ] {
        let args = with(&extra);
        let run = featx(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(run.status.code(), Some(2), "{extra:?}: {}", stderr(&run));
        assert!(stderr(&run).contains(says), "{extra:?}: {}", stderr(&run));
    }
}
