//! Transcendental activations and softmax on float32 buffers, vectorised.
//!
//! burn-flex computes `exp`, `erf` and `tanh` one element at a time through libm, which was the
//! largest share of EfficientNet's CPU time (sigmoid and SiLU) and a large one of ConvNeXt's and
//! ViT's (GELU, softmax). rten-vecmath has SIMD versions of exactly these (AVX2/FMA and
//! AVX-512 picked at run time, NEON elsewhere) within a few ULP of libm (erf within 7e-7), so
//! featx uses them instead of writing its own polynomials. The piecewise-linear MobileNetV3
//! activations (hardswish, hardsigmoid, ReLU6) need no polynomial: they are one fused loop
//! here instead of burn's four ops.

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;
use rten_simd::{SimdOp, SimdUnaryOp};
use rten_vecmath::{ApproxGelu, Erf, Exp, Gelu, Sigmoid, Silu, Softmax, Tanh};

use super::tensor::own_flex;

/// Values per task on the thread pool: large enough that a task outweighs its hand-off (a
/// 64K-value sigmoid takes tens of microseconds), small enough that a batch-1 feature map
/// still spreads over every core.
const PARALLEL_CHUNK: usize = 1 << 16;

/// An elementwise function this module computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elementwise {
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `x * sigmoid(x)`.
    Silu,
    /// GELU, the exact (erf) form.
    Gelu,
    /// GELU, the tanh approximation.
    GeluTanh,
    /// `tanh(x)`.
    Tanh,
    /// `erf(x)`.
    Erf,
    /// `exp(x)`.
    Exp,
    /// `x * relu6(x + 3) / 6`, in PyTorch's order of operations.
    Hardswish,
    /// `relu6(x + 3) / 6`.
    Hardsigmoid,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `max(x, 0)`, NaN kept (as PyTorch's): for kernels that take any activation.
    Relu,
}

impl Elementwise {
    /// Applies the function to every value, in place, on all cores for large buffers.
    pub fn apply(self, values: &mut [f32]) {
        values
            .par_chunks_mut(PARALLEL_CHUNK)
            .for_each(|chunk| self.apply_serial(chunk));
    }

    /// The function of every value of `input`, written to `out` (as long), on all cores: one
    /// pass that reads each value once, each piece copied into place in cache and mapped there.
    pub fn apply_into(self, input: &[f32], out: &mut [MaybeUninit<f32>]) {
        out.par_chunks_mut(PARALLEL_CHUNK)
            .zip(input.par_chunks(PARALLEL_CHUNK))
            .for_each(|(out, input)| {
                for (o, &x) in out.iter_mut().zip(input) {
                    o.write(x);
                }
                // SAFETY: every value of this piece was written just above (the two slices
                // are equally long, both cut at the same points).
                let out = unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) };
                self.apply_serial(out);
            });
    }

    /// [`Elementwise::apply`] on the calling thread: for kernels that apply it to a piece of
    /// their output while it is in cache.
    pub(super) fn apply_serial(self, values: &mut [f32]) {
        match self {
            Elementwise::Sigmoid => Sigmoid {}.map_mut(values),
            Elementwise::Silu => Silu {}.map_mut(values),
            Elementwise::Gelu => Gelu {}.map_mut(values),
            Elementwise::GeluTanh => ApproxGelu {}.map_mut(values),
            Elementwise::Tanh => Tanh {}.map_mut(values),
            Elementwise::Erf => Erf {}.map_mut(values),
            Elementwise::Exp => Exp {}.map_mut(values),
            // Piecewise-linear: one fused pass the compiler vectorises, where burn runs four
            // ops (add, clamp, multiply, divide), each writing a fresh tensor.
            Elementwise::Hardswish => values
                .iter_mut()
                .for_each(|v| *v = *v * (*v + 3.0).clamp(0.0, 6.0) / 6.0),
            Elementwise::Hardsigmoid => values
                .iter_mut()
                .for_each(|v| *v = (*v + 3.0).clamp(0.0, 6.0) / 6.0),
            Elementwise::Relu6 => values.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
            Elementwise::Relu => values.iter_mut().for_each(|v| {
                if *v < 0.0 {
                    *v = 0.0
                }
            }),
        }
    }
}

/// `f` of every value of `x`, a row-major float32 tensor on the flex device: in place where
/// nothing else holds its buffer, else into a new buffer in one parallel pass
/// ([`Elementwise::apply_into`]). An every-node extraction holds every activation's input (it
/// is a requested output), and copying it whole before mapping it in place read and wrote the
/// tensor twice: ConvNeXt-T's GELUs at batch 8 took a quarter of its every-node time that way.
/// `x` back if it is not such a tensor (another device or dtype, a strided view).
// `Err` hands the input back for the general path; it is no error, so its size is moot.
#[allow(clippy::result_large_err)]
pub fn map<const D: usize>(f: Elementwise, x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    let dims = x.dims();
    let mut tensor = own_flex(x)?;
    let Some((start, end)) = tensor.layout().contiguous_offsets() else {
        return Err(Tensor::from_primitive::<Flex>(tensor));
    };
    if let Some(values) = tensor
        .try_storage_mut::<f32>()
        .and_then(|s| s.get_mut(start..end))
    {
        f.apply(values);
        return Ok(Tensor::from_primitive::<Flex>(tensor));
    }
    let Some(input) = tensor.storage::<f32>().get(start..end) else {
        return Err(Tensor::from_primitive::<Flex>(tensor));
    };
    let Ok(values) = super::matmul::filled(end - start, |out| {
        f.apply_into(input, out);
        Ok::<(), std::convert::Infallible>(())
    });
    Ok(Tensor::from_data(
        TensorData::new(values, dims),
        &Device::flex(),
    ))
}

