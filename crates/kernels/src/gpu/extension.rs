//! How the kernels in `tiled.rs` and `cooperative.rs` reach featx's tensors: a burn backend
//! extension, implemented for burn's CubeCL backend (wgpu and the other CubeCL runtimes). Under
//! burn's fusion the extension is recorded as one more lazy operation and runs, in order, when
//! the stream is flushed, so tensors stay on the device throughout. Which kernel runs is
//! decided here, per call, from the float type the call multiplies in and what the device can
//! do ([`cooperative_layout`]).

use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, backend_extension};
use burn::tensor::{DType, Shape};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::calculate_cube_count_elemwise;
use cubecl::features::MmaConfig;
use cubecl::ir::DeviceProperties;
use cubecl::prelude::*;

use super::cooperative::{self, Layout, Tiling, conv2d_cooperative, conv2d_cooperative_split};
use super::tiled::{
    DEPTH, GeometryLaunch, MAX_CUBES_PER_AXIS, SIDE, UNITS, conv2d_implicit_gemm,
    conv2d_implicit_gemm_split, reduce_splits,
};

/// A convolution's stride, padding and output size: everything the tensors (the steps table
/// carries the window's size and dilation) do not say. Checked against the tensors' shapes
/// before any call (`conv.rs`), so the kernel never reads out of bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvCall {
    /// `[SH, SW]`.
    pub stride: [usize; 2],
    /// `[top, left]` padding (the bottom and right follow from the output size).
    pub padding: [usize; 2],
    /// `[OH, OW]`.
    pub output: [usize; 2],
    /// Whether a ReLU follows, in the epilogue.
    pub relu: bool,
    /// The float type the products may be taken in: the operands' own, or float16/bfloat16 for
    /// float32 operands, rounded as they come into shared memory, where that lets the
    /// cooperative-matrix kernel run ([`cooperative_layout`]); elsewhere the operands' own.
    pub multiply: DType,
    /// Which kernel runs, and in which block.
    pub kernel: KernelChoice,
}

/// Which of featx's convolution kernels runs a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChoice {
    /// featx's choice (what models run): the cooperative kernel where the device has
    /// cooperative matrices for the type the call multiplies in ([`cooperative_layout`]), in
    /// the block timed fastest on the layer's shape the first time it is seen (builds with
    /// `autotune`, results kept with burn's) or else the largest that still fills the device;
    /// the register-tiled kernel elsewhere.
    #[default]
    Auto,
    /// The register-tiled kernel even where cooperative matrices would run: to measure what
    /// they win on a card, or to step around a driver whose cooperative matrices misbehave.
    Tiled,
    /// The cooperative kernel in this output block, `[positions, channels]`, one of
    /// [`cooperative_blocks`](super::cooperative_blocks), for benchmarks and tests that compare
    /// them; as [`KernelChoice::Auto`] where the device does not take it.
    Block([usize; 2]),
}

/// The output shape `[N, K, OH, OW]` of `x` (`[N, C, H, W]`) through packed weights `[C*KH*KW, K]`:
/// what fusion records for the lazy operation before it runs.
#[cfg(feature = "fusion")]
fn output_shape(x: &Shape, packed: &Shape, call: &ConvCall) -> Shape {
    Shape::new([x[0], packed[1], call.output[0], call.output[1]])
}

/// featx's fused convolutions as backend operations.
#[backend_extension(Cube: cfg(feature = "wgpu"), Fusion: cfg(feature = "fusion"))]
pub trait FusedConv: Backend {
    /// `relu?(conv(x, weight) + bias)`, `weight` packed as `[C*KH*KW, K]` with its table of
    /// `(c, dy, dx)` per row (`steps`, int32).
    #[fusion(dtype = x, shape = output_shape(x, packed, call))]
    fn featx_conv2d(
        x: FloatTensor<Self>,
        packed: FloatTensor<Self>,
        steps: IntTensor<Self>,
        bias: FloatTensor<Self>,
        call: ConvCall,
    ) -> FloatTensor<Self>;

    /// `relu?(conv(x, weight) + bias + residual)`, `residual` shaped as the output.
    #[fusion(dtype = x, shape = residual)]
    fn featx_conv2d_add(
        x: FloatTensor<Self>,
        packed: FloatTensor<Self>,
        steps: IntTensor<Self>,
        bias: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        call: ConvCall,
    ) -> FloatTensor<Self>;
}

