//! The convolution on cooperative matrices (tensor cores): `tiled.rs`'s implicit GEMM with its
//! multiply done by planes (warps, subgroups) on square fragments (16x16x16 on NVIDIA's, 8x8x8
//! on Mesa's lavapipe) instead of by each unit on registers. The operands are multiplied in
//! float16 or bfloat16 (`S`, the staging type) and accumulated in float32, the types NVIDIA's
//! cooperative-matrix units (and most others) take. The tensors (`F`) are either of that type,
//! or float32 rounded to it as they come into shared memory: a TF32-like mode (float32
//! tensors, reduced-precision products, float32 sums) that featx offers as `--precision
//! mixed`; plain float32 keeps `tiled.rs`.
//!
//! A cube is [`UNITS`] units in planes of the device's plane size, and computes a
//! [`BLOCK`] x [`BLOCK`] output block of fragments; each plane takes a run of them along one
//! fragment row, so it reads that row's input fragment once per step ([`fits`] says which
//! plane and fragment sizes allow that). The tiles come into
//! shared memory as in `tiled.rs` (the same `Loader`, two stages, one barrier per step); at
//! the end the accumulators go through shared memory once, `[channel][position]`, where the
//! units apply the epilogue and write NCHW with neighbouring units on neighbouring addresses.

use cubecl::prelude::*;

use super::tiled::{Block, Geometry, Loader, finish, output_index};

/// Output positions (and channels) per cube.
pub(crate) const BLOCK: usize = 64;
/// Units per cube, whatever the plane size.
pub(crate) const UNITS: usize = 128;
/// Fragment sides the kernel takes (the `m`, `n` and `k` of one cooperative multiply, and the
/// reduction rows staged in shared memory at a time), largest first.
pub(crate) const FRAGMENTS: [usize; 2] = [16, 8];

/// Whether planes of `plane_size` units can share a block's `fragment`-sided fragments as the
/// kernel lays them out: every plane at least one, and no more than one fragment row.
pub(crate) fn fits(plane_size: usize, fragment: usize) -> bool {
    let side = BLOCK / fragment;
    let planes = UNITS / plane_size;
    plane_size.is_power_of_two()
        && plane_size <= UNITS
        && (side * side).is_multiple_of(planes)
        && (1..=side).contains(&(side * side / planes))
}

