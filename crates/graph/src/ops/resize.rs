use burn::prelude::*;
use burn::tensor::TensorData;
use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, TensorFn, Value};

/// How [`Resize`] interpolates (ONNX `Resize`'s `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum ResizeMode {
    /// The nearest input entry, ties and rounding as `nearest_mode` says.
    Nearest(NearestRounding),
    /// Linear interpolation between the two neighbours, separately along each axis
    /// (bilinear).
    Linear,
    /// Cubic convolution over four neighbours along each axis (bicubic), with coefficient `a`
    /// (ONNX's default -0.75, PyTorch's bicubic -0.75, TensorFlow's -0.5).
    Cubic {
        /// The cubic coefficient.
        a: f32,
    },
}

/// How [`ResizeMode::Nearest`] rounds a source coordinate (ONNX `nearest_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NearestRounding {
    /// Down (`floor`; PyTorch's `nearest`).
    Floor,
    /// Up (`ceil`).
    Ceil,
    /// To the nearest, halves down (`round_prefer_floor`, ONNX's default).
    RoundPreferFloor,
    /// To the nearest, halves up (`round_prefer_ceil`).
    RoundPreferCeil,
}

/// Where an output coordinate samples the input (ONNX `coordinate_transformation_mode`),
/// with `scale = output size / input size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CoordinateTransform {
    /// `(x + 0.5) / scale - 0.5` (ONNX's default; PyTorch's `align_corners=False`).
    HalfPixel,
    /// As `HalfPixel`, but 0 for an output of size 1.
    PytorchHalfPixel,
    /// `x * (in - 1) / (out - 1)`, 0 for an output of size 1 (`align_corners=True`).
    AlignCorners,
    /// `x / scale` (PyTorch's `nearest`).
    Asymmetric,
}

/// ONNX `Resize` (opset 13 and later) of the last two axes to a fixed size, as
/// `F.interpolate` and `nn.Upsample` export: nearest, bilinear or bicubic, with ONNX's
/// coordinate transforms.
///
/// Each axis is interpolated separately. Which input entries an output entry reads, and with
/// what weights, depends on the sizes alone: they are computed on the host, as ONNX's
/// reference does, and applied with burn's `select` and weighted sums, so the op runs on any
/// device. Source entries beyond the edge read the edge (or, with `exclude_outside`, weigh
/// nothing, the other weights renormalised).
///
/// # Shapes
/// `[..., H, W]` (rank 2 or more, as `[N, C, H, W]`) to `[..., size[0], size[1]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resize {
    /// The output's `[H, W]`.
    pub size: [usize; 2],
    /// How values are interpolated.
    pub mode: ResizeMode,
    /// Where output coordinates sample the input.
    pub transform: CoordinateTransform,
    /// Whether weights of entries beyond the edge drop out (ONNX `exclude_outside`; cubic).
    pub exclude_outside: bool,
    /// The `[H, W]` scales the coordinate transforms divide by when the model gives scales
    /// rather than sizes (ONNX uses the given scale, not `size / input`: 5 entries scaled by 1.5
    /// are 7, sampled 1/1.5 apart); `None` for `size / input`.
    pub scales: Option<[f32; 2]>,
}

impl Resize {
    /// The output shape for `shape`, or why it cannot be resized.
    fn out_shape(&self, shape: &[usize]) -> Result<Vec<usize>, String> {
        let rank = shape.len();
        if rank < 2 || shape[rank - 2..].contains(&0) || self.size.contains(&0) {
            return Err(format!(
                "cannot resize the last two axes of shape {shape:?} to {:?}",
                self.size
            ));
        }
        let mut out = shape.to_vec();
        out[rank - 2..].copy_from_slice(&self.size);
        Ok(out)
    }

    /// The source coordinate of output entry `x` along an axis resized from `input` to
    /// `output` entries.
    fn source(&self, x: usize, input: usize, output: usize, scale: Option<f32>) -> f64 {
        let (x, input_f, output_f) = (x as f64, input as f64, output as f64);
        let scale = scale.map_or(output_f / input_f, f64::from);
        match self.transform {
            CoordinateTransform::HalfPixel => (x + 0.5) / scale - 0.5,
            CoordinateTransform::PytorchHalfPixel if output > 1 => (x + 0.5) / scale - 0.5,
            CoordinateTransform::PytorchHalfPixel => 0.0,
            CoordinateTransform::AlignCorners if output > 1 => {
                x * (input_f - 1.0) / (output_f - 1.0)
            }
            CoordinateTransform::AlignCorners => 0.0,
            CoordinateTransform::Asymmetric => x / scale,
        }
    }

