use burn::module::Module;
use burn::nn::Linear;
use serde::Serialize;

use super::{Cx, NO_PARAMETERS, OpDef};
use crate::{Feature, Layer, ParamTensor, Value};

/// `nn.Linear` applied to a buffer of its parent module (Swin V2's
/// `self.cpb_mlp(self.relative_coords_table)`, whose first layer is this node). FX reads the
/// buffer with a `get_attr` node that torchvision's feature extraction leaves without a name,
/// so it is no node here: the Linear is the first named node, and holds the buffer beside its
/// weights ([`BufferLinearParams`]).
///
/// # Shapes
/// No input; the buffer's `[..., in_features]` to `[..., out_features]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BufferLinear {
    /// The buffer's shape.
    pub buffer: Vec<usize>,
    /// The Linear layer.
    pub linear: super::Linear,
}

/// The parameters of a [`BufferLinear`]: the buffer (a state-dict entry of the parent
/// module) and the Linear layer.
#[derive(Module, Debug)]
pub struct BufferLinearParams {
    /// The buffer the layer reads (`relative_coords_table`).
    pub buffer: ParamTensor,
    /// The layer (`cpb_mlp.0`).
    pub linear: Linear,
}

impl OpDef for BufferLinear {
    fn infer(&self, _: &[&Value]) -> Result<Value, String> {
        self.linear.infer(&[&Value::Tensor(self.buffer.clone())])
    }

    fn eval(&self, cx: &Cx, _: Vec<Feature>) -> Result<Feature, String> {
        let Some(Layer::BufferLinear(params)) = cx.layer else {
            return Err(NO_PARAMETERS.into());
        };
        Ok(params.buffer.val().map_float(&params.linear))
    }

    fn fits(&self, layer: Option<&Layer>) -> bool {
        matches!(layer, Some(Layer::BufferLinear(_)))
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::prelude::*;

    use super::super::args::testing::run_with;
    use super::*;

    #[test]
    fn the_layer_runs_on_its_buffer() {
        let device = Device::flex();
        // A [1, 2, 2] buffer through a 2 -> 3 layer (Burn's [in, out] weight).
        let buffer = vec![1.0, 2.0, -1.0, 0.5];
        let weight = [[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]];
        let bias = [0.5, 0.0, -0.5];
        let linear = Linear {
            weight: Param::from_tensor(Tensor::from_data(weight, &device)),
            bias: Some(Param::from_tensor(Tensor::from_data(bias, &device))),
        };
        let params = BufferLinearParams {
            buffer: ParamTensor::from_f32(buffer.clone(), &[1, 2, 2], &device).unwrap(),
            linear,
        };
        let op = BufferLinear {
            buffer: vec![1, 2, 2],
            linear: super::super::Linear {
                in_features: 2,
                out_features: 3,
                bias: true,
            },
        };
        let layer = Layer::BufferLinear(params);
        assert!(op.fits(Some(&layer)));
        assert!(!op.fits(None));
        let expected: Vec<f32> = buffer
            .chunks(2)
            .flat_map(|x| (0..3).map(move |o| bias[o] + x[0] * weight[0][o] + x[1] * weight[1][o]))
            .collect();
        assert_eq!(
            run_with(&op, Some(&layer), vec![]).expect("runs"),
            (vec![1, 2, 3], expected)
        );
    }
}
