use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::TensorData;
use featx_graph::NodeId;
use featx_models::{FeatureModel, InputSpec, Tracer};

use super::*;

/// A ViT-shaped toy: a 1x1 "patch" convolution, flattened to `[N, C, tokens]`, permuted to
/// `[N, tokens, C]`, and a linear head over each token.
struct Tokens {
    conv: Conv2d,
    head: Linear,
}

impl FeatureModel for Tokens {
    fn name(&self) -> &str {
        "tokens"
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: 2,
            size: None,
            nominal_size: [2, 2],
        }
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.conv2d("conv_proj", &self.conv, x);
        let x = t.flatten(x, 2);
        let x = t.permute(x, &[0, 2, 1]);
        t.linear("head", &self.head, x)
    }
}

fn tokens(device: &Device) -> Tokens {
    fn tensor<const D: usize>(
        values: Vec<f32>,
        shape: [usize; D],
        device: &Device,
    ) -> Param<Tensor<D>> {
        Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
    }
    let mut conv = Conv2dConfig::new([2, 3], [1, 1])
        .with_bias(false)
        .init(device);
    // out0 = c0, out1 = c1, out2 = c0 + c1.
    conv.weight = tensor(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], [3, 2, 1, 1], device);
    let mut head = LinearConfig::new(3, 2).init(device);
    // burn's [in, out] layout: y0 = t0 + t2 + 0.5, y1 = t1 - t2.
    head.weight = tensor(vec![1.0, 0.0, 0.0, 1.0, 1.0, -1.0], [3, 2], device);
    head.bias = Some(tensor(vec![0.5, 0.0], [2], device));
    Tokens { conv, head }
}

#[test]
fn rank3_token_features_extract_with_hand_computed_values() {
    let device = Device::flex();
    let model = tokens(&device);
    let request = ReturnNodes::from(["permute", "head", "flatten"].as_slice());
    let extractor = FeatureExtractor::new(model.trace(), &request).expect("resolves");
    assert_eq!(
        extractor.check_input(&[1, 2, 2, 2]).expect("fits"),
        [vec![1, 4, 3], vec![1, 4, 2], vec![1, 3, 4]]
    );
    // Channel 0 holds 1..4 over the four pixels, channel 1 holds 10..40.
    let x = Tensor::<4>::from_data(
        TensorData::new(
            vec![1.0f32, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0],
            [1, 2, 2, 2],
        ),
        &device,
    );
    let out = extractor.forward(x).expect("runs");
    let values = |key: &str| {
        let f = out.get(key).expect("requested");
        (f.dims(), f.to_vec_f32().expect("f32"))
    };
    // Token p is [c0, c1, c0 + c1] of pixel p.
    assert_eq!(
        values("permute"),
        (
            vec![1, 4, 3],
            vec![1., 10., 11., 2., 20., 22., 3., 30., 33., 4., 40., 44.]
        )
    );
    // Per token: [c0 + (c0 + c1) + 0.5, c1 - (c0 + c1)] = [2 c0 + c1 + 0.5, -c0].
    assert_eq!(
        values("head"),
        (
            vec![1, 4, 2],
            vec![12.5, -1., 24.5, -2., 36.5, -3., 48.5, -4.]
        )
    );
    assert_eq!(
        values("flatten"),
        (
            vec![1, 3, 4],
            vec![1., 2., 3., 4., 10., 20., 30., 40., 11., 22., 33., 44.]
        )
    );
    // The convolution and the Linear head ran on the CPU kernels, the token ops on burn's.
    let report = extractor.plan_report();
    assert!(
        report.ran_on("conv_proj", "cpu-gemm"),
        "{:?}",
        report.kernels
    );
    assert!(report.ran_on("head", "cpu-linear"), "{:?}", report.kernels);
    assert!(report.ran_on("permute", "burn"), "{:?}", report.kernels);
}

#[test]
fn a_token_model_checks_its_input_rank_before_compute() {
    let device = Device::flex();
    let extractor = FeatureExtractor::new(
        tokens(&device).trace(),
        &ReturnNodes::from(["head"].as_slice()),
    )
    .expect("resolves");
    // Rank 3 input: the placeholder wants rank 4.
    let err = extractor.check_input(&[1, 2, 4]).unwrap_err();
    assert!(matches!(err, ExtractError::InvalidInput { .. }), "{err}");
}

