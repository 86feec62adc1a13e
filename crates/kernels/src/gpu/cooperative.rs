//! The convolution on cooperative matrices (tensor cores): `tiled.rs`'s implicit GEMM with its
//! multiply done by planes (warps, subgroups) on square fragments (16x16x16 on NVIDIA's, 8x8x8
//! on Mesa's lavapipe) instead of by each unit on registers. The operands are multiplied in
//! float16 or bfloat16 (`S`, the staging type) and accumulated in float32, the types NVIDIA's
//! cooperative-matrix units (and most others) take. The tensors (`F`) are either of that type,
//! or float32 rounded to it as they come into shared memory: a TF32-like mode (float32
//! tensors, reduced-precision products, float32 sums) that featx offers as `--precision
//! mixed`; plain float32 keeps `tiled.rs`.
//!
//! A cube computes one output block of a [`Tiling`] (128x128, 128x64 or 64x64 positions by
//! channels, the largest that still fills the device being taken per layer, as `tiled.rs`'s
//! register blocks are); its planes share the block's fragments as a grid of equal rectangles
//! ([`Layout`]), each plane loading its `m` input fragments and `n` weight fragments once per
//! fragment depth for `m * n` multiplies: the larger the rectangle, the fewer shared-memory
//! reads per multiply, NVIDIA's own tensor-core GEMM sample's 2x4 per warp on a 128x128 block
//! being the model. The tiles come into shared memory as in `tiled.rs` (the same `Loader`, two
//! stages of [`STAGE_FRAGMENTS`] fragment depths, one barrier per stage), their rows padded so
//! that a fragment's rows start in different banks. At the end each plane passes its
//! accumulators, one fragment at a time, through a fragment of shared memory of its own
//! (`[channel][position]`), from where its units apply the epilogue and write NCHW, runs of a
//! fragment's positions on neighbouring addresses.

use cubecl::prelude::*;

use super::tiled::{Block, Geometry, Loader, finish, output_index};

/// Fragment sides the kernel takes (the `m`, `n` and `k` of one cooperative multiply), largest
/// first.
pub(crate) const FRAGMENTS: [usize; 2] = [16, 8];
/// Fragment depths of reduction rows staged in shared memory at a time.
pub(crate) const STAGE_FRAGMENTS: usize = 2;
/// Elements of padding after each staged row (32 bytes of float16): without it the rows of a
/// fragment, a power-of-two apart, would all start in the same shared-memory bank.
const ROW_PAD: usize = 16;

/// A cube's output block (`block_m` positions by `block_n` channels) and its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Tiling {
    pub block_m: usize,
    pub block_n: usize,
    pub units: usize,
}

/// The tilings, largest first: where a layer still fills the device with a larger block, each
/// value read from shared memory feeds more multiplies.
pub(crate) const TILINGS: [Tiling; 3] = [
    Tiling {
        block_m: 128,
        block_n: 128,
        units: 256,
    },
    Tiling {
        block_m: 128,
        block_n: 64,
        units: 128,
    },
    Tiling {
        block_m: 64,
        block_n: 64,
        units: 128,
    },
];

/// How a [`Tiling`]'s block is shared out on a device: planes of `plane` units multiplying
/// `fragment`-sided fragments, `planes_m` x `planes_n` planes each computing `plane_m` x
/// `plane_n` fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Layout {
    pub tiling: Tiling,
    pub plane: usize,
    pub fragment: usize,
    pub planes_m: usize,
    pub planes_n: usize,
    pub plane_m: usize,
    pub plane_n: usize,
}

