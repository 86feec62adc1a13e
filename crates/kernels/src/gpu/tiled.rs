//! The convolution itself, as a CubeCL kernel: a tiled implicit GEMM over NCHW tensors.
//!
//! Written by hand because burn 0.22's wgpu convolutions without cooperative matrices (the WGSL
//! compiler registers none, and NVIDIA's take no float32 inputs) are a direct kernel (one output
//! per thread, no shared memory) or im2col into a buffer followed by a matmul, each behind an
//! NCHW <-> NHWC transposition of input, weight and output on every call; and none of them takes
//! the folded BatchNorm's bias, the residual add and the ReLU in its epilogue, which featx's
//! ResNet blocks want in one launch.
//!
//! The GEMM view: rows are output positions `m = (n, oh, ow)` (`N*OH*OW` of them), columns are
//! output channels, and the reduction runs over `r = (c, kh, kw)` (`C*KH*KW`). The input matrix is
//! never built: each tile of it is gathered from the NCHW input straight into shared memory,
//! zero where the window hangs over the padding. The weight arrives packed as `[C*KH*KW, K]`
//! (transposed once, when the layer is planned) so that both tiles load with consecutive units
//! reading consecutive addresses, and with it a table of each reduction step's `(c, dy, dx)`
//! (channel and offset inside the window, dilation applied), so that gathering the input costs
//! a table read instead of four integer divisions per element.
//!
//! A cube is 16x16 units and computes a `16*tile_m` x `16*tile_n` block of the output; each unit
//! keeps a `tile_m` x `tile_n` block of accumulators in registers, at rows `tx + 16*i` and
//! columns `ty + 16*j` (strided so that neighbouring units write neighbouring addresses). The
//! reduction advances [`DEPTH`] steps at a time through two stages of shared memory, the next
//! step's loads in flight while the current one multiplies. Accumulation is in float32 whatever
//! the storage precision.

use cubecl::prelude::*;

/// Units along each side of a cube.
pub(crate) const SIDE: usize = 16;
/// Units in a cube.
pub(crate) const UNITS: usize = SIDE * SIDE;
/// Reduction steps staged in shared memory at a time.
pub(crate) const DEPTH: usize = 8;
/// The most cubes a launch may have along one axis (WebGPU's and Vulkan's common limit).
pub(crate) const MAX_CUBES_PER_AXIS: usize = 65535;

/// A convolution's shape, for the kernel: sizes of the input (`channels`, `height`, `width`)
/// and of the output (`out_channels`, `out_height`, `out_width`), the window's stride and
/// leading padding (its size and dilation are in the steps table); `positions` is `N*OH*OW`,
/// `depth` is `C*KH*KW`, split in `splits` parts of `split_depth` rows (one part, `depth` rows,
/// when not split).
#[derive(CubeLaunch, CubeType, Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub out_height: usize,
    pub out_width: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub positions: usize,
    pub depth: usize,
    pub splits: usize,
    pub split_depth: usize,
}

/// `output = relu?(conv(input, weight) + bias (+ residual))`, one `16*tile_m` x `16*tile_n`
/// output block per cube. `tile_m` and `tile_n` must be even, so that each unit loads a whole
/// number of elements of each tile. `residual` is read only when `add_residual` (callers without
/// one pass any other input buffer: a binding cannot be left out).
#[cube(launch_unchecked, address_type = "dynamic")]
pub(crate) fn conv2d_implicit_gemm<F: Float>(
    input: &[F],
    weight: &[F],
    steps_table: &[i32],
    bias: &[F],
    residual: &[F],
    output: &mut [F],
    geo: Geometry,
    #[comptime] tile_m: usize,
    #[comptime] tile_n: usize,
    #[comptime] add_residual: bool,
    #[comptime] relu: bool,
    #[define(F)] _dtype: ElemType,
) {
    // Row blocks past a launch's 65535-per-axis limit continue along z.
    let m0 = (CUBE_POS_Z as usize * CUBE_COUNT_X as usize + CUBE_POS_X as usize) * SIDE * tile_m;
    if m0 >= geo.positions {
        // The whole cube is past the end (the last z layer is not full): it leaves together,
        // so no unit waits at a barrier for it.
        terminate!();
    }
    let block = Block {
        m0,
        n0: CUBE_POS_Y as usize * SIDE * tile_n,
        r_begin: 0,
        r_end: geo.depth,
    };
    let mut acc = Array::<f32>::new(comptime!(tile_m * tile_n));
    accumulate(
        input,
        weight,
        steps_table,
        &geo,
        &block,
        &mut acc,
        tile_m,
        tile_n,
    );

    // Epilogue: bias, residual, ReLU, one NCHW write per accumulator.
    let out_plane = geo.out_height * geo.out_width;
    #[unroll]
    for i in 0..tile_m {
        let m = m0 + UNIT_POS_X as usize + i * SIDE;
        if m < geo.positions {
            #[unroll]
            for j in 0..tile_n {
                let channel = block.n0 + UNIT_POS_Y as usize + j * SIDE;
                if channel < geo.out_channels {
                    let index = output_index(&geo, m, channel, out_plane);
                    let sum = acc[i * tile_n + j];
                    finish(
                        sum,
                        bias,
                        residual,
                        output,
                        index,
                        channel,
                        add_residual,
                        relu,
                    );
                }
            }
        }
    }
}

