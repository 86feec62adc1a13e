use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;
use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, TensorFn, Value, lazy_dims};

/// `nn.Linear` over the last dimension.
///
/// # Shapes
/// `[..., in_features]` to `[..., out_features]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Linear {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Whether a bias is added.
    pub bias: bool,
}

impl Linear {
    /// The op of burn's linear module (weights `[in, out]`).
    pub fn of(linear: &burn::nn::Linear) -> Self {
        let [in_features, out_features] = lazy_dims(&linear.weight);
        Linear {
            in_features,
            out_features,
            bias: linear.bias.is_some(),
        }
    }

    /// `linear` with each output scaled by `scale` (one value per output): its weight's
    /// columns and its bias multiplied in float64 and rounded once, so that the layer computes
    /// `scale * linear(x)` in one product (ConvNeXt's `layer_scale` after its block's last
    /// Linear). `None` when `scale` is not one value per output.
    pub fn fold_scale(linear: &burn::nn::Linear, scale: &[f64]) -> Option<burn::nn::Linear> {
        let [inputs, outputs] = linear.weight.dims();
        if scale.len() != outputs {
            return None;
        }
        let device = linear.weight.device();
        let weight: Vec<f32> = linear
            .weight
            .val()
            .into_data()
            .iter::<f64>()
            .enumerate()
            .map(|(i, w)| (w * scale[i % outputs]) as f32)
            .collect();
        let mut folded = linear.clone();
        folded.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, [inputs, outputs]),
            &device,
        ));
        folded.bias = linear.bias.as_ref().map(|b| {
            let bias: Vec<f32> = b
                .val()
                .into_data()
                .iter::<f64>()
                .zip(scale)
                .map(|(b, s)| (b * s) as f32)
                .collect();
            Param::from_tensor(Tensor::from_data(TensorData::new(bias, [outputs]), &device))
        });
        Some(folded)
    }
}

impl OpDef for Linear {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        match first_shape(inputs)?.split_last() {
            Some((last, rest)) if *last == self.in_features => {
                let mut out = rest.to_vec();
                out.push(self.out_features);
                tensor(out)
            }
            _ => Err(format!("expected a last dimension of {}", self.in_features)),
        }
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::Linear(linear)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        Ok(single_any(inputs)?.map_float(linear))
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::Linear(_)))
    }
}

impl TensorFn for &burn::nn::Linear {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        self.forward(t)
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;

    use super::*;

    #[test]
    fn a_folded_scale_scales_each_output() {
        let device = Device::flex();
        let layer = LinearConfig::new(6, 4).init(&device);
        let scale = [0.5, -2.0, 1e-6, 3.0];
        let folded = Linear::fold_scale(&layer, &scale).expect("one per output");
        let x = Tensor::<2>::random([3, 6], Distribution::Normal(0.0, 1.0), &device);
        let s = Tensor::<1>::from_floats(scale.map(|v| v as f32), &device).unsqueeze::<2>();
        let want = layer.forward(x.clone()) * s;
        let diff = (folded.forward(x) - want.clone()).abs().max().into_scalar::<f32>();
        let size = want.abs().max().into_scalar::<f32>();
        assert!(diff <= 1e-6 * size, "{diff} of {size}");
        assert!(Linear::fold_scale(&layer, &scale[..3]).is_none());
    }
}
