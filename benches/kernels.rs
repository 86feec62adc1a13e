//! featx's CPU kernels against the burn-flex ops they replace, on the shapes where they matter
//! most: the vectorised activations and softmax (EfficientNet-B0's widest SiLU, ViT-B/16's
//! attention), the depthwise convolution (MobileNetV3's, EfficientNet's and ConvNeXt's), the
//! Linear layer over the last axis (ConvNeXt's and ViT's; with its GELU in the epilogue), the
//! LayerNorm (ConvNeXt's and ViT's), the residual add (ConvNeXt's, reading a permuted
//! operand; MobileNetV3's), an activation and ConvNeXt's layer scale on a tensor held elsewhere
//! (every-node extraction), the dense convolutions (1x1, im2col
//! and Winograd, on the packed matrix products), the one-pass eval BatchNorm, the
//! squeeze-excitation block and ViT's fused attention and MLP blocks. `cargo bench --bench kernels`;
//! `-- --save-baseline NAME` records a run and `-- --baseline NAME` compares against it.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use featx::burn::nn::LinearConfig;
use featx::burn::prelude::*;
use featx::burn::tensor::module::{adaptive_avg_pool2d, batch_norm, conv2d};
use featx::burn::tensor::ops::ConvOptions;
use featx::burn::tensor::{Distribution, activation};
use featx::graph::Activation;
use featx::graph::Window2d;
use featx_kernels::cpu::{
    Elementwise, PackedAttention, PackedBatchNorm, PackedConv2d, PackedDepthwise, PackedLayerNorm,
    PackedLinear, PackedMlp, PackedSqueezeExcitation, add, contiguous, map, scale, softmax_rows,
};

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

fn batch_norms(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/batch_norm");
    group.sample_size(20);
    // (name, input): ResNet18's first stage at batch 1 and 8 and a DenseNet-121 pre-activation
    // norm, where every-node extraction (or the concatenation before it) keeps each BatchNorm
    // a step of its own.
    for (name, shape) in [
        ("resnet18_64x56", [1, 64, 56, 56]),
        ("resnet18_b8_64x56", [8, 64, 56, 56]),
        ("densenet121_256x28", [1, 256, 28, 28]),
    ] {
        let channels = shape[1];
        let vector =
            |lo: f64| Tensor::<1>::random([channels], Distribution::Uniform(lo, 2.0), &device);
        let (gamma, beta, mean, var) = (vector(0.5), vector(-1.0), vector(-1.0), vector(0.1));
        let x = Tensor::<4>::random(shape, Distribution::Default, &device);
        let packed = PackedBatchNorm::new(&gamma, &beta, &mean, &var, 1e-5).expect("vectors");
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| packed.forward(x.clone(), false).expect("fits"))
        });
        group.bench_function(BenchmarkId::new("burn", name), |bench| {
            bench.iter(|| {
                let (g, b, m, v) = (gamma.clone(), beta.clone(), mean.clone(), var.clone());
                batch_norm(x.clone(), g, b, m, v, 1e-5)
            })
        });
    }
    group.finish();
}

