//! Feeds arbitrary bytes to the weight-file readers (torch zip/legacy pickle and SafeTensors)
//! and, when they parse, to the loader with a small model. Any panic or abort is a bug: bad
//! files must come back as `WeightsError`s.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use libfuzzer_sys::fuzz_target;

/// A model with the parameter kinds featx's models have (conv, batch norm, linear), small
/// enough to build on every input. Seeds in `fuzz/corpus` are its state dicts.
#[derive(Module, Debug)]
struct Tiny {
    conv1: Conv2d,
    bn1: BatchNorm,
    fc: Linear,
}

fn tiny() -> Tiny {
    let device = Device::flex();
    Tiny {
        conv1: Conv2dConfig::new([3, 4], [1, 1]).with_bias(false).init(&device),
        bn1: BatchNormConfig::new(4).init(&device),
        fc: LinearConfig::new(4, 2).init(&device),
    }
}

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let name = if selector & 1 == 0 { "w.pth" } else { "w.safetensors" };
    let path = dir().path().join(name);
    let mut file = std::fs::File::create(&path).expect("create");
    file.write_all(bytes).expect("write");
    drop(file);
    if featx_weights::inspect(&path).is_ok() {
        let _ = featx_weights::load_state_dict(tiny(), &path);
    }
});
