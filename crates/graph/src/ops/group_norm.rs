use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, Value};

/// GroupNorm (`nn.GroupNorm`, ONNX `GroupNormalization`) and InstanceNorm (ONNX
/// `InstanceNormalization`, `nn.InstanceNorm2d(affine=True)`: one channel a group): each
/// sample's channels split into `groups` groups, each normalised over its channels and every
/// position with the biased variance (`(x - mean) / sqrt(var + epsilon)`), then scaled and
/// shifted per channel by the node's [`Layer::GroupNorm`] (burn's `GroupNorm`, whose `gamma`
/// and `beta` are `[channels]`; without them, no affine step).
///
/// # Shapes
/// `[N, channels, ...]` (rank 2 or more, `channels` a multiple of `groups`) to the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupNorm {
    /// The number of groups the channels split into.
    pub groups: usize,
    /// The number of channels (the second dimension).
    pub channels: usize,
    /// Added to the variance before the square root.
    pub epsilon: f64,
}

impl OpDef for GroupNorm {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        if shape.len() < 2 || shape[1] != self.channels {
            return Err(format!(
                "expected [N, {}, ...], got shape {shape:?}",
                self.channels
            ));
        }
        if self.groups == 0 || !self.channels.is_multiple_of(self.groups) {
            return Err(format!(
                "{} channels do not split into {} groups",
                self.channels, self.groups
            ));
        }
        tensor(shape.to_vec())
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::GroupNorm(norm)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        let x = single_any(inputs)?;
        let dims = x.dims();
        let refs = [&Value::Tensor(dims.clone())];
        self.infer(&refs)?;
        let (n, c) = (dims[0], dims[1]);
        for (name, p) in [("gamma", &norm.gamma), ("beta", &norm.beta)] {
            if let Some(p) = p
                && crate::lazy_dims(p) != [c]
            {
                return Err(format!("{name} of shape {:?} for {c} channels", p.dims()));
            }
        }
        let positions = dims[2..].iter().product::<usize>();
        let x = x
            .reshape(&[n, self.groups, c / self.groups * positions])
            .and_then(|x| x.into_rank::<3>().ok())
            .ok_or_else(|| format!("cannot group shape {dims:?}"))?;
        let centred = x.clone() - x.mean_dim(2);
        let var = centred.clone().square().mean_dim(2);
        let normalised = (centred / (var + self.epsilon).sqrt()).reshape([n, c, positions]);
        let scaled = match &norm.gamma {
            Some(gamma) => normalised * gamma.val().reshape([1, c, 1]),
            None => normalised,
        };
        let shifted = match &norm.beta {
            Some(beta) => scaled + beta.val().reshape([1, c, 1]),
            None => scaled,
        };
        Feature::from(shifted)
            .reshape(&dims)
            .ok_or_else(|| format!("cannot reshape back to {dims:?}"))
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::GroupNorm(_)))
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::GroupNormConfig;
    use burn::prelude::*;
    use burn::tensor::TensorData;

    use super::super::args::testing::{feature, run_with};
    use super::*;

    #[test]
    fn group_norm_normalises_each_group_then_scales_channels() {
        let device = Device::flex();
        let mut norm = GroupNormConfig::new(2, 4).with_epsilon(0.0).init(&device);
        let vector = |v: Vec<f32>| {
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [4]), &device))
        };
        norm.gamma = Some(vector(vec![1.0, 2.0, 1.0, 1.0]));
        norm.beta = Some(vector(vec![0.0, 0.0, 10.0, 0.0]));
        let layer = Layer::GroupNorm(norm);
        // [1, 4, 2]: group 0 holds channels 0 and 1 = [1, 3, 5, 7] (mean 4, variance 5),
        // group 1 holds channels 2 and 3 = [2, 2, 4, 4] (mean 3, variance 1).
        let x = feature(vec![1.0, 3.0, 5.0, 7.0, 2.0, 2.0, 4.0, 4.0], &[1, 4, 2]);
        let op = GroupNorm {
            groups: 2,
            channels: 4,
            epsilon: 0.0,
        };
        let (shape, got) = run_with(&op, Some(&layer), vec![x]).expect("normalises");
        assert_eq!(shape, [1, 4, 2]);
        let s = 5f32.sqrt();
        // Channel 1 doubled, channel 2 shifted by 10.
        let want = [-3.0 / s, -1.0 / s, 2.0 / s, 6.0 / s, 9.0, 9.0, 1.0, 1.0];
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-5),
            "{got:?} vs {want:?}"
        );
        assert!(op.infer(&[&Value::Tensor(vec![1, 3, 2])]).is_err());
        let instance = GroupNorm {
            groups: 3,
            channels: 4,
            epsilon: 1e-5,
        };
        assert!(instance.infer(&[&Value::Tensor(vec![1, 4, 2])]).is_err());
    }
}
