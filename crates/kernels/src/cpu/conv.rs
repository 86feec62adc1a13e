//! A float32 convolution for the CPU (flex) device.
//!
//! burn-flex 0.22 lowers every conv2d to a conv3d that, on each call, reorders the weights,
//! transposes the input to NHWC on one thread, and scatters tile results back with strided
//! writes; profiling ResNet18 put about a third of the forward pass there. Here the weights are
//! packed once for the matrix product (`matmul.rs`; torch's OIHW layout already is the
//! `[C_out, C_in*kh*kw]` matrix), the image side is packed straight from NCHW (a virtual
//! im2col; a 1x1 stride-1 convolution reads the image as its matrix), and the product writes
//! NCHW output with the bias in its epilogue. 3x3 stride-1 padding-1 layers (most of ResNet)
//! go to the Winograd form instead (`winograd.rs` beside this file); an image's first layer
//! with overlapping windows (fewer than 16 input channels) to the direct form (`direct.rs`).
//! Written by hand because no crate offers a conv2d over plain slices with these layouts.

use std::mem::MaybeUninit;

use burn::prelude::*;
use featx_graph::Window2d;
use rayon::prelude::*;

use super::direct::Direct;
use super::elementwise::Elementwise;
use super::matmul::{PackedLhs, Rhs, View, as_uninit, filled, im2col};
use super::tensor::{flex_f32, flex_tensor, weight_and_bias};
use super::winograd::Winograd;

/// Output columns one product aims for when images are small enough to share it. Sharing
/// writes the images' im2col matrices out (a single image's is packed straight from it), which
/// pays only for maps of a few dozen pixels: at batch 8, ResNet50 took 0.93x its time with 256
/// against 2048 (which also grouped its 14x14 layers), ResNet18 0.91x.
const GEMM_COLUMNS: usize = 256;

/// What a convolution's output gets after its sums, while it is in cache: a bias per output
/// channel, a residual of the output's shape added after it (a ResNet block's identity), then
/// ReLU, then another activation (a `Conv2dNormActivation`'s Hardswish or SiLU).
#[derive(Debug, Clone, Copy)]
pub(super) struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
    pub activation: Option<Elementwise>,
}

impl Epilogue<'_> {
    /// Whether [`Epilogue::finish`] changes anything.
    fn any(&self) -> bool {
        self.bias.is_some() || self.residual.is_some() || self.relu || self.activation.is_some()
    }

    /// Applies the epilogue to `out`, the `[C_out, hw]` products of image `img`, one task per
    /// few rows on the pool.
    fn finish(&self, out: &mut [f32], img: usize, hw: usize) {
        if !self.any() || hw == 0 {
            return;
        }
        let cout = out.len() / hw;
        let residual = self
            .residual
            .map(|r| &r[img * cout * hw..(img + 1) * cout * hw]);
        out.par_chunks_mut(hw)
            .with_min_len(ROW_VALUES.div_ceil(hw))
            .enumerate()
            .for_each(|(o, row)| {
                let residual = residual.map(|r| &r[o * hw..(o + 1) * hw]);
                self.finish_row(row, o, residual);
            });
    }

    /// [`Epilogue::finish`] for output channel `o`'s row, with its residual row.
    fn finish_row(&self, row: &mut [f32], o: usize, residual: Option<&[f32]>) {
        let bias = self.bias.map_or(0.0, |b| b[o]);
        match residual {
            Some(residual) => add_residual(row, bias, residual, self.relu),
            None if self.relu => row.iter_mut().for_each(|v| *v = relu(*v + bias)),
            None if self.bias.is_some() => row.iter_mut().for_each(|v| *v += bias),
            None => {}
        }
        if let Some(activation) = self.activation {
            activation.apply_serial(row);
        }
    }
}

/// Values of output rows per task of [`Epilogue::finish`].
const ROW_VALUES: usize = 1 << 14;

