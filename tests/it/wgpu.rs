//! The same extraction on wgpu: parity with torchvision for every node, agreement with the
//! CPU, and a typed error where no adapter exists. CI runs these on lavapipe (software Vulkan).

use featx::burn::prelude::*;
use featx::burn::tensor::DType;
use featx::models::{AlexNetConfig, ResNetConfig};
use featx::{DeviceChoice, GpuKernels, Precision, create_feature_extractor, select_device};

use crate::support;
use crate::support::{
    check_all_nodes, check_features, check_nodes, generated_input, node_fixtures,
    with_generated_weights,
};

/// The wgpu device. Without an adapter the GPU tests are skipped with a message, unless
/// `FEATX_REQUIRE_GPU=1` (set by CI, which installs lavapipe) makes that a failure.
pub(crate) fn gpu() -> Option<Device> {
    match select_device(DeviceChoice::Wgpu) {
        Ok(device) => Some(device),
        Err(e) if std::env::var("FEATX_REQUIRE_GPU").as_deref() != Ok("1") => {
            eprintln!("SKIPPED: {e} (set FEATX_REQUIRE_GPU=1 to make this a failure)");
            None
        }
        Err(e) => panic!("FEATX_REQUIRE_GPU=1 but {e}"),
    }
}

#[test]
fn resnet18_every_node_matches_torchvision_on_wgpu() {
    let Some(device) = gpu() else { return };
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    check_all_nodes(&model, "resnet18", &device);
}

/// Block outputs and logits match torchvision on every GPU convolution choice: featx's (both
/// `featx` and `featx-tiled`, the same kernel at float32), which runs each block's second
/// convolution with its add and (where the block's output is not requested) its ReLU in one
/// launch, and burn's. (Requesting every node, as the test above does, leaves
/// no add to fold: each is requested.)
#[test]
fn resnet18_blocks_match_torchvision_with_featx_and_burn_gpu_kernels() {
    let Some(device) = gpu() else { return };
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    let fx = node_fixtures("resnet18_nodes.json", "resnet18_nodes.safetensors");
    let nodes: Vec<String> = [
        "layer1.0.relu_1",
        "layer2.1.relu_1",
        "layer4.1.relu_1",
        "fc",
    ]
    .map(String::from)
    .to_vec();
    for kernels in GpuKernels::ALL {
        let extractor = create_feature_extractor(&model, nodes.as_slice())
            .unwrap()
            .with_gpu_kernels(kernels);
        let (adds, kernel) = match kernels {
            GpuKernels::Featx | GpuKernels::FeatxTiled => (8, "gpu-implicit-gemm"),
            GpuKernels::Burn => (0, "burn"),
        };
        assert_eq!(
            extractor.plan_report().fused_adds,
            adds,
            "{}",
            kernels.name()
        );
        let steps = extractor.plan_report().kernels;
        let conv = steps
            .iter()
            .find(|(node, _)| node == "layer1.0.bn1")
            .unwrap();
        assert_eq!(conv.1, kernel, "{steps:?}");
        check_features(&extractor, &nodes, &fx, kernels.name(), &device);
    }
}

#[test]
fn alexnet_nodes_match_torchvision_on_wgpu() {
    let Some(device) = gpu() else { return };
    let model = with_generated_weights(AlexNetConfig::new().init(&device));
    // fc.0's weight (9216 x 4096 floats, 144 MiB) is larger than lavapipe's 128 MiB storage
    // buffer binding limit, so the classifier is checked only where the adapter allows it;
    // the feature stages and `view` are checked everywhere.
    let big_bindings = std::env::var("FEATX_GPU_LARGE_BUFFERS").as_deref() == Ok("1");
    check_nodes(&model, "alexnet", &device, |n| {
        big_bindings || !n.starts_with("fc")
    });
}

#[test]
fn cpu_and_gpu_agree_with_folded_batchnorms() {
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    let run = |device: &Device| {
        let model = with_generated_weights(ResNetConfig::resnet18(1000).init(device));
        let extractor = create_feature_extractor(&model, ["layer2", "fc"]).unwrap();
        assert!(extractor.plan_report().folded_convolutions > 0);
        let out = extractor
            .forward(generated_input([1, 3, 96, 128], device))
            .unwrap();
        ["layer2", "fc"].map(|k| out.get(k).unwrap().to_vec_f32().unwrap())
    };
    for (a, b) in run(&cpu).iter().zip(run(&gpu)) {
        assert_cpu_and_gpu_agree(a, &b);
    }
}