impl FusedConv for CubeBackend {
    fn featx_conv2d(
        x: CubeTensor,
        packed: CubeTensor,
        steps: CubeTensor,
        bias: CubeTensor,
        call: ConvCall,
    ) -> CubeTensor {
        launch(x, [packed, steps, bias], None, call)
    }

    fn featx_conv2d_add(
        x: CubeTensor,
        packed: CubeTensor,
        steps: CubeTensor,
        bias: CubeTensor,
        residual: CubeTensor,
        call: ConvCall,
    ) -> CubeTensor {
        launch(x, [packed, steps, bias], Some(residual), call)
    }
}

/// Cubes a launch should have before it takes the larger blocks: a few per multiprocessor of a
/// large GPU (an H100 or H200 has 132), so that the larger blocks do not leave some idle.
const BUSY_CUBES: usize = 512;

/// Per-unit accumulator blocks `(tile_m, tile_n)`: 8x8 (128x128 outputs per cube, 4 output
/// values computed per value read from shared memory) where the problem still gives
/// [`BUSY_CUBES`] cubes with them, else 4x4 (64x64, 2 per read), so small layers (late stages,
/// batch 1) still spread over the device. Under 128 channels the column block is 4 wide.
fn tiles(positions: usize, out_channels: usize) -> (usize, usize) {
    let tile_n = if out_channels >= 128 { 8 } else { 4 };
    let columns = out_channels.div_ceil(SIDE * tile_n);
    let tile_m = if positions.div_ceil(SIDE * 8) * columns >= BUSY_CUBES {
        8
    } else {
        4
    };
    let tile_n = if positions.div_ceil(SIDE * tile_m) * columns >= BUSY_CUBES / 2 {
        tile_n
    } else {
        4
    };
    (tile_m, tile_n)
}

/// `(x, y, z)` cubes for `rows` row blocks and `columns` column blocks: rows along x, those past
/// the per-axis limit continuing along z (the kernel skips the last layer's surplus).
fn cube_count(rows: usize, columns: usize) -> CubeCount {
    let layers = rows.div_ceil(MAX_CUBES_PER_AXIS).max(1);
    let per_layer = rows.div_ceil(layers);
    CubeCount::Static(per_layer as u32, columns as u32, layers as u32)
}

/// The least reduction rows a part of a split reduction gets: fewer would spend more on
/// writing and summing the parts than the extra cubes win.
const LEAST_SPLIT_DEPTH: usize = 128;

/// How to split a reduction of `depth` rows for `cubes` output blocks: `(parts, rows per part)`,
/// a whole number of the kernel's `step`s per part. One part where the blocks alone give
/// `BUSY_CUBES / 2` cubes; else as many parts as bring the cubes there, each of at least
/// [`LEAST_SPLIT_DEPTH`] rows.
fn splits(cubes: usize, depth: usize, step: usize) -> (usize, usize) {
    let wanted = (BUSY_CUBES / 2).div_ceil(cubes.max(1));
    let parts = wanted.min(depth / LEAST_SPLIT_DEPTH).max(1);
    let per_part = depth.div_ceil(parts).div_ceil(step) * step;
    (depth.div_ceil(per_part), per_part)
}

/// How `cooperative.rs` runs on a device for one staging type: the layout of each of its
/// tilings, where the device takes it (at least one does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cooperative {
    layouts: [Option<Layout>; cooperative::TILINGS.len()],
}

impl Cooperative {
    /// The layout of `block` (`[positions, channels]`), if the device takes it.
    pub(crate) fn with_block(&self, block: [usize; 2]) -> Option<Layout> {
        self.taken()
            .find(|l| [l.tiling.block_m, l.tiling.block_n] == block)
    }

    /// The layouts the device takes, largest first.
    pub(crate) fn taken(&self) -> impl Iterator<Item = Layout> + '_ {
        self.layouts.iter().flatten().copied()
    }

    /// The layout for a layer of `positions` output positions and `channels` output channels
    /// when nothing was measured: the largest block that still gives [`BUSY_CUBES`]` / 2`
    /// cubes without leaving part of its channels empty, else the smallest the device takes.
    pub(crate) fn layout(&self, positions: usize, channels: usize) -> Option<Layout> {
        let fills = |l: &Layout| {
            let Tiling {
                block_m, block_n, ..
            } = l.tiling;
            positions.div_ceil(block_m) * channels.div_ceil(block_n) >= BUSY_CUBES / 2
                && (block_n <= 64 || channels >= block_n)
        };
        self.taken().find(fills).or_else(|| self.taken().last())
    }
}

