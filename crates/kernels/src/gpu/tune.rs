//! Which block the cooperative convolution runs in, measured on the device: the first time a
//! layer's shape is seen, each block the device takes (`cooperative::TILINGS`) is timed on it
//! and the fastest kept, in burn's tuning cache (on disk, so a second process starts tuned).
//!
//! Measured rather than ruled because what pays off on tensor cores — larger blocks reading
//! shared memory less per multiply, or smaller ones filling more multiprocessors — depends on
//! the card and its driver in ways the shape alone does not say. The rule
//! (`Cooperative::layout`) is what runs in builds without `autotune`. The register-tiled
//! float32 kernel keeps its rule: it also runs on CPU-side Vulkan drivers, where tuning would
//! cost more than it could win.

use burn::tensor::DType;
use burn_cubecl::tensor::CubeTensor;
use cubecl::tune::{LocalTuner, Tunable, TunableSet, local_tuner};
use cubecl::{AutotuneKey, CubeTuneId};
use serde::{Deserialize, Serialize};

use super::cooperative::TILINGS;
use super::extension::{ConvCall, cooperative_layout, launch_kernel};

/// A layer as the tuner tells layers apart: sizes anchored to powers of two, so that nearby
/// batch and image sizes share a measurement.
#[derive(Hash, Eq, PartialEq, Debug, Clone, Serialize, Deserialize, AutotuneKey)]
struct CooperativeKey {
    #[autotune(anchor)]
    positions: usize,
    #[autotune(anchor)]
    out_channels: usize,
    #[autotune(anchor)]
    depth: usize,
    stride: [usize; 2],
    dtype: DType,
    multiply: DType,
    residual: bool,
}

/// The operands of one launch: input, packed weight with its steps table and bias, residual,
/// call.
type Inputs = (CubeTensor, [CubeTensor; 3], Option<CubeTensor>, ConvCall);

fn key((x, layer, residual, call): &Inputs) -> CooperativeKey {
    let [n, _, _, _] = x.meta.shape().dims();
    let [depth, out_channels] = layer[0].meta.shape().dims();
    CooperativeKey::new(
        n * call.output[0] * call.output[1],
        out_channels,
        depth,
        call.stride,
        x.dtype,
        call.multiply,
        residual.is_some(),
    )
}

/// The convolution on cooperative matrices in the block measured fastest for its shape.
pub(crate) fn cooperative(
    x: CubeTensor,
    layer: [CubeTensor; 3],
    residual: Option<CubeTensor>,
    call: ConvCall,
) -> CubeTensor {
    static TUNER: LocalTuner<CooperativeKey, CubeTuneId> = local_tuner!("featx-cooperative");

    let client = x.client.clone();
    let id = CubeTuneId::new(&x.client, &x.device);
    let tunables = TUNER.init(&id, || {
        TILINGS.into_iter().fold(
            TunableSet::<CooperativeKey, Inputs, CubeTensor>::new_cloning_inputs(key),
            |set, tiling| {
                let block = [tiling.block_m, tiling.block_n];
                let name = format!("featx_cooperative_{}x{}", block[0], block[1]);
                set.with(Tunable::new(
                    &name,
                    move |(x, layer, residual, call): Inputs| {
                        let layout = cooperative_layout(x.client.properties(), call.multiply)
                            .and_then(|c| c.with_block(block))
                            .ok_or("the device does not take this block")?;
                        Ok::<_, &str>(launch_kernel(x, layer, residual, call, Some(layout)))
                    },
                ))
            },
        )
    });
    TUNER.execute(&id, &client, tunables, (x, layer, residual, call))
}