fn squeeze_excitation(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/squeeze_excitation");
    group.sample_size(20);
    // (name, input, squeeze channels, MobileNetV3's activations or EfficientNet's): the widest
    // blocks of MobileNetV3-Large and EfficientNet-B0 at batch 1, and EfficientNet-B0's
    // largest planes at batch 8.
    for (name, shape, squeeze, mobilenet) in [
        ("mobilenet_v3_960x7", [1, 960, 7, 7], 240, true),
        ("efficientnet_b0_1152x7", [1, 1152, 7, 7], 48, false),
        ("efficientnet_b0_b8_96x56", [8, 96, 56, 56], 4, false),
    ] {
        let channels = shape[1];
        let random = |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Default, &device);
        let vector = |n: usize| Tensor::<1>::random([n], Distribution::Default, &device);
        let (w1, b1) = (random([squeeze, channels, 1, 1]), vector(squeeze));
        let (w2, b2) = (random([channels, squeeze, 1, 1]), vector(channels));
        let (f, g) = match mobilenet {
            true => (Elementwise::Relu, Elementwise::Hardsigmoid),
            false => (Elementwise::Silu, Elementwise::Sigmoid),
        };
        let packed = PackedSqueezeExcitation::new((&w1, &b1), (&w2, &b2), f, g).expect("layers");
        let x = random(shape);
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| packed.forward(x.clone()).expect("fits"))
        });
        group.bench_function(BenchmarkId::new("burn", name), |bench| {
            bench.iter(|| {
                let options = || ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
                let pooled = adaptive_avg_pool2d(x.clone(), [1, 1]);
                let hidden = conv2d(pooled, w1.clone(), Some(b1.clone()), options());
                let hidden = match mobilenet {
                    true => activation::relu(hidden),
                    false => activation::silu(hidden),
                };
                let scale = conv2d(hidden, w2.clone(), Some(b2.clone()), options());
                let scale = match mobilenet {
                    true => activation::hard_sigmoid(scale, 1.0 / 6.0, 0.5),
                    false => activation::sigmoid(scale),
                };
                x.clone() * scale
            })
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
    // ConvNeXt-T's first Linear layer and its GELU at batch 8: the activation on pieces of the
    // output as the product writes them, against the layer then burn's GELU.
    let (rows, inputs, outputs) = (8 * 56 * 56, 96, 384);
    let layer = LinearConfig::new(inputs, outputs).init(&device);
    let bias = layer.bias.as_ref().map(|b| b.val());
    let packed = PackedLinear::new(&layer.weight.val(), bias.as_ref()).expect("float32");
    let x = Tensor::<2>::random([rows, inputs], Distribution::Default, &device);
    let name = "convnext_b8_56x56x96_to_384_gelu";
    group.bench_function(BenchmarkId::new("featx", name), |bench| {
        bench.iter(|| {
            packed
                .forward_activated(x.clone(), Some(Elementwise::Gelu))
                .expect("fits")
        })
    });
    group.bench_function(BenchmarkId::new("burn", name), |bench| {
        bench.iter(|| activation::gelu(layer.forward(x.clone())))
    });
    group.finish();
}

fn layer_norms(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/layer_norm");
    group.sample_size(20);
    // (name, rows, features): ConvNeXt-T's first and last stage at batch 8 (`[N, H, W, C]`
    // rows, read contiguous here), ViT-B/16's tokens at batch 1.
    for (name, rows, features) in [
        ("convnext_b8_56x56x96", 8 * 56 * 56, 96),
        ("convnext_b8_7x7x768", 8 * 7 * 7, 768),
        ("vit_197x768", 197, 768),
    ] {
        let gamma = Tensor::<1>::random([features], Distribution::Default, &device);
        let beta = Tensor::<1>::random([features], Distribution::Default, &device);
        let packed = PackedLayerNorm::new(&gamma, Some(&beta), 1e-6).expect("float32");
        let x = Tensor::<2>::random([rows, features], Distribution::Default, &device);
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| packed.forward(x.clone()).expect("fits"))
        });
        group.bench_function(BenchmarkId::new("burn", name), |bench| {
            bench.iter(|| {
                featx::burn::tensor::module::layer_norm(
                    x.clone(),
                    gamma.clone(),
                    Some(beta.clone()),
                    1e-6,
                )
            })
        });
    }
    // ConvNeXt-T's first-stage LayerNorm as the model reads it at batch 8: the NHWC view of
    // its depthwise convolution's NCHW output, made row-major first (featx's tiled copy
    // against burn-flex's, as `contiguous` falls back to).
    let gamma = Tensor::<1>::random([96], Distribution::Default, &device);
    let packed = PackedLayerNorm::new(&gamma, Some(&gamma), 1e-6).expect("float32");
    let view =
        Tensor::<4>::random([8, 96, 56, 56], Distribution::Default, &device).permute([0, 2, 3, 1]);
    group.bench_function(
        BenchmarkId::new("featx", "convnext_b8_56x56x96_permuted"),
        |bench| {
            bench.iter(|| {
                let rows = contiguous(view.clone()).reshape([8 * 56 * 56, 96]);
                packed.forward(rows).expect("fits")
            })
        },
    );
    group.bench_function(
        BenchmarkId::new("featx-bands", "convnext_b8_56x56x96_permuted"),
        |bench| bench.iter(|| packed.forward_rows(view.clone()).expect("fits")),
    );
    group.bench_function(
        BenchmarkId::new("burn-copy", "convnext_b8_56x56x96_permuted"),
        |bench| {
            bench.iter(|| {
                packed
                    .forward(view.clone().reshape([8 * 56 * 56, 96]))
                    .expect("fits")
            })
        },
    );
    group.finish();
}

