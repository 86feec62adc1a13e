//! A float32 max pooling for the CPU (flex) device.
//!
//! burn-flex 0.22 computes `max_pool2d` through its 3-D pooling with argmax indices, which
//! profiling put at a tenth of ResNet18's forward pass for its one stem max pool. This computes
//! the maxima only, one output plane per task on all cores, with torch's semantics: padding
//! never wins (negative infinity), NaN propagates. Written by hand because no crate pools plain
//! NCHW slices.

use burn::prelude::*;
use rayon::prelude::*;

use featx_graph::Window2d;

use super::tensor::{flex_f32, flex_tensor};

/// A max pool over `window`.
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d {
    /// Kernel, stride, padding and dilation.
    pub window: Window2d,
}

impl MaxPool2d {
    /// Pools `x` (`[N, C, H, W]` on the flex device) to `[N, C, out[0], out[1]]` (the size shape
    /// inference computed, ceil mode included), or gives `x` back for another device or dtype.
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward(
        &self,
        x: Tensor<4>,
        out: [usize; 2],
    ) -> std::result::Result<Tensor<4>, Tensor<4>> {
        let [n, c, h, w] = x.dims();
        let data = flex_f32(x)?;
        let input = data.as_slice();
        let [oh, ow] = out;
        let [kh, kw] = self.window.kernel;
        let [sh, sw] = self.window.stride;
        let [(ph, _), (pw, pw_after)] = self.window.padding;
        let [dh, dw] = self.window.dilation;
        let mut y = vec![0.0f32; n * c * oh * ow];
        // A window's last padded column; ceil mode may reach past the right padding.
        let padded = ((ow.max(1) - 1) * sw + (kw - 1) * dw + 1).max(pw + w + pw_after);
        // Column `j` of stride phase `f` is padded column `j * sw + f`; tap `kx` of output
        // column `ox` is column `ox + (kx * dw) / sw` of phase `(kx * dw) % sw`, so the row pass
        // reads consecutive values (vectorised) instead of every `sw`-th one.
        let phase_len = padded.div_ceil(sw) + kw * dw;
        y.par_chunks_mut((oh * ow).max(1))
            .enumerate()
            .for_each(|(p, plane_out)| {
                let plane = &input[p * h * w..(p + 1) * h * w];
                // The column maxima of one output row's window rows, padded with -inf, so the
                // row pass below reads without bounds checks (both passes are branch-free).
                let mut columns = vec![f32::NEG_INFINITY; padded];
                let mut phases = vec![f32::NEG_INFINITY; sw * phase_len];
                for (oy, row_out) in plane_out.chunks_mut(ow.max(1)).enumerate() {
                    let inside = &mut columns[pw..pw + w];
                    inside.fill(f32::NEG_INFINITY);
                    for ky in 0..kh {
                        let Some(iy) = (oy * sh + ky * dh).checked_sub(ph).filter(|&y| y < h)
                        else {
                            continue;
                        };
                        for (m, &x) in inside.iter_mut().zip(&plane[iy * w..(iy + 1) * w]) {
                            *m = max_nan(*m, x);
                        }
                    }
                    if sw == 1 {
                        phases[..padded].copy_from_slice(&columns);
                    } else {
                        for (f, phase) in phases.chunks_exact_mut(phase_len).enumerate() {
                            for (d, &x) in phase.iter_mut().zip(columns[f..].iter().step_by(sw)) {
                                *d = x;
                            }
                        }
                    }
                    row_out.fill(f32::NEG_INFINITY);
                    for kx in 0..kw {
                        let (f, offset) = ((kx * dw) % sw, (kx * dw) / sw);
                        let phase = &phases[f * phase_len + offset..];
                        for (v, &x) in row_out.iter_mut().zip(phase) {
                            *v = max_nan(*v, x);
                        }
                    }
                }
            });
        Ok(flex_tensor(y, [n, c, oh, ow]))
    }
}

/// The larger of `m` and `x` where a NaN wins, as torch's max pool propagates NaN.
#[inline(always)]
fn max_nan(m: f32, x: f32) -> f32 {
    if x > m || x.is_nan() { x } else { m }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use burn::tensor::TensorData;
    use burn::tensor::module::max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;

    #[test]
    fn matches_burns_max_pool2d() {
        let device = Device::flex();
        // (input, kernel, stride, padding, dilation, ceil)
        let cases = [
            ([2, 3, 112, 112], 3, 2, 1, 1, false), // ResNet's stem
            ([1, 2, 55, 55], 3, 2, 0, 1, false),   // AlexNet's
            ([2, 2, 13, 14], 3, 2, 1, 1, true),    // ceil mode
            ([1, 2, 12, 11], 2, 1, 1, 2, false),   // dilated
        ];
        for (shape, k, s, p, d, ceil) in cases {
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let options = MaxPoolOptions::new([k, k])
                .with_stride([s, s])
                .with_padding([p, p])
                .with_dilation([d, d])
                .with_ceil_mode(ceil);
            let theirs = max_pool2d(x.clone(), options);
            let [_, _, oh, ow] = theirs.dims();
            let pool = MaxPool2d {
                window: Window2d {
                    dilation: [d, d],
                    ..Window2d::square(k, s, p)
                },
            };
            let ours = pool.forward(x, [oh, ow]).expect("applies on flex");
            let diff = (ours - theirs).abs().max().into_scalar::<f32>();
            assert_eq!(diff, 0.0, "{shape:?} k{k} s{s} p{p} d{d} ceil {ceil}");
        }
    }

    /// A NaN reaches every window that covers it, and only those, as in torch.
    #[test]
    fn nan_propagates() {
        let device = Device::flex();
        let mut values = vec![1.0f32; 25];
        values[2 * 5 + 2] = f32::NAN;
        let x = Tensor::<4>::from_data(TensorData::new(values, [1, 1, 5, 5]), &device);
        let pool = MaxPool2d {
            window: Window2d::square(2, 2, 0),
        };
        let y = pool.forward(x, [2, 2]).expect("applies on flex");
        let y = y.into_data().try_to_vec::<f32>().expect("f32");
        assert!(
            y[0] == 1.0 && y[1] == 1.0 && y[2] == 1.0 && y[3].is_nan(),
            "{y:?}"
        );
    }
}
