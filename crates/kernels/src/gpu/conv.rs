//! featx's GPU convolution on burn tensors: weights packed once, shapes checked before every
//! launch (the kernel itself trusts them), the call routed through burn's backend extension.

use burn::backend::{Dispatch, DispatchDevice};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use featx_graph::Window2d;

use super::extension::{ConvCall, FusedConv, KernelChoice, cooperative_layout};
use crate::{KernelError, Result};

/// Whether featx's GPU kernels run on `device`: a CubeCL device (wgpu in featx's builds)
/// without a gradient tape (the kernels have no backward pass).
pub fn supports(device: &Device) -> bool {
    matches!(device.as_dispatch(), DispatchDevice::Cube(_)) && !device.is_autodiff()
}

/// Whether featx's convolution runs on cooperative matrices (tensor cores) when it multiplies
/// in `dtype` on `device`: float16 or bfloat16 on a CubeCL device whose compiler and driver
/// multiply square fragments of it into float32 (on wgpu: the SPIR-V compiler, on Vulkan).
/// Elsewhere, and for float32 products, the register-tiled kernel runs.
pub fn cooperative(device: &Device, dtype: DType) -> bool {
    match device.as_dispatch() {
        DispatchDevice::Cube(cube) => {
            !device.is_autodiff() && cooperative_layout(cube.client().properties(), dtype).is_some()
        }
        _ => false,
    }
}

/// The output blocks (`[positions, channels]`) the cooperative-matrix convolution can run in,
/// largest first: what [`PackedConv2d::in_block`] takes. A device may not take all of them
/// (its shared memory and units per cube decide).
pub fn cooperative_blocks() -> impl Iterator<Item = [usize; 2]> {
    super::cooperative::TILINGS
        .into_iter()
        .map(|t| [t.block_m, t.block_n])
}

/// A convolution's weights packed once for [`PackedConv2d::forward`]: `[C*KH*KW, K]`, the
/// layout in which the kernel's weight tile loads with neighbouring units reading neighbouring
/// addresses, with the table of each row's `(c, dy, dx)`.
#[derive(Debug, Clone)]
pub struct PackedConv2d {
    packed: Tensor<2>,
    steps: Tensor<1, Int>,
    bias: Tensor<1>,
    in_channels: usize,
    out_channels: usize,
    window: Window2d,
    /// The float type the products may be taken in (`multiplying_in`; the weights' own by
    /// default).
    multiply: DType,
    /// The kernel and block when fixed (`in_block`, `tiled_only`); featx's choice by default.
    kernel: KernelChoice,
}

impl PackedConv2d {
    /// Packs `weight` (`[K, C, KH, KW]`, its kernel size must equal `window`'s) and `bias`
    /// (zeros when absent); declines (`None`) grouped convolutions and devices featx's GPU
    /// kernels do not run on ([`supports`]), which keep burn's path.
    pub fn new(
        weight: &Tensor<4>,
        bias: Option<&Tensor<1>>,
        window: Window2d,
        groups: usize,
    ) -> Option<Self> {
        let [out_channels, in_channels, kh, kw] = weight.dims();
        let device = weight.device();
        if groups != 1 || !supports(&device) || window.kernel != [kh, kw] {
            return None;
        }
        let packed = weight
            .clone()
            .reshape([out_channels, in_channels * kh * kw])
            .transpose()
            // A fresh contiguous buffer: the kernel reads the transposed layout directly.
            .add_scalar(0.0);
        let bias = match bias {
            Some(b) if b.dims() == [out_channels] => b.clone(),
            Some(_) => return None,
            None => Tensor::zeros([out_channels], (&device, weight.dtype())),
        };
        let steps = steps_table(in_channels, window)?;
        let rows = steps.len();
        let steps = Tensor::from_data(TensorData::new(steps, [rows]), (&device, DType::I32));
        Some(Self {
            multiply: packed.dtype(),
            packed,
            steps,
            bias,
            in_channels,
            out_channels,
            window,
            kernel: KernelChoice::Auto,
        })
    }

