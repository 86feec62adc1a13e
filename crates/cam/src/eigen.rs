//! EigenCAM's map: each image's activations projected onto their first principal component
//! (pytorch-grad-cam's `get_2d_projection`).

use burn::linalg::svd;
use burn::prelude::*;
use burn::tensor::TensorData;

/// QR sweeps per singular value before burn's SVD gives up (LAPACK allows 6 per value; the
/// matrices here are small and well scaled).
const SWEEPS: usize = 64;

/// The projection of one image's activations (`channels` maps of `positions` values each)
/// onto their first principal component: the activations as a `positions x channels` matrix,
/// each channel centred, times its first right singular vector.
///
/// A singular vector's sign is arbitrary (LAPACK's choice decides it in pytorch-grad-cam, and
/// after rectification it decides the whole map). featx fixes it the way Seg-Eigen-CAM does
/// (pytorch-grad-cam's `get_2d_projection_with_sign_correction`): the projection is flipped when
/// its most negative value is larger in magnitude than its most positive one, so the strongest
/// response is always positive. NaN activations count as 0, as there.
pub(crate) fn projection(activations: &[f32], channels: usize, positions: usize) -> Vec<f32> {
    if channels == 0 || positions == 0 {
        return vec![0.0; positions];
    }
    // positions x channels, each column centred (in float64, then float32 as numpy's is).
    let mut m = vec![0f32; positions * channels];
    for c in 0..channels {
        let plane = &activations[c * positions..(c + 1) * positions];
        let clean = |v: f32| if v.is_nan() { 0.0 } else { f64::from(v) };
        let mean = plane.iter().map(|&v| clean(v)).sum::<f64>() / positions as f64;
        for (p, &v) in plane.iter().enumerate() {
            m[p * channels + c] = (clean(v) - mean) as f32;
        }
    }
    let device = Device::flex();
    let a = Tensor::<2>::from_data(TensorData::new(m, [positions, channels]), &device);
    let (_, _, vt) = svd::<2, 1>(a.clone(), SWEEPS);
    // Singular values come sorted: row 0 of Vt is the first component.
    let direction = vt.narrow(0, 0, 1).reshape([channels, 1]);
    let mut projection = a
        .matmul(direction)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap_or_default();
    let min = projection.iter().copied().fold(f32::INFINITY, f32::min);
    let max = projection.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if min.abs() > max.abs() {
        projection.iter_mut().for_each(|v| *v = -*v);
    }
    projection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_one_activations_project_onto_their_pattern() {
        // Two channels, both multiples of one spatial pattern: the first component is that
        // pattern (centred), scaled by the channel weights' norm.
        let pattern = [0.0f32, 1.0, 2.0, 5.0];
        let activations: Vec<f32> = [3.0f32, 4.0]
            .iter()
            .flat_map(|w| pattern.iter().map(move |p| w * p))
            .collect();
        let out = projection(&activations, 2, 4);
        let centred = [-2.0, -1.0, 0.0, 3.0];
        for (o, c) in out.iter().zip(centred) {
            assert!((o - 5.0 * c).abs() < 1e-4, "{out:?}");
        }
    }

    #[test]
    fn the_sign_makes_the_strongest_response_positive() {
        // One channel whose centred values are [-3, 1, 1, 1]: |min| > |max|, so flipped.
        let out = projection(&[0.0, 4.0, 4.0, 4.0], 1, 4);
        assert!(
            (out[0] - 3.0).abs() < 1e-4 && (out[1] + 1.0).abs() < 1e-4,
            "{out:?}"
        );
    }
}