/// How to run `cooperative.rs` multiplying in `dtype`, or `None` where `tiled.rs` runs
/// instead: `dtype` must be float16 or bfloat16 (NVIDIA's cooperative matrices take no
/// float32; featx's float32 path keeps float32 products, as its parity tolerance assumes), the
/// device must multiply square fragments of it into float32 (the largest of
/// `cooperative::FRAGMENTS` it has is taken), and its planes must have one fixed size that
/// shares out at least one of `cooperative::TILINGS` within its limits ([`Layout::new`]). On
/// wgpu only the SPIR-V compiler (Vulkan) registers cooperative matrices; WGSL has none.
pub(crate) fn cooperative_layout(
    properties: &DeviceProperties,
    dtype: DType,
) -> Option<Cooperative> {
    if !matches!(dtype, DType::F16 | DType::BF16) {
        return None;
    }
    let operand = burn::backend::cubecl::dtype_to_storage_type(dtype);
    let accumulator = burn::backend::cubecl::dtype_to_storage_type(DType::F32);
    let hardware = &properties.hardware;
    let plane = hardware.plane_size_max as usize;
    if hardware.plane_size_min as usize != plane {
        return None;
    }
    let layouts = |fragment: usize| {
        cooperative::TILINGS.map(|tiling| {
            Layout::new(
                tiling,
                plane,
                fragment,
                dtype.size(),
                hardware.max_units_per_cube as usize,
                hardware.max_shared_memory_size,
            )
        })
    };
    cooperative::FRAGMENTS
        .into_iter()
        .filter(|&fragment| {
            let side = fragment as u32;
            let config = MmaConfig {
                a_type: operand,
                b_type: operand,
                cd_type: accumulator,
                m: side,
                n: side,
                k: side,
            };
            properties.features.matmul.cmma.contains(&config)
        })
        .map(layouts)
        .find(|layouts| layouts.iter().any(Option::is_some))
        .map(|layouts| Cooperative { layouts })
}

/// Runs the convolution (`layer` is the packed weight, its steps table and the bias) on the
/// kernel [`ConvCall::multiply`] and the device call for, in the block `call` names or featx
/// chooses.
fn launch(
    x: CubeTensor,
    layer: [CubeTensor; 3],
    residual: Option<CubeTensor>,
    call: ConvCall,
) -> CubeTensor {
    let cooperative = match call.kernel {
        KernelChoice::Tiled => None,
        _ => cooperative_layout(x.client.properties(), call.multiply),
    };
    let Some(cooperative) = cooperative else {
        return launch_kernel(x, layer, residual, call, None);
    };
    if let KernelChoice::Block(block) = call.kernel
        && let Some(layout) = cooperative.with_block(block)
    {
        return launch_kernel(x, layer, residual, call, Some(layout));
    }
    #[cfg(feature = "autotune")]
    if cooperative.taken().count() > 1 {
        return super::tune::cooperative(x, layer, residual, call);
    }
    let [n, _, _, _] = x.meta.shape().dims();
    let [_, k] = layer[0].meta.shape().dims();
    let layout = cooperative.layout(n * call.output[0] * call.output[1], k);
    launch_kernel(x, layer, residual, call, layout)
}

