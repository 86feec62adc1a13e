//! A direct float32 convolution for the CPU (flex) device.
//!
//! burn-flex 0.22 lowers every conv2d to a conv3d that, on each call, reorders the weights,
//! transposes the input to NHWC on one thread, and scatters tile results back with strided
//! writes; profiling ResNet18 put about a third of the forward pass there. Here the weights are
//! packed once (torch's OIHW layout already is the `[C_out, C_in*kh*kw]` matrix), im2col reads
//! NCHW directly into a `[K, H_out*W_out]` matrix on all cores (a 1x1 stride-1 convolution needs
//! none), and one multi-threaded `gemm` per image (the crate burn-flex itself uses) writes NCHW
//! output with the bias already in its accumulator. Written by hand because no crate offers a
//! conv2d over plain slices with these layouts.

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::ops::ConvOptions;
use rayon::prelude::*;

/// A convolution's weights packed for [`CpuConv::forward`].
#[derive(Debug, Clone)]
pub(crate) struct CpuConv {
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    out_channels: usize,
    in_channels: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    /// `(before, after)` per spatial dimension.
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
}

impl CpuConv {
    /// Packs `weight` (`[C_out, C_in, kh, kw]`) and `bias`; `None` for grouped convolutions or
    /// weights that are not float32 on the flex device, which keep burn's path.
    pub fn new(
        weight: &Tensor<4>,
        bias: Option<&Tensor<1>>,
        options: &ConvOptions<2>,
    ) -> Option<Self> {
        if options.groups != 1 || weight.device() != Device::flex() {
            return None;
        }
        let [out_channels, in_channels, kh, kw] = weight.dims();
        let weight = weight.to_data().try_into_vec::<f32>().ok()?;
        let bias = match bias {
            Some(b) => Some(b.to_data().try_into_vec::<f32>().ok()?),
            None => None,
        };
        Some(CpuConv {
            weight,
            bias,
            out_channels,
            in_channels,
            kernel: [kh, kw],
            stride: options.stride,
            padding: options.padding,
            dilation: options.dilation,
        })
    }

    fn output_size(&self, h: usize, w: usize) -> Option<[usize; 2]> {
        let out = |i: usize, size: usize| {
            let span = self.dilation[i] * (self.kernel[i] - 1) + 1;
            (size + self.padding[i].0 + self.padding[i].1)
                .checked_sub(span)
                .map(|v| v / self.stride[i] + 1)
        };
        Some([out(0, h)?, out(1, w)?])
    }

    /// The convolution of `x` (`[N, C_in, H, W]` on the flex device); `None` if `x` does not
    /// fit (other device, dtype or channel count), so the caller can fall back.
    pub fn forward(&self, x: &Tensor<4>) -> Option<Tensor<4>> {
        let device = x.device();
        let [n, c, h, w] = x.dims();
        if device != Device::flex() || c != self.in_channels {
            return None;
        }
        let [oh, ow] = self.output_size(h, w)?;
        let input = x.to_data().try_into_vec::<f32>().ok()?;
        let (k, hw) = (c * self.kernel[0] * self.kernel[1], oh * ow);
        let pointwise =
            self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [(0, 0), (0, 0)];
        let mut col = if pointwise {
            Vec::new()
        } else {
            vec![0.0f32; k * hw]
        };
        let mut out = vec![0.0f32; n * self.out_channels * hw];
        for (b, dst) in out.chunks_mut(self.out_channels * hw).enumerate() {
            let image = &input[b * c * h * w..(b + 1) * c * h * w];
            let rhs: &[f32] = if pointwise {
                image
            } else {
                self.im2col(image, [h, w], [oh, ow], &mut col);
                &col
            };
            if let Some(bias) = &self.bias {
                dst.par_chunks_mut(hw)
                    .zip(bias)
                    .for_each(|(row, &v)| row.fill(v));
            }
            // SAFETY: dst is [C_out, hw], weight [C_out, k], rhs [k, hw], all row-major and
            // exactly that long; gemm reads and writes nothing outside them.
            unsafe {
                gemm::gemm(
                    self.out_channels,
                    hw,
                    k,
                    dst.as_mut_ptr(),
                    1,
                    hw as isize,
                    self.bias.is_some(),
                    self.weight.as_ptr(),
                    1,
                    k as isize,
                    rhs.as_ptr(),
                    1,
                    hw as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(0),
                );
            }
        }
        Some(Tensor::from_data(
            TensorData::new(out, [n, self.out_channels, oh, ow]),
            &device,
        ))
    }

    /// Fills `col` (`[C_in*kh*kw, oh*ow]`) from one NCHW image, zero where the window is
    /// outside the image.
    fn im2col(&self, image: &[f32], [h, w]: [usize; 2], [oh, ow]: [usize; 2], col: &mut [f32]) {
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [(ph, _), (pw, _)] = self.padding;
        let [dh, dw] = self.dilation;
        col.par_chunks_mut(oh * ow)
            .enumerate()
            .for_each(|(r, row)| {
                let (ci, ki, kj) = (r / (kh * kw), (r / kw) % kh, r % kw);
                let plane = &image[ci * h * w..(ci + 1) * h * w];
                for (oy, dst) in row.chunks_mut(ow).enumerate() {
                    let iy = (oy * sh + ki * dh) as isize - ph as isize;
                    if iy < 0 || iy >= h as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                    let x0 = (kj * dw) as isize - pw as isize;
                    if sw == 1 {
                        // Columns whose input lies inside the row copy in one piece.
                        let first = (-x0).clamp(0, ow as isize) as usize;
                        let last = (w as isize - x0).clamp(first as isize, ow as isize) as usize;
                        dst[..first].fill(0.0);
                        let start = (first as isize + x0) as usize;
                        dst[first..last].copy_from_slice(&src[start..start + last - first]);
                        dst[last..].fill(0.0);
                    } else {
                        for (ox, v) in dst.iter_mut().enumerate() {
                            let ix = x0 + (ox * sw) as isize;
                            *v = if ix >= 0 && ix < w as isize {
                                src[ix as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            });
    }
}
