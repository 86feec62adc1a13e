//! A float32 Linear layer (`x @ W + b` over the last axis) for the CPU (flex) device.
//!
//! burn's `Linear` on a rank-4 input (ConvNeXt's `[N, H, W, C]` blocks) multiplies by a
//! weight broadcast over the leading axes: one small matrix product per row of the image,
//! each reading the whole weight again, and the bias added in a second pass. ConvNeXt-T spent
//! about three quarters of its forward pass in its Linear layers that way. Here every leading
//! axis is one matrix dimension: a single matrix product on all cores with the weight packed
//! once (`matmul.rs`), the bias in its epilogue.

use burn::prelude::*;
use rten_gemm::GemmError;

use super::elementwise::Elementwise;
use super::matmul::{PackedRhs, Then, filled};
use super::tensor::{flex_f32, flex_tensor, weight_and_bias};

/// A Linear layer's weight, packed, and bias, kept for [`PackedLinear::forward`].
#[derive(Debug, Clone)]
pub struct PackedLinear {
    weight: PackedRhs,
    bias: Option<Vec<f32>>,
    inputs: usize,
    outputs: usize,
}

impl PackedLinear {
    /// Keeps `weight` (`[in, out]`) and `bias` (`[out]`); declines (`None`) weights that are
    /// not float32 on the flex device.
    pub fn new(weight: &Tensor<2>, bias: Option<&Tensor<1>>) -> Option<Self> {
        let [inputs, outputs] = weight.dims();
        if weight.device() != Device::flex() || inputs == 0 || outputs == 0 {
            return None;
        }
        let (weight, bias) = weight_and_bias(weight, bias)?;
        if bias.as_ref().is_some_and(|b| b.len() != outputs) || weight.len() != inputs * outputs {
            return None;
        }
        let weight = PackedRhs::new(&weight, [inputs, outputs])?;
        Some(Self {
            weight,
            bias,
            inputs,
            outputs,
        })
    }

    /// How many values each row of the input holds.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// How many values each row of the output holds.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// `x @ W + b` for `x` of `[M, in]` on the flex device, as `[M, out]`; `x` back if it does
    /// not fit (another device, dtype or width), so the caller can fall back.
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward(&self, x: Tensor<2>) -> std::result::Result<Tensor<2>, Tensor<2>> {
        self.forward_activated(x, None)
    }

    /// [`PackedLinear::forward`] with `activation` applied to the output piece by piece, each
    /// right after its product while it is in cache (a Linear layer followed by its GELU,
    /// as in ConvNeXt's blocks), instead of as a pass of its own.
    #[allow(clippy::result_large_err)]
    pub fn forward_activated(
        &self,
        x: Tensor<2>,
        activation: Option<Elementwise>,
    ) -> std::result::Result<Tensor<2>, Tensor<2>> {
        let [m, k] = x.dims();
        if k != self.inputs || m == 0 {
            return Err(x);
        }
        let values = flex_f32(x)?;
        let input = values.as_slice();
        match self.rows(input, m, activation) {
            Ok(out) => Ok(flex_tensor(out, [m, self.outputs])),
            // Shapes were checked above: a refusal here hands the input back all the same.
            Err(_) => Err(flex_tensor(input.to_vec(), [m, k])),
        }
    }

    /// `activation(x @ W + b)` for `rows` rows of `in` values each, row-major.
    pub(super) fn rows(
        &self,
        x: &[f32],
        rows: usize,
        activation: Option<Elementwise>,
    ) -> Result<Vec<f32>, GemmError> {
        let bias = self.bias.as_deref();
        let then = activation.map(|f| move |piece: &mut [f32]| f.apply_serial(piece));
        filled(rows * self.outputs, |out| {
            let then = then.as_ref().map(|f| f as &Then);
            self.weight.multiply(x, rows, bias, out, then)
        })
    }
}

#[cfg(test)]
// Closures run on a pool hand the kernel's `Result` back, whose `Err` is the input tensor.
#[allow(clippy::result_large_err)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;

    use super::*;

    #[test]
    fn equals_burns_linear_on_every_leading_shape() {
        let device = Device::flex();
        for (bias, [m, k, n]) in [
            (true, [3136, 96, 384]),
            (true, [49, 768, 3072]),
            (false, [197, 64, 48]),
            (true, [1, 1280, 1000]),
            (true, [5, 3, 7]),
        ] {
            let layer = LinearConfig::new(k, n).with_bias(bias).init(&device);
            let packed = PackedLinear::new(
                &layer.weight.val(),
                layer.bias.as_ref().map(|b| b.val()).as_ref(),
            )
            .expect("float32 on flex");
            let x = Tensor::<2>::random([m, k], Distribution::Default, &device);
            let want = layer
                .forward(x.clone())
                .to_data()
                .try_into_vec::<f32>()
                .unwrap();
            // One thread runs each product whole; three split the larger ones by rows.
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got = pool.install(|| packed.forward(x.clone())).expect("fits");
                assert_eq!(got.dims(), [m, n]);
                let got = got.to_data().try_into_vec::<f32>().unwrap();
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                    .fold(0.0f32, f32::max);
                assert!(worst < 1e-5, "[{m}, {k}] x [{k}, {n}], {threads}: {worst}");
            }
        }
    }

    #[test]
    fn applies_its_activation_to_every_piece_of_the_output() {
        let device = Device::flex();
        // ConvNeXt's first stage: three pieces on three threads; whole on one.
        let (m, k, n) = (3136, 96, 384);
        let layer = LinearConfig::new(k, n).init(&device);
        let bias = layer.bias.as_ref().map(|b| b.val());
        let packed = PackedLinear::new(&layer.weight.val(), bias.as_ref()).expect("float32");
        let x = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &device);
        let want = burn::tensor::activation::gelu(layer.forward(x.clone()));
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool
                .install(|| packed.forward_activated(x.clone(), Some(Elementwise::Gelu)))
                .expect("fits");
            let diff = (got - want.clone()).abs().max().into_scalar::<f32>();
            let scale = want.clone().abs().max().into_scalar::<f32>();
            assert!(
                diff <= 2e-6 * scale.max(1.0),
                "{threads}: {diff} of {scale}"
            );
        }
    }

    #[test]
    fn hands_back_what_it_cannot_take() {
        let device = Device::flex();
        let layer = LinearConfig::new(4, 3).init(&device);
        let packed = PackedLinear::new(&layer.weight.val(), None).unwrap();
        assert!(packed.forward(Tensor::<2>::zeros([2, 5], &device)).is_err());
    }
}