/// Launches `cooperative.rs` in `cooperative`'s layout, or `tiled.rs` (its register blocks
/// chosen by [`tiles`]) where that is `None`, on contiguous copies of the operands.
pub(crate) fn launch_kernel(
    x: CubeTensor,
    layer: [CubeTensor; 3],
    residual: Option<CubeTensor>,
    call: ConvCall,
    cooperative: Option<Layout>,
) -> CubeTensor {
    let [packed, steps, bias] = layer.map(into_contiguous);
    let x = into_contiguous(x);
    let residual = residual.map(into_contiguous);
    let add_residual = residual.is_some();
    let [n, c, h, w] = x.meta.shape().dims();
    let [depth, k] = packed.meta.shape().dims();
    let [oh, ow] = call.output;
    let output = empty_device_dtype(
        x.client.clone(),
        x.device.clone(),
        Shape::new([n, k, oh, ow]),
        x.dtype,
    );
    let positions = n * oh * ow;
    let client = x.client.clone();
    // Output block sizes and reduction step of the kernel that runs.
    let (tile_m, tile_n) = tiles(positions, k);
    let (block_m, block_n, step) = match cooperative {
        Some(l) => (l.tiling.block_m, l.tiling.block_n, l.stage_rows()),
        None => (SIDE * tile_m, SIDE * tile_n, DEPTH),
    };
    let (rows, columns) = (positions.div_ceil(block_m), k.div_ceil(block_n));
    let (parts, part_depth) = splits(rows * columns, depth, step);
    let address = [
        x.required_address_type(),
        output.required_address_type(),
        packed.required_address_type(),
    ]
    .into_iter()
    .max()
    .unwrap_or_default();
    let geometry = || {
        GeometryLaunch::new(
            c,
            h,
            w,
            k,
            oh,
            ow,
            call.stride[0],
            call.stride[1],
            call.padding[0],
            call.padding[1],
            positions,
            depth,
            parts,
            part_depth,
        )
    };
    let dtype = burn::backend::cubecl::dtype_to_storage_type(x.dtype);
    let staging = burn::backend::cubecl::dtype_to_storage_type(call.multiply);
    let cube_dim = match cooperative {
        Some(l) => CubeDim::new_2d(l.plane as u32, (l.tiling.units / l.plane) as u32),
        None => CubeDim::new_2d(SIDE as u32, SIDE as u32),
    };
    let residual = residual.unwrap_or_else(|| bias.clone());
    // SAFETY (all launches): every index the kernels form is bounds-checked against
    // `geometry`, which `conv.rs` checked against the operands' shapes before the call; the
    // cooperative kernels run only where `cooperative_layout` found their fragments supported.
    if parts == 1 {
        let count = cube_count(rows, columns);
        let [x, packed, steps, bias, residual, out] =
            [x, packed, steps, bias, residual, output.clone()].map(CubeTensor::into_buffer_arg);
        unsafe {
            match cooperative {
                Some(layout) => conv2d_cooperative::launch_unchecked(
                    &client,
                    count,
                    cube_dim,
                    address,
                    x,
                    packed,
                    steps,
                    bias,
                    residual,
                    out,
                    geometry(),
                    layout,
                    add_residual,
                    call.relu,
                    dtype,
                    staging,
                ),
                None => conv2d_implicit_gemm::launch_unchecked(
                    &client,
                    count,
                    cube_dim,
                    address,
                    x,
                    packed,
                    steps,
                    bias,
                    residual,
                    out,
                    geometry(),
                    tile_m,
                    tile_n,
                    add_residual,
                    call.relu,
                    dtype,
                ),
            }
        }
        return output;
    }
    let total = positions * k;
    let partial = empty_device_dtype(
        client.clone(),
        x.device.clone(),
        Shape::new([parts, total]),
        DType::F32,
    );
    let address = address.max(partial.required_address_type());
    let count = CubeCount::Static(rows as u32, columns as u32, parts as u32);
    unsafe {
        match cooperative {
            Some(layout) => conv2d_cooperative_split::launch_unchecked(
                &client,
                count,
                cube_dim,
                address,
                x.into_buffer_arg(),
                packed.into_buffer_arg(),
                steps.into_buffer_arg(),
                partial.clone().into_buffer_arg(),
                geometry(),
                layout,
                dtype,
                staging,
            ),
            None => conv2d_implicit_gemm_split::launch_unchecked(
                &client,
                count,
                cube_dim,
                address,
                x.into_buffer_arg(),
                packed.into_buffer_arg(),
                steps.into_buffer_arg(),
                partial.clone().into_buffer_arg(),
                geometry(),
                tile_m,
                tile_n,
                dtype,
            ),
        }
        let line = CubeDim::new_1d(UNITS as u32);
        reduce_splits::launch_unchecked(
            &client,
            calculate_cube_count_elemwise(&client, total, line),
            line,
            address,
            partial.into_buffer_arg(),
            bias.into_buffer_arg(),
            residual.into_buffer_arg(),
            output.clone().into_buffer_arg(),
            geometry(),
            add_residual,
            call.relu,
            dtype,
        );
    }
    output
}