fn adds(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/add");
    group.sample_size(20);
    // (name, [N, C, H, W], whether the second operand is a permuted `[N, H, W, C]` buffer):
    // ConvNeXt-T's first-stage residual add (its block's Linear output, permuted) at batch 1
    // and 8, MobileNetV3-Large's first residual add at batch 8. Both operands stay held, as in
    // an every-node extraction, so each add writes a new buffer.
    for (name, [n, c, h, w], permuted) in [
        ("convnext_b1_96x56x56_permuted", [1, 96, 56, 56], true),
        ("convnext_b8_96x56x56_permuted", [8, 96, 56, 56], true),
        ("mobilenet_b8_16x112x112", [8, 16, 112, 112], false),
    ] {
        let x = Tensor::<4>::random([n, c, h, w], Distribution::Default, &device);
        let y = if permuted {
            Tensor::<4>::random([n, h, w, c], Distribution::Default, &device).permute([0, 3, 1, 2])
        } else {
            Tensor::<4>::random([n, c, h, w], Distribution::Default, &device)
        };
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| {
                add(x.clone(), y.clone())
                    .map_err(|_| "declined")
                    .expect("fits")
            })
        });
        group.bench_function(BenchmarkId::new("burn", name), |bench| {
            bench.iter(|| x.clone() + y.clone())
        });
    }
    group.finish();
}

fn held(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/held");
    group.sample_size(10);
    // ConvNeXt-T's first-stage GELU input (its Linear output) at batch 1 and 8, held by the
    // caller as an every-node extraction holds it: `map` writes a new buffer in one pass; the
    // path before it copied the buffer whole, then mapped the copy in place.
    for (name, n) in [
        ("convnext_gelu_b1_56x56x384", 1),
        ("convnext_gelu_b8_56x56x384", 8),
    ] {
        let x = Tensor::<4>::random([n, 56, 56, 384], Distribution::Default, &device);
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| {
                map(Elementwise::Gelu, x.clone())
                    .map_err(|_| "declined")
                    .expect("fits")
            })
        });
        group.bench_function(BenchmarkId::new("featx-copy-first", name), |bench| {
            bench.iter(|| {
                let mut v = x.to_data().try_into_vec::<f32>().expect("f32");
                Elementwise::Gelu.apply(&mut v);
                v
            })
        });
        group.bench_function(BenchmarkId::new("burn", name), |bench| {
            bench.iter(|| activation::gelu(x.clone()))
        });
    }
    // ConvNeXt-T's first-stage layer scale: `[96, 1, 1]` times the permuted (NHWC-stored)
    // Linear output, held.
    for (name, n) in [
        ("convnext_scale_b1_96x56x56_permuted", 1),
        ("convnext_scale_b8_96x56x56_permuted", 8),
    ] {
        let x = Tensor::<4>::random([n, 56, 56, 96], Distribution::Default, &device)
            .permute([0, 3, 1, 2]);
        let factors: Vec<f32> = (0..96).map(|i| 1e-6 * (i + 1) as f32).collect();
        let gamma = Tensor::<1>::from_floats(factors.as_slice(), &device).reshape([1, 96, 1, 1]);
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| {
                scale(x.clone(), 1, &factors)
                    .map_err(|_| "declined")
                    .expect("fits")
            })
        });
        group.bench_function(BenchmarkId::new("burn", name), |bench| {
            bench.iter(|| gamma.clone() * x.clone())
        });
    }
    group.finish();
}

