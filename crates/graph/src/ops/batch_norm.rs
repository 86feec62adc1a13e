use burn::module::Param;
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::module::{batch_norm, batch_norm_train};
use burn::tensor::TensorData;
use serde::Serialize;

use super::args::{first_shape, rank4, single, tensor};
use super::{Conv2d, Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, Mode, Value, lazy_dims};

/// `nn.BatchNorm2d`: running statistics in eval mode, batch statistics in train mode (running
/// statistics are never updated).
///
/// # Shapes
/// `[N, features, H, W]` to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchNorm2d {
    /// Channel count.
    pub features: usize,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl BatchNorm2d {
    /// The op of burn's BatchNorm module.
    pub fn of(bn: &BatchNorm) -> Self {
        let [features] = lazy_dims(&bn.gamma);
        BatchNorm2d {
            features,
            eps: bn.epsilon,
        }
    }

    /// `bn(x)` in `mode`.
    pub fn normalize(&self, x: Tensor<4>, bn: &BatchNorm, mode: Mode) -> Tensor<4> {
        let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
        match mode {
            Mode::Eval => {
                let (mean, var) = (bn.running_mean.value(), bn.running_var.value());
                batch_norm(x, gamma, beta, mean, var, self.eps)
            }
            Mode::Train => batch_norm_train(x, gamma, beta, self.eps).output,
        }
    }

    /// The eval-mode rewrite `bn(conv(x))` as one convolution: weights scaled per output
    /// channel, and a bias. Returns the folded op and its parameters.
    ///
    /// Computed once, when a plan is made, in float64 on the host and rounded to float32 at the
    /// end: in float32, `gamma / sqrt(var + eps)` and the scaled weights took three roundings
    /// where this takes one, and deep nets on generated weights carried the difference to 1.8x
    /// as far from torchvision's values (MobileNetV3-Large's closest share of the parity
    /// tolerance, 72% against 40%). On the host, not through the backend: not every GPU has
    /// float64.
    pub fn fold(
        &self,
        op: &Conv2d,
        conv: &burn::nn::conv::Conv2d,
        bn: &BatchNorm,
    ) -> (Conv2d, burn::nn::conv::Conv2d) {
        let host = |t: Tensor<1>| -> Vec<f64> { t.into_data().iter::<f64>().collect() };
        let (gamma, beta) = (host(bn.gamma.val()), host(bn.beta.val()));
        let (mean, var) = (host(bn.running_mean.value()), host(bn.running_var.value()));
        let scale: Vec<f64> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + self.eps).sqrt())
            .collect();
        let conv_bias = conv.bias.as_ref().map(|b| host(b.val()));
        let bias: Vec<f32> = (0..scale.len())
            .map(|c| {
                let shift = beta[c] - mean[c] * scale[c];
                let bias = conv_bias.as_ref().map_or(0.0, |b| b[c] * scale[c]);
                (shift + bias) as f32
            })
            .collect();
        let device = conv.weight.device();
        let weight = conv.weight.val().into_data();
        let shape = conv.weight.dims();
        let per_channel = (weight.num_elements() / scale.len().max(1)).max(1);
        let weight: Vec<f32> = weight
            .iter::<f64>()
            .enumerate()
            .map(|(i, w)| (w * scale[i / per_channel]) as f32)
            .collect();
        let mut folded = conv.clone();
        folded.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, shape),
            &device,
        ));
        folded.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [scale.len()]),
            &device,
        )));
        let op = Conv2d {
            bias: true,
            ..op.clone()
        };
        (op, folded)
    }
}

impl OpDef for BatchNorm2d {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        let [_, c, _, _] = rank4(shape)?;
        if c != self.features {
            return Err(format!("expected {} channels, got {c}", self.features));
        }
        tensor(shape.to_vec())
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::BatchNorm(bn)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        Ok(self.normalize(single(inputs)?, bn, cx.mode).into())
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::BatchNorm(_)))
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::BatchNormConfig;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    #[test]
    fn folding_into_the_convolution_computes_the_same_values() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([2, 3], [3, 3])
            .with_bias(false)
            .init(&device);
        let mut bn = BatchNormConfig::new(3).init(&device);
        let random = |shape: [usize; 1], lo: f64| {
            Tensor::<1>::random(shape, Distribution::Uniform(lo, 2.0), &device)
        };
        bn.gamma = Param::from_tensor(random([3], 0.5));
        bn.beta = Param::from_tensor(random([3], -1.0));
        bn.running_mean = burn::module::RunningState::new(random([3], -1.0));
        bn.running_var = burn::module::RunningState::new(random([3], 0.5));
        let op = Conv2d::of(&conv);
        let norm = BatchNorm2d::of(&bn);
        let x = Tensor::<4>::random([2, 2, 5, 5], Distribution::Default, &device);
        let two_steps = norm.normalize(op.convolve(x.clone(), &conv), &bn, Mode::Eval);
        let (folded_op, folded) = norm.fold(&op, &conv, &bn);
        assert!(folded_op.bias);
        folded_op
            .convolve(x, &folded)
            .into_data()
            .assert_approx_eq::<f32>(&two_steps.into_data(), Tolerance::absolute(1e-5));
    }
}