#[cfg(test)]
mod tests {
    use super::cooperative::{Layout, TILINGS};
    use super::{Cooperative, CubeCount, MAX_CUBES_PER_AXIS, cube_count, splits, tiles};

    #[test]
    fn reductions_split_only_where_blocks_leave_the_device_idle() {
        // ResNet18's layer4 at batch 1: 2 blocks of 64x64, 4608 rows -> 36 parts of 128.
        assert_eq!(splits(2, 512 * 9, 8), (36, 128));
        // Enough blocks: whole reductions.
        assert_eq!(splits(256, 512 * 9, 8), (1, 512 * 9));
        // Too short to split.
        assert_eq!(splits(2, 27, 8), (1, 32));
        // Parts are whole steps and cover every row: 3 x 200 rows -> 3 parts of 200, or of
        // 208 in the cooperative kernel's 16-row steps (the last part 184).
        assert_eq!(splits(86, 600, 8), (3, 200));
        assert_eq!(splits(86, 600, 16), (3, 208));
    }

    #[test]
    fn row_blocks_past_the_axis_limit_continue_along_z() {
        let static_count = |c: CubeCount| match c {
            CubeCount::Static(x, y, z) => (x, y, z),
            _ => unreachable!("cube_count is static"),
        };
        assert_eq!(static_count(cube_count(10, 3)), (10, 3, 1));
        assert_eq!(
            static_count(cube_count(MAX_CUBES_PER_AXIS, 1)),
            (65535, 1, 1)
        );
        // 70000 rows: two layers of 35000, every row block covered once.
        assert_eq!(static_count(cube_count(70_000, 2)), (35_000, 2, 2));
        assert_eq!(static_count(cube_count(140_001, 1)), (46_667, 1, 3));
    }

    #[test]
    fn larger_blocks_only_where_they_still_fill_the_device() {
        // ResNet18 at batch 64: layer1 (64 channels) takes tall blocks, layer4 small ones.
        assert_eq!(tiles(64 * 56 * 56, 64), (8, 4));
        assert_eq!(tiles(64 * 7 * 7, 512), (4, 4));
        // The shapes the GPU tests run on each path.
        assert_eq!(tiles(2 * 64 * 64, 1024), (8, 8));
        assert_eq!(tiles(256 * 256, 64), (8, 4));
        assert_eq!(tiles(2 * 14 * 14, 24), (4, 4));
    }

    #[test]
    fn cooperative_blocks_are_the_largest_that_fill_the_device_and_their_channels() {
        // NVIDIA's: warps of 32, 16x16 fragments, 48 KiB.
        let layouts = TILINGS.map(|t| Layout::new(t, 32, 16, 2, 1024, 48 * 1024));
        let cooperative = Cooperative { layouts };
        let block = |positions, channels| {
            let t = cooperative.layout(positions, channels).unwrap().tiling;
            (t.block_m, t.block_n)
        };
        // ResNet18 at batch 64: the stem and layer1 (64 channels) 128x64, layer2 128x128,
        // layer3 128x64 (128x128 would give 196 cubes), layer4 64x64.
        assert_eq!(block(64 * 112 * 112, 64), (128, 64));
        assert_eq!(block(64 * 56 * 56, 64), (128, 64));
        assert_eq!(block(64 * 28 * 28, 128), (128, 128));
        assert_eq!(block(64 * 14 * 14, 256), (128, 64));
        assert_eq!(block(64 * 7 * 7, 512), (64, 64));
        // At batch 1 everything is small; the kernel tests' shapes take each block.
        assert_eq!(block(56 * 56, 64), (64, 64));
        assert_eq!(block(2 * 64 * 64, 1024), (128, 128));
        assert_eq!(block(256 * 256, 64), (128, 64));
        // A device that takes only the smallest block runs it everywhere.
        let small = Cooperative {
            layouts: TILINGS.map(|t| Layout::new(t, 32, 16, 2, 128, 30 * 1024)),
        };
        assert_eq!(small.taken().count(), 1);
        assert_eq!(small.layout(64 * 28 * 28, 128).unwrap().tiling, TILINGS[2]);
    }
}