/// The same convolution with its reduction split in `geo.splits` parts of `geo.split_depth`
/// rows, cube layer `z` computing part `z` of every block into `partial[z]` (NCHW order, no
/// epilogue); [`reduce_splits`] sums the parts. For layers with too few output blocks to fill
/// the device (the last stages at batch 1), where whole reductions would leave most of it idle.
#[cube(launch_unchecked, address_type = "dynamic")]
pub(crate) fn conv2d_implicit_gemm_split<F: Float>(
    input: &[F],
    weight: &[F],
    steps_table: &[i32],
    partial: &mut [f32],
    geo: Geometry,
    #[comptime] tile_m: usize,
    #[comptime] tile_n: usize,
    #[define(F)] _dtype: ElemType,
) {
    let block = Block::part(
        &geo,
        CUBE_POS_X as usize * SIDE * tile_m,
        CUBE_POS_Y as usize * SIDE * tile_n,
    );
    let mut acc = Array::<f32>::new(comptime!(tile_m * tile_n));
    accumulate(
        input,
        weight,
        steps_table,
        &geo,
        &block,
        &mut acc,
        tile_m,
        tile_n,
    );

    let out_plane = geo.out_height * geo.out_width;
    let part = CUBE_POS_Z as usize * geo.positions * geo.out_channels;
    #[unroll]
    for i in 0..tile_m {
        let m = block.m0 + UNIT_POS_X as usize + i * SIDE;
        if m < geo.positions {
            #[unroll]
            for j in 0..tile_n {
                let channel = block.n0 + UNIT_POS_Y as usize + j * SIDE;
                if channel < geo.out_channels {
                    partial[part + output_index(&geo, m, channel, out_plane)] = acc[i * tile_n + j];
                }
            }
        }
    }
}

/// `output = relu?(sum of the parts + bias (+ residual))`, one unit per output value.
#[cube(launch_unchecked, address_type = "dynamic")]
pub(crate) fn reduce_splits<F: Float>(
    partial: &[f32],
    bias: &[F],
    residual: &[F],
    output: &mut [F],
    geo: Geometry,
    #[comptime] add_residual: bool,
    #[comptime] relu: bool,
    #[define(F)] _dtype: ElemType,
) {
    let total = geo.positions * geo.out_channels;
    let index = ABSOLUTE_POS;
    if index >= total {
        terminate!();
    }
    let channel = (index / (geo.out_height * geo.out_width)) % geo.out_channels;
    let mut sum = 0.0f32;
    for part in 0..geo.splits {
        sum += partial[part * total + index];
    }
    finish(
        sum,
        bias,
        residual,
        output,
        index,
        channel,
        add_residual,
        relu,
    );
}

/// The epilogue of one output value: `output[index] = relu?(sum + bias[channel]
/// (+ residual[index]))`, in float32 until the store.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish<F: Float>(
    sum: f32,
    bias: &[F],
    residual: &[F],
    output: &mut [F],
    index: usize,
    channel: usize,
    #[comptime] add_residual: bool,
    #[comptime] relu: bool,
) {
    let mut value = sum + f32::cast_from(bias[channel]);
    if add_residual {
        value += f32::cast_from(residual[index]);
    }
    if relu {
        value = select(value > 0.0f32, value, 0.0f32);
    }
    output[index] = F::cast_from(value);
}