/// Input channels below which a layer whose windows overlap enough (see [`REREAD`]) runs in
/// the direct form (`direct.rs`): an image's first layer. Its matrices are only `3 * kh * kw`
/// deep, so Winograd's 16 products are 3 deep and im2col's packing costs about what the
/// product does. Measured in the models (batch 1, batch 8, ms): VGG11's 3x3 first layer 1.9
/// and 13.5 direct, 2.4 and 18.6 on im2col, 4.7 at batch 1 in the Winograd form; ResNet18's
/// 7x7 stride-2 stem 1.40 and 9.5 against im2col's 1.56 and 13.0, GoogLeNet's 1.35 and 9.6
/// against 1.67 and 12.7, AlexNet's 11x11 stride-4 1.18 and 7.4 against 1.55 and 11.8.
const DIRECT_BELOW: usize = 16;

/// How many times, at least, im2col reads each input value (`kh * kw / (sh * sw)`) for a
/// first layer to run in the direct form, which reads its padded image from cache once per
/// tap. Below it im2col's packing is cheap and kept: MobileNetV3's and EfficientNet-B0's
/// 3x3 stride-2 stems (2.25 reads) took 0.35 and 0.50 ms direct against 0.25 and 0.37 at
/// batch 1, ViT-B/16's 16x16 stride-16 patches (1 read) 1.34 and 9.9 against 1.25 and 7.9.
/// (Measured and not kept, the direct form on the other dense layers: ResNet18's 128- and
/// 256-channel 3x3 layers lost to Winograd at batch 8 and were level at batch 1, its stride-2
/// 3x3 layers were level with im2col's product. Deep layers with few tiles: [`FEW_TILES`].)
const REREAD: usize = 4;

/// Input times output channels from which a Winograd layer also keeps its weights in the
/// direct form, for batches of fewer than [`FEW_TILES`] 2x2 tiles.
const DEEP: usize = 512 * 512;

/// 2x2 tiles (of all images) below which a deep Winograd layer runs in the direct form. Its
/// transformed weights are 16/9 the size of the plain ones and, with few tiles, the layer is
/// bound by reading them from memory: ResNet18's 512-channel 7x7 layers (16 tiles an image)
/// took 1.45 ms each at batch 1 against 2.07 in the Winograd form, but 8.3 against 6.8 at
/// batch 8. (The second copy of these layers' weights costs ResNet18 28 MB.)
const FEW_TILES: usize = 32;

/// Output pixels below which a wide 1x1 layer runs as two products side by side (see
/// [`halves`]).
const SPLIT_BELOW: usize = 256;

/// A 1x1 layer's weight rows (output channels) in two packed halves, multiplied side by side.
///
/// The product splits its work over the pool by blocks of 64 output channels and 128 or more
/// output pixels, one parallel pass per 256-deep slice of the input channels: a late layer at
/// batch 1 (EfficientNet-B0's `1152 -> 192` on 7x7 pixels) is three blocks for two threads, in
/// five passes, and ran at a fifth of the machine's peak. Two halves, each a product of its
/// own on one thread's share, keep both threads busy.
#[derive(Debug, Clone)]
struct Halves {
    top: PackedLhs,
    bottom: PackedLhs,
    /// Rows in `top`.
    split: usize,
}

/// [`Halves`] of `weight` (`[rows, depth]`) for a 1x1 layer of 128 to 511 output channels,
/// on a pool of two or more threads. (From 512 rows up the product's own blocks share out
/// evenly enough: ResNet50 was level with them. The halves are packed beside the whole
/// matrix, so they cost these layers' weights again: 2-4% of a run's peak memory.)
fn halves(weight: &[f32], rows: usize, depth: usize, window: Window2d) -> Option<Halves> {
    if window != Window2d::square(1, 1, 0)
        || !(128..512).contains(&rows)
        || rayon::current_num_threads() < 2
    {
        return None;
    }
    let split = (rows / 2).next_multiple_of(16);
    Some(Halves {
        top: PackedLhs::new(&weight[..split * depth], [split, depth])?,
        bottom: PackedLhs::new(&weight[split * depth..], [rows - split, depth])?,
        split,
    })
}

