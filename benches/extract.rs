//! Extraction speed on every backend this build has (flex always, ndarray and wgpu with their
//! features, wgpu only when an adapter works): full forwards, truncated extractions, all nodes,
//! and the cost of tracing / building an extractor; on wgpu also the full forward on burn's
//! convolutions, and each of ResNet18's convolution shapes on featx's GPU kernel against
//! burn's. `cargo bench --bench extract` (`--features ndarray,wgpu` for the other backends).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use featx::burn::prelude::*;
use featx::burn::tensor::Distribution;
use featx::models::{AlexNetConfig, FeatureModel, ResNetConfig};
use featx::{
    DeviceChoice, GpuKernels, ReturnNodes, create_feature_extractor, get_graph_node_names,
    select_device,
};

/// The backends to measure, by name: those this build includes and this machine can run.
fn devices() -> Vec<(&'static str, Device)> {
    [
        ("flex", DeviceChoice::Cpu),
        ("ndarray", DeviceChoice::Ndarray),
        ("wgpu", DeviceChoice::Wgpu),
    ]
    .into_iter()
    .filter_map(|(name, choice)| select_device(choice).ok().map(|d| (name, d)))
    .collect()
}

fn cases(
    c: &mut Criterion,
    model: &impl FeatureModel,
    name: &str,
    device: &Device,
    requests: &[(&str, ReturnNodes)],
    kernels: GpuKernels,
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    // Batch 64 is the GPU's throughput case; on the CPU it only repeats batch 8's rate.
    let batches: &[usize] = if name.ends_with("wgpu") {
        &[1, 8, 64]
    } else {
        &[1, 8]
    };
    for &batch in batches {
        let x = Tensor::<4>::random([batch, 3, 224, 224], Distribution::Default, device);
        for (label, request) in requests {
            let extractor = create_feature_extractor(model, request.clone())
                .expect("valid nodes")
                .with_gpu_kernels(kernels);
            group.bench_with_input(BenchmarkId::new(*label, batch), &x, |b, x| {
                // GPU work is queued (and with fusion, recorded lazily): wait for the device,
                // or the time is only that of queuing.
                b.iter(|| {
                    let out = extractor.forward(x.clone()).expect("runs");
                    device.sync().expect("the device finishes");
                    out
                })
            });
        }
    }
    group.finish();
}

fn resnet18(c: &mut Criterion) {
    for (backend, device) in devices() {
        let model = ResNetConfig::resnet18(1000).init(&device);
        let (_, all) = get_graph_node_names(&model);
        let requests = [
            ("full", ReturnNodes::from(["fc"])),
            ("conv1", ReturnNodes::from(["conv1"])),
            ("layer3", ReturnNodes::from(["layer3"])),
            (
                "layer3.0.conv1+layer4.0.conv1",
                ReturnNodes::from(["layer3.0.conv1", "layer4.0.conv1"]),
            ),
            ("all", ReturnNodes::from(all)),
        ];
        cases(
            c,
            &model,
            &format!("resnet18/{backend}"),
            &device,
            &requests,
            GpuKernels::Featx,
        );
        if backend == "wgpu" {
            cases(
                c,
                &model,
                "resnet18/wgpu-burn-kernels",
                &device,
                &requests[..1],
                GpuKernels::Burn,
            );
        }
        c.bench_function(&format!("resnet18/{backend}/trace+plan"), |b| {
            b.iter(|| create_feature_extractor(&model, ["layer3"]).expect("valid"))
        });
    }
}

fn alexnet(c: &mut Criterion) {
    for (backend, device) in devices() {
        let model = AlexNetConfig::new().init(&device);
        let (_, all) = get_graph_node_names(&model);
        let requests = [
            ("full", ReturnNodes::from(["fc"])),
            ("all", ReturnNodes::from(all)),
        ];
        cases(
            c,
            &model,
            &format!("alexnet/{backend}"),
            &device,
            &requests,
            GpuKernels::Featx,
        );
    }
}

/// Each distinct convolution of ResNet18 at batch 8 (`[C, H, K, kernel, stride]`), folded bias and
/// ReLU included: featx's GPU kernel against burn's `conv2d` followed by the ReLU, on wgpu; where
/// the adapter has float16 cooperative matrices, also featx's on them (`featx-mixed`: float32
/// tensors multiplied in float16, `--precision mixed`), in the block featx tunes per layer and
/// in each block it can take (`featx-mixed-MxN`), to see what the tuning chooses from.
#[cfg(feature = "wgpu")]
fn gpu_convolutions(c: &mut Criterion) {
    use featx::burn::tensor::DType;
    use featx::burn::tensor::activation::relu;
    use featx::burn::tensor::module::conv2d;
    use featx::burn::tensor::ops::ConvOptions;
    use featx::graph::Window2d;
    use featx_kernels::gpu::{PackedConv2d, cooperative, cooperative_blocks};

    let Ok(device) = select_device(DeviceChoice::Wgpu) else {
        return;
    };
    let shapes: [[usize; 5]; 7] = [
        [3, 224, 64, 7, 2],
        [64, 56, 64, 3, 1],
        [64, 56, 128, 3, 2],
        [128, 28, 128, 3, 1],
        [128, 28, 256, 1, 2],
        [256, 14, 256, 3, 1],
        [512, 7, 512, 3, 1],
    ];
    let mut group = c.benchmark_group("conv/wgpu");
    group.sample_size(10);
    for [channels, size, out, kernel, stride] in shapes {
        let window = Window2d::square(kernel, stride, kernel / 2);
        let x = Tensor::<4>::random([8, channels, size, size], Distribution::Default, &device);
        let weight = Tensor::<4>::random(
            [out, channels, kernel, kernel],
            Distribution::Default,
            &device,
        );
        let bias = Tensor::<1>::random([out], Distribution::Default, &device);
        let label = format!("{channels}x{size}-{out}-{kernel}x{kernel}s{stride}");
        let featx = PackedConv2d::new(&weight, Some(&bias), window, 1).expect("a wgpu device");
        let mut kernels = vec![("featx".to_string(), featx.clone())];
        if cooperative(&device, DType::F16) {
            let mixed = featx.multiplying_in(DType::F16);
            kernels.push(("featx-mixed".to_string(), mixed.clone()));
            for [m, n] in cooperative_blocks() {
                let name = format!("featx-mixed-{m}x{n}");
                kernels.push((name, mixed.clone().in_block([m, n])));
            }
        }
        for (name, conv) in kernels {
            group.bench_with_input(BenchmarkId::new(name, &label), &x, |b, x| {
                b.iter(|| {
                    let y = conv.forward(x.clone(), None, true).expect("fits");
                    device.sync().expect("the device finishes");
                    y
                })
            });
        }
        let options = ConvOptions::new([stride; 2], [kernel / 2; 2], [1; 2], 1);
        group.bench_with_input(BenchmarkId::new("burn", &label), &x, |b, x| {
            b.iter(|| {
                let y = relu(conv2d(
                    x.clone(),
                    weight.clone(),
                    Some(bias.clone()),
                    options.clone(),
                ));
                device.sync().expect("the device finishes");
                y
            })
        });
    }
    group.finish();
}

#[cfg(not(feature = "wgpu"))]
fn gpu_convolutions(_: &mut Criterion) {}

criterion_group!(benches, resnet18, alexnet, gpu_convolutions);
criterion_main!(benches);
