//! Which nodes one forward pass can return with exactly the values a request of each node on
//! its own gives.
//!
//! A plan's rewrites never change a value beyond rounding, but rounding is enough to change a
//! picture's bytes. In eval mode a BatchNorm folds into the convolution before it only while
//! nothing else reads the convolution: a request of the convolution keeps it unfolded, so a
//! request of every node would compute every later value from unfolded BatchNorms, unlike a
//! request of any one of them. Leaving out those convolutions (and BatchNorms whose
//! convolution has other readers, which fold in one request and not in another) gives a pass
//! whose every value equals the single request's; the left-out nodes are computed on their
//! own. A ReLU fused into a convolution's epilogue is the same `max(v, 0)` either way.

use featx_graph::{Layer, Mode, NodeId, Op};
use featx_models::TracedModel;

/// The tensor nodes of `model` split in two: those one forward pass in `mode` returns with the
/// values single requests give, and those that need a request of their own, each in execution
/// order. In train mode nothing folds, so the second list is empty. The ids are of `mode`'s
/// graph ([`TracedModel::in_mode`]).
pub fn one_pass_nodes(model: &TracedModel, mode: Mode) -> (Vec<NodeId>, Vec<NodeId>) {
    let model = model.in_mode(mode);
    let graph = &model.graph;
    let nodes = graph.nodes();
    let mut readers = vec![0usize; nodes.len()];
    for node in nodes {
        for input in &node.inputs {
            readers[input.0] += 1;
        }
    }
    let layer = |id: NodeId| model.layers.get(id.0).and_then(Option::as_ref);
    let mut alone = vec![false; nodes.len()];
    if mode == Mode::Eval {
        for (i, node) in nodes.iter().enumerate() {
            let (Op::BatchNorm2d(_), Some(Layer::BatchNorm(_))) = (&node.op, layer(NodeId(i)))
            else {
                continue;
            };
            let Some(&conv) = node.inputs.first() else {
                continue;
            };
            let (Op::Conv2d(_), Some(Layer::Conv2d(_))) = (&nodes[conv.0].op, layer(conv)) else {
                continue;
            };
            if conv == graph.output() {
                continue;
            }
            if readers[conv.0] == 1 {
                alone[conv.0] = true;
            } else {
                alone[i] = true;
            }
        }
    }
    (0..nodes.len())
        .map(NodeId)
        .filter(|&id| graph.is_tensor(id))
        .partition(|id| !alone[id.0])
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::Distribution;

    use super::*;
    use crate::{FeatureExtractor, ReturnNodes};

    /// Every node of one pass equals, bit for bit, the same node requested on its own; the
    /// left-out nodes are the convolutions before the folded BatchNorms.
    fn one_pass_equals_single_requests(name: &str, size: usize) {
        let device = Device::flex();
        device.seed(3);
        let arch = featx_models::find(name).expect("a zoo model");
        let model = arch.random(&device);
        let (pass, alone) = one_pass_nodes(&model, Mode::Eval);
        let names = |ids: &[NodeId]| -> Vec<String> {
            ids.iter()
                .map(|id| model.graph.nodes()[id.0].name.clone())
                .collect()
        };
        let x = Tensor::<4>::random([1, 3, size, size], Distribution::Default, &device);
        let all = FeatureExtractor::new(model.clone(), &ReturnNodes::from(names(&pass)))
            .expect("extractor")
            .forward(x.clone())
            .expect("forward");
        for node in names(&pass).iter().chain(&names(&alone)) {
            let single =
                FeatureExtractor::new(model.clone(), &ReturnNodes::from(vec![node.clone()]))
                    .expect("extractor")
                    .forward(x.clone())
                    .expect("forward");
            let single = single
                .get(node)
                .expect("requested")
                .to_vec_f32()
                .expect("f32");
            if let Some(value) = all.get(node) {
                let value = value.to_vec_f32().expect("f32");
                let same = value.len() == single.len()
                    && value
                        .iter()
                        .zip(&single)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{name}: {node} differs between one pass and its own request"
                );
            }
        }
        assert!(
            alone
                .iter()
                .all(|id| matches!(model.graph.nodes()[id.0].op, Op::Conv2d(_))),
            "{name}: only convolutions before folded BatchNorms are left out"
        );
    }

    #[test]
    fn resnet18_in_one_pass() {
        one_pass_equals_single_requests("resnet18", 64);
    }

    #[test]
    fn mobilenet_v3_small_in_one_pass() {
        one_pass_equals_single_requests("mobilenet_v3_small", 64);
    }

    #[test]
    fn regnet_in_one_pass() {
        one_pass_equals_single_requests("regnet_x_400mf", 64);
    }

    #[test]
    fn train_mode_leaves_nothing_out() {
        let model = featx_models::find("resnet18")
            .expect("a zoo model")
            .random(&Device::flex());
        assert!(one_pass_nodes(&model, Mode::Train).1.is_empty());
        assert_eq!(one_pass_nodes(&model, Mode::Eval).1.len(), 20);
    }
}