impl Halves {
    /// `out = weight @ image + bias` for one image's `[depth, hw]` matrix.
    fn multiply(
        &self,
        image: View,
        bias: Option<&[f32]>,
        hw: usize,
        out: &mut [MaybeUninit<f32>],
    ) -> Result<(), ()> {
        let (top, bottom) = out.split_at_mut(self.split * hw);
        let (top_bias, bottom_bias) = match bias {
            Some(b) => (Some(&b[..self.split]), Some(&b[self.split..])),
            None => (None, None),
        };
        let (a, b) = rayon::join(
            || self.top.multiply(Rhs::Matrix(image), top_bias, top),
            || {
                self.bottom
                    .multiply(Rhs::Matrix(image), bottom_bias, bottom)
            },
        );
        a.and(b).map_err(drop)
    }
}

/// A convolution's weights packed once for [`PackedConv2d::forward`].
#[derive(Debug, Clone)]
pub struct PackedConv2d {
    method: Method,
    /// For a wide 1x1 layer, its weights again as two halves of its rows: see [`halves`].
    halves: Option<Halves>,
    /// For a deep Winograd layer, its weights again in the direct form, for a batch of few
    /// tiles: see [`FEW_TILES`].
    few_tiles: Option<Direct>,
    bias: Option<Vec<f32>>,
    out_channels: usize,
    in_channels: usize,
    window: Window2d,
}

/// How a convolution is computed, with its weights in the form that needs.
#[derive(Debug, Clone)]
enum Method {
    /// The Winograd form, for the other 3x3 stride-1 padding-1 layers. It beats im2col on the
    /// packed products for ResNet18 and ResNet50 on the machine measured (with im2col for these
    /// layers instead: ResNet18 26-27 ms against 22-24 at batch 1, 201-204 against 137-141 at
    /// batch 8; ResNet50 55.7 against 52-53 and 454-485 against 390-402), though layer4's 16
    /// tiles per image alone run about as fast either way.
    Winograd(Winograd),
    /// im2col and one product with the `[C_out, C_in*kh*kw]` weight, packed.
    Im2col(PackedLhs),
    /// The direct form (`direct.rs`), for an image's first layer when its windows overlap
    /// ([`DIRECT_BELOW`], [`REREAD`]).
    Direct(Direct),
}

impl PackedConv2d {
    /// Packs `weight` (`[C_out, C_in, kh, kw]`, its kernel size must equal `window`'s) and
    /// `bias`; declines (`None`) grouped convolutions and weights that are not float32 on the
    /// flex device, which keep burn's path.
    pub fn new(
        weight: &Tensor<4>,
        bias: Option<&Tensor<1>>,
        window: Window2d,
        groups: usize,
    ) -> Option<Self> {
        let [out_channels, in_channels, kh, kw] = weight.dims();
        if groups != 1 || weight.device() != Device::flex() || window.kernel != [kh, kw] {
            return None;
        }
        let (weight, bias) = weight_and_bias(weight, bias)?;
        let [sh, sw] = window.stride;
        let method = if in_channels < DIRECT_BELOW && kh * kw >= REREAD * sh * sw {
            Method::Direct(Direct::new(&weight, out_channels, in_channels, window)?)
        } else if window == Window2d::square(3, 1, 1) {
            Method::Winograd(Winograd::new(&weight, out_channels, in_channels)?)
        } else {
            Method::Im2col(PackedLhs::new(
                &weight,
                [out_channels, in_channels * kh * kw],
            )?)
        };
        let halves = halves(&weight, out_channels, in_channels * kh * kw, window);
        let few_tiles = match method {
            Method::Winograd(_) if in_channels * out_channels >= DEEP => {
                Some(Direct::new(&weight, out_channels, in_channels, window)?)
            }
            _ => None,
        };
        Some(PackedConv2d {
            method,
            halves,
            few_tiles,
            bias,
            out_channels,
            in_channels,
            window,
        })
    }