/// A model whose `forward` branches on `self.training`: train mode records an extra
/// head (`aux`, a ReLU of the input) before the output, so node ids differ between the
/// graphs.
struct WithAux;

impl FeatureModel for WithAux {
    fn name(&self) -> &str {
        "with_aux"
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: 1,
            size: None,
            nominal_size: [1, 4],
        }
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        self.forward_trace_in(t, x, Mode::Eval)
    }

    fn traces_by_mode(&self) -> bool {
        true
    }

    fn forward_trace_in(&self, t: &mut Tracer, x: NodeId, mode: Mode) -> NodeId {
        if mode == Mode::Train {
            t.relu("aux", x);
        }
        let x = t.mul_scalar(x, 2.0);
        t.add_scalar(x, 1.0)
    }
}

#[test]
fn each_mode_runs_its_own_graph_and_train_only_nodes_say_so() {
    let device = Device::flex();
    let traced = WithAux.trace();
    assert_eq!(
        traced.node_names(),
        (
            vec!["x".into(), "aux".into(), "mul".into(), "add".into()],
            vec!["x".into(), "mul".into(), "add".into()]
        )
    );
    let x = || {
        Tensor::<4>::from_data(
            TensorData::new(vec![-1.0f32, 0.5, 2.0, -3.0], [1, 1, 1, 4]),
            &device,
        )
    };
    let values = |e: &FeatureExtractor, key: &str| {
        let out = e.forward(x()).expect("runs");
        out.get(key).expect("requested").to_vec_f32().expect("f32")
    };
    // Built in eval mode, switched to train: `add` is node 2 in one graph, 3 in the other.
    let both = FeatureExtractor::new(traced.clone(), &ReturnNodes::from(["add"].as_slice()))
        .expect("resolves");
    assert_eq!(values(&both, "add"), [-1.0, 2.0, 5.0, -5.0]);
    let both = both.with_mode(Mode::Train);
    assert_eq!(both.model().graph.names().len(), 4);
    assert_eq!(values(&both, "add"), [-1.0, 2.0, 5.0, -5.0]);
    // `aux` exists in train mode only.
    let err =
        FeatureExtractor::new(traced.clone(), &ReturnNodes::from(["aux"].as_slice())).unwrap_err();
    assert!(
        matches!(&err, ExtractError::ModeOnly { node, mode: Mode::Train, .. } if node == "aux"),
        "{err}"
    );
    let train =
        FeatureExtractor::new_in(traced, &ReturnNodes::from(["aux"].as_slice()), Mode::Train)
            .expect("resolves in train mode");
    assert_eq!(values(&train, "aux"), [0.0, 0.5, 2.0, 0.0]);
    let eval = train.with_mode(Mode::Eval);
    let err = eval.forward(x()).unwrap_err();
    assert!(matches!(err, ExtractError::ModeOnly { .. }), "{err}");
    assert!(eval.check_input(&[1, 1, 1, 4]).is_err());
    // Back in train mode it runs again.
    assert_eq!(
        values(&eval.with_mode(Mode::Train), "aux"),
        [0.0, 0.5, 2.0, 0.0]
    );
}

/// The mobile nets' parameter-free ops on their own: every activation, a broadcasting
/// product with the per-channel mean, and stochastic depth.
struct Activations;

impl FeatureModel for Activations {
    fn name(&self) -> &str {
        "activations"
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: 1,
            size: None,
            nominal_size: [1, 6],
        }
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        use featx_graph::Activation::*;
        for (name, a) in [
            ("relu6", Relu6),
            ("hardswish", Hardswish),
            ("hardsigmoid", Hardsigmoid),
            ("silu", Silu),
            ("sigmoid", Sigmoid),
        ] {
            t.activation(name, a, x);
        }
        let mean = t.functional_adaptive_avg_pool2d([1, 1], x);
        let scaled = t.mul(mean, x);
        t.stochastic_depth("stochastic_depth", 1.0, true, scaled)
    }
}

