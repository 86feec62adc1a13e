//! torchvision's `MLPBlock` (Linear, GELU, Linear; its dropouts are identities in eval mode)
//! for the CPU (flex) device: ViT's feed-forward layers, half of its multiply-adds.
//!
//! The two Linear layers are packed products (`linear.rs`) and the GELU runs vectorised in
//! place on pieces of the hidden matrix right after `fc1`'s product writes them, where burn's
//! path takes `erf` through libm one element at a time (a quarter of the block's time on
//! ViT-B/16).

use burn::prelude::*;
use rten_gemm::GemmError;

use super::elementwise::Elementwise;
use super::linear::PackedLinear;
use super::tensor::{flex_f32, flex_tensor};

/// An MLP block's two layers, packed, for [`PackedMlp::forward`].
#[derive(Debug, Clone)]
pub struct PackedMlp {
    fc1: PackedLinear,
    fc2: PackedLinear,
}

impl PackedMlp {
    /// The block of `fc1` then `fc2` (burn's Linear layout, `[in, out]`); declines (`None`)
    /// layers that are not float32 on the flex device or do not chain.
    pub fn new(
        fc1: (&Tensor<2>, Option<&Tensor<1>>),
        fc2: (&Tensor<2>, Option<&Tensor<1>>),
    ) -> Option<Self> {
        let (fc1, fc2) = (
            PackedLinear::new(fc1.0, fc1.1)?,
            PackedLinear::new(fc2.0, fc2.1)?,
        );
        (fc1.outputs() == fc2.inputs()).then_some(PackedMlp { fc1, fc2 })
    }

    /// How many values each row of the input (and output) holds.
    pub fn inputs(&self) -> usize {
        self.fc1.inputs()
    }

    /// `fc2(gelu(fc1(x)))` for `x` of `[M, in]` on the flex device; `x` back if it does not
    /// fit.
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward(&self, x: Tensor<2>) -> std::result::Result<Tensor<2>, Tensor<2>> {
        let [m, k] = x.dims();
        if k != self.fc1.inputs() || m == 0 {
            return Err(x);
        }
        let values = flex_f32(x)?;
        let input = values.as_slice();
        match self.rows(input, m) {
            Ok(out) => Ok(flex_tensor(out, [m, self.fc2.outputs()])),
            // Shapes were checked above: a refusal here hands the input back all the same.
            Err(_) => Err(flex_tensor(input.to_vec(), [m, k])),
        }
    }

    fn rows(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, GemmError> {
        let hidden = self.fc1.rows(x, rows, Some(Elementwise::Gelu))?;
        self.fc2.rows(&hidden, rows, None)
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;
    use burn::tensor::activation::gelu;

    use super::*;

    #[test]
    fn equals_burns_layers() {
        let device = Device::flex();
        let fc1 = LinearConfig::new(24, 96).init(&device);
        let fc2 = LinearConfig::new(96, 24).init(&device);
        let bias = |l: &burn::nn::Linear| l.bias.as_ref().map(|b| b.val());
        let (b1, b2) = (bias(&fc1), bias(&fc2));
        let packed = PackedMlp::new(
            (&fc1.weight.val(), b1.as_ref()),
            (&fc2.weight.val(), b2.as_ref()),
        )
        .expect("float32 on flex");
        let x = Tensor::<2>::random([197, 24], Distribution::Normal(0.0, 1.0), &device);
        let want = fc2.forward(gelu(fc1.forward(x.clone())));
        let got = packed.forward(x).expect("fits");
        let diff = (got - want.clone()).abs().max().into_scalar::<f32>();
        let scale = want.abs().max().into_scalar::<f32>();
        assert!(diff < 2e-6 * scale.max(1.0), "{diff} of {scale}");
        assert!(PackedMlp::new((&fc1.weight.val(), None), (&fc1.weight.val(), None)).is_none());
    }
}