/// The NCHW index of output position `m` (`(n, oh, ow)` flattened) in `channel`.
#[cube]
pub(crate) fn output_index(geo: &Geometry, m: usize, channel: usize, out_plane: usize) -> usize {
    (m / out_plane * geo.out_channels + channel) * out_plane + m % out_plane
}

/// The part of the GEMM a cube computes: the output block at row `m0` and column `n0`, over
/// reduction rows `r_begin..r_end`.
#[derive(CubeType)]
pub(crate) struct Block {
    pub m0: usize,
    pub n0: usize,
    pub r_begin: usize,
    pub r_end: usize,
}

#[cube]
impl Block {
    /// The block at `(m0, n0)` over cube layer `z`'s part of a split reduction.
    pub(crate) fn part(geo: &Geometry, m0: usize, n0: usize) -> Block {
        let r_begin = CUBE_POS_Z as usize * geo.split_depth;
        Block {
            m0,
            n0,
            r_begin,
            r_end: select(
                r_begin + geo.split_depth < geo.depth,
                r_begin + geo.split_depth,
                geo.depth,
            ),
        }
    }
}

/// This unit's `tile_m` x `tile_n` accumulators of `block`, in `acc`.
///
/// Two stages of each tile: while the cube multiplies out of one, its units' loads of the next
/// step (issued before the multiply, so their latency hides behind it) wait in registers, and
/// go into the other stage at the start of the next iteration; one barrier per step suffices.
#[cube]
#[allow(clippy::too_many_arguments)]
fn accumulate<F: Float>(
    input: &[F],
    weight: &[F],
    steps_table: &[i32],
    geo: &Geometry,
    block: &Block,
    acc: &mut Array<f32>,
    #[comptime] tile_m: usize,
    #[comptime] tile_n: usize,
) {
    let block_m = comptime!(SIDE * tile_m);
    let block_n = comptime!(SIDE * tile_n);
    let step_a = comptime!(UNITS / (SIDE * tile_m));
    let step_b = comptime!(UNITS / (SIDE * tile_n));
    let stage_a = comptime!(DEPTH * SIDE * tile_m);
    let stage_b = comptime!(DEPTH * SIDE * tile_n);
    let mut tile_a = Shared::<[f32]>::new_slice(comptime!(2 * DEPTH * SIDE * tile_m));
    let mut tile_b = Shared::<[f32]>::new_slice(comptime!(2 * DEPTH * SIDE * tile_n));
    let mut next_a = Array::<f32>::new(comptime!(DEPTH * SIDE * tile_m / UNITS));
    let mut next_b = Array::<f32>::new(comptime!(DEPTH * SIDE * tile_n / UNITS));
    let mut a = Array::<f32>::new(tile_m);
    let mut b = Array::<f32>::new(tile_n);
    #[unroll]
    for i in 0..tile_m * tile_n {
        acc[i] = 0.0f32;
    }

    let unit = UNIT_POS as usize;
    let tx = UNIT_POS_X as usize;
    let ty = UNIT_POS_Y as usize;
    let loader = Loader::new(
        geo,
        block.m0 + unit % block_m,
        block.n0 + unit % block_n,
        unit,
        block_m,
        block_n,
    );

    let steps = (block.r_end - block.r_begin).div_ceil(DEPTH);
    let mut r0 = block.r_begin;
    loader.fetch_a(input, steps_table, geo, r0, block.r_end, &mut next_a, DEPTH);
    loader.fetch_b(weight, geo, r0, block.r_end, &mut next_b, DEPTH);
    for step in 0..steps {
        let base_a = (step % 2) * stage_a;
        let base_b = (step % 2) * stage_b;
        #[unroll]
        for l in 0..next_a.len().comptime() {
            tile_a[base_a + (loader.row_a + l * step_a) * block_m + unit % block_m] = next_a[l];
        }
        #[unroll]
        for l in 0..next_b.len().comptime() {
            tile_b[base_b + (loader.row_b + l * step_b) * block_n + unit % block_n] = next_b[l];
        }
        sync_cube();

        r0 += DEPTH;
        if step + 1 < steps {
            loader.fetch_a(input, steps_table, geo, r0, block.r_end, &mut next_a, DEPTH);
            loader.fetch_b(weight, geo, r0, block.r_end, &mut next_b, DEPTH);
        }

        #[unroll]
        for k in 0..DEPTH {
            #[unroll]
            for i in 0..tile_m {
                a[i] = tile_a[base_a + k * block_m + tx + i * SIDE];
            }
            #[unroll]
            for j in 0..tile_n {
                b[j] = tile_b[base_b + k * block_n + ty + j * SIDE];
            }
            #[unroll]
            for i in 0..tile_m {
                #[unroll]
                for j in 0..tile_n {
                    acc[i * tile_n + j] += a[i] * b[j];
                }
            }
        }
    }
}

