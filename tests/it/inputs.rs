//! Inputs are checked before any compute; eval and train mode behave as in PyTorch.

use featx::burn::prelude::*;
use featx::burn::tensor::{FloatDType, TensorData};
use featx::models::{AlexNetConfig, ResNetConfig};
use featx::{ExtractError, Mode, create_feature_extractor};

use crate::support;
use crate::support::generated_input;

fn invalid_reason(result: Result<featx::Features, ExtractError>) -> (Vec<usize>, String) {
    match result {
        Err(ExtractError::InvalidInput { found, reason, .. }) => (found, reason),
        other => panic!("expected an invalid-input error, got {other:?}"),
    }
}

#[test]
fn wrong_channel_count_is_rejected_with_the_expected_shape() {
    let device = Device::flex();
    let model = ResNetConfig::resnet18(1000).init(&device);
    let extractor = create_feature_extractor(&model, ["layer1"]).unwrap();
    let (found, reason) = invalid_reason(extractor.forward(Tensor::zeros([2, 1, 64, 64], &device)));
    assert_eq!(found, [2, 1, 64, 64]);
    assert!(reason.contains("expected 3 channels"), "{reason}");
}

#[test]
fn rank_is_checked_for_dynamic_shapes() {
    let model = ResNetConfig::resnet18(1000).init(&Device::flex());
    let extractor = create_feature_extractor(&model, ["fc"]).unwrap();
    let err = extractor.check_input(&[3, 224, 224]).unwrap_err();
    assert!(err.to_string().contains("rank-4"), "{err}");
    assert_eq!(
        extractor.check_input(&[4, 3, 224, 224]).unwrap(),
        [vec![4, 1000]]
    );
}

#[test]
fn alexnet_only_accepts_224_so_view_cannot_fold_the_batch() {
    let device = Device::flex();
    let model = AlexNetConfig::new().init(&device);
    let extractor = create_feature_extractor(&model, ["fc"]).unwrap();
    let (_, reason) = invalid_reason(extractor.forward(Tensor::zeros([1, 3, 256, 256], &device)));
    assert!(reason.contains("224x224"), "{reason}");
    assert_eq!(
        extractor.check_input(&[2, 3, 224, 224]).unwrap(),
        [vec![2, 100]]
    );
}

#[test]
fn input_too_small_for_a_window_is_rejected_before_compute() {
    let device = Device::flex();
    let model = AlexNetConfig::new().init(&device);
    let traced = featx::models::FeatureModel::trace(&model);
    let err = traced.graph.infer_shapes(&[1, 3, 4, 4]).unwrap_err();
    assert!(err.to_string().contains("conv1.0"), "{err}");
    assert!(err.to_string().contains("smaller than the window"), "{err}");
}

#[test]
fn non_float32_input_is_rejected() {
    let device = Device::flex();
    let model = ResNetConfig::resnet18(1000).init(&device);
    let extractor = create_feature_extractor(&model, ["conv1"]).unwrap();
    let data = TensorData::new(vec![0f32; 3 * 16 * 16], [1, 3, 16, 16]);
    let x = Tensor::<4>::from_data(data, &device).cast(FloatDType::F16);
    assert_eq!(x.dtype(), featx::burn::tensor::DType::F16);
    let (_, reason) = invalid_reason(extractor.forward(x));
    assert!(reason.contains("float32"), "{reason}");
}

#[test]
fn eval_is_the_default_and_is_deterministic() {
    let device = Device::flex();
    let model = support::with_generated_weights(AlexNetConfig::new().init(&device));
    let extractor = create_feature_extractor(&model, ["fc.1", "fc.2"]).unwrap();
    assert_eq!(extractor.mode(), Mode::Eval);
    let out = extractor
        .forward(generated_input([1, 3, 224, 224], &device))
        .unwrap();
    // Dropout is the identity in eval mode.
    assert_eq!(
        out.get("fc.1").unwrap().to_vec_f32().unwrap(),
        out.get("fc.2").unwrap().to_vec_f32().unwrap()
    );
}