fn convolution(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/conv");
    group.sample_size(20);
    // (name, input, output channels, kernel, stride): 1x1 convolutions (MobileNetV3's and
    // EfficientNet-B0's expansions, ResNet50's bottleneck), im2col (ResNet's stem and stride-2
    // 3x3), Winograd (ResNet18's first and last stage), at batch 1 and 8, and the direct form
    // (VGG's first layer).
    for (name, shape, outputs, k, s) in [
        ("mnv3_16x112_to_64_k1", [1, 16, 112, 112], 64, 1, 1),
        ("effb0_b8_24x56_to_144_k1", [8, 24, 56, 56], 144, 1, 1),
        ("r50_256x56_to_64_k1", [1, 256, 56, 56], 64, 1, 1),
        ("r18_3x224_to_64_k7s2", [1, 3, 224, 224], 64, 7, 2),
        ("r18_128x28_to_256_k3s2", [1, 128, 28, 28], 256, 3, 2),
        ("r18_64x56_to_64_k3", [1, 64, 56, 56], 64, 3, 1),
        ("r18_512x7_to_512_k3", [1, 512, 7, 7], 512, 3, 1),
        ("r18_b8_512x7_to_512_k3", [8, 512, 7, 7], 512, 3, 1),
        ("vgg_3x224_to_64_k3", [1, 3, 224, 224], 64, 3, 1),
    ] {
        let x = Tensor::<4>::random(shape, Distribution::Default, &device);
        let w = Tensor::<4>::random([outputs, shape[1], k, k], Distribution::Default, &device);
        let b = Tensor::<1>::random([outputs], Distribution::Default, &device);
        let window = Window2d::square(k, s, k / 2);
        let packed = PackedConv2d::new(&w, Some(&b), window, 1).expect("a convolution");
        group.bench_function(BenchmarkId::new("featx", name), |bench| {
            bench.iter(|| packed.forward(x.clone(), None, false).expect("fits"))
        });
        let options = ConvOptions::new([s, s], [k / 2, k / 2], [1, 1], 1);
        group.bench_function(BenchmarkId::new("burn", name), |bench| {
            bench.iter(|| conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone()))
        });
    }
    // In a model a layer's weights come from memory, not from the cache the last call left
    // them in: eight of ResNet18's last layers (75 MB of weights) in turn.
    let x = Tensor::<4>::random([1, 512, 7, 7], Distribution::Default, &device);
    let layers: Vec<_> = (0..8)
        .map(|_| {
            let w = Tensor::<4>::random([512, 512, 3, 3], Distribution::Default, &device);
            PackedConv2d::new(&w, None, Window2d::square(3, 1, 1), 1).expect("a convolution")
        })
        .collect();
    let mut turn = 0;
    group.bench_function(
        BenchmarkId::new("featx", "r18_512x7_to_512_k3_cold"),
        |bench| {
            bench.iter(|| {
                turn = (turn + 1) % layers.len();
                layers[turn].forward(x.clone(), None, false).expect("fits")
            })
        },
    );
    group.finish();
}

fn blocks(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("cpu/block");
    group.sample_size(20);
    // ViT-B/16's encoder block parts at batch 1: self attention (12 heads) and the MLP, on 197
    // tokens of 768.
    let tokens = Tensor::<3>::random([1, 197, 768], Distribution::Default, &device);
    let proj = LinearConfig::new(768, 3 * 768).init(&device);
    let out = LinearConfig::new(768, 768).init(&device);
    let bias = |l: &featx::burn::nn::Linear| l.bias.as_ref().map(|b| b.val());
    let (proj_bias, out_bias) = (bias(&proj), bias(&out));
    let attention = PackedAttention::new(
        &proj.weight.val(),
        proj_bias.as_ref(),
        &out.weight.val(),
        out_bias.as_ref(),
        12,
    )
    .expect("float32");
    group.bench_function(BenchmarkId::new("featx", "vit_attention"), |bench| {
        bench.iter(|| attention.forward(tokens.clone()).expect("fits"))
    });
    group.bench_function(BenchmarkId::new("burn", "vit_attention"), |bench| {
        bench.iter(|| {
            let qkv = proj
                .forward(tokens.clone())
                .reshape([1, 197, 3, 12, 64])
                .permute([2, 0, 3, 1, 4]);
            let part =
                |i: usize| -> Tensor<4> { qkv.clone().narrow(0, i, 1).reshape([1, 12, 197, 64]) };
            let scores = part(0).matmul(part(1).swap_dims(2, 3)) / 8.0;
            let merged = activation::softmax(scores, 3)
                .matmul(part(2))
                .swap_dims(1, 2)
                .reshape([1, 197, 768]);
            out.forward(merged)
        })
    });
    let fc1 = LinearConfig::new(768, 3072).init(&device);
    let fc2 = LinearConfig::new(3072, 768).init(&device);
    let (b1, b2) = (bias(&fc1), bias(&fc2));
    let mlp = PackedMlp::new(
        (&fc1.weight.val(), b1.as_ref()),
        (&fc2.weight.val(), b2.as_ref()),
    )
    .expect("float32");
    let rows = tokens.clone().reshape([197, 768]);
    group.bench_function(BenchmarkId::new("featx", "vit_mlp"), |bench| {
        bench.iter(|| mlp.forward(rows.clone()).expect("fits"))
    });
    group.bench_function(BenchmarkId::new("burn", "vit_mlp"), |bench| {
        bench.iter(|| fc2.forward(activation::gelu(fc1.forward(tokens.clone()))))
    });
    group.finish();
}

criterion_group!(
    benches,
    activations,
    depthwise,
    batch_norms,
    squeeze_excitation,
    linear,
    layer_norms,
    adds,
    held,
    convolution,
    blocks
);
criterion_main!(benches);