/// What one unit loads of each step's tiles: one output position's input column (decoded once)
/// at rows `row_a + l * step_a` of the step, one output channel's weights at rows
/// `row_b + l * step_b`, where a step is `depth` rows and `step_a` is the cube's units over
/// the block's rows (`step_b` over its columns).
#[derive(CubeType)]
pub(crate) struct Loader {
    m_valid: bool,
    image_base: usize,
    top: i32,
    left: i32,
    pub row_a: usize,
    n: usize,
    n_valid: bool,
    pub row_b: usize,
}

#[cube]
impl Loader {
    /// The loader of the unit at `unit` that gathers for position `m` and channel `n`.
    pub(crate) fn new(
        geo: &Geometry,
        m: usize,
        n: usize,
        unit: usize,
        #[comptime] block_m: usize,
        #[comptime] block_n: usize,
    ) -> Loader {
        let out_plane = geo.out_height * geo.out_width;
        let image = m / out_plane;
        let within = m % out_plane;
        Loader {
            m_valid: m < geo.positions,
            image_base: image * geo.channels * geo.height * geo.width,
            top: ((within / geo.out_width) * geo.stride_h) as i32 - geo.pad_top as i32,
            left: ((within % geo.out_width) * geo.stride_w) as i32 - geo.pad_left as i32,
            row_a: unit / block_m,
            n,
            n_valid: n < geo.out_channels,
            row_b: unit / block_n,
        }
    }

    /// This unit's input values of the `depth`-row step starting at row `r0`: zero outside
    /// the input (padding), at rows from `end` on and past the last position.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fetch_a<F: Float>(
        &self,
        input: &[F],
        steps_table: &[i32],
        geo: &Geometry,
        r0: usize,
        end: usize,
        values: &mut Array<f32>,
        #[comptime] depth: usize,
    ) {
        let loads = values.len().comptime();
        #[unroll]
        for l in 0..loads {
            let r = r0 + self.row_a + l * comptime!(depth / loads);
            let mut value = 0.0f32;
            if self.m_valid && r < end {
                let c = steps_table[3 * r] as usize;
                let y = self.top + steps_table[3 * r + 1];
                let x = self.left + steps_table[3 * r + 2];
                if y >= 0i32 && x >= 0i32 && y < geo.height as i32 && x < geo.width as i32 {
                    let plane = geo.height * geo.width;
                    let index = self.image_base + c * plane + y as usize * geo.width + x as usize;
                    value = f32::cast_from(input[index]);
                }
            }
            values[l] = value;
        }
    }

    /// This unit's packed weights of the `depth`-row step starting at row `r0`: zero at rows
    /// from `end` on and past the last channel.
    pub(crate) fn fetch_b<F: Float>(
        &self,
        weight: &[F],
        geo: &Geometry,
        r0: usize,
        end: usize,
        values: &mut Array<f32>,
        #[comptime] depth: usize,
    ) {
        let loads = values.len().comptime();
        #[unroll]
        for l in 0..loads {
            let r = r0 + self.row_b + l * comptime!(depth / loads);
            let mut value = 0.0f32;
            if self.n_valid && r < end {
                value = f32::cast_from(weight[r * geo.out_channels + self.n]);
            }
            values[l] = value;
        }
    }
}