/// `output = relu?(conv(input, weight) + bias (+ residual))`, one block per cube, on a cube of
/// `(plane_size, UNITS / plane_size)` units multiplying `fragment`-sided fragments of `S`. As
/// `conv2d_implicit_gemm` otherwise.
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
    #[comptime] plane_size: usize,
    #[comptime] fragment: usize,
    #[comptime] add_residual: bool,
    #[comptime] relu: bool,
    #[define(F)] _dtype: ElemType,
    #[define(S)] _staging: ElemType,
) {
    let m0 = (CUBE_POS_Z as usize * CUBE_COUNT_X as usize + CUBE_POS_X as usize) * BLOCK;
    if m0 >= geo.positions {
        // The whole cube leaves together (the last z layer is not full): no unit waits at a
        // barrier for it, and no plane is left partly outside a cooperative multiply.
        terminate!();
    }
    let block = Block {
        m0,
        n0: CUBE_POS_Y as usize * BLOCK,
        r_begin: 0,
        r_end: geo.depth,
    };
    let mut sums = Shared::<[f32]>::new_slice(comptime!(BLOCK * BLOCK));
    multiply::<F, S>(
        input,
        weight,
        steps_table,
        &geo,
        &block,
        &mut sums[0..BLOCK * BLOCK],
        plane_size,
        fragment,
    );

    let out_plane = geo.out_height * geo.out_width;
    #[unroll]
    for e in 0..comptime!(BLOCK * BLOCK / UNITS) {
        let local = UNIT_POS as usize + e * UNITS;
        let m = m0 + local % BLOCK;
        let channel = block.n0 + local / BLOCK;
        if m < geo.positions && channel < geo.out_channels {
            let index = output_index(&geo, m, channel, out_plane);
            let sum = sums[local];
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

/// The same with the reduction split as `conv2d_implicit_gemm_split` splits it: part `z` of
/// every block into `partial[z]`, summed with the epilogue by `reduce_splits`.
#[cube(launch_unchecked, address_type = "dynamic")]
pub(crate) fn conv2d_cooperative_split<F: Float, S: Float>(
    input: &[F],
    weight: &[F],
    steps_table: &[i32],
    partial: &mut [f32],
    geo: Geometry,
    #[comptime] plane_size: usize,
    #[comptime] fragment: usize,
    #[define(F)] _dtype: ElemType,
    #[define(S)] _staging: ElemType,
) {
    let block = Block::part(
        &geo,
        CUBE_POS_X as usize * BLOCK,
        CUBE_POS_Y as usize * BLOCK,
    );
    let mut sums = Shared::<[f32]>::new_slice(comptime!(BLOCK * BLOCK));
    multiply::<F, S>(
        input,
        weight,
        steps_table,
        &geo,
        &block,
        &mut sums[0..BLOCK * BLOCK],
        plane_size,
        fragment,
    );

    let out_plane = geo.out_height * geo.out_width;
    let part = CUBE_POS_Z as usize * geo.positions * geo.out_channels;
    #[unroll]
    for e in 0..comptime!(BLOCK * BLOCK / UNITS) {
        let local = UNIT_POS as usize + e * UNITS;
        let m = block.m0 + local % BLOCK;
        let channel = block.n0 + local / BLOCK;
        if m < geo.positions && channel < geo.out_channels {
            partial[part + output_index(&geo, m, channel, out_plane)] = sums[local];
        }
    }
}

/// `block`'s sums into `sums` (`[channel][position]`, `BLOCK` x `BLOCK`), visible to every unit
/// of the cube on return.
#[cube]
fn multiply<F: Float, S: Float>(
    input: &[F],
    weight: &[F],
    steps_table: &[i32],
    geo: &Geometry,
    block: &Block,
    sums: &mut [f32],
    #[comptime] plane_size: usize,
    #[comptime] fragment: usize,
) {
    // One step is one fragment's depth of reduction rows.
    let depth = fragment;
    let side = comptime!(BLOCK / fragment);
    let planes = comptime!(UNITS / plane_size);
    let per_plane = comptime!(side * side / planes);
    let stage = comptime!(depth * BLOCK);
    let loads = comptime!(depth * BLOCK / UNITS);
    let step_rows = comptime!(UNITS / BLOCK);
    // Both tiles are `[row][column]` with `BLOCK` columns: the input's columns are positions,
    // the weight's channels.
    let mut tile_a = Shared::<[S]>::new_slice(comptime!(2 * depth * BLOCK));
    let mut tile_b = Shared::<[S]>::new_slice(comptime!(2 * depth * BLOCK));
    let mut next_a = Array::<f32>::new(loads);
    let mut next_b = Array::<f32>::new(loads);

    // This plane's fragments: `per_plane` consecutive ones in fragment row `row`.
    let first = UNIT_POS_Y as usize * per_plane;
    let row = first / side;
    let column = first % side;
    let mut acc = Sequence::<cmma::Matrix<f32>>::new();
    #[unroll]
    for _ in 0..per_plane {
        acc.push(cmma::Matrix::<f32>::from_value(
            cmma::MatrixIdent::Accumulator,
            fragment,
            fragment,
            fragment,
            cmma::MatrixLayout::Undefined,
            0.0f32,
        ));
    }

    let unit = UNIT_POS as usize;
    let loader = Loader::new(
        geo,
        block.m0 + unit % BLOCK,
        block.n0 + unit % BLOCK,
        unit,
        BLOCK,
        BLOCK,
    );
    let steps = (block.r_end - block.r_begin).div_ceil(depth);
    let mut r0 = block.r_begin;
    loader.fetch_a(input, steps_table, geo, r0, block.r_end, &mut next_a, depth);
    loader.fetch_b(weight, geo, r0, block.r_end, &mut next_b, depth);
    for step in 0..steps {
        let base = (step % 2) * stage;
        #[unroll]
        for l in 0..loads {
            tile_a[base + (loader.row_a + l * step_rows) * BLOCK + unit % BLOCK] =
                S::cast_from(next_a[l]);
            tile_b[base + (loader.row_b + l * step_rows) * BLOCK + unit % BLOCK] =
                S::cast_from(next_b[l]);
        }
        sync_cube();

        r0 += depth;
        if step + 1 < steps {
            loader.fetch_a(input, steps_table, geo, r0, block.r_end, &mut next_a, depth);
            loader.fetch_b(weight, geo, r0, block.r_end, &mut next_b, depth);
        }

        // The input fragment is positions x rows; stored `[row][position]` it is column-major.
        let a = cmma::Matrix::<S>::from_slice(
            cmma::MatrixIdent::A,
            fragment,
            fragment,
            fragment,
            cmma::MatrixLayout::ColMajor,
            &tile_a[base + row * fragment..base + stage],
            BLOCK as u32,
        );
        #[unroll]
        for i in 0..per_plane {
            let b = cmma::Matrix::<S>::from_slice(
                cmma::MatrixIdent::B,
                fragment,
                fragment,
                fragment,
                cmma::MatrixLayout::RowMajor,
                &tile_b[base + (column + i) * fragment..base + stage],
                BLOCK as u32,
            );
            // In place: the accumulator is both the addend and the result.
            let sum = acc.index(i);
            cmma::execute(&a, &b, sum, sum);
        }
    }

    // Fragment (position, channel) goes to `sums[channel * BLOCK + position]`: column-major.
    #[unroll]
    for i in 0..per_plane {
        let offset = (column + i) * fragment * BLOCK + row * fragment;
        cmma::store(
            &mut sums[offset..BLOCK * BLOCK],
            acc.index(i),
            BLOCK as u32,
            cmma::MatrixLayout::ColMajor,
        );
    }
    sync_cube();
}

#[cfg(test)]
mod tests {
    use super::fits;

    #[test]
    fn planes_share_a_block_of_fragments_without_leaving_a_fragment_row() {
        // NVIDIA's warps of 32 on 16x16 fragments: 4 planes, 4 of the 16 fragments each.
        assert!(fits(32, 16));
        // 8 and 16 planes: 2 and 1 fragment each.
        assert!(fits(16, 16) && fits(8, 16));
        // AMD's 64: 2 planes would need 8 fragments each, two fragment rows of 4.
        assert!(!fits(64, 16));
        // 32 planes of 4 for 16 fragments: some planes would have none.
        assert!(!fits(4, 16));
        // lavapipe's subgroups of 8 on 8x8 fragments: 16 planes, 4 of the 64 each.
        assert!(fits(8, 8) && fits(16, 8));
        // 4 planes would need 16 fragments each, two rows of 8.
        assert!(!fits(32, 8));
        assert!(!fits(12, 8));
    }
}
