//! featx's vectorised CPU activations and softmax against the burn-flex ops they replace, on
//! the shapes where they matter most (EfficientNet-B0's widest SiLU, ViT-B/16's attention). `cargo bench --bench kernels`; `-- --save-baseline NAME` records a
//! run and `-- --baseline NAME` compares against it.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use featx::burn::prelude::*;
use featx::burn::tensor::{Distribution, activation};
use featx::graph::Activation;
use featx_kernels::cpu::{Elementwise, softmax_rows};

/// The allocator the `featx` binary runs with, so fresh output buffers cost what they cost there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn activations(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/activation");
    group.sample_size(20);
    // EfficientNet-B0's widest SiLU input at batch 1.
    let shape = [1, 96, 112, 112];
    let x = Tensor::<4>::random(shape, Distribution::Default, &device);
    let values = x.to_data().try_to_vec::<f32>().expect("f32");
    for (name, f) in [
        ("sigmoid", Elementwise::Sigmoid),
        ("silu", Elementwise::Silu),
        ("gelu", Elementwise::Gelu),
        ("hardswish", Elementwise::Hardswish),
    ] {
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| {
                let mut v = values.clone();
                f.apply(&mut v);
                v
            })
        });
    }
    group.bench_function(BenchmarkId::new("burn", "sigmoid"), |bench| {
        bench.iter(|| activation::sigmoid(x.clone()))
    });
    group.bench_function(BenchmarkId::new("burn", "silu"), |bench| {
        bench.iter(|| activation::silu(x.clone()))
    });
    group.bench_function(BenchmarkId::new("burn", "gelu"), |bench| {
        bench.iter(|| activation::gelu(x.clone()))
    });
    // The generic path's hardswish: four burn ops.
    group.bench_function(BenchmarkId::new("burn", "hardswish"), |bench| {
        bench.iter(|| Activation::Hardswish.apply(x.clone()))
    });
    // ViT-B/16's attention scores at batch 1: 12 heads of 197x197.
    let scores = Tensor::<3>::random([12, 197, 197], Distribution::Default, &device);
    let flat = scores.to_data().try_to_vec::<f32>().expect("f32");
    group.bench_function(BenchmarkId::new("featx", "softmax"), |bench| {
        bench.iter(|| {
            let mut v = flat.clone();
            softmax_rows(&mut v, 197);
            v
        })
    });
    group.bench_function(BenchmarkId::new("burn", "softmax"), |bench| {
        bench.iter(|| activation::softmax(scores.clone(), 2))
    });
    group.finish();
}

criterion_group!(benches, activations);
criterion_main!(benches);