#[test]
fn activations_mul_and_stochastic_depth_follow_pytorchs_definitions() {
    let device = Device::flex();
    let input = [-7.0f32, -2.0, -0.5, 0.0, 1.5, 8.0];
    let x = || Tensor::<4>::from_data(TensorData::new(input.to_vec(), [1, 1, 1, 6]), &device);
    let nodes = [
        "relu6",
        "hardswish",
        "hardsigmoid",
        "silu",
        "sigmoid",
        "mul",
        "stochastic_depth",
    ];
    let extractor =
        FeatureExtractor::new(Activations.trace(), &ReturnNodes::from(nodes.as_slice()))
            .expect("resolves");
    let out = extractor.forward(x()).expect("runs");
    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
    let relu6 = |v: f32| v.clamp(0.0, 6.0);
    let mean = input.iter().sum::<f32>() / 6.0;
    type Scalar = Box<dyn Fn(f32) -> f32>;
    let expected: [(&str, Scalar); 6] = [
        ("relu6", Box::new(relu6)),
        ("hardswish", Box::new(move |v| v * relu6(v + 3.0) / 6.0)),
        ("hardsigmoid", Box::new(move |v| relu6(v + 3.0) / 6.0)),
        ("silu", Box::new(move |v| v * sigmoid(v))),
        ("sigmoid", Box::new(sigmoid)),
        ("mul", Box::new(move |v| v * mean)),
    ];
    for (name, f) in &expected {
        let got = out.get(name).expect("requested").to_vec_f32().expect("f32");
        for (g, v) in got.iter().zip(input) {
            assert!((g - f(v)).abs() < 1e-6, "{name}({v}): {g} vs {}", f(v));
        }
    }
    // Eval: stochastic depth is the identity; train with p = 1: every sample dropped.
    let mul = out
        .get("mul")
        .expect("requested")
        .to_vec_f32()
        .expect("f32");
    let sd = out.get("stochastic_depth").expect("requested");
    assert_eq!(sd.to_vec_f32().expect("f32"), mul);
    let train = extractor.with_mode(Mode::Train).forward(x()).expect("runs");
    let dropped = train.get("stochastic_depth").expect("requested");
    assert!(dropped.to_vec_f32().expect("f32").iter().all(|&v| v == 0.0));
}

/// Runs on several threads at once, and inside rayon's pool (a dataset worker's way), give
/// each run the values one run alone gives, and all finish: every CPU run keeps the pool's
/// other workers awake for its length (`execute::keep_awake`), and here the runs share them.
#[test]
fn concurrent_runs_give_the_values_of_one_run_alone() {
    use featx_models::ResNetConfig;
    use rayon::prelude::*;

    let device = Device::flex();
    let model = ResNetConfig::resnet18(10).init(&device);
    let request = ReturnNodes::from(["layer2", "fc"].as_slice());
    let extractor = FeatureExtractor::new(model.trace(), &request).expect("resolves");
    let input = |seed: usize| {
        let values = (0..3 * 96 * 96)
            .map(|i| (((i * 7 + seed * 13) % 29) as f32 - 14.0) / 9.0)
            .collect::<Vec<_>>();
        Tensor::<4>::from_data(TensorData::new(values, [1, 3, 96, 96]), &device)
    };
    let run = |seed: usize| {
        let out = extractor.forward(input(seed)).expect("runs");
        ["layer2", "fc"].map(|key| out.get(key).expect("requested").to_vec_f32().expect("f32"))
    };
    let alone: Vec<_> = (0..4).map(run).collect();
    assert_ne!(alone[0], alone[1], "different inputs give different values");
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|t| {
                s.spawn(move || {
                    (0..4)
                        .into_par_iter()
                        .map(|seed| (seed, run((seed + t) % 4)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for (t, thread) in threads.into_iter().enumerate() {
            for (seed, values) in thread.join().expect("no panic") {
                assert_eq!(values, alone[(seed + t) % 4], "thread {t}, input {seed}");
            }
        }
    });
}
