//! Extraction speed on every backend this build has (flex always, ndarray and wgpu with their
//! features, wgpu only when an adapter works): full forwards, truncated extractions, all nodes,
//! and the cost of tracing / building an extractor. `cargo bench --bench extract`
//! (`--features ndarray,wgpu` for the other backends).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use featx::burn::prelude::*;
use featx::burn::tensor::Distribution;
use featx::models::{AlexNetConfig, FeatureModel, ResNetConfig};
use featx::{
    DeviceChoice, ReturnNodes, create_feature_extractor, get_graph_node_names, select_device,
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
            let extractor = create_feature_extractor(model, request.clone()).expect("valid nodes");
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
        );
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
        cases(c, &model, &format!("alexnet/{backend}"), &device, &requests);
    }
}

criterion_group!(benches, resnet18, alexnet);
criterion_main!(benches);