    /// The form this convolution is packed for, as plan reports name it: `cpu-winograd`,
    /// `cpu-direct` or `cpu-gemm` (im2col and a matrix product). A deep Winograd layer also
    /// runs direct on calls of fewer than 32 2x2 tiles.
    pub fn form(&self) -> &'static str {
        match self.method {
            Method::Winograd(_) => "cpu-winograd",
            Method::Direct(_) => "cpu-direct",
            Method::Im2col(_) => "cpu-gemm",
        }
    }

    /// The convolution of `x` (`[N, C_in, H, W]` on the flex device), plus `residual` (of the
    /// output's shape) when given, through ReLU when `relu`; or `x` back if it does not fit
    /// (other device, dtype or channel count, a residual of another shape), so the caller can
    /// fall back. Taking `x` by value lets its buffer move out without a copy when nothing else
    /// holds it.
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward(
        &self,
        x: Tensor<4>,
        residual: Option<Tensor<4>>,
        relu: bool,
    ) -> std::result::Result<Tensor<4>, Tensor<4>> {
        self.forward_activated(x, residual, relu, None)
    }

    /// [`PackedConv2d::forward`], then `activation` (a `Conv2dNormActivation`'s Hardswish or
    /// SiLU) applied to each piece of the output while it is in cache, instead of in a pass of
    /// its own over the whole output.
    // `Err` hands the input back for the general path; it is no error, so its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn forward_activated(
        &self,
        x: Tensor<4>,
        residual: Option<Tensor<4>>,
        relu: bool,
        activation: Option<Elementwise>,
    ) -> std::result::Result<Tensor<4>, Tensor<4>> {
        let [n, c, h, w] = x.dims();
        let Ok([oh, ow]) = self.window.output_size([h, w], false) else {
            return Err(x);
        };
        // An empty image or output has nothing to multiply (and no chunks to split into).
        if c != self.in_channels || n * c * h * w * oh * ow == 0 {
            return Err(x);
        }
        let residual = match residual {
            Some(r) if r.dims() == [n, self.out_channels, oh, ow] => match flex_f32(r) {
                Ok(values) => Some(values),
                Err(_) => return Err(x),
            },
            Some(_) => return Err(x),
            None => None,
        };
        let epilogue = Epilogue {
            bias: self.bias.as_deref(),
            residual: residual.as_ref().map(|r| r.as_slice()),
            relu,
            activation,
        };
        let data = flex_f32(x)?;
        let input = data.as_slice();
        let direct = |direct: &Direct| {
            let Ok(out) = filled(n * self.out_channels * oh * ow, |out| {
                direct.forward(input, [n, h, w], [oh, ow], epilogue, out);
                Ok::<(), std::convert::Infallible>(())
            });
            flex_tensor(out, [n, self.out_channels, oh, ow])
        };
        if let Some(few_tiles) = &self.few_tiles
            && n * h.div_ceil(2) * w.div_ceil(2) < FEW_TILES
        {
            return Ok(direct(few_tiles));
        }
        let weight = match &self.method {
            Method::Winograd(winograd) => {
                return match winograd.forward(input, [n, h, w], epilogue) {
                    Ok(out) => Ok(flex_tensor(out, [n, self.out_channels, oh, ow])),
                    // Shapes were checked above: a refusal hands the input back all the same.
                    Err(_) => Err(flex_tensor(input.to_vec(), [n, c, h, w])),
                };
            }
            Method::Im2col(weight) => weight,
            Method::Direct(form) => return Ok(direct(form)),
        };
        let (hw, chw) = (oh * ow, c * h * w);
        let cout = self.out_channels;
        // The product adds the bias to each block of its output while the block is in
        // registers; the rest of the epilogue follows, an image at a time.
        let bias = self.bias.as_deref();
        let after = Epilogue {
            bias: None,
            ..epilogue
        };
        let pointwise = self.window == Window2d::square(1, 1, 0);
        // Late layers have few output pixels per image: several images share one product (a
        // wider matrix runs the microkernel better), then their rows are copied into place.
        let group = (GEMM_COLUMNS / hw).clamp(1, n.max(1));
        let halves = self.halves.as_ref().filter(|_| hw < SPLIT_BELOW);
        let out = if group == 1 {
            filled(n * cout * hw, |out| {
                let images = input.chunks_exact(chw).zip(out.chunks_exact_mut(cout * hw));
                for (img, (image, out)) in images.enumerate() {
                    if let Some(halves) = halves {
                        halves.multiply(View::rows(image, [c, hw], hw), bias, hw, out)?;
                    } else if pointwise {
                        let rhs = Rhs::Matrix(View::rows(image, [c, hw], hw));
                        weight.multiply(rhs, bias, out).map_err(drop)?;
                    } else {
                        let im2col = im2col(image, [c, h, w], &self.window, [oh, ow]).ok_or(())?;
                        weight
                            .multiply(Rhs::Im2Col(&im2col), bias, out)
                            .map_err(drop)?;
                    }
                    // SAFETY: the product wrote every value of this image's output.
                    let out = unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) };
                    // This image's output while it is still in cache.
                    after.finish(out, img, hw);
                }
                Ok(())
            })
        } else {
            self.grouped(weight, input, [n, c, h, w], [oh, ow], group, after)
        };
        match out {
            Ok(out) => Ok(flex_tensor(out, [n, cout, oh, ow])),
            // Shapes were checked above: a refusal here hands the input back all the same.
            Err(()) => Err(flex_tensor(input.to_vec(), [n, c, h, w])),
        }
    }

    /// The convolution of `group` images at a time, their im2col matrices side by side in
    /// one `[C_in*kh*kw, group*H_out*W_out]` matrix.
    fn grouped(
        &self,
        weight: &PackedLhs,
        input: &[f32],
        [n, c, h, w]: [usize; 4],
        [oh, ow]: [usize; 2],
        group: usize,
        epilogue: Epilogue,
    ) -> Result<Vec<f32>, ()> {
        let [kh, kw] = self.window.kernel;
        let (k, hw, chw) = (c * kh * kw, oh * ow, c * h * w);
        let cout = self.out_channels;
        let cols = group * hw;
        let mut col = vec![0.0f32; k * cols];
        let mut staging = vec![0.0f32; cout * cols];
        let mut out = vec![0.0f32; n * cout * hw];
        for first in (0..n).step_by(group) {
            let g = group.min(n - first);
            for j in 0..g {
                let image = &input[(first + j) * chw..(first + j + 1) * chw];
                self.im2col(image, [h, w], [oh, ow], &mut col, cols, j * hw);
            }
            let rhs = Rhs::Matrix(View::rows(&col, [k, g * hw], cols));
            let staged = &mut staging[..cout * g * hw];
            weight
                .multiply(rhs, self.bias.as_deref(), as_uninit(staged))
                .map_err(drop)?;
            let staged = &*staged;
            let gw = g * hw;
            out[first * cout * hw..(first + g) * cout * hw]
                .par_chunks_mut(hw)
                .with_min_len(ROW_VALUES.div_ceil(hw))
                .enumerate()
                .for_each(|(i, row)| {
                    let (j, o) = (i / cout, i % cout);
                    row.copy_from_slice(&staged[o * gw + j * hw..o * gw + (j + 1) * hw]);
                    let at = (first * cout + i) * hw;
                    let residual = epilogue.residual.map(|r| &r[at..at + hw]);
                    epilogue.finish_row(row, o, residual);
                });
        }
        Ok(out)
    }

    /// Fills columns `offset..offset + oh*ow` of `col` (`[C_in*kh*kw, row_len]`) from one NCHW
    /// image, zero where the window is outside the image.
    fn im2col(
        &self,
        image: &[f32],
        [h, w]: [usize; 2],
        [oh, ow]: [usize; 2],
        col: &mut [f32],
        row_len: usize,
        offset: usize,
    ) {
        let [kh, kw] = self.window.kernel;
        let [sh, sw] = self.window.stride;
        let [(ph, _), (pw, _)] = self.window.padding;
        let [dh, dw] = self.window.dilation;
        col.par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(r, row)| {
                let row = &mut row[offset..offset + oh * ow];
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
                    // Output columns whose input lies inside the row: first..last.
                    let (x0, sw_i, w_i) = (x0, sw as isize, w as isize);
                    let first = if x0 >= 0 { 0 } else { (-x0 + sw_i - 1) / sw_i };
                    let last = if w_i - 1 - x0 < 0 {
                        0
                    } else {
                        (w_i - 1 - x0) / sw_i + 1
                    };
                    let first = first.clamp(0, ow as isize) as usize;
                    let last = last.clamp(first as isize, ow as isize) as usize;
                    dst[..first].fill(0.0);
                    dst[last..].fill(0.0);
                    let start = (x0 + (first * sw) as isize) as usize;
                    let inside = &mut dst[first..last];
                    if sw == 1 {
                        inside.copy_from_slice(&src[start..start + inside.len()]);
                    } else {
                        for (v, x) in inside.iter_mut().zip(src[start..].iter().step_by(sw)) {
                            *v = *x;
                        }
                    }
                }
            });
    }
}

