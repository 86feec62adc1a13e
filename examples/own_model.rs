//! Your own model, traced: a small CNN written as Burn modules (a conv-BN-ReLU stem, one
//! residual block, a swish activation built from a sigmoid and a product, global pooling and a
//! linear head) that featx lists and extracts exactly as it does torchvision's models.
//!
//! ```text
//! cargo run --example own_model
//! cargo test --example own_model
//! ```
//!
//! Two things make a model traceable: its fields are named like the parameter paths of the
//! PyTorch module it mirrors (so a state dict loads with `featx::weights::load_state_dict`), and
//! [`FeatureModel::forward_trace`] records its forward pass with [`Tracer`] calls, one per
//! module call or operation, in the order PyTorch runs them. Node names follow torchvision's FX
//! rules: a module call is named by its path (`block.conv1`), an operation by its scope and
//! kind (`block.add`), and a repeated name gets a suffix (`block.relu_1`). The tests at the end
//! set hand-picked weights and check the extracted values against hand-computed ones.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
// Burn as featx re-exports it: `#[derive(Module)]` expands to `burn::...` paths, which this
// name serves in a crate that depends on featx alone.
use featx::burn;
use featx::graph::{Activation, NodeId};
use featx::models::{FeatureModel, InputSpec, Tracer};
use featx::{ReturnNodes, create_feature_extractor, get_graph_node_names};

/// The network. Its PyTorch twin's `state_dict` keys are these field paths: `conv1.weight`,
/// `bn1.running_mean`, `block.conv2.weight`, `fc.bias`, ...
#[derive(Module, Debug)]
pub struct TinyNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    block: ResidualBlock,
    fc: Linear,
    /// Input channels (not a parameter).
    #[module(skip)]
    in_channels: usize,
}

/// ResNet's basic block without downsampling: two 3x3 convolutions and a shortcut.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
}

impl TinyNet {
    /// Random weights, fresh BatchNorm statistics.
    pub fn new(in_channels: usize, width: usize, classes: usize, device: &Device) -> Self {
        Self {
            conv1: conv3x3(in_channels, width, device),
            bn1: BatchNormConfig::new(width).init(device),
            block: ResidualBlock {
                conv1: conv3x3(width, width, device),
                bn1: BatchNormConfig::new(width).init(device),
                conv2: conv3x3(width, width, device),
                bn2: BatchNormConfig::new(width).init(device),
            },
            fc: LinearConfig::new(width, classes).init(device),
            in_channels,
        }
    }
}

/// A bias-free 3x3 convolution that keeps the size (padding 1), as torchvision's `conv3x3`.
fn conv3x3(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

impl ResidualBlock {
    /// `relu(bn2(conv2(relu(bn1(conv1(x))))) + x)`. One `relu` module is called twice, as in
    /// torchvision's `BasicBlock`: FX names the second call `relu_1`.
    fn trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let out = t.conv2d("conv1", &self.conv1, x);
        let out = t.batch_norm("bn1", &self.bn1, out);
        let out = t.relu("relu", out);
        let out = t.conv2d("conv2", &self.conv2, out);
        let out = t.batch_norm("bn2", &self.bn2, out);
        let out = t.add(out, x);
        t.relu("relu", out)
    }
}

impl FeatureModel for TinyNet {
    fn name(&self) -> &str {
        "tinynet"
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_channels,
            // Global pooling before the head: any input size works.
            size: None,
            nominal_size: [32, 32],
        }
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        let x = t.conv2d("conv1", &self.conv1, x);
        let x = t.batch_norm("bn1", &self.bn1, x);
        let x = t.relu("relu", x);
        let x = t.scope("block", |t| self.block.trace(t, x));
        // Swish written out, as a parameter-free PyTorch module `act` would be: a
        // `gate = nn.Sigmoid()` child and `x * self.gate(x)`. (`Activation::Silu` is the same
        // function as one `nn.SiLU` node.)
        let x = t.scope("act", |t| {
            let gate = t.activation("gate", Activation::Sigmoid, x);
            t.mul(x, gate)
        });
        let x = t.adaptive_avg_pool2d("avgpool", [1, 1], x);
        let x = t.flatten(x, 1);
        t.linear("fc", &self.fc, x)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex();
    let model = TinyNet::new(3, 16, 10, &device);

    let (_train, eval) = get_graph_node_names(&model);
    println!("{} nodes: {}", eval.len(), eval.join(", "));

