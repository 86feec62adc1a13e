//! Eval-mode BatchNorm folding: `bn(conv(x))` computed as one convolution with scaled weights
//! and a bias, when nothing asks for the convolution's own output. Every requested node keeps
//! its value (up to float rounding, far inside the parity tolerance); the convolution's output
//! is simply never materialised, which saves a full pass over the activation.

use burn::prelude::*;
use burn::tensor::activation;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use featx_graph::{Graph, NodeId, Op};
use featx_models::Layer;

use crate::cpu_conv::CpuConv;

/// A convolution folded into the BatchNorm that reads it.
#[derive(Debug, Clone)]
pub(crate) struct FoldedConv {
    /// The convolution node, which is not executed.
    pub conv: NodeId,
    weight: Tensor<4>,
    bias: Tensor<1>,
    options: ConvOptions<2>,
    /// The same convolution packed for the CPU kernel, on the flex device.
    cpu: Option<CpuConv>,
}

impl FoldedConv {
    /// The BatchNorm node's value, from the convolution's input; through ReLU when `relu`.
    pub fn forward(&self, x: Tensor<4>, relu: bool) -> Tensor<4> {
        let x = match &self.cpu {
            Some(cpu) => match cpu.forward(x, relu) {
                Ok(y) => return y,
                Err(x) => x,
            },
            None => x,
        };
        let y = conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            self.options.clone(),
        );
        if relu { activation::relu(y) } else { y }
    }
}

/// The options of a convolution node; `None` for other ops.
pub(crate) fn conv_options(op: &Op) -> Option<ConvOptions<2>> {
    match op {
        Op::Conv2d {
            stride,
            padding,
            dilation,
            groups,
            ..
        } => Some(ConvOptions::new(*stride, *padding, *dilation, *groups)),
        _ => None,
    }
}

/// For each needed BatchNorm node that can absorb its convolution, the folded convolution
/// (packed for the CPU kernel too, so only BatchNorms that will run are folded).
///
/// A pair qualifies when the BatchNorm is the convolution's only reader and the convolution
/// itself is not requested (`requested[i]`).
pub(crate) fn fold_conv_bn(
    graph: &Graph,
    layers: &[Option<Layer>],
    needed: &[bool],
    requested: &[bool],
) -> Vec<Option<FoldedConv>> {
    let nodes = graph.nodes();
    let mut readers = vec![0usize; nodes.len()];
    for node in nodes {
        for input in &node.inputs {
            readers[input.0] += 1;
        }
    }
    nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let (Op::BatchNorm2d { eps, .. }, Some(Layer::BatchNorm(bn)), true) =
                (&node.op, layers.get(i).and_then(Option::as_ref), needed[i])
            else {
                return None;
            };
            let conv_id = *node.inputs.first()?;
            let (Some(options), Some(Layer::Conv2d(conv))) = (
                conv_options(&nodes[conv_id.0].op),
                layers.get(conv_id.0).and_then(Option::as_ref),
            ) else {
                return None;
            };
            if readers[conv_id.0] != 1 || requested[conv_id.0] || graph.output() == conv_id {
                return None;
            }
            let scale = bn.gamma.val() / (bn.running_var.value() + *eps).sqrt();
            let [out_channels] = scale.dims();
            let weight = conv.weight.val() * scale.clone().reshape([out_channels, 1, 1, 1]);
            let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
            let bias = match &conv.bias {
                Some(b) => shift + b.val() * scale,
                None => shift,
            };
            Some(FoldedConv {
                conv: conv_id,
                cpu: CpuConv::new(&weight, Some(&bias), &options),
                weight,
                bias,
                options,
            })
        })
        .collect()
}