/// Softmax over each run of `row` consecutive values (the last axis of a row-major tensor),
/// in place. `values.len()` must be a multiple of `row`; any remainder is left as it is.
pub fn softmax_rows(values: &mut [f32], row: usize) {
    if row == 0 {
        return;
    }
    let rows_per_task = (PARALLEL_CHUNK / row).max(1);
    values.par_chunks_mut(rows_per_task * row).for_each(|rows| {
        for chunk in rows.chunks_exact_mut(row) {
            Softmax::new_mut(chunk).dispatch();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact functions, in f64.
    fn reference(f: Elementwise, x: f64) -> f64 {
        let erf = |x: f64| {
            // Abramowitz and Stegun 7.1.26 is too coarse here; integrate instead.
            let n = 2000;
            let h = x / n as f64;
            let sum: f64 = (0..=n)
                .map(|i| {
                    let t = i as f64 * h;
                    let w = if i == 0 || i == n {
                        1.0
                    } else if i % 2 == 1 {
                        4.0
                    } else {
                        2.0
                    };
                    w * (-t * t).exp()
                })
                .sum();
            sum * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
        };
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        match f {
            Elementwise::Sigmoid => sigmoid(x),
            Elementwise::Silu => x * sigmoid(x),
            Elementwise::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            Elementwise::GeluTanh => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
            Elementwise::Tanh => x.tanh(),
            Elementwise::Erf => erf(x),
            Elementwise::Exp => x.exp(),
            Elementwise::Hardswish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Elementwise::Hardsigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Elementwise::Relu6 => x.clamp(0.0, 6.0),
            Elementwise::Relu => x.max(0.0),
        }
    }

    /// Every function over a buffer many tasks long equals it element by element.
    #[test]
    fn a_large_buffer_is_split_without_changing_a_value() {
        let xs: Vec<f32> = (0..3 * PARALLEL_CHUNK + 17)
            .map(|i| (i % 1601) as f32 / 80.0 - 10.0)
            .collect();
        for f in [Elementwise::Silu, Elementwise::Gelu, Elementwise::Hardswish] {
            let mut whole = xs.clone();
            f.apply(&mut whole);
            for (i, (&x, &y)) in xs.iter().zip(&whole).enumerate() {
                let mut one = [x];
                f.apply_serial(&mut one);
                assert_eq!(one[0].to_bits(), y.to_bits(), "{f:?} at {i}");
            }
        }
        // ViT-B/16's attention at batch 1: 12 x 197 rows of 197, many rows per task.
        let row = 197;
        let scores: Vec<f32> = (0..12 * row * row).map(|i| (i % 23) as f32 / 7.0).collect();
        let mut parallel = scores.clone();
        softmax_rows(&mut parallel, row);
        for (r, (got, input)) in parallel.chunks(row).zip(scores.chunks(row)).enumerate() {
            let mut serial = input.to_vec();
            Softmax::new_mut(&mut serial).dispatch();
            assert_eq!(got, serial.as_slice(), "row {r}");
        }
    }

    /// A tensor held elsewhere is mapped into a new buffer and left as it was; one held by
    /// nothing else in place; both give `apply`'s values. A strided view is handed back.
    #[test]
    fn map_leaves_a_held_input_alone_and_equals_apply() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        let x = Tensor::<2>::random([300, 700], Distribution::Normal(0.0, 2.0), &device);
        let input = x.to_data().try_into_vec::<f32>().unwrap();
        let mut want = input.clone();
        Elementwise::Gelu.apply(&mut want);
        let held = x.clone();
        let got = map(Elementwise::Gelu, x).expect("fits");
        assert_eq!(got.to_data().try_into_vec::<f32>().unwrap(), want);
        assert_eq!(held.to_data().try_into_vec::<f32>().unwrap(), input);
        let got = map(Elementwise::Gelu, held).expect("fits");
        assert_eq!(got.to_data().try_into_vec::<f32>().unwrap(), want);
        let view = Tensor::<2>::random([30, 70], Distribution::Default, &device).transpose();
        assert!(map(Elementwise::Gelu, view).is_err());
    }

    #[test]
    fn every_function_is_within_float32_rounding_of_the_exact_one() {
        let xs: Vec<f32> = (-800..=800).map(|i| i as f32 / 80.0).collect();
        for f in [
            Elementwise::Sigmoid,
            Elementwise::Silu,
            Elementwise::Gelu,
            Elementwise::GeluTanh,
            Elementwise::Tanh,
            Elementwise::Erf,
            Elementwise::Exp,
            Elementwise::Hardswish,
            Elementwise::Hardsigmoid,
            Elementwise::Relu6,
            Elementwise::Relu,
        ] {
            let mut got = xs.clone();
            f.apply(&mut got);
            for (&x, &y) in xs.iter().zip(&got) {
                let want = reference(f, f64::from(x));
                let err = (f64::from(y) - want).abs();
                assert!(
                    err <= 2e-6 * want.abs().max(1.0),
                    "{f:?}({x}) = {y}, exact {want}"
                );
            }
        }
    }

    #[test]
    fn softmax_normalises_each_row() {
        let mut v = vec![1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0];
        softmax_rows(&mut v, 3);
        let e: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|x| x.exp()).collect();
        let s: f64 = e.iter().sum();
        for i in 0..3 {
            assert!((f64::from(v[i]) - e[i] / s).abs() < 1e-6);
            assert!((f64::from(v[3 + i]) - 1.0 / 3.0).abs() < 1e-6);
        }
    }
}