    /// What each output entry of an axis resized from `input` to `output` entries reads:
    /// taps, each an input index per output entry (clamped to the axis) and its weight.
    fn taps(&self, input: usize, output: usize, scale: Option<f32>) -> Vec<Tap> {
        let offsets: Vec<i64> = match self.mode {
            ResizeMode::Nearest(_) => vec![0],
            ResizeMode::Linear => vec![0, 1],
            ResizeMode::Cubic { .. } => vec![-1, 0, 1, 2],
        };
        let mut taps: Vec<Tap> = offsets
            .iter()
            .map(|_| Tap {
                indices: Vec::with_capacity(output),
                weights: Vec::with_capacity(output),
            })
            .collect();
        let last = input as i64 - 1;
        for x in 0..output {
            let s = self.source(x, input, output, scale);
            let floor = s.floor();
            let r = s - floor;
            let (base, weights): (i64, Vec<f64>) = match self.mode {
                ResizeMode::Nearest(rounding) => {
                    let up = match rounding {
                        _ if r == 0.0 => false,
                        NearestRounding::Floor => false,
                        NearestRounding::Ceil => true,
                        NearestRounding::RoundPreferFloor => r > 0.5,
                        NearestRounding::RoundPreferCeil => r >= 0.5,
                    };
                    (floor as i64 + i64::from(up), vec![1.0])
                }
                ResizeMode::Linear => (floor as i64, vec![1.0 - r, r]),
                ResizeMode::Cubic { a } => (floor as i64, cubic(f64::from(a), r).to_vec()),
            };
            let mut weights = weights;
            if self.exclude_outside {
                for (w, o) in weights.iter_mut().zip(&offsets) {
                    if !(0..=last).contains(&(base + o)) {
                        *w = 0.0;
                    }
                }
                let sum: f64 = weights.iter().sum();
                if sum != 0.0 {
                    weights.iter_mut().for_each(|w| *w /= sum);
                }
            }
            for ((tap, o), w) in taps.iter_mut().zip(&offsets).zip(weights) {
                tap.indices.push((base + o).clamp(0, last));
                tap.weights.push(w as f32);
            }
        }
        // Taps that weigh nothing anywhere (a linear resize at an integer scale) are skipped.
        taps.retain(|t| t.weights.iter().any(|&w| w != 0.0));
        taps
    }
}

/// The cubic convolution weights of the four neighbours `floor - 1 ..= floor + 2` of a
/// source coordinate `r` past `floor` (ONNX's reference `_cubic_coeffs`).
fn cubic(a: f64, r: f64) -> [f64; 4] {
    let outer = |d: f64| ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a;
    let inner = |d: f64| ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0;
    [outer(r + 1.0), inner(r), inner(1.0 - r), outer(2.0 - r)]
}

/// One term of an axis' interpolation: for each output entry, the input entry read and its
/// weight.
#[derive(Debug, Clone, PartialEq)]
struct Tap {
    indices: Vec<i64>,
    weights: Vec<f32>,
}

impl Tap {
    /// Whether the tap reads entry `i` for output `i`, weight 1: the axis is unchanged.
    fn is_identity(&self) -> bool {
        self.weights.iter().all(|&w| w == 1.0)
            && self.indices.iter().enumerate().all(|(i, &j)| j == i as i64)
    }
}

/// The taps of the last two axes, applied in turn.
struct Interpolate {
    rows: Vec<Tap>,
    cols: Vec<Tap>,
}

impl Interpolate {
    /// `t` interpolated along `axis` with `taps`.
    fn axis<const D: usize>(t: Tensor<D>, axis: usize, taps: &[Tap]) -> Tensor<D> {
        if let [tap] = taps
            && tap.is_identity()
            && tap.indices.len() == t.dims()[axis]
        {
            return t;
        }
        let device = t.device();
        let dtype = t.dtype();
        let mut sum: Option<Tensor<D>> = None;
        for tap in taps {
            let n = tap.indices.len();
            let indices =
                Tensor::<1, Int>::from_data(TensorData::new(tap.indices.clone(), [n]), &device);
            let picked = t.clone().select(axis, indices);
            let term = if tap.weights.iter().all(|&w| w == 1.0) {
                picked
            } else {
                let mut shape = [1usize; D];
                shape[axis] = n;
                let weights = Tensor::<D>::from_data(
                    TensorData::new(tap.weights.clone(), shape),
                    (&device, dtype),
                );
                picked * weights
            };
            sum = Some(match sum {
                Some(s) => s + term,
                None => term,
            });
        }
        // Every resize has a tap with a nonzero weight; none would leave the input.
        sum.unwrap_or(t)
    }
}

impl TensorFn for Interpolate {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        let t = Interpolate::axis(t, D - 2, &self.rows);
        Interpolate::axis(t, D - 1, &self.cols)
    }
}