    /// The same convolution allowed to take its products in `dtype` (float16 or bfloat16) on
    /// cooperative matrices where the device has them for it ([`cooperative`]), with float32
    /// weights and activations rounded to it as they come into shared memory and the sums in
    /// float32: a TF32-like mode, tensor-core speed with float32 tensors. Where the device has
    /// no such matrices it changes nothing: the register-tiled kernel multiplies in float32.
    pub fn multiplying_in(mut self, dtype: DType) -> Self {
        self.multiply = dtype;
        self
    }

    /// The same convolution run, where it runs on cooperative matrices, in `block` (one of
    /// [`cooperative_blocks`]) instead of the block featx measures or picks per layer: for
    /// benchmarks and tests that compare blocks. A block the device does not take is ignored.
    pub fn in_block(mut self, block: [usize; 2]) -> Self {
        self.kernel = KernelChoice::Block(block);
        self
    }

    /// The same convolution always on the register-tiled kernel, even where it would run on
    /// cooperative matrices: to measure what they win on a card, or to step around a driver
    /// whose cooperative matrices misbehave. Products are then taken in the operands' own type
    /// (`multiplying_in` changes nothing).
    pub fn tiled_only(mut self) -> Self {
        self.kernel = KernelChoice::Tiled;
        self
    }

    /// Whether this layer runs on cooperative matrices ([`cooperative`]) or on the
    /// register-tiled kernel.
    pub fn is_cooperative(&self) -> bool {
        self.kernel != KernelChoice::Tiled && cooperative(&self.packed.device(), self.multiply)
    }

    /// `relu?(conv(x) + bias (+ residual))` for `x` `[N, C, H, W]` on the weights' device;
    /// `residual`, when given, must have the output's shape (a ResNet block's identity).
    pub fn forward(
        &self,
        x: Tensor<4>,
        residual: Option<Tensor<4>>,
        relu: bool,
    ) -> Result<Tensor<4>> {
        let [n, c, h, w] = x.dims();
        if c != self.in_channels || x.device() != self.packed.device() {
            return Err(KernelError::Input {
                expected_channels: self.in_channels,
                shape: x.dims().to_vec(),
            });
        }
        let dtypes = [Some(x.dtype()), residual.as_ref().map(Tensor::dtype)];
        if let Some(got) = dtypes
            .into_iter()
            .flatten()
            .find(|d| *d != self.packed.dtype())
        {
            return Err(KernelError::DType {
                expected: format!("{:?}", self.packed.dtype()),
                got: format!("{got:?}"),
            });
        }
        let [oh, ow] =
            self.window
                .output_size([h, w], false)
                .map_err(|reason| KernelError::Window {
                    shape: x.dims().to_vec(),
                    reason,
                })?;
        let out = [n, self.out_channels, oh, ow];
        let call = ConvCall {
            stride: self.window.stride,
            padding: [self.window.padding[0].0, self.window.padding[1].0],
            output: [oh, ow],
            relu,
            multiply: self.multiply,
            kernel: self.kernel,
        };
        let x = x.into_dispatch();
        let packed = self.packed.clone().into_dispatch();
        let steps = self.steps.clone().into_dispatch();
        let bias = self.bias.clone().into_dispatch();
        let y = match residual {
            None => <Dispatch as FusedConv>::featx_conv2d(x, packed, steps, bias, call),
            Some(r) if r.dims() == out && r.device() == self.packed.device() => {
                let r = r.into_dispatch();
                <Dispatch as FusedConv>::featx_conv2d_add(x, packed, steps, bias, r, call)
            }
            Some(r) => {
                return Err(KernelError::Residual {
                    expected: out.to_vec(),
                    shape: r.dims().to_vec(),
                });
            }
        };
        Ok(Tensor::from_dispatch(y))
    }
}

