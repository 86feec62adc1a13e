//! featx's CPU kernels against the burn-flex ops they replace, on the shapes where they matter
//! most: the vectorised activations and softmax (EfficientNet-B0's widest SiLU, ViT-B/16's
//! attention), the depthwise convolution (MobileNetV3's, EfficientNet's and ConvNeXt's), the
//! Linear layer over the last axis (ConvNeXt's and ViT's) and the 1x1 convolution with few
//! input channels (MobileNet's and EfficientNet's expansions). `cargo bench --bench kernels`; `-- --save-baseline NAME` records a
//! run and `-- --baseline NAME` compares against it.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use featx::burn::nn::LinearConfig;
use featx::burn::prelude::*;
use featx::burn::tensor::module::conv2d;
use featx::burn::tensor::ops::ConvOptions;
use featx::burn::tensor::{Distribution, activation};
use featx::graph::Activation;
use featx::graph::Window2d;
use featx_kernels::cpu::{Elementwise, PackedConv2d, PackedDepthwise, PackedLinear, softmax_rows};

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

fn depthwise(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/depthwise");
    group.sample_size(20);
    // (name, input, kernel, stride): MobileNetV3-Large's slowest layers on burn's path at batch
    // 1, EfficientNet-B0's widest at batch 8, ConvNeXt-T's first stage.
    for (name, shape, k, s) in [
        ("mnv3_64x112_k3s2", [1, 64, 112, 112], 3, 2),
        ("mnv3_72x56_k5s2", [1, 72, 56, 56], 5, 2),
        ("mnv3_960x7_k5s1", [1, 960, 7, 7], 5, 1),
        ("mnv3_672x14_k5s1", [1, 672, 14, 14], 5, 1),
        ("effb0_b8_96x112_k3s2", [8, 96, 112, 112], 3, 2),
        ("convnext_96x56_k7s1", [1, 96, 56, 56], 7, 1),
    ] {
        let channels = shape[1];
        let x = Tensor::<4>::random(shape, Distribution::Default, &device);
        let w = Tensor::<4>::random([channels, 1, k, k], Distribution::Default, &device);
        let b = Tensor::<1>::random([channels], Distribution::Default, &device);
        let window = Window2d::square(k, s, k / 2);
        let packed = PackedDepthwise::new(&w, Some(&b), window, channels).expect("depthwise");
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| packed.forward(x.clone(), false).expect("fits"))
        });
        let options = ConvOptions::new([s, s], [k / 2, k / 2], [1, 1], channels);
        group.bench_function(BenchmarkId::new("burn", name), |bench| {
            bench.iter(|| conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone()))
        });
    }
    group.finish();
}

fn linear(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/linear");
    group.sample_size(20);
    // (name, input as the model holds it, outputs): ConvNeXt-T's first and last stage
    // (`[N, H, W, C]`), ViT-B/16's MLP (`[N, tokens, C]`), at batch 1.
    for (name, shape, outputs) in [
        ("convnext_56x56x96_to_384", [1, 56, 56, 96], 384),
        ("convnext_7x7x768_to_3072", [1, 7, 7, 768], 3072),
        ("vit_197x768_to_3072", [1, 1, 197, 768], 3072),
    ] {
        let inputs = shape[3];
        let layer = LinearConfig::new(inputs, outputs).init(&device);
        let bias = layer.bias.as_ref().map(|b| b.val());
        let packed = PackedLinear::new(&layer.weight.val(), bias.as_ref()).expect("float32");
        let x = Tensor::<4>::random(shape, Distribution::Default, &device);
        let rows = shape[..3].iter().product::<usize>();
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| {
                packed
                    .forward(x.clone().reshape([rows, inputs]))
                    .expect("fits")
            })
        });
        group.bench_function(BenchmarkId::new("burn", name), |bench| {
            bench.iter(|| layer.forward(x.clone()))
        });
    }
    group.finish();
}

fn pointwise(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/pointwise");
    group.sample_size(20);
    // (name, input, output channels): 1x1 convolutions with few input channels, MobileNetV3's
    // and EfficientNet-B0's expansions at batch 1 and 8.
    for (name, shape, outputs) in [
        ("mnv3_16x112_to_64", [1, 16, 112, 112], 64),
        ("mnv3_40x28_to_120", [1, 40, 28, 28], 120),
        ("effb0_b8_24x56_to_144", [8, 24, 56, 56], 144),
    ] {
        let x = Tensor::<4>::random(shape, Distribution::Default, &device);
        let w = Tensor::<4>::random([outputs, shape[1], 1, 1], Distribution::Default, &device);
        let b = Tensor::<1>::random([outputs], Distribution::Default, &device);
        let window = Window2d::square(1, 1, 0);
        let packed = PackedConv2d::new(&w, Some(&b), window, 1).expect("a convolution");
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| packed.forward(x.clone(), false).expect("fits"))
        });
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        group.bench_function(BenchmarkId::new("burn", name), |bench| {
            bench.iter(|| conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone()))
        });
    }
    group.finish();
}

criterion_group!(benches, activations, depthwise, linear, pointwise);
criterion_main!(benches);