impl OpDef for Resize {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        tensor(self.out_shape(first_shape(inputs)?)?)
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let dims = x.dims();
        self.out_shape(&dims)?;
        let (h, w) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        Ok(x.map_float(Interpolate {
            rows: self.taps(h, self.size[0], self.scales.map(|s| s[0])),
            cols: self.taps(w, self.size[1], self.scales.map(|s| s[1])),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    fn resize(mode: ResizeMode, transform: CoordinateTransform, size: [usize; 2]) -> Resize {
        Resize {
            size,
            mode,
            transform,
            exclude_outside: false,
            scales: None,
        }
    }

    fn close(got: &[f32], want: &[f32]) -> bool {
        got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-5)
    }

    #[test]
    fn nearest_repeats_or_picks_entries() {
        // 2x2 -> 4x4, asymmetric, floor: source x / 2 -> [0, 0, 1, 1] on each axis.
        let x = feature(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
        let op = resize(
            ResizeMode::Nearest(NearestRounding::Floor),
            CoordinateTransform::Asymmetric,
            [4, 4],
        );
        let (shape, got) = run(&op, vec![x]).expect("resizes");
        assert_eq!(shape, [1, 1, 4, 4]);
        #[rustfmt::skip]
        let want = [
            1.0, 1.0, 2.0, 2.0,
            1.0, 1.0, 2.0, 2.0,
            3.0, 3.0, 4.0, 4.0,
            3.0, 3.0, 4.0, 4.0,
        ];
        assert_eq!(got, want);
        // 4 -> 2, half pixel: sources 0.5 and 2.5, ties rounded down or up.
        let row = || feature(vec![10.0, 20.0, 30.0, 40.0], &[1, 4]);
        let half = |rounding| {
            let op = resize(
                ResizeMode::Nearest(rounding),
                CoordinateTransform::HalfPixel,
                [1, 2],
            );
            run(&op, vec![row()]).expect("resizes").1
        };
        assert_eq!(half(NearestRounding::RoundPreferFloor), [10.0, 30.0]);
        assert_eq!(half(NearestRounding::RoundPreferCeil), [20.0, 40.0]);
        assert_eq!(half(NearestRounding::Ceil), [20.0, 40.0]);
    }

    #[test]
    fn linear_interpolates_with_onnx_coordinates() {
        let x = || feature(vec![1.0, 2.0], &[1, 1, 1, 2]);
        // Half pixel 2 -> 4: sources -0.25 (the edge), 0.25, 0.75, 1.25 (the edge).
        let op = resize(ResizeMode::Linear, CoordinateTransform::HalfPixel, [1, 4]);
        let (_, got) = run(&op, vec![x()]).expect("resizes");
        assert!(close(&got, &[1.0, 1.25, 1.75, 2.0]), "{got:?}");
        // Align corners 2 -> 3: sources 0, 0.5, 1.
        let op = resize(ResizeMode::Linear, CoordinateTransform::AlignCorners, [1, 3]);
        let (_, got) = run(&op, vec![x()]).expect("resizes");
        assert!(close(&got, &[1.0, 1.5, 2.0]), "{got:?}");
        // Both axes: 2x2 -> 3x3 with aligned corners is the bilinear blend.
        let x = feature(vec![0.0, 2.0, 4.0, 6.0], &[1, 1, 2, 2]);
        let (shape, got) = run(&op_2d(), vec![x]).expect("resizes");
        assert_eq!(shape, [1, 1, 3, 3]);
        assert!(close(&got, &[0.0, 1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0]), "{got:?}");
        assert!(op.infer(&[&Value::Tensor(vec![4])]).is_err());
    }

    fn op_2d() -> Resize {
        resize(ResizeMode::Linear, CoordinateTransform::AlignCorners, [3, 3])
    }

    #[test]
    fn cubic_follows_onnx_coefficients() {
        // [1, 2, 3, 4] -> 8, asymmetric: sources 0, 0.5, 1, 1.5, ...; at r = 0.5 with
        // a = -0.75 the weights are [-0.09375, 0.59375, 0.59375, -0.09375].
        let x = || feature(vec![1.0, 2.0, 3.0, 4.0], &[1, 4]);
        let mut op = resize(
            ResizeMode::Cubic { a: -0.75 },
            CoordinateTransform::Asymmetric,
            [1, 8],
        );
        let (_, got) = run(&op, vec![x()]).expect("resizes");
        // Source 0.5 reads entries -1 (the edge, 1), 0, 1, 2: 1.40625; source 1.5 reads
        // 0..=3: 2.5.
        assert!(close(&got[..4], &[1.0, 1.40625, 2.0, 2.5]), "{got:?}");
        // Excluding entry -1: (0.59375 * 1 + 0.59375 * 2 - 0.09375 * 3) / 1.09375.
        op.exclude_outside = true;
        let (_, got) = run(&op, vec![x()]).expect("resizes");
        assert!(close(&got[..2], &[1.0, 1.5 / 1.09375]), "{got:?}");
    }
}