impl Layout {
    /// The layout of `tiling` for planes of `plane` units and `fragment`-sided fragments of
    /// `staging_bytes`-byte elements, or `None` where they do not share it out evenly or the
    /// cube would pass `max_units` units or `max_shared` bytes of shared memory. Each plane
    /// takes the rectangle of fragments with the fewest loads per multiply (the wider one on a
    /// tie: the weight fragments are the cheaper to stage).
    pub(crate) fn new(
        tiling: Tiling,
        plane: usize,
        fragment: usize,
        staging_bytes: usize,
        max_units: usize,
        max_shared: usize,
    ) -> Option<Layout> {
        let Tiling {
            block_m,
            block_n,
            units,
        } = tiling;
        let ok = plane.is_power_of_two()
            && units.is_multiple_of(plane)
            && units <= max_units
            && block_m.is_multiple_of(fragment)
            && block_n.is_multiple_of(fragment)
            // The loader: each unit one position (channel) column, whole rows per stage.
            && units.is_multiple_of(block_m)
            && units.is_multiple_of(block_n)
            && (fragment * STAGE_FRAGMENTS).is_multiple_of(units / block_m)
            && (fragment * STAGE_FRAGMENTS).is_multiple_of(units / block_n)
            // The epilogue: a fragment's values spread evenly over a plane's units.
            && (fragment * fragment).is_multiple_of(plane);
        if !ok {
            return None;
        }
        let (frags_m, frags_n) = (block_m / fragment, block_n / fragment);
        let planes = units / plane;
        if !(frags_m * frags_n).is_multiple_of(planes) {
            return None;
        }
        let per_plane = frags_m * frags_n / planes;
        let (plane_m, plane_n) = (1..=per_plane)
            .rev()
            .filter(|n| per_plane.is_multiple_of(*n))
            .map(|n| (per_plane / n, n))
            .filter(|&(m, n)| frags_m.is_multiple_of(m) && frags_n.is_multiple_of(n))
            .min_by_key(|&(m, n)| m + n)?;
        let layout = Layout {
            tiling,
            plane,
            fragment,
            planes_m: frags_m / plane_m,
            planes_n: frags_n / plane_n,
            plane_m,
            plane_n,
        };
        (layout.shared_bytes(staging_bytes) <= max_shared).then_some(layout)
    }

    /// Reduction rows per stage.
    pub(crate) fn stage_rows(&self) -> usize {
        self.fragment * STAGE_FRAGMENTS
    }

    /// Shared memory a cube takes: both stages of both tiles, and a float32 fragment per plane.
    fn shared_bytes(&self, staging_bytes: usize) -> usize {
        let Tiling {
            block_m,
            block_n,
            units,
        } = self.tiling;
        let tiles = 2 * self.stage_rows() * (block_m + block_n + 2 * ROW_PAD) * staging_bytes;
        tiles + units / self.plane * self.fragment * self.fragment * 4
    }
}

