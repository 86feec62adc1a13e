//! Extraction speed on the CPU backend: full forwards, truncated extractions, all nodes, and
//! the cost of tracing / building an extractor. `cargo bench --bench extract`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use featx::burn::prelude::*;
use featx::burn::tensor::Distribution;
use featx::models::{AlexNetConfig, FeatureModel, ResNetConfig};
use featx::{ReturnNodes, create_feature_extractor, get_graph_node_names};

fn cases(
    c: &mut Criterion,
    model: &impl FeatureModel,
    name: &str,
    requests: &[(&str, ReturnNodes)],
) {
    let device = Device::flex();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    for batch in [1usize, 8] {
        let x = Tensor::<4>::random([batch, 3, 224, 224], Distribution::Default, &device);
        for (label, request) in requests {
            let extractor = create_feature_extractor(model, request.clone()).expect("valid nodes");
            group.bench_with_input(BenchmarkId::new(*label, batch), &x, |b, x| {
                b.iter(|| extractor.forward(x.clone()).expect("runs"))
            });
        }
    }
    group.finish();
}

fn resnet18(c: &mut Criterion) {
    let model = ResNetConfig::resnet18(1000).init(&Device::flex());
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
    cases(c, &model, "resnet18", &requests);
    c.bench_function("resnet18/trace+plan", |b| {
        b.iter(|| create_feature_extractor(&model, ["layer3"]).expect("valid"))
    });
}

fn alexnet(c: &mut Criterion) {
    let model = AlexNetConfig::new().init(&Device::flex());
    let (_, all) = get_graph_node_names(&model);
    let requests = [
        ("full", ReturnNodes::from(["fc"])),
        ("all", ReturnNodes::from(all)),
    ];
    cases(c, &model, "alexnet", &requests);
}

criterion_group!(benches, resnet18, alexnet);
criterion_main!(benches);
