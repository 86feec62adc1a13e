//! Every node of both models equals torchvision's, on the same weights and input.

use featx::burn::prelude::*;
use featx::create_feature_extractor;
use featx::models::{AlexNetConfig, ResNetConfig};

use crate::support::check_all_nodes;
use crate::support::*;

#[test]
fn folded_batchnorms_match_torchvision() {
    // Asking for everything but the convolutions lets every BatchNorm absorb its convolution.
    let device = Device::flex();
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    let extractor = check_nodes(&model, "resnet18", &device, |n| {
        !n.contains("conv") && !n.contains("downsample.0")
    });
    assert_eq!(extractor.plan_report().folded_convolutions, 20);
    // The BatchNorms' outputs are requested, so their ReLUs run apart.
    assert_eq!(extractor.plan_report().fused_relus, 0);
    // Train mode never folds: BatchNorm needs the batch statistics of the real convolution.
    let train = extractor.with_mode(featx::Mode::Train);
    assert_eq!(train.plan_report().folded_convolutions, 0);
}

#[test]
fn fused_relus_match_torchvision() {
    // Without the BatchNorms' own outputs, each ReLU after a BatchNorm runs inside the folded
    // convolution's kernel (the stem and every block's first ReLU: 9).
    let device = Device::flex();
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    let extractor = check_nodes(&model, "resnet18", &device, |n| {
        !n.contains("conv") && !n.contains("bn") && !n.contains("downsample")
    });
    assert_eq!(extractor.plan_report().folded_convolutions, 20);
    assert_eq!(extractor.plan_report().fused_relus, 9);
    // A requested BatchNorm keeps its ReLU apart (8 of the 9 left); with no add requested,
    // each block's add runs inside its last convolution, and the ReLU after it too (8 more).
    let extractor = create_feature_extractor(&model, ["layer1.0.bn1", "fc"].as_slice()).unwrap();
    assert_eq!(extractor.plan_report().fused_adds, 8);
    assert_eq!(extractor.plan_report().fused_relus, 16);
}

#[test]
fn resnet18_every_node_matches_torchvision_on_cpu() {
    let device = Device::flex();
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    // Every convolution's output is asked for, so no BatchNorm folds: each runs as featx's
    // one-pass CPU BatchNorm.
    let extractor = check_nodes(&model, "resnet18", &device, |_| true);
    let report = extractor.plan_report();
    assert_eq!(report.folded_convolutions, 0);
    assert_eq!(report.count("cpu-batch-norm"), 20, "{:?}", report.kernels);
}

#[test]
fn alexnet_every_node_matches_torchvision_on_cpu() {
    let device = Device::flex();
    let model = with_generated_weights(AlexNetConfig::new().init(&device));
    check_all_nodes(&model, "alexnet", &device);
}

#[cfg(feature = "ndarray")]
#[test]
#[allow(deprecated)] // burn-ndarray is deprecated upstream; featx keeps it for comparison.
fn resnet18_every_node_matches_torchvision_on_ndarray() {
    let device = Device::ndarray();
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    check_all_nodes(&model, "resnet18", &device);
}

#[cfg(feature = "ndarray")]
#[test]
#[allow(deprecated)]
fn alexnet_every_node_matches_torchvision_on_ndarray() {
    let device = Device::ndarray();
    let model = with_generated_weights(AlexNetConfig::new().init(&device));
    check_all_nodes(&model, "alexnet", &device);
}