    // Module paths resolve to the last node inside them (`block` is `block.relu_1`); keys can
    // be renamed, like the dict form of torchvision's `return_nodes`.
    let request = ReturnNodes::aliased([
        ("relu", "stem"),
        ("block", "block"),
        ("act", "swish"),
        ("fc", "logits"),
    ]);
    let extractor = create_feature_extractor(&model, request)?;
    for r in extractor.outputs() {
        println!("{:>6} <- {}", r.key, r.node_name);
    }

    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
    let features = extractor.forward(x)?;
    for (key, feature) in features.iter() {
        println!("{key:>6}: {:?}", feature.dims());
    }
    let report = extractor.plan_report();
    println!(
        "one run: {} nodes, {} convolutions folded into their BatchNorm, {} ReLUs fused",
        report.planned_nodes, report.folded_convolutions, report.fused_relus
    );

    // A misspelt query fails before anything runs, naming the nearest real nodes.
    if let Err(e) = create_feature_extractor(&model, ["blok.relu"]) {
        println!("as expected: {e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use burn::module::{Param, RunningState};
    use burn::tensor::TensorData;
    use featx::Features;

    use super::*;

    fn param<const D: usize>(
        values: Vec<f32>,
        shape: [usize; D],
        device: &Device,
    ) -> Param<Tensor<D>> {
        Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
    }

    fn vector(values: [f32; 2], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(values.to_vec(), [2]), device)
    }

    /// A 2-channel BatchNorm with the given statistics and affine parameters. The stored
    /// variance is `var - epsilon`, so that `var` is what divides (its square root): the
    /// hand-computed values below are then round numbers.
    fn batch_norm(mean: [f32; 2], var: [f32; 2], gamma: [f32; 2], beta: [f32; 2]) -> BatchNorm {
        let device = Device::flex();
        let mut bn = BatchNormConfig::new(2).init(&device);
        let var = var.map(|v| v - bn.epsilon as f32);
        bn.running_mean = RunningState::new(vector(mean, &device));
        bn.running_var = RunningState::new(vector(var, &device));
        bn.gamma = Param::from_tensor(vector(gamma, &device));
        bn.beta = Param::from_tensor(vector(beta, &device));
        bn
    }

    /// A 3x3 convolution with every tap zero except `(out, in, ky, kx, weight)`.
    fn taps(conv: &mut Conv2d, [cout, cin]: [usize; 2], set: &[(usize, usize, usize, usize, f32)]) {
        let mut w = vec![0.0; cout * cin * 9];
        for &(o, i, ky, kx, v) in set {
            w[((o * cin + i) * 3 + ky) * 3 + kx] = v;
        }
        conv.weight = param(w, [cout, cin, 3, 3], &Device::flex());
    }

    /// One input channel, two feature channels, two classes, with hand-set weights.
    fn hand_set() -> TinyNet {
        let device = Device::flex();
        let mut model = TinyNet::new(1, 2, 2, &device);
        // Stem: channel 0 is the pixel itself (centre tap), channel 1 its right neighbour
        // (PyTorch's cross-correlation: tap (1, 2) reads x[i][j + 1], zero past the edge).
        taps(
            &mut model.conv1,
            [2, 1],
            &[(0, 0, 1, 1, 1.0), (1, 0, 1, 2, 1.0)],
        );
        model.bn1 = batch_norm([2.0, 1.0], [1.0, 4.0], [1.0, 2.0], [0.0, 0.5]);
        // Block: out0 = in1, out1 = in0 - in1; then out0 doubled, out1 kept.
        let block = &mut model.block;
        taps(
            &mut block.conv1,
            [2, 2],
            &[(0, 1, 1, 1, 1.0), (1, 0, 1, 1, 1.0), (1, 1, 1, 1, -1.0)],
        );
        block.bn1 = batch_norm([0.0; 2], [1.0; 2], [1.0; 2], [0.0, 1.0]);
        taps(
            &mut block.conv2,
            [2, 2],
            &[(0, 0, 1, 1, 2.0), (1, 1, 1, 1, 1.0)],
        );
        block.bn2 = batch_norm([0.0; 2], [1.0; 2], [1.0; 2], [-1.0, 0.0]);
        // burn's Linear is [in, out]: logit0 = m0 - m1, logit1 = m0 + m1 + 0.5.
        model.fc.weight = param(vec![1.0, 1.0, -1.0, 1.0], [2, 2], &device);
        model.fc.bias = Some(param(vec![0.0, 0.5], [2], &device));
        model
    }

    fn values(features: &Features, key: &str) -> Vec<f32> {
        let feature = features.get(key).expect("requested");
        feature.to_vec_f32().expect("float values")
    }

    fn assert_close(key: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{key}: {got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{key}: {got:?} vs {want:?}");
        }
    }

    fn swish(v: f32) -> f32 {
        v / (1.0 + (-v).exp())
    }

    #[test]
    fn node_names_follow_fx_naming() {
        let (train, eval) = get_graph_node_names(&TinyNet::new(3, 4, 5, &Device::flex()));
        let expected = [
            "x",
            "conv1",
            "bn1",
            "relu",
            "block.conv1",
            "block.bn1",
            "block.relu",
            "block.conv2",
            "block.bn2",
            "block.add",
            "block.relu_1",
            "act.gate",
            "act.mul",
            "avgpool",
            "flatten",
            "fc",
        ];
        assert_eq!(eval, expected);
        assert_eq!(train, eval);
    }

    #[test]
    fn extracted_values_equal_hand_computed_ones() {
        let device = Device::flex();
        let model = hand_set();
        let nodes = [
            "conv1",
            "relu",
            "block.bn1",
            "block.add",
            "block",
            "act",
            "fc",
        ];
        let extractor = create_feature_extractor(&model, nodes).expect("every node exists");
        let shapes = extractor.check_input(&[1, 1, 2, 2]).expect("a valid input");
        assert_eq!(shapes[..6], vec![vec![1, 2, 2, 2]; 6]);
        assert_eq!(shapes[6], [1, 2]);
        // The image [[1, 2], [3, 4]].
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]),
            &device,
        );
        let out = extractor.forward(x).expect("runs");

        // Channel after channel, each 2x2 row-major.
        // conv1: the pixels; their right neighbours.
        assert_close(
            "conv1",
            &values(&out, "conv1"),
            &[1., 2., 3., 4., 2., 0., 4., 0.],
        );
        // bn1: (v - 2) / 1 * 1 + 0 = [-1, 0, 1, 2]; (v - 1) / 2 * 2 + 0.5 = [1.5, -.5, 3.5, -.5].
        // relu clips the negatives.
        let stem = [0., 0., 1., 2., 1.5, 0., 3.5, 0.];
        assert_close("relu", &values(&out, "relu"), &stem);
        // block.conv1: [stem1, stem0 - stem1]; block.bn1 adds 1 to channel 1.
        assert_close(
            "block.bn1",
            &values(&out, "block.bn1"),
            &[1.5, 0., 3.5, 0., -0.5, 1., -1.5, 3.],
        );
        // block.relu: [1.5, 0, 3.5, 0], [0, 1, 0, 3]; conv2 doubles channel 0: [3, 0, 7, 0];
        // bn2 subtracts 1 from it: [2, -1, 6, -1]; the shortcut adds the stem.
        assert_close(
            "block.add",
            &values(&out, "block.add"),
            &[2., -1., 7., 1., 1.5, 1., 3.5, 3.],
        );
        let block = [2., 0., 7., 1., 1.5, 1., 3.5, 3.];
        assert_close("block", &values(&out, "block"), &block);
        // act: v * sigmoid(v) everywhere.
        let act: Vec<f32> = block.iter().map(|&v| swish(v)).collect();
        assert_close("act", &values(&out, "act"), &act);
        // avgpool: the mean of each channel; fc: [m0 - m1, m0 + m1 + 0.5].
        let m0 = act[..4].iter().sum::<f32>() / 4.0;
        let m1 = act[4..].iter().sum::<f32>() / 4.0;
        assert_close("fc", &values(&out, "fc"), &[m0 - m1, m0 + m1 + 0.5]);
    }

    /// Grad-CAM works on a traced model as on the zoo's. Its map at `act` is computable by
    /// hand: the top class is `fc`'s second output, `m0 + m1 + 0.5`, whose gradient at every
    /// position of both channels is 1/4; the map is `relu(act0 / 4 + act1 / 4)`, scaled to
    /// [0, 1] as pytorch-grad-cam scales it.
    #[test]
    fn grad_cam_of_the_own_model_is_hand_computable() {
        use featx::cam::{Cam, Target, find};
        let device = Device::flex();
        let cam = Cam::new(hand_set().trace(), &["act"]).expect("act is a feature map");
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]),
            &device,
        );
        let gradcam = find("gradcam").expect("a registered method");
        let out = cam.run(gradcam, x, Target::Top).expect("runs");
        assert_eq!(out.maps.shape, [1, 2, 2]);
        let block = [2., 0., 7., 1., 1.5, 1., 3.5, 3.];
        let act: Vec<f32> = block.iter().map(|&v| swish(v)).collect();
        let raw: Vec<f32> = (0..4).map(|p| (act[p] + act[4 + p]) / 4.0).collect();
        let (lo, hi) = raw
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let want: Vec<f32> = raw.iter().map(|v| (v - lo) / (hi - lo)).collect();
        assert_close("gradcam", &out.maps.values, &want);
    }
}