/// `(c, dy, dx)` for each row `c*KH*KW + kh*KW + kw` of the packed weight: the input channel
/// and the window offset with dilation applied. `None` when an entry does not fit an `i32`.
fn steps_table(channels: usize, window: Window2d) -> Option<Vec<i32>> {
    let [kh, kw] = window.kernel;
    let [dh, dw] = window.dilation;
    let mut table = Vec::with_capacity(channels * kh * kw * 3);
    for c in 0..channels {
        for y in 0..kh {
            for x in 0..kw {
                for value in [c, y * dh, x * dw] {
                    table.push(i32::try_from(value).ok()?);
                }
            }
        }
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{DeviceKind, Distribution, FloatDType};

    use super::*;

    /// The wgpu device if an adapter computes on it; `None` (the tests skip, saying so) where
    /// none does, unless `FEATX_REQUIRE_GPU=1` makes that a failure.
    fn gpu() -> Option<Device> {
        let device = Device::wgpu(DeviceKind::DefaultDevice);
        let probe = device.clone();
        let works = std::panic::catch_unwind(move || {
            let x = Tensor::<1>::from_floats([1.0, 2.0], &probe);
            (x * 2.0).into_data().try_to_vec::<f32>().ok() == Some(vec![2.0, 4.0])
        })
        .unwrap_or(false);
        if works {
            return Some(device);
        }
        assert!(
            std::env::var("FEATX_REQUIRE_GPU").as_deref() != Ok("1"),
            "FEATX_REQUIRE_GPU=1 but no wgpu adapter works"
        );
        eprintln!("skipped: no wgpu adapter");
        None
    }

    /// One layer of a test: input `[n, c, h, w]`, `k` output channels, a window.
    struct Case {
        input: [usize; 4],
        out_channels: usize,
        window: Window2d,
        bias: bool,
        residual: bool,
        relu: bool,
    }

    /// featx's kernel, on tensors of `storage` multiplying in `multiply` (the kernel and block
    /// `kernel` chooses), against burn's `conv2d` in float32 (then the add and ReLU as tensor
    /// ops) on the same random operands; returns the largest difference relative to
    /// `max(1, max |reference|)`.
    fn relative_error(
        device: &Device,
        case: &Case,
        storage: FloatDType,
        multiply: FloatDType,
        kernel: KernelChoice,
    ) -> f32 {
        let [n, c, h, w] = case.input;
        let [kh, kw] = case.window.kernel;
        let normal = Distribution::Normal(0.0, 1.0);
        // Operands rounded to the narrower type first, so the reference sees the values featx
        // multiplies.
        let round = |t: Tensor<4>| t.cast(multiply).cast(FloatDType::F32);
        let x = round(Tensor::<4>::random([n, c, h, w], normal, device));
        let weight = round(Tensor::<4>::random(
            [case.out_channels, c, kh, kw],
            normal,
            device,
        ));
        let bias = case.bias.then(|| {
            Tensor::<1>::random([case.out_channels], normal, device)
                .cast(multiply)
                .cast(FloatDType::F32)
        });
        let options = ConvOptions::new_with_padding(
            case.window.stride,
            case.window.padding,
            case.window.dilation,
            1,
        );
        let mut expected = conv2d(x.clone(), weight.clone(), bias.clone(), options);
        let residual = case
            .residual
            .then(|| round(Tensor::<4>::random(expected.dims(), normal, device)));
        if let Some(r) = &residual {
            expected = expected + r.clone();
        }
        if case.relu {
            expected = burn::tensor::activation::relu(expected);
        }
        let conv = PackedConv2d::new(
            &weight.cast(storage),
            bias.map(|b| b.cast(storage)).as_ref(),
            case.window,
            1,
        )
        .expect("a wgpu device and an ungrouped convolution are accepted")
        .multiplying_in(multiply.into());
        let conv = match kernel {
            KernelChoice::Auto => conv,
            KernelChoice::Tiled => conv.tiled_only(),
            KernelChoice::Block(block) => conv.in_block(block),
        };
        let actual = conv
            .forward(
                x.cast(storage),
                residual.map(|r| r.cast(storage)),
                case.relu,
            )
            .expect("operands fit")
            .cast(FloatDType::F32);
        assert_eq!(actual.dims(), expected.dims());
        let scale = expected.clone().abs().max().into_scalar::<f32>().max(1.0);
        let diff = (actual - expected).abs().max().into_scalar::<f32>();
        diff / scale
    }

    /// Float32 within 1e-4 of burn's float32. Float16 tensors, and float32 tensors multiplied
    /// in float16 (`multiplying_in`), within 2e-3, on the kernels that may run them: where the
    /// device has cooperative matrices for float16, the cooperative kernel in every block and
    /// the tiled one (`tiled_only`). The sums are float32, so what remains is the output's
    /// rounding to float16 (half a unit in the last place, 4.9e-4 of the value) and, on
    /// lavapipe, products it rounds to float16 before summing them.
    fn check(case: Case) {
        let Some(device) = gpu() else { return };
        let auto = KernelChoice::Auto;
        let error = relative_error(&device, &case, FloatDType::F32, FloatDType::F32, auto);
        eprintln!(
            "{:?} {:?} f32: relative error {error:e}",
            case.input, case.window
        );
        assert!(error <= 1e-4, "f32: relative error {error} over 1e-4");
        if !device.supports_dtype(FloatDType::F16) {
            eprintln!("f16 skipped: the adapter has no float16");
            return;
        }
        // On cooperative matrices: featx's choice of block, each block in turn, and the tiled
        // kernel instead.
        let on_cooperative = cooperative(&device, DType::F16);
        let kernels = if on_cooperative {
            let each = cooperative_blocks().map(KernelChoice::Block);
            let tiled = [KernelChoice::Tiled];
            std::iter::once(auto).chain(each).chain(tiled).collect()
        } else {
            vec![auto]
        };
        for (storage, label) in [
            (FloatDType::F16, "f16"),
            (FloatDType::F32, "f32 multiplied in f16"),
        ] {
            for &choice in &kernels {
                let error = relative_error(&device, &case, storage, FloatDType::F16, choice);
                let kernel = match choice {
                    KernelChoice::Block([m, n]) => format!("cooperative {m}x{n}"),
                    KernelChoice::Auto if on_cooperative => "cooperative".to_string(),
                    _ => "tiled".to_string(),
                };
                eprintln!("{label} ({kernel}): relative error {error:e}");
                assert!(
                    error <= 2e-3,
                    "{label} ({kernel}): relative error {error} over 2e-3"
                );
            }
        }
    }

    #[test]
    fn resnet_3x3_stride_1_with_bias_and_relu() {
        check(Case {
            input: [2, 16, 14, 14],
            out_channels: 24,
            window: Window2d::square(3, 1, 1),
            bias: true,
            residual: false,
            relu: true,
        });
    }

    #[test]
    fn resnet_stem_7x7_stride_2_on_three_channels() {
        check(Case {
            input: [1, 3, 32, 32],
            out_channels: 16,
            window: Window2d::square(7, 2, 3),
            bias: false,
            residual: false,
            relu: false,
        });
    }

    #[test]
    fn downsample_1x1_stride_2() {
        check(Case {
            input: [2, 32, 9, 9],
            out_channels: 40,
            window: Window2d::square(1, 2, 0),
            bias: true,
            residual: false,
            relu: false,
        });
    }

    #[test]
    fn block_end_3x3_stride_2_with_residual_and_relu() {
        check(Case {
            input: [2, 8, 15, 15],
            out_channels: 20,
            window: Window2d::square(3, 2, 1),
            bias: true,
            residual: true,
            relu: true,
        });
    }

    #[test]
    fn odd_sizes_dilation_and_asymmetric_padding() {
        let mut window = Window2d::square(3, 1, 2);
        window.dilation = [2, 1];
        window.padding = [(2, 1), (0, 3)];
        check(Case {
            input: [1, 5, 13, 11],
            out_channels: 7,
            window,
            bias: true,
            residual: true,
            relu: false,
        });
    }

    #[test]
    fn a_reduction_shorter_than_one_step() {
        check(Case {
            input: [1, 5, 6, 6],
            out_channels: 3,
            window: Window2d::square(1, 1, 0),
            bias: true,
            residual: true,
            relu: true,
        });
    }

    /// 3000x3000 outputs make 70313 blocks of 128 rows, past a launch's 65535 per axis.
    #[test]
    fn more_row_blocks_than_one_launch_axis_holds() {
        check(Case {
            input: [1, 1, 3000, 3000],
            out_channels: 2,
            window: Window2d::square(1, 1, 0),
            bias: true,
            residual: false,
            relu: false,
        });
    }

    /// 2 output blocks of 4608 reduction rows: 36 parts, summed by the reduction kernel.
    #[test]
    fn resnet18_layer4_at_batch_1_splits_its_reduction() {
        check(Case {
            input: [1, 512, 7, 7],
            out_channels: 512,
            window: Window2d::square(3, 1, 1),
            bias: true,
            residual: true,
            relu: true,
        });
    }

    #[test]
    fn many_channels_take_the_8x8_blocks() {
        check(Case {
            input: [2, 4, 64, 64],
            out_channels: 1024,
            window: Window2d::square(3, 1, 1),
            bias: true,
            residual: true,
            relu: true,
        });
    }

    #[test]
    fn many_positions_take_the_8x4_blocks() {
        check(Case {
            input: [1, 4, 256, 256],
            out_channels: 64,
            window: Window2d::square(3, 1, 1),
            bias: true,
            residual: false,
            relu: true,
        });
    }

    #[test]
    fn the_steps_table_walks_channels_then_rows_then_columns_with_dilation() {
        let mut window = Window2d::square(2, 1, 0);
        window.dilation = [3, 2];
        let table = steps_table(2, window).unwrap();
        #[rustfmt::skip]
        let expected = [
            0, 0, 0,  0, 0, 2,  0, 3, 0,  0, 3, 2,
            1, 0, 0,  1, 0, 2,  1, 3, 0,  1, 3, 2,
        ];
        assert_eq!(table, expected);
    }

    #[test]
    fn shapes_that_do_not_fit_are_typed_errors() {
        let Some(device) = gpu() else { return };
        let weight = Tensor::<4>::ones([4, 3, 3, 3], &device);
        let conv = PackedConv2d::new(&weight, None, Window2d::square(3, 1, 1), 1).unwrap();
        let wrong_channels = Tensor::<4>::ones([1, 2, 8, 8], &device);
        assert_eq!(
            conv.forward(wrong_channels, None, false).unwrap_err(),
            KernelError::Input {
                expected_channels: 3,
                shape: vec![1, 2, 8, 8]
            }
        );
        let too_small = Tensor::<4>::ones([1, 3, 1, 1], &device);
        let unpadded = PackedConv2d::new(&weight, None, Window2d::square(3, 1, 0), 1).unwrap();
        assert!(matches!(
            unpadded.forward(too_small, None, false),
            Err(KernelError::Window { .. })
        ));
        let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
        let f16 = burn::tensor::FloatDType::F16;
        if device.supports_dtype(f16) {
            let half = Tensor::<4>::ones([1, 3, 8, 8], &device).cast(f16);
            assert_eq!(
                conv.forward(half, None, false).unwrap_err(),
                KernelError::DType {
                    expected: "F32".into(),
                    got: "F16".into()
                }
            );
        }
        let residual = Tensor::<4>::ones([1, 4, 7, 8], &device);
        assert_eq!(
            conv.forward(x, Some(residual), false).unwrap_err(),
            KernelError::Residual {
                expected: vec![1, 4, 8, 8],
                shape: vec![1, 4, 7, 8]
            }
        );
    }

    #[test]
    fn declines_the_cpu_groups_and_mismatched_windows() {
        let cpu = Tensor::<4>::ones([4, 3, 3, 3], &Device::flex());
        assert!(PackedConv2d::new(&cpu, None, Window2d::square(3, 1, 1), 1).is_none());
        let Some(device) = gpu() else { return };
        let weight = Tensor::<4>::ones([4, 3, 3, 3], &device);
        assert!(PackedConv2d::new(&weight, None, Window2d::square(3, 1, 1), 2).is_none());
        assert!(PackedConv2d::new(&weight, None, Window2d::square(5, 1, 1), 1).is_none());
        assert!(!supports(&device.clone().autodiff()));
    }
}