/// `bias` and `residual` added in place, then ReLU when `do_relu`.
fn add_residual(values: &mut [f32], bias: f32, residual: &[f32], do_relu: bool) {
    for (v, r) in values.iter_mut().zip(residual) {
        let sum = (*v + bias) + r;
        *v = if do_relu { relu(sum) } else { sum };
    }
}

/// `max(v, 0)`.
#[inline(always)]
fn relu(v: f32) -> f32 {
    v.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use burn::tensor::activation;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;

    /// Every path (Winograd on even and odd sizes and across blocks, direct, pointwise,
    /// strided, dilated, grouped images with a partial last group), with and without the fused
    /// residual add and ReLU, and with a SiLU, against burn's own conv2d (and add, and ReLU).
    #[test]
    fn matches_burns_conv2d() {
        let device = Device::flex();
        // (input [n, c, h, w], kernel, stride, padding, dilation, bias)
        let cases = [
            ([3, 4, 28, 25], [6, 4, 3, 3], 1, 1, 1, true), // Winograd, odd width
            ([2, 5, 7, 7], [3, 5, 3, 3], 1, 1, 1, false),  // Winograd, odd both ways
            ([1, 1, 1, 2], [2, 1, 3, 3], 1, 1, 1, true),   // Winograd, one tile
            ([5, 64, 30, 30], [64, 64, 3, 3], 1, 1, 1, true), // Winograd, several blocks
            ([2, 3, 20, 20], [8, 3, 3, 3], 1, 1, 1, true), // direct: 3 input channels
            ([1, 512, 7, 7], [512, 512, 3, 3], 1, 1, 1, true), // direct: deep, 16 tiles
            ([3, 4, 8, 9], [6, 4, 3, 3], 1, 2, 1, true),   // direct: padding 2
            ([3, 20, 20, 22], [6, 20, 3, 3], 2, 1, 1, true), // im2col, groups of 2, then 1
            ([3, 20, 8, 9], [6, 20, 3, 3], 2, 1, 1, false), // im2col, one group of 3
            ([1, 20, 40, 40], [8, 20, 3, 3], 2, 1, 1, true), // im2col, one image
            ([3, 4, 9, 8], [5, 4, 1, 1], 1, 0, 1, false),  // pointwise, one group of 3
            ([1, 3, 64, 64], [8, 3, 1, 1], 1, 0, 1, true), // pointwise straight from the input
            ([2, 3, 23, 31], [7, 3, 5, 5], 2, 2, 1, true), // direct, strided
            ([2, 3, 23, 31], [7, 3, 3, 3], 2, 1, 1, true), // im2col: 3x3 stride 2, 3 channels
            ([2, 2, 17, 19], [3, 2, 3, 3], 1, 2, 2, false), // dilated
            ([2, 3, 33, 33], [4, 3, 11, 11], 4, 2, 1, true), // AlexNet's first layer, smaller
            ([1, 96, 7, 7], [200, 96, 1, 1], 1, 0, 1, true), // pointwise in halves
            ([1, 40, 9, 9], [130, 40, 1, 1], 1, 0, 1, false), // halves of 80 and 50 rows
        ];
        for (shape, wshape, s, p, d, with_bias) in cases {
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<4>::random(wshape, Distribution::Normal(0.0, 0.5), &device);
            let b = with_bias
                .then(|| Tensor::<1>::random([wshape[0]], Distribution::Normal(0.0, 1.0), &device));
            let options = ConvOptions::new([s, s], [p, p], [d, d], 1);
            let window = Window2d {
                kernel: [wshape[2], wshape[3]],
                dilation: [d, d],
                ..Window2d::square(1, s, p)
            };
            let cpu = PackedConv2d::new(&w, b.as_ref(), window, 1).expect("applies on flex");
            let wide = window == Window2d::square(1, 1, 0) && (128..512).contains(&wshape[0]);
            assert_eq!(
                cpu.halves.is_some(),
                wide && rayon::current_num_threads() > 1,
                "{wshape:?}"
            );
            let plain = conv2d(x.clone(), w, b, options);
            let residual =
                Tensor::<4>::random(plain.dims(), Distribution::Normal(0.0, 1.0), &device);
            for (relu, with_residual) in
                [(false, false), (true, false), (false, true), (true, true)]
            {
                let r = with_residual.then(|| residual.clone());
                let ours = cpu.forward(x.clone(), r, relu).expect("applies on flex");
                let theirs = match with_residual {
                    true => plain.clone() + residual.clone(),
                    false => plain.clone(),
                };
                let theirs = if relu {
                    activation::relu(theirs)
                } else {
                    theirs
                };
                assert_eq!(ours.dims(), theirs.dims(), "{shape:?} {wshape:?}");
                let scale = theirs.clone().abs().max().into_scalar::<f32>();
                let diff = (ours - theirs).abs().max().into_scalar::<f32>();
                // A deeper sum rounds more, both ways: the bound grows with the square root of
                // its depth past the 576 terms of a 64-channel 3x3 layer.
                let depth = (wshape[1] * wshape[2] * wshape[3]) as f32;
                let bound = 2e-6 * scale.max(1.0) * (depth / 576.0).sqrt().max(1.0);
                assert!(
                    diff < bound,
                    "{shape:?} {wshape:?} relu {relu} residual {with_residual}: {diff} of {scale}"
                );
            }
            // An activation in the epilogue: SiLU over the output, as a pass after it would.
            let ours = cpu
                .forward_activated(x.clone(), None, false, Some(Elementwise::Silu))
                .expect("applies on flex");
            let theirs = activation::silu(plain.clone());
            let scale = theirs.clone().abs().max().into_scalar::<f32>();
            let diff = (ours - theirs).abs().max().into_scalar::<f32>();
            let depth = (wshape[1] * wshape[2] * wshape[3]) as f32;
            let bound = 2e-6 * scale.max(1.0) * (depth / 576.0).sqrt().max(1.0);
            assert!(diff < bound, "{shape:?} {wshape:?} SiLU: {diff} of {scale}");
        }
    }
}