/// Depthwise and grouped convolutions, the folded `Conv2dNormActivation`s with each
/// activation, squeeze-excitation's broadcasting product: the same values on the GPU as on
/// the CPU, for every node of one model per family (generated weights, 1x3x64x64). RegNetX,
/// not RegNetY: on generated weights RegNetY's squeeze-excitation logits are so large that
/// float32 rounding alone moves its deep nodes past the tolerance (see the zoo fixtures).
#[test]
fn cpu_and_gpu_agree_on_the_mobile_nets() {
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    for name in ["mobilenet_v3_small", "efficientnet_b0", "regnet_x_400mf"] {
        let arch = featx::models::find(name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = support::write_generated_state_dict(
            &arch.expected_keys(),
            dir.path(),
            safetensors::Dtype::F32,
        );
        let run = |device: &Device| {
            let model = arch.load(device, &path).unwrap();
            let nodes = model.graph.names();
            let extractor =
                featx::FeatureExtractor::new(model, &featx::ReturnNodes::from(nodes)).unwrap();
            let out = extractor
                .forward(generated_input([1, 3, 64, 64], device))
                .unwrap();
            out.iter()
                .map(|(k, v)| (k.to_string(), v.to_vec_f32().unwrap()))
                .collect::<Vec<_>>()
        };
        for ((node, a), (_, b)) in run(&cpu).iter().zip(run(&gpu)) {
            let scale = a.iter().fold(1f32, |m, v| m.max(v.abs()));
            let worst = a
                .iter()
                .zip(&b)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                worst <= 1e-5 * scale + 1e-4,
                "{name} {node}: cpu and gpu differ by {worst}"
            );
        }
    }
}

/// The documented tolerance of `--precision f16` against torchvision's float32 values: 3% of
/// the node's largest magnitude (float16 keeps 11 significant bits, about 3 decimal digits, and
/// ResNet18's 60-odd roundings in a row compound; lavapipe's worst node is at 1.8% on burn's
/// convolutions, 0.3% on featx's, which accumulate in float32; another adapter sums in another
/// order).
const F16_TOLERANCE: f64 = 3e-2;

/// The documented tolerance of `--precision mixed`: 1% of the node's largest magnitude. Only
/// the convolutions' operands are rounded (to float16, whose 10-bit mantissa TF32 also has);
/// activations, sums and every other op stay float32, so nothing compounds from layer to layer
/// but the rounding of each convolution's inputs. Where the adapter has no cooperative matrices
/// for float16 it is float32, well inside.
const MIXED_TOLERANCE: f64 = 1e-2;

/// float16 on the GPU: every node of ResNet18 within [`F16_TOLERANCE`] of torchvision's
/// float32 values, returned as float32, on both GPU convolutions. Where the adapter has no
/// float16 arithmetic, asking for it is a typed error instead.
#[test]
fn resnet18_in_f16_stays_within_its_documented_tolerance() {
    check_reduced_precision(Precision::F16, F16_TOLERANCE, &GpuKernels::ALL);
}

/// float32 tensors with featx's convolutions multiplying in float16 on cooperative matrices
/// (where the adapter has them; float32 products elsewhere): every node of ResNet18 within
/// [`MIXED_TOLERANCE`]. burn's convolutions have no such mode (there it is float32, which the
/// f32 tests cover).
#[test]
fn resnet18_in_mixed_precision_stays_within_its_documented_tolerance() {
    check_reduced_precision(Precision::Mixed, MIXED_TOLERANCE, &[GpuKernels::Featx]);
}