#[test]
fn train_mode_uses_batch_statistics_and_active_dropout() {
    let device = Device::flex();
    let model = support::with_generated_weights(AlexNetConfig::new().init(&device));
    let extractor = create_feature_extractor(&model, ["fc.1", "fc.2"])
        .unwrap()
        .with_mode(Mode::Train);
    let out = extractor
        .forward(generated_input([1, 3, 224, 224], &device))
        .unwrap();
    let before = out.get("fc.1").unwrap().to_vec_f32().unwrap();
    let after = out.get("fc.2").unwrap().to_vec_f32().unwrap();
    let alive: Vec<(f32, f32)> = before
        .iter()
        .copied()
        .zip(after)
        .filter(|(b, _)| *b > 0.0)
        .collect();
    let dropped = alive.iter().filter(|(_, a)| *a == 0.0).count() as f64 / alive.len() as f64;
    assert!((0.4..0.6).contains(&dropped), "dropped fraction {dropped}");
    for (b, a) in alive.iter().filter(|(_, a)| *a != 0.0) {
        assert!(
            (a - 2.0 * b).abs() <= 1e-5 * b.abs().max(1.0),
            "kept values are scaled by 2"
        );
    }

    let model = support::with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    let extractor = create_feature_extractor(&model, ["bn1"])
        .unwrap()
        .with_mode(Mode::Train);
    let out = extractor
        .forward(generated_input([2, 3, 32, 32], &device))
        .unwrap();
    let bn1 = out.get("bn1").unwrap().to_vec_f32().unwrap();
    // With batch statistics, channel c is normalised to mean beta_c and std |gamma_c|.
    let beta = support::generated("bn1.bias", &[64]);
    let gamma = support::generated("bn1.weight", &[64]);
    let per_channel = 16 * 16;
    for c in [0usize, 17, 63] {
        let values: Vec<f64> = (0..2)
            .flat_map(|n| {
                let start = (n * 64 + c) * per_channel;
                bn1[start..start + per_channel]
                    .iter()
                    .map(|&v| v as f64)
                    .collect::<Vec<_>>()
            })
            .collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        assert!(
            (mean - beta[c] as f64).abs() < 1e-3,
            "channel {c} mean {mean}"
        );
        assert!(
            (var.sqrt() - gamma[c].abs() as f64).abs() < 1e-2,
            "channel {c} std {}",
            var.sqrt()
        );
    }
}

/// The model's parameters on `model_device`, the input built on `input_device`: the input is
/// moved to the model, and the values equal a run with the input built on the model's device.
/// (Only builds with a second device have a test that calls it.)
#[cfg(any(feature = "ndarray", feature = "wgpu"))]
fn input_is_moved_to_the_model(model_device: &Device, input_device: &Device) {
    assert_ne!(model_device, input_device);
    let model = support::with_generated_weights(ResNetConfig::resnet18(1000).init(model_device));
    let extractor = create_feature_extractor(&model, ["conv1"]).unwrap();
    assert_eq!(extractor.device(), model_device);
    let elsewhere = generated_input([1, 3, 32, 32], input_device);
    assert_eq!(&elsewhere.device(), input_device);
    let moved = extractor.forward(elsewhere).unwrap();
    let conv1 = moved.get("conv1").unwrap();
    assert_eq!(conv1.dims(), [1, 64, 16, 16]);
    assert_eq!(&conv1.device(), model_device);
    let local = extractor
        .forward(generated_input([1, 3, 32, 32], model_device))
        .unwrap();
    assert_eq!(
        conv1.to_vec_f32().unwrap(),
        local.get("conv1").unwrap().to_vec_f32().unwrap()
    );
}

#[cfg(feature = "ndarray")]
#[test]
#[allow(deprecated)] // burn-ndarray is deprecated upstream; featx keeps it for comparison.
fn input_on_ndarray_is_moved_to_a_flex_model_and_back() {
    input_is_moved_to_the_model(&Device::flex(), &Device::ndarray());
    input_is_moved_to_the_model(&Device::ndarray(), &Device::flex());
}

#[cfg(feature = "wgpu")]
#[test]
fn input_on_the_cpu_is_moved_to_a_gpu_model() {
    let device = match featx::select_device(featx::DeviceChoice::Wgpu) {
        Ok(device) => device,
        Err(e) if std::env::var("FEATX_REQUIRE_GPU").as_deref() != Ok("1") => {
            eprintln!("SKIPPED: {e} (set FEATX_REQUIRE_GPU=1 to make this a failure)");
            return;
        }
        Err(e) => panic!("FEATX_REQUIRE_GPU=1 but {e}"),
    };
    input_is_moved_to_the_model(&device, &Device::flex());
}
