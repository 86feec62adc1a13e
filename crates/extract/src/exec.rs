use burn::tensor::Distribution;
use burn::tensor::module::{adaptive_avg_pool2d, batch_norm, batch_norm_train, max_pool2d};
use burn::tensor::ops::MaxPoolOptions;
use featx_graph::{Node, Op};
use featx_models::Layer;

use crate::cpu_pool::MaxPool;
use crate::{ExtractError, Feature, Mode, Result};

/// Computes one node from its input values.
///
/// `out_shape` is the node's inferred output shape, used by reshaping ops.
pub(crate) fn run_node(
    node: &Node,
    layer: Option<&Layer>,
    mut inputs: Vec<Feature>,
    out_shape: &[usize],
    mode: Mode,
) -> Result<Feature> {
    let internal = |reason: &str| ExtractError::Internal {
        node: node.name.clone(),
        reason: reason.to_string(),
    };
    if inputs.is_empty() {
        return Err(internal("no input value"));
    }
    let x = inputs.swap_remove(0);
    let map = |f: Feature| match f {
        Feature::Map(t) => Ok(t),
        Feature::Vector(_) => Err(internal("expected a rank-4 input")),
    };
    Ok(match (&node.op, layer) {
        (Op::Input { .. }, _) => x,
        (Op::Conv2d { .. }, Some(Layer::Conv2d(conv))) => Feature::Map(conv.forward(map(x)?)),
        (Op::BatchNorm2d { eps, .. }, Some(Layer::BatchNorm(bn))) => {
            let x = map(x)?;
            Feature::Map(match mode {
                Mode::Eval => batch_norm(
                    x,
                    bn.gamma.val(),
                    bn.beta.val(),
                    bn.running_mean.value(),
                    bn.running_var.value(),
                    *eps,
                ),
                Mode::Train => batch_norm_train(x, bn.gamma.val(), bn.beta.val(), *eps).output,
            })
        }
        (Op::Linear { .. }, Some(Layer::Linear(linear))) => match x {
            Feature::Vector(t) => Feature::Vector(linear.forward(t)),
            Feature::Map(t) => Feature::Map(linear.forward(t)),
        },
        (Op::Relu, _) => x.relu(),
        (
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
            },
            _,
        ) => {
            let x = map(x)?;
            let pool = MaxPool {
                kernel: *kernel,
                stride: *stride,
                padding: *padding,
                dilation: *dilation,
            };
            let x = match *out_shape {
                [_, _, oh, ow] => match pool.forward(x, [oh, ow]) {
                    Ok(y) => return Ok(Feature::Map(y)),
                    Err(x) => x,
                },
                _ => x,
            };
            let options = MaxPoolOptions::new(*kernel)
                .with_stride(*stride)
                .with_padding(*padding)
                .with_dilation(*dilation)
                .with_ceil_mode(*ceil_mode);
            Feature::Map(max_pool2d(x, options))
        }
        (Op::AdaptiveAvgPool2d { output }, _) => {
            Feature::Map(adaptive_avg_pool2d(map(x)?, *output))
        }
        (Op::Dropout { p }, _) => match mode {
            Mode::Eval => x,
            Mode::Train => dropout(x, *p),
        },
        (Op::Add, _) => {
            let y = inputs
                .pop()
                .ok_or_else(|| internal("add needs two inputs"))?;
            match (x, y) {
                (Feature::Map(a), Feature::Map(b)) => Feature::Map(a + b),
                (Feature::Vector(a), Feature::Vector(b)) => Feature::Vector(a + b),
                _ => return Err(internal("add of tensors of different rank")),
            }
        }
        (Op::Flatten { .. } | Op::View { .. }, _) => reshape(x, out_shape)
            .ok_or_else(|| internal("reshape supports rank 2 and rank 4 outputs only"))?,
        (Op::Conv2d { .. } | Op::BatchNorm2d { .. } | Op::Linear { .. }, _) => {
            return Err(internal("no parameters were traced for this layer"));
        }
    })
}

/// Inverted dropout as `nn.Dropout` in train mode: zero with probability `p`, scale the rest.
fn dropout(x: Feature, p: f64) -> Feature {
    if p <= 0.0 {
        return x;
    }
    let keep = 1.0 - p;
    let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
    match x {
        Feature::Map(t) => {
            let mask = t.random_like(Distribution::Bernoulli(keep));
            Feature::Map(t * mask * scale)
        }
        Feature::Vector(t) => {
            let mask = t.random_like(Distribution::Bernoulli(keep));
            Feature::Vector(t * mask * scale)
        }
    }
}

fn reshape(x: Feature, shape: &[usize]) -> Option<Feature> {
    let flat = match x {
        Feature::Map(t) => t.reshape([-1]),
        Feature::Vector(t) => t.reshape([-1]),
    };
    match *shape {
        [a, b] => Some(Feature::Vector(flat.reshape([a, b]))),
        [a, b, c, d] => Some(Feature::Map(flat.reshape([a, b, c, d]))),
        _ => None,
    }
}