/// Every node of ResNet18 in `precision` on each of `kernel_choices`, within `tolerance` of
/// the node's largest magnitude of torchvision's float32 values, returned as float32, with
/// featx's convolution on cooperative matrices exactly where the adapter has them for the
/// float type it multiplies in.
fn check_reduced_precision(precision: Precision, tolerance: f64, kernel_choices: &[GpuKernels]) {
    let Some(device) = gpu() else { return };
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    let fx = node_fixtures("resnet18_nodes.json", "resnet18_nodes.safetensors");
    let (_, nodes) = featx::get_graph_node_names(&model);
    for &kernels in kernel_choices {
        let extractor = create_feature_extractor(&model, nodes.as_slice())
            .unwrap()
            .with_gpu_kernels(kernels);
        let extractor = match extractor.with_precision(precision) {
            Ok(extractor) => extractor,
            Err(e) => {
                assert!(!device.supports_dtype(precision.dtype()), "{e}");
                assert!(
                    matches!(e, featx::ExtractError::PrecisionUnsupported { .. }),
                    "{e}"
                );
                eprintln!("SKIPPED the {precision} values: {e}");
                return;
            }
        };
        assert_eq!(extractor.precision(), precision);
        let shape: [usize; 4] = fx.input_shape.clone().try_into().unwrap();
        let out = extractor.forward(generated_input(shape, &device)).unwrap();
        let mut worst = (0f64, String::new());
        for (name, feature) in out.iter() {
            let record = &fx.nodes[name];
            assert_eq!(feature.dims(), record.shape, "{name}");
            assert_eq!(
                feature.to_data().dtype(),
                DType::F32,
                "{name} comes back as float32"
            );
            let values = feature.to_vec_f32().unwrap();
            let tol = tolerance * record.abs_max.max(1.0);
            for (k, expected) in record.samples.iter().enumerate() {
                let got = values[k * record.stride];
                let diff = (f64::from(got) - f64::from(*expected)).abs();
                assert!(
                    diff <= tol,
                    "{} {name} element {}: {precision} {got}, torch {expected} (tolerance {tol})",
                    kernels.name(),
                    k * record.stride
                );
                if diff / tol > worst.0 {
                    worst = (diff / tol, name.to_string());
                }
            }
        }
        // Which convolution ran: featx's on cooperative matrices where the adapter has them
        // for float16 (the SPIR-V build on Vulkan) unless featx-tiled asks otherwise, its
        // register-tiled one elsewhere.
        let conv = extractor
            .plan_report()
            .kernels
            .into_iter()
            .find(|(node, _)| node == "layer1.0.conv1")
            .map_or("none", |(_, kernel)| kernel);
        let multiply = precision.multiply_dtype().into();
        let cooperative = featx_kernels::gpu::cooperative(&device, multiply);
        let expected = match kernels {
            GpuKernels::Featx if cooperative => "gpu-cooperative",
            GpuKernels::Featx | GpuKernels::FeatxTiled => "gpu-implicit-gemm",
            GpuKernels::Burn => "burn",
        };
        assert_eq!(conv, expected, "{precision} on {}", kernels.name());
        eprintln!(
            "{precision} on {} convolutions ({conv}): closest to the tolerance: {:.0}% of it at '{}'",
            kernels.name(),
            100.0 * worst.0,
            worst.1
        );
    }
}

/// The same values within the parity tolerance (1e-4, or 1e-5 of the largest magnitude).
fn assert_cpu_and_gpu_agree(a: &[f32], b: &[f32]) {
    let scale = a.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        worst <= 1e-5 * scale + 1e-4,
        "cpu and gpu differ by {worst}"
    );
}

