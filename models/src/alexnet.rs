use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use featx_graph::{NodeId, Window2d};

use crate::{FeatureModel, InputSpec, Tracer};

/// The seed article's AlexNet (not torchvision's): three `nn.Sequential` feature stages and a
/// classifier, flattened with `view(-1, 9216)`.
///
/// Each stage is a `Vec<Option<_>>` indexed like the `nn.Sequential` it mirrors: parameter-free
/// positions (ReLU, MaxPool2d, Dropout) are `None`, so parameter paths keep torchvision's gaps
/// (`conv3.0`, `conv3.2`, `conv3.4`; `fc.0`, `fc.3`, `fc.6`).
#[derive(Module, Debug)]
pub struct AlexNet {
    conv1: Vec<Option<Conv2d>>,
    conv2: Vec<Option<Conv2d>>,
    conv3: Vec<Option<Conv2d>>,
    fc: Vec<Option<Linear>>,
}

/// Configuration of the article's [`AlexNet`].
#[derive(Config, Debug)]
pub struct AlexNetConfig {
    /// Classifier outputs (the article uses 100).
    #[config(default = 100)]
    pub num_classes: usize,
}

/// Flattened feature size after `conv3` at 224x224 (`256 * 6 * 6`).
const FLAT: usize = 9216;
/// Dropout probability of the classifier.
const DROPOUT: f64 = 0.5;

impl AlexNetConfig {
    /// Builds the model with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> AlexNet {
        let conv = |i: usize, o: usize, k: usize, s: usize, p: usize| {
            Some(
                Conv2dConfig::new([i, o], [k, k])
                    .with_stride([s, s])
                    .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                    .init(device),
            )
        };
        let linear = |i: usize, o: usize| Some(LinearConfig::new(i, o).init(device));
        AlexNet {
            conv1: vec![conv(3, 96, 11, 4, 2), None, None],
            conv2: vec![conv(96, 256, 5, 1, 2), None, None],
            conv3: vec![
                conv(256, 384, 3, 1, 1),
                None,
                conv(384, 384, 3, 1, 1),
                None,
                conv(384, 256, 3, 1, 1),
                None,
                None,
            ],
            fc: vec![
                linear(FLAT, 4096),
                None,
                None,
                linear(4096, 4096),
                None,
                None,
                linear(4096, self.num_classes),
            ],
        }
    }
}

/// What one position of a `nn.Sequential` stage does.
enum Step {
    Param,
    Relu,
    Pool,
    Dropout,
}

/// `nn.MaxPool2d(3, 2)`.
fn max_pool() -> Window2d {
    Window2d::square(3, 2, 0)
}

impl AlexNet {
    /// Traces one `nn.Sequential` stage: `layers[i]` is `Some` exactly where `steps[i]` is
    /// [`Step::Param`].
    fn trace_stage<L>(
        t: &mut Tracer,
        name: &str,
        layers: &[Option<L>],
        steps: &[Step],
        mut x: NodeId,
        param: impl Fn(&mut Tracer, &str, &L, NodeId) -> NodeId,
    ) -> NodeId {
        t.scope(name, |t| {
            for (i, step) in steps.iter().enumerate() {
                let index = i.to_string();
                x = match (step, layers.get(i).and_then(Option::as_ref)) {
                    (Step::Param, Some(layer)) => param(t, &index, layer, x),
                    (Step::Relu, _) => t.relu(&index, x),
                    (Step::Pool, _) => t.max_pool2d(&index, max_pool(), false, x),
                    (Step::Dropout, _) => t.dropout(&index, DROPOUT, x),
                    (Step::Param, None) => {
                        unreachable!("AlexNetConfig::init fills every Param step")
                    }
                };
            }
            x
        })
    }
}

impl FeatureModel for AlexNet {
    fn name(&self) -> &str {
        "alexnet"
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: 3,
            size: Some([224, 224]),
            nominal_size: [224, 224],
        }
    }

    fn forward_trace(&self, t: &mut Tracer, x: NodeId) -> NodeId {
        use Step::*;
        let conv = |t: &mut Tracer, n: &str, c: &Conv2d, x| t.conv2d(n, c, x);
        let x = Self::trace_stage(t, "conv1", &self.conv1, &[Param, Relu, Pool], x, conv);
        let x = Self::trace_stage(t, "conv2", &self.conv2, &[Param, Relu, Pool], x, conv);
        let conv3 = [Param, Relu, Param, Relu, Param, Relu, Pool];
        let x = Self::trace_stage(t, "conv3", &self.conv3, &conv3, x, conv);
        let x = t.view(x, &[-1, FLAT as i64]);
        let fc = [Param, Relu, Dropout, Param, Relu, Dropout, Param];
        Self::trace_stage(t, "fc", &self.fc, &fc, x, |t, n, l: &Linear, x| {
            t.linear(n, l, x)
        })
    }
}
