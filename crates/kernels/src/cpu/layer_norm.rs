//! LayerNorm over the last axis (`F.layer_norm(x, (features,), weight, bias, eps)`) for the
//! CPU (flex) device: ViT's, Swin's and ConvNeXt's normalisations.
//!
//! burn's `layer_norm` is five tensor ops (mean, centre, variance, scale, affine), each a
//! pass over the whole tensor into a fresh buffer; here each row is normalised in place in two
//! passes while it is in cache (the mean, then the variance of the centred values, as
//! PyTorch's CPU kernel also takes them in float32), on all cores. Written by hand: it is a
//! dozen lines over plain slices.

use rayon::prelude::*;

/// Rows per task on the thread pool, in values: a task outweighs its hand-off.
const TASK_VALUES: usize = 1 << 15;

/// `(x - mean) / sqrt(var + eps) * gamma + beta` over each run of `gamma.len()` values of
/// `values`, in place (`beta` zero when absent). A remainder shorter than a row is left as
/// it is.
pub fn layer_norm_rows(values: &mut [f32], gamma: &[f32], beta: Option<&[f32]>, eps: f64) {
    let width = gamma.len();
    if width == 0 || beta.is_some_and(|b| b.len() != width) {
        return;
    }
    let rows_per_task = (TASK_VALUES / width).max(1);
    values
        .par_chunks_mut(rows_per_task * width)
        .for_each(|rows| {
            for row in rows.chunks_exact_mut(width) {
                normalise(row, gamma, beta, eps as f32);
            }
        });
}

fn normalise(row: &mut [f32], gamma: &[f32], beta: Option<&[f32]>, eps: f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row, |v| v) / n;
    let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n;
    let inv = 1.0 / (var + eps).sqrt();
    match beta {
        Some(beta) => {
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
        None => {
            for (v, g) in row.iter_mut().zip(gamma) {
                *v = (*v - mean) * inv * g;
            }
        }
    }
}

/// The sum of `f` over `values` in 16 lanes, then across them: the compiler vectorises it,
/// where one running sum it may not reorder (torch's vectorised reductions also sum in lanes).
pub(super) fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::Distribution;
    use burn::tensor::module::layer_norm;

    use super::*;

    #[test]
    fn equals_burns_layer_norm() {
        let device = Device::flex();
        for (rows, width, with_beta) in [(197, 768, true), (3136, 96, true), (5, 7, false)] {
            let x = Tensor::<2>::random([rows, width], Distribution::Normal(0.5, 2.0), &device);
            let gamma = Tensor::<1>::random([width], Distribution::Normal(1.0, 0.2), &device);
            let beta = with_beta
                .then(|| Tensor::<1>::random([width], Distribution::Normal(0.0, 0.2), &device));
            let want = layer_norm(x.clone(), gamma.clone(), beta.clone(), 1e-6);
            let mut got = x.to_data().try_into_vec::<f32>().unwrap();
            let gamma = gamma.to_data().try_into_vec::<f32>().unwrap();
            let beta = beta.map(|b| b.to_data().try_into_vec::<f32>().unwrap());
            layer_norm_rows(&mut got, &gamma, beta.as_deref(), 1e-6);
            let want = want.to_data().try_into_vec::<f32>().unwrap();
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 5e-6, "[{rows}, {width}]: {worst}");
        }
    }
}
