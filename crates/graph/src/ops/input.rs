use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, Value};

/// The graph input (FX `placeholder`), `[N, channels, H, W]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Input {
    /// Expected channel count.
    pub channels: usize,
    /// The one batch size the graph computes, when its shapes were fixed for it (an imported
    /// ONNX file whose reshapes name the batch); `None` for any.
    pub batch: Option<usize>,
}

impl OpDef for Input {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        let channels = self.channels;
        if shape.len() != 4 {
            return Err(format!(
                "expected a rank-4 [N, {channels}, H, W] tensor, got rank {}",
                shape.len()
            ));
        }
        if shape[1] != channels {
            return Err(format!(
                "expected {channels} channels ([N, {channels}, H, W]), got {}",
                shape[1]
            ));
        }
        if let Some(batch) = self.batch
            && shape[0] != batch
        {
            return Err(format!(
                "this model takes batches of {batch} (its graph was fixed for that batch size), got {}",
                shape[0]
            ));
        }
        if shape[0] == 0 || shape[2] == 0 || shape[3] == 0 {
            return Err("batch, height and width must be non-zero".into());
        }
        tensor(shape.to_vec())
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        single_any(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_checks_rank_channels_and_empty_sizes() {
        let input = Input {
            channels: 3,
            batch: None,
        };
        let infer = |shape: Vec<usize>| input.infer(&[&Value::Tensor(shape)]);
        assert_eq!(infer(vec![2, 3, 8, 8]), Ok(Value::Tensor(vec![2, 3, 8, 8])));
        assert!(infer(vec![3, 8, 8]).unwrap_err().contains("rank-4"));
        assert!(infer(vec![1, 1, 8, 8]).unwrap_err().contains("3 channels"));
        assert!(infer(vec![1, 3, 0, 8]).unwrap_err().contains("non-zero"));
    }
}
