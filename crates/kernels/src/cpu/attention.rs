//! Multi-head self attention (`nn.MultiheadAttention` with query = key = value and no mask)
//! for the CPU (flex) device.
//!
//! burn's path runs the projections as broadcast matrix products, permutes the heads apart
//! into fresh tensors, and takes the softmax's `exp` through libm one element at a time;
//! ViT-B/16 spent about 40% of its forward pass in its attention nodes that way. Here the
//! projections are packed Linear products (`linear.rs`), every head reads its queries, keys
//! and values in place from the projected `[N*L, 3E]` matrix (strided views, no permute), the
//! scores are scaled inside their product, and the softmax is vectorised. Written by hand: it
//! is the composition of those products with the layouts set, which no crate offers over
//! burn's tensors.

use burn::prelude::*;
use rayon::prelude::*;

use super::elementwise::softmax_rows;
use super::linear::PackedLinear;
use super::matmul::{View, filled, multiply_views};
use super::tensor::{flex_f32, flex_tensor};

/// A self-attention layer's projections, packed, for [`PackedAttention::forward`].
#[derive(Debug, Clone)]
pub struct PackedAttention {
    in_proj: PackedLinear,
    out_proj: PackedLinear,
    heads: usize,
}

impl PackedAttention {
    /// Packs the stacked query, key and value projection (`in_weight` `[E, 3E]` and
    /// `in_bias` `[3E]`, burn's Linear layout) and the output projection (`out_weight` `[E,
    /// E]`); declines (`None`) what is not float32 on the flex device, or widths that do not
    /// split into `heads`.
    pub fn new(
        in_weight: &Tensor<2>,
        in_bias: Option<&Tensor<1>>,
        out_weight: &Tensor<2>,
        out_bias: Option<&Tensor<1>>,
        heads: usize,
    ) -> Option<Self> {
        let [e, three_e] = in_weight.dims();
        if heads == 0 || e % heads != 0 || three_e != 3 * e || out_weight.dims() != [e, e] {
            return None;
        }
        Some(PackedAttention {
            in_proj: PackedLinear::new(in_weight, in_bias)?,
            out_proj: PackedLinear::new(out_weight, out_bias)?,
            heads,
        })
    }

    /// Self attention over `x` (`[N, L, E]` on the flex device), or `x` back if it does not
    /// fit.
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward(&self, x: Tensor<3>) -> std::result::Result<Tensor<3>, Tensor<3>> {
        let [n, l, e] = x.dims();
        if e != self.in_proj.inputs() || n * l == 0 {
            return Err(x);
        }
        let back = x.clone();
        let qkv = self
            .in_proj
            .forward(x.reshape([n * l, e]))
            .map_err(|_| back.clone())?;
        let qkv = flex_f32(qkv).map_err(|_| back.clone())?;
        let heads = attend(qkv.as_slice(), [n, l, self.heads, e / self.heads])
            .map_err(|()| back.clone())?;
        let out = self
            .out_proj
            .forward(flex_tensor(heads, [n * l, e]))
            .map_err(|_| back)?;
        Ok(out.reshape([n, l, e]))
    }
}

/// `softmax(q kᵀ / sqrt(d)) v` for every image and head, from the projected `[N*L, 3E]`
/// matrix (queries, then keys, then values, heads side by side in each), as `[N*L, E]` with
/// the heads side by side again.
fn attend(qkv: &[f32], [n, l, heads, d]: [usize; 4]) -> Result<Vec<f32>, ()> {
    let e = heads * d;
    let scale = 1.0 / (d as f32).sqrt();
    let view = |image: usize, part: usize, head: usize| -> Option<View> {
        let start = image * l * 3 * e + part * e + head * d;
        let values = qkv.get(start..start + (l - 1) * 3 * e + d)?;
        Some(View::rows(values, [l, d], 3 * e))
    };
    let per_head = (0..n * heads)
        .into_par_iter()
        .map(|task| {
            let (image, head) = (task / heads, task % heads);
            let (q, k, v) = (
                view(image, 0, head).ok_or(())?,
                view(image, 1, head).ok_or(())?,
                view(image, 2, head).ok_or(())?,
            );
            let mut scores =
                filled(l * l, |s| multiply_views(q, k.transposed(), scale, s)).map_err(drop)?;
            softmax_rows(&mut scores, l);
            let scores = View::rows(&scores, [l, l], l);
            filled(l * d, |o| multiply_views(scores, v, 1.0, o)).map_err(drop)
        })
        .collect::<Result<Vec<Vec<f32>>, ()>>()?;
    let mut out = vec![0.0f32; n * l * e];
    for (task, values) in per_head.iter().enumerate() {
        let (image, head) = (task / heads, task % heads);
        for (row, values) in values.chunks_exact(d).enumerate() {
            let start = (image * l + row) * e + head * d;
            out[start..start + d].copy_from_slice(values);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;
    use burn::tensor::activation::softmax;

    use super::*;

    /// The textbook form on burn's ops: project, split heads, softmax, merge, project.
    fn reference(
        x: Tensor<3>,
        proj: &burn::nn::Linear,
        out: &burn::nn::Linear,
        heads: usize,
    ) -> Tensor<3> {
        let [n, l, e] = x.dims();
        let d = e / heads;
        let qkv = proj
            .forward(x)
            .reshape([n, l, 3, heads, d])
            .permute([2, 0, 3, 1, 4]);
        let part =
            |i: usize| -> Tensor<4> { qkv.clone().narrow(0, i, 1).reshape([n, heads, l, d]) };
        let scores = part(0).matmul(part(1).swap_dims(2, 3)) / (d as f64).sqrt();
        let merged = softmax(scores, 3)
            .matmul(part(2))
            .swap_dims(1, 2)
            .reshape([n, l, e]);
        out.forward(merged)
    }

    #[test]
    fn equals_the_textbook_form() {
        let device = Device::flex();
        for (n, l, e, heads) in [(1, 197, 64, 4), (2, 5, 12, 3), (3, 1, 8, 8)] {
            let proj = LinearConfig::new(e, 3 * e).init(&device);
            let out = LinearConfig::new(e, e).init(&device);
            let packed = PackedAttention::new(
                &proj.weight.val(),
                proj.bias.as_ref().map(|b| b.val()).as_ref(),
                &out.weight.val(),
                out.bias.as_ref().map(|b| b.val()).as_ref(),
                heads,
            )
            .expect("float32 on flex");
            let x = Tensor::<3>::random([n, l, e], Distribution::Normal(0.0, 1.0), &device);
            let want = reference(x.clone(), &proj, &out, heads);
            let got = packed.forward(x).expect("fits");
            assert_eq!(got.dims(), [n, l, e]);
            let diff = (got - want.clone()).abs().max().into_scalar::<f32>();
            let scale = want.abs().max().into_scalar::<f32>();
            assert!(
                diff < 2e-6 * scale.max(1.0),
                "[{n}, {l}, {e}] {heads}: {diff}"
            );
        }
    }

    #[test]
    fn declines_widths_that_do_not_split_into_heads() {
        let device = Device::flex();
        let proj = LinearConfig::new(10, 30).init(&device);
        let out = LinearConfig::new(10, 10).init(&device);
        let packed = PackedAttention::new(&proj.weight.val(), None, &out.weight.val(), None, 3);
        assert!(packed.is_none());
    }
}
