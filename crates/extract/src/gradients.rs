//! Gradients through an extractor: run the requested part of the graph with a gradient tape,
//! differentiate a scalar built from the requested values, and read its gradient with respect
//! to the input and to every requested node (what PyTorch's `register_hook` on a feature gives,
//! and what the CAM methods are made of).

use burn::prelude::*;

use crate::execute::execute;
use crate::plan::Tape;
use crate::{ExtractError, Feature, FeatureExtractor, Features, Result};

/// What one backward pass gives: the requested values, the scalar that was differentiated,
/// and its gradient with respect to the input and to each requested node. Nothing in it
/// carries a gradient tape.
#[derive(Debug, Clone)]
pub struct Backward {
    /// The requested values, as [`FeatureExtractor::forward`] returns them.
    pub features: Features,
    /// `d score / d value` for every requested value: the same keys, order and shapes (zeros
    /// where the score does not depend on the value).
    pub gradients: Features,
    /// `d score / d input`, the input's shape ([`FeatureExtractor::backward`]; `None` from
    /// [`FeatureExtractor::feature_gradients`]).
    pub input: Option<Tensor<4>>,
    /// The score's value.
    pub score: f32,
}

impl FeatureExtractor {
    /// Runs the extractor on `x` with a gradient tape, builds a one-element score from the
    /// requested values with `score` (a class logit, a sum over a feature map), and returns
    /// its gradients with respect to `x` and to every requested node.
    ///
    /// The gradient of a requested node is its total gradient, through every later use (a
    /// node requested together with one of its ancestors passes its gradient on to it), as
    /// PyTorch's autograd computes it. The mode is the extractor's: eval mode differentiates
    /// through BatchNorm's running statistics, train mode through batch statistics. The run
    /// uses burn's differentiable ops only: BatchNorm folding and featx's CPU kernels, which
    /// have no backward pass, step aside, so it is slower than [`FeatureExtractor::forward`].
    ///
    /// Fails as `forward` does on a bad input, and with [`ExtractError::NotScalar`] when
    /// `score` returns more than one value.
    pub fn backward(
        &self,
        x: Tensor<4>,
        score: impl FnOnce(&Features) -> Tensor<1>,
    ) -> Result<Backward> {
        self.run_backward(x, score, Tape::FromInput)
    }

    /// [`FeatureExtractor::backward`] without the input's gradient: only what depends on a
    /// requested node is recorded and differentiated, and everything before runs on the fast
    /// forward path (BatchNorm folding, featx's CPU kernels). The requested nodes' gradients
    /// are the same; for a node late in the network (Grad-CAM's `layer4`) this is most of a
    /// forward pass cheaper.
    pub fn feature_gradients(
        &self,
        x: Tensor<4>,
        score: impl FnOnce(&Features) -> Tensor<1>,
    ) -> Result<Backward> {
        self.run_backward(x, score, Tape::FromRequested)
    }

    fn run_backward(
        &self,
        x: Tensor<4>,
        score: impl FnOnce(&Features) -> Tensor<1>,
        tape: Tape,
    ) -> Result<Backward> {
        let (x, shapes) = self.accept(x)?;
        let x = match tape {
            Tape::FromInput => x.autodiff().require_grad(),
            Tape::FromRequested | Tape::Off => x,
        };
        let executed = execute(
            self.tape_plan(tape),
            &self.model.graph,
            Feature::from(x.clone()),
            &shapes,
            self.outputs.len(),
        )?;
        let features = self.collect(executed.values)?;
        let score = score(&features);
        let dims = score.dims().to_vec();
        if dims != [1] {
            return Err(ExtractError::NotScalar { shape: dims });
        }
        let grads = score.backward();
        let value = Feature::from(score.without_autodiff()).to_vec_f32()?[0];
        let input = match tape {
            Tape::FromInput => Some(
                x.grad(&grads)
                    .unwrap_or_else(|| x.zeros_like().without_autodiff()),
            ),
            Tape::FromRequested | Tape::Off => None,
        };
        let mut gradients = Features::with_capacity(self.outputs.len());
        for ((key, feature), probe) in features.iter().zip(&executed.probes) {
            let grad = probe
                .as_ref()
                .and_then(|p| p.grad(&grads))
                .unwrap_or_else(|| feature.zeros());
            gradients.push(key.to_string(), grad);
        }
        let mut values = Features::with_capacity(self.outputs.len());
        for (key, feature) in features {
            values.push(key, feature.without_autodiff());
        }
        Ok(Backward {
            features: values,
            gradients,
            input,
            score: value,
        })
    }
}