/// `output = relu?(conv(input, weight) + bias (+ residual))`, one block of `layout` per cube, on
/// a cube of `(plane, planes)` units. As `conv2d_implicit_gemm` otherwise.
#[cube(launch_unchecked, address_type = "dynamic")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d_cooperative<F: Float, S: Float>(
    input: &[F],
    weight: &[F],
    steps_table: &[i32],
    bias: &[F],
    residual: &[F],
    output: &mut [F],
    geo: Geometry,
    #[comptime] layout: Layout,
    #[comptime] add_residual: bool,
    #[comptime] relu: bool,
    #[define(F)] _dtype: ElemType,
    #[define(S)] _staging: ElemType,
) {
    let m0 = (CUBE_POS_Z as usize * CUBE_COUNT_X as usize + CUBE_POS_X as usize)
        * comptime!(layout.tiling.block_m);
    if m0 >= geo.positions {
        // The whole cube leaves together (the last z layer is not full): no unit waits at a
        // barrier for it, and no plane is left partly outside a cooperative multiply.
        terminate!();
    }
    let block = Block {
        m0,
        n0: CUBE_POS_Y as usize * comptime!(layout.tiling.block_n),
        r_begin: 0,
        r_end: geo.depth,
    };
    let origin = PlaneOrigin::new(&block, layout);
    let acc = multiply::<F, S>(input, weight, steps_table, &geo, &block, &origin, layout);

    let f = comptime!(layout.fragment);
    let scratch_len =
        comptime!(layout.planes_m * layout.planes_n * layout.fragment * layout.fragment);
    let mut scratch = Shared::<[f32]>::new_slice(scratch_len);
    let out_plane = geo.out_height * geo.out_width;
    #[unroll]
    for i in 0..comptime!(layout.plane_m) {
        #[unroll]
        for j in 0..comptime!(layout.plane_n) {
            origin.stage(
                &mut scratch[0..scratch_len],
                acc.index(i * comptime!(layout.plane_n) + j),
                layout,
            );
            #[unroll]
            for e in 0..comptime!(layout.fragment * layout.fragment / layout.plane) {
                let local = UNIT_POS_X as usize + e * comptime!(layout.plane);
                let m = origin.m + i * f + local % f;
                let channel = origin.n + j * f + local / f;
                if m < geo.positions && channel < geo.out_channels {
                    let index = output_index(&geo, m, channel, out_plane);
                    let sum = scratch[origin.scratch + local];
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
            // The plane's next fragment overwrites this one.
            sync_plane();
        }
    }
}

/// The same with the reduction split as `conv2d_implicit_gemm_split` splits it: part `z` of
/// every block into `partial[z]`, summed with the epilogue by `reduce_splits`.
#[cube(launch_unchecked, address_type = "dynamic")]
pub(crate) fn conv2d_cooperative_split<F: Float, S: Float>(
    input: &[F],
    weight: &[F],
    steps_table: &[i32],
    partial: &mut [f32],
    geo: Geometry,
    #[comptime] layout: Layout,
    #[define(F)] _dtype: ElemType,
    #[define(S)] _staging: ElemType,
) {
    let block = Block::part(
        &geo,
        CUBE_POS_X as usize * comptime!(layout.tiling.block_m),
        CUBE_POS_Y as usize * comptime!(layout.tiling.block_n),
    );
    let origin = PlaneOrigin::new(&block, layout);
    let acc = multiply::<F, S>(input, weight, steps_table, &geo, &block, &origin, layout);

    let f = comptime!(layout.fragment);
    let scratch_len =
        comptime!(layout.planes_m * layout.planes_n * layout.fragment * layout.fragment);
    let mut scratch = Shared::<[f32]>::new_slice(scratch_len);
    let out_plane = geo.out_height * geo.out_width;
    let part = CUBE_POS_Z as usize * geo.positions * geo.out_channels;
    #[unroll]
    for i in 0..comptime!(layout.plane_m) {
        #[unroll]
        for j in 0..comptime!(layout.plane_n) {
            origin.stage(
                &mut scratch[0..scratch_len],
                acc.index(i * comptime!(layout.plane_n) + j),
                layout,
            );
            #[unroll]
            for e in 0..comptime!(layout.fragment * layout.fragment / layout.plane) {
                let local = UNIT_POS_X as usize + e * comptime!(layout.plane);
                let m = origin.m + i * f + local % f;
                let channel = origin.n + j * f + local / f;
                if m < geo.positions && channel < geo.out_channels {
                    partial[part + output_index(&geo, m, channel, out_plane)] =
                        scratch[origin.scratch + local];
                }
            }
            sync_plane();
        }
    }
}

/// Where a plane's fragments start: in the block's grid of fragments (`row`, `column`), in the
/// output (`m`, `n`), and its fragment of shared memory for the epilogue (`scratch`).
#[derive(CubeType)]
struct PlaneOrigin {
    row: usize,
    column: usize,
    m: usize,
    n: usize,
    scratch: usize,
}

#[cube]
impl PlaneOrigin {
    fn new(block: &Block, #[comptime] layout: Layout) -> PlaneOrigin {
        let plane = UNIT_POS_Y as usize;
        let f = comptime!(layout.fragment);
        let row = (plane % comptime!(layout.planes_m)) * comptime!(layout.plane_m);
        let column = (plane / comptime!(layout.planes_m)) * comptime!(layout.plane_n);
        PlaneOrigin {
            row,
            column,
            m: block.m0 + row * f,
            n: block.n0 + column * f,
            scratch: plane * comptime!(f * f),
        }
    }

    /// `fragment` into this plane's scratch, `[channel][position]`, readable by all its units
    /// on return.
    fn stage(&self, scratch: &mut [f32], fragment: &cmma::Matrix<f32>, #[comptime] layout: Layout) {
        let f = comptime!(layout.fragment);
        cmma::store(
            &mut scratch[self.scratch..self.scratch + f * f],
            fragment,
            f as u32,
            cmma::MatrixLayout::ColMajor,
        );
        sync_plane();
    }
}

/// `block`'s sums: the `plane_m` x `plane_n` accumulators of the plane at `origin`, row-major.
#[cube]
fn multiply<F: Float, S: Float>(
    input: &[F],
    weight: &[F],
    steps_table: &[i32],
    geo: &Geometry,
    block: &Block,
    origin: &PlaneOrigin,
    #[comptime] layout: Layout,
) -> Sequence<cmma::Matrix<f32>> {
    let f = comptime!(layout.fragment);
    let block_m = comptime!(layout.tiling.block_m);
    let block_n = comptime!(layout.tiling.block_n);
    let units = comptime!(layout.tiling.units);
    let depth = comptime!(layout.fragment * STAGE_FRAGMENTS);
    // Both tiles are `[row][column]`, rows padded: the input's columns are positions, the
    // weight's channels.
    let stride_a = comptime!(block_m + ROW_PAD);
    let stride_b = comptime!(block_n + ROW_PAD);
    let stage_a = comptime!(depth * (block_m + ROW_PAD));
    let stage_b = comptime!(depth * (block_n + ROW_PAD));
    let step_a = comptime!(units / block_m);
    let step_b = comptime!(units / block_n);
    let mut tile_a = Shared::<[S]>::new_slice(comptime!(2 * depth * (block_m + ROW_PAD)));
    let mut tile_b = Shared::<[S]>::new_slice(comptime!(2 * depth * (block_n + ROW_PAD)));
    let mut next_a = Array::<f32>::new(comptime!(depth * block_m / units));
    let mut next_b = Array::<f32>::new(comptime!(depth * block_n / units));

    let mut acc = Sequence::<cmma::Matrix<f32>>::new();
    #[unroll]
    for _ in 0..comptime!(layout.plane_m * layout.plane_n) {
        acc.push(cmma::Matrix::<f32>::from_value(
            cmma::MatrixIdent::Accumulator,
            f,
            f,
            f,
            cmma::MatrixLayout::Undefined,
            0.0f32,
        ));
    }

    let unit = UNIT_POS as usize;
    let loader = Loader::new(
        geo,
        block.m0 + unit % block_m,
        block.n0 + unit % block_n,
        unit,
        block_m,
        block_n,
    );
    let steps = (block.r_end - block.r_begin).div_ceil(depth);
    let mut r0 = block.r_begin;
    loader.fetch_a(input, steps_table, geo, r0, block.r_end, &mut next_a, depth);
    loader.fetch_b(weight, geo, r0, block.r_end, &mut next_b, depth);
    for step in 0..steps {
        let base_a = (step % 2) * stage_a;
        let base_b = (step % 2) * stage_b;
        #[unroll]
        for l in 0..next_a.len().comptime() {
            tile_a[base_a + (loader.row_a + l * step_a) * stride_a + unit % block_m] =
                S::cast_from(next_a[l]);
        }
        #[unroll]
        for l in 0..next_b.len().comptime() {
            tile_b[base_b + (loader.row_b + l * step_b) * stride_b + unit % block_n] =
                S::cast_from(next_b[l]);
        }
        sync_cube();

        r0 += depth;
        if step + 1 < steps {
            loader.fetch_a(input, steps_table, geo, r0, block.r_end, &mut next_a, depth);
            loader.fetch_b(weight, geo, r0, block.r_end, &mut next_b, depth);
        }

        #[unroll]
        for k in 0..STAGE_FRAGMENTS {
            let row_a = base_a + k * comptime!(f * stride_a);
            let row_b = base_b + k * comptime!(f * stride_b);
            // An input fragment is positions x rows; stored `[row][position]` it is
            // column-major.
            let mut a = Sequence::<cmma::Matrix<S>>::new();
            #[unroll]
            for i in 0..comptime!(layout.plane_m) {
                a.push(cmma::Matrix::<S>::from_slice(
                    cmma::MatrixIdent::A,
                    f,
                    f,
                    f,
                    cmma::MatrixLayout::ColMajor,
                    &tile_a[row_a + (origin.row + i) * f..row_a + f * stride_a],
                    stride_a as u32,
                ));
            }
            #[unroll]
            for j in 0..comptime!(layout.plane_n) {
                let b = cmma::Matrix::<S>::from_slice(
                    cmma::MatrixIdent::B,
                    f,
                    f,
                    f,
                    cmma::MatrixLayout::RowMajor,
                    &tile_b[row_b + (origin.column + j) * f..row_b + f * stride_b],
                    stride_b as u32,
                );
                #[unroll]
                for i in 0..comptime!(layout.plane_m) {
                    // In place: the accumulator is both the addend and the result.
                    let sum = acc.index(i * comptime!(layout.plane_n) + j);
                    cmma::execute(a.index(i), &b, sum, sum);
                }
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::{Layout, TILINGS};

    /// `(planes_m, planes_n, plane_m, plane_n)` of each tiling for planes of `plane` units on
    /// `fragment`-sided float16 fragments, within Vulkan's usual 48 KiB and 1024 units.
    fn layouts(plane: usize, fragment: usize) -> Vec<Option<(usize, usize, usize, usize)>> {
        TILINGS
            .into_iter()
            .map(|t| Layout::new(t, plane, fragment, 2, 1024, 48 * 1024))
            .map(|l| l.map(|l| (l.planes_m, l.planes_n, l.plane_m, l.plane_n)))
            .collect()
    }

    #[test]
    fn planes_share_each_block_in_the_rectangles_with_fewest_loads() {
        // NVIDIA's warps of 32 on 16x16 fragments: 128x128 over 8 warps of 2x4 fragments (its
        // tensor-core GEMM sample's shape), 128x64 over 4 of 2x4, 64x64 over 4 of 2x2.
        assert_eq!(
            layouts(32, 16),
            [Some((4, 2, 2, 4)), Some((4, 1, 2, 4)), Some((2, 2, 2, 2))]
        );
        // lavapipe's subgroups of 8 on 8x8 fragments: four times the planes on a quarter of
        // the fragment, so the same rectangles.
        assert_eq!(
            layouts(8, 8),
            [Some((8, 4, 2, 4)), Some((8, 2, 2, 4)), Some((4, 4, 2, 2))]
        );
        // AMD's 64 on 16x16: half the planes, twice the fragments each.
        assert_eq!(
            layouts(64, 16),
            [Some((2, 2, 4, 4)), Some((2, 1, 4, 4)), Some((2, 1, 2, 4))]
        );
        // Planes larger than a cube, or of a size that is no power of two, share nothing.
        assert!(layouts(512, 16).iter().all(Option::is_none));
        assert!(layouts(12, 8).iter().all(Option::is_none));
    }

    #[test]
    fn a_layout_stays_within_the_devices_units_and_shared_memory() {
        let [wide, tall, small] = TILINGS;
        // The 128x128 block takes 256 units and 44 KiB of float16 stages and scratch.
        let layout = Layout::new(wide, 32, 16, 2, 1024, 48 * 1024).unwrap();
        assert_eq!(layout.shared_bytes(2), 45_056);
        assert!(Layout::new(wide, 32, 16, 2, 128, 48 * 1024).is_none());
        assert!(Layout::new(wide, 32, 16, 2, 1024, 40 * 1024).is_none());
        assert!(Layout::new(tall, 32, 16, 2, 128, 40 * 1024).is_some());
        assert!(Layout::new(small, 32, 16, 2, 128, 16 * 1024).is_none());
        // A stage is two fragment depths of rows.
        assert_eq!(
            Layout::new(small, 8, 8, 2, 1024, 65536)
                .unwrap()
                .stage_rows(),
            16
        );
    }
}
