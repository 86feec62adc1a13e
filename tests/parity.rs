//! Every node of both models equals torchvision's, on the same weights and input.

mod support;

use featx::burn::prelude::*;
use featx::models::{AlexNetConfig, FeatureModel, ResNetConfig};
use featx::{create_feature_extractor, get_graph_node_names};
use support::*;

fn check_all_nodes(model: &impl FeatureModel, fixture_stem: &str, device: &Device) {
    let fx = node_fixtures(
        &format!("{fixture_stem}_nodes.json"),
        &format!("{fixture_stem}_nodes.safetensors"),
    );
    let (_, eval_nodes) = get_graph_node_names(model);
    assert_eq!(eval_nodes.len(), fx.nodes.len());
    let extractor = create_feature_extractor(model, eval_nodes.as_slice()).unwrap();
    let shape: [usize; 4] = fx.input_shape.clone().try_into().unwrap();
    let features = extractor.forward(generated_input(shape, device)).unwrap();
    assert_eq!(features.keys().collect::<Vec<_>>(), eval_nodes);
    let mut worst = (0f64, String::new());
    for (name, feature) in features.iter() {
        let diff = compare(
            name,
            &feature.dims(),
            &feature.to_vec_f32(),
            &fx.nodes[name],
        );
        if diff > worst.0 {
            worst = (diff, name.to_string());
        }
    }
    eprintln!(
        "{fixture_stem}: largest difference to torch {:.3e} at '{}'",
        worst.0, worst.1
    );
}

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
