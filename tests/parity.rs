//! Every node of both models equals torchvision's, on the same weights and input.

mod support;

use featx::burn::prelude::*;
use featx::models::{AlexNetConfig, ResNetConfig};
use featx::{create_feature_extractor, get_graph_node_names};
use support::check_all_nodes;
use support::*;

#[test]
fn folded_batchnorms_match_torchvision() {
    // Asking for everything but the convolutions lets every BatchNorm absorb its convolution.
    let device = Device::flex();
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    let fx = node_fixtures("resnet18_nodes.json", "resnet18_nodes.safetensors");
    let (_, names) = get_graph_node_names(&model);
    let wanted: Vec<String> = names
        .into_iter()
        .filter(|n| {
            !n.contains("conv")
                && n != "layer2.0.downsample.0"
                && n != "layer3.0.downsample.0"
                && n != "layer4.0.downsample.0"
        })
        .collect();
    let extractor = create_feature_extractor(&model, wanted.as_slice()).unwrap();
    assert_eq!(extractor.folded_convolutions(), 20);
    let features = extractor
        .forward(generated_input([2, 3, 224, 224], &device))
        .unwrap();
    for (name, feature) in features.iter() {
        compare(
            name,
            &feature.dims(),
            &feature.to_vec_f32(),
            &fx.nodes[name],
        );
    }
    // Train mode never folds: BatchNorm needs the batch statistics of the real convolution.
    let train = extractor.with_mode(featx::Mode::Train);
    assert_eq!(train.folded_convolutions(), 0);
}

#[test]
fn fused_relus_match_torchvision() {
    // Without the BatchNorms' own outputs, each ReLU after a BatchNorm runs inside the folded
    // convolution's kernel (the stem and every block's first ReLU: 9).
    let device = Device::flex();
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    let fx = node_fixtures("resnet18_nodes.json", "resnet18_nodes.safetensors");
    let (_, names) = get_graph_node_names(&model);
    let wanted: Vec<String> = names
        .into_iter()
        .filter(|n| !n.contains("conv") && !n.contains("bn") && !n.contains("downsample"))
        .collect();
    let extractor = create_feature_extractor(&model, wanted.as_slice()).unwrap();
    assert_eq!(extractor.folded_convolutions(), 20);
    assert_eq!(extractor.fused_relus(), 9);
    let features = extractor
        .forward(generated_input([2, 3, 224, 224], &device))
        .unwrap();
    assert_eq!(features.len(), wanted.len());
    for (name, feature) in features.iter() {
        compare(
            name,
            &feature.dims(),
            &feature.to_vec_f32(),
            &fx.nodes[name],
        );
    }
    // A requested BatchNorm keeps its ReLU apart.
    let extractor = create_feature_extractor(&model, ["layer1.0.bn1", "fc"].as_slice()).unwrap();
    assert_eq!(extractor.fused_relus(), 8);
}

#[test]
fn resnet18_every_node_matches_torchvision_on_cpu() {
    let device = Device::flex();
    let model = with_generated_weights(ResNetConfig::resnet18(1000).init(&device));
    check_all_nodes(&model, "resnet18", &device);
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