#[test]
fn no_vulkan_driver_is_a_typed_error_not_a_panic() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_featx"))
        .args(["nodes", "--model", "resnet18"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.npy");
    support::write_npy(&input, &[1, 3, 32, 32], &vec![0f32; 3 * 32 * 32]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_featx"))
        .args([
            "extract",
            "--model",
            "resnet18",
            "--weights",
            "random",
            "--nodes",
            "conv1",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("o.safetensors"))
        .args(["--device", "wgpu"])
        // Point the Vulkan loader at no driver, and glvnd's EGL at no vendor so that wgpu's
        // OpenGL fallback finds nothing either.
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("device 'wgpu' is not available"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.path().join("o.safetensors").exists());
}

/// A model built on the CPU moves only what a request needs: AlexNet's 144 MiB `fc.0` weight
/// (over lavapipe's 128 MiB buffer limit) stays on the CPU for a `conv3` request, and a request
/// that needs it on a device too small for it is a typed error naming the layer.
#[test]
fn only_needed_layers_move_to_the_gpu_and_oversized_ones_are_typed_errors() {
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    let model = with_generated_weights(AlexNetConfig::new().init(&cpu));
    let x = generated_input([1, 3, 224, 224], &cpu);
    let on_cpu = create_feature_extractor(&model, ["conv3"]).unwrap();
    let on_gpu = on_cpu.clone().to_device(&gpu).unwrap();
    assert_eq!(on_gpu.device(), &gpu);
    let layers = &on_gpu.model().layers;
    let node = |name: &str| on_gpu.model().graph.find(name).unwrap().0;
    // A layer is a burn module: its parameters' device is burn's to report.
    let device_of = |i: usize| {
        use featx::burn::module::Module;
        layers[i].as_ref().unwrap().devices()[0].clone()
    };
    assert_eq!(device_of(node("conv3.4")), gpu);
    assert_eq!(device_of(node("fc.0")), cpu);
    let a = on_cpu.forward(x.clone()).unwrap();
    let b = on_gpu.forward(x).unwrap();
    let (a, b) = (
        a.get("conv3").unwrap().to_vec_f32().unwrap(),
        b.get("conv3").unwrap().to_vec_f32().unwrap(),
    );
    assert_cpu_and_gpu_agree(&a, &b);

    let fc0_bytes = 4 * 9216 * 4096;
    let full = create_feature_extractor(&model, ["fc"]).unwrap();
    match featx::max_buffer_bytes(&gpu) {
        Some(limit) if limit < fc0_bytes => match full.to_device(&gpu) {
            Err(featx::ExtractError::LayerTooLarge {
                layer,
                tensor,
                bytes,
                limit: reported,
            }) => {
                assert_eq!(
                    (layer.as_str(), tensor.as_str(), bytes),
                    ("fc.0", "weight", fc0_bytes)
                );
                assert_eq!(reported, limit);
            }
            other => panic!("expected LayerTooLarge for fc.0, got {other:?}"),
        },
        _ => assert!(full.to_device(&gpu).is_ok()),
    }
}

/// On the command line, a request for an early layer never uploads AlexNet's classifier (over
/// lavapipe's buffer limit), and a request that needs it there is a typed error, not a panic.
#[test]
fn cli_uploads_only_the_layers_a_request_needs() {
    let Some(gpu) = gpu() else { return };
    let bench = |nodes: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_featx"))
            .args([
                "bench", "--model", "alexnet", "--device", "wgpu", "--nodes", nodes,
            ])
            .args(["--iters", "1", "--warmup", "0", "--format", "json"])
            .output()
            .unwrap()
    };
    let out = bench("conv1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // No backtrace, and no driver noise (Mesa's XDG_RUNTIME_DIR complaints) either.
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    let fc0_bytes = 4 * 9216 * 4096;
    if featx::max_buffer_bytes(&gpu).is_some_and(|limit| limit < fc0_bytes) {
        let out = bench("fc");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("fc.0 needs a 150994944-byte buffer"),
            "{stderr}"
        );
        assert!(stderr.contains("hint: --device cpu"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn grad_cam_runs_on_the_gpu_as_on_the_cpu() {
    use featx::burn::tensor::TensorData;
    use featx::cam::{Cam, Target, find};
    use featx::models::FeatureModel;
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    let traced = with_generated_weights(ResNetConfig::resnet18(1000).init(&cpu)).trace();
    let shape = [1, 3, 64, 64];
    let values = support::generated("cam_input", &shape);
    let run = |device: &Device| {
        let cam = Cam::new(traced.clone(), &["layer3", "layer4"]).unwrap();
        let cam = if *device == cpu {
            cam
        } else {
            cam.to_device(device).unwrap()
        };
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), shape), device);
        let out = cam
            .run(find("gradcam").unwrap(), x, Target::Class(3))
            .unwrap();
        assert_eq!(out.maps.shape, [1, 64, 64]);
        out.maps.values
    };
    assert_cpu_and_gpu_agree(&run(&cpu), &run(&gpu));
}

/// Autotune results persist between processes under `$FEATX_CACHE_DIR/gpu`: the first `featx
/// bench` on the GPU writes them there, and a second process with the same folder starts
/// from them (both first-call times are printed; they are not asserted, as times never are).
#[test]
fn gpu_tuning_persists_between_processes_in_featx_cache_folder() {
    if gpu().is_none() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let bench = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_featx"))
            .args([
                "bench", "--model", "resnet18", "--device", "wgpu", "--size", "64",
            ])
            .args(["--nodes", "layer1", "--iters", "1", "--warmup", "1"])
            // burn's convolutions are the autotuned ones.
            .args(["--format", "json", "--gpu-kernels", "burn"])
            .env("FEATX_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["first_ms"].as_f64().unwrap()
    };
    let first = bench();
    let stored: Vec<_> = walk_files(&cache.path().join("gpu"));
    assert!(
        stored.iter().any(|(_, size)| *size > 0),
        "tuning results under {}: {stored:?}",
        cache.path().join("gpu").display()
    );
    let second = bench();
    eprintln!("first call: {first:.0} ms in a fresh process, {second:.0} ms in a second one");
}

/// Every file under `dir` with its size.
fn walk_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk_files(&path)
            } else {
                let size = e.metadata().map_or(0, |m| m.len());
                vec![(path, size)]
            }
        })
        .collect()
}
