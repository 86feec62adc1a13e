//! The registry's own checks: unique names, weights file names and hashes, build arguments.

use super::*;

#[test]
fn names_are_unique_and_each_model_reports_its_own() {
    for (i, arch) in MODELS.iter().enumerate() {
        assert!(
            MODELS[..i].iter().all(|a| a.name != arch.name),
            "{} twice",
            arch.name
        );
        assert_eq!(arch.model.model_name(), arch.name);
    }
}

#[test]
fn hash_prefix_is_the_file_name_after_the_last_dash() {
    let alexnet = find("tv_alexnet").unwrap().weights.unwrap();
    assert_eq!(alexnet.sha256_prefix(), "7be5be79");
    let mnasnet = find("mnasnet0_5").unwrap().weights.unwrap();
    assert_eq!(mnasnet.sha256_prefix(), "3ffadce67e");
    for arch in MODELS {
        if let Some(w) = arch.weights {
            let prefix = w.sha256_prefix();
            assert!(
                prefix.len() >= 8 && prefix.chars().all(|c| c.is_ascii_hexdigit()),
                "{}: {prefix}",
                w.file_name
            );
            // MNASNet's files write the multiplier with a dot (`mnasnet0.5_...`).
            let name = w.file_name.replace('.', "_");
            // ShuffleNetV2's files write the family `shufflenetv2` and 1.0 as `x1`
            // (`shufflenetv2_x1-5666bf0f80.pth`).
            let arch_name = arch.name.trim_start_matches("tv_");
            let arch_name = arch_name.replace("shufflenet_v2", "shufflenetv2");
            let arch_name = arch_name.replace("v2_x1_0", "v2_x1");
            assert!(name.starts_with(&arch_name), "{}", w.file_name);
        }
    }
}

#[test]
fn only_densenet_renames_legacy_keys() {
    let legacy = "features.denseblock1.denselayer1.norm.1.weight";
    for name in ["densenet121", "densenet161", "densenet169", "densenet201"] {
        assert_eq!(
            find(name).unwrap().current_key(legacy),
            "features.denseblock1.denselayer1.norm1.weight"
        );
    }
    assert_eq!(find("convnext_tiny").unwrap().current_key(legacy), legacy);
}

/// A state dict's tensors as the model built with `args` names and shapes them.
fn file_of(arch: &Architecture, args: BuildArgs) -> Vec<TensorInfo> {
    arch.model
        .expected_keys(args)
        .into_iter()
        .map(|(key, shape)| TensorInfo {
            key,
            shape,
            dtype: burn::tensor::DType::F32,
        })
        .collect()
}

#[test]
fn expected_keys_read_from_shapes_are_what_burn_store_collects() {
    // One architecture of each module layout: Sequential enums, Linear heads, BatchNorm,
    // LayerNorm, raw parameters (ViT, Swin), legacy names (DenseNet), buffers (Swin V2).
    for name in [
        "resnet18",
        "vgg11_bn",
        "alexnet",
        "tv_alexnet",
        "mobilenet_v3_small",
        "efficientnet_b0",
        "regnet_y_400mf",
        "densenet121",
        "convnext_tiny",
        "vit_b_32",
        "swin_v2_t",
    ] {
        let fast = find(name).unwrap().expected_keys();
        assert_eq!(fast, collect_slowly(name), "{name}");
    }
}

/// burn-store's own collection, which initialises every tensor.
fn collect_slowly(name: &str) -> Vec<(String, Vec<usize>)> {
    use burn::store::BurnToPyTorchAdapter;
    let device = Device::flex();
    fn keys<M: ModuleSnapshot>(m: M) -> Vec<(String, Vec<usize>)> {
        m.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
            .into_iter()
            .map(|t| (t.name.clone(), t.shape.as_slice().to_vec()))
            .collect()
    }
    match name {
        "resnet18" => keys(crate::ResNetConfig::resnet18(1000).init(&device)),
        "vgg11_bn" => keys(crate::VggConfig::vgg11_bn(1000).init(&device)),
        "alexnet" => keys(crate::AlexNetConfig::new().init(&device)),
        "tv_alexnet" => keys(crate::TorchvisionAlexNetConfig::new().init(&device)),
        "mobilenet_v3_small" => keys(crate::MobileNetV3Config::small(1000).init(&device)),
        "efficientnet_b0" => keys(crate::EfficientNetConfig::b(0, 1000).init(&device)),
        "regnet_y_400mf" => keys(
            crate::RegNetConfig::named("regnet_y_400mf")
                .unwrap()
                .init(&device),
        ),
        "densenet121" => keys(crate::DenseNetConfig::densenet121(1000).init(&device)),
        "convnext_tiny" => keys(crate::ConvNeXtConfig::convnext_tiny(1000).init(&device)),
        "vit_b_32" => keys(crate::VitConfig::vit_b_32(1000).init(&device)),
        "swin_v2_t" => keys(crate::SwinConfig::swin_v2_t(1000).init(&device)),
        other => unreachable!("{other}"),
    }
}

#[test]
fn every_models_class_count_is_read_from_its_head() {
    for arch in MODELS {
        for n in [7, 1000, 21843] {
            let file = file_of(arch, BuildArgs::num_classes(n));
            let (args, report) = arch.fit(&file, BuildArgs::default());
            assert_eq!(args.num_classes, Some(n), "{}", arch.name);
            assert!(report.fits(), "{}: {report:?}", arch.name);
        }
    }
}

#[test]
fn a_head_that_differs_elsewhere_is_not_read_as_a_class_count() {
    let resnet18 = find("resnet18").unwrap();
    let mut file = file_of(resnet18, BuildArgs::num_classes(7));
    file.iter_mut()
        .filter(|t| t.key == "fc.weight")
        .for_each(|t| t.shape = vec![7, 256]);
    let (args, report) = resnet18.fit(&file, BuildArgs::default());
    assert_eq!(args.num_classes, None);
    assert_eq!(report.mismatched.len(), 2, "{report:?}");
    // Without a head there is nothing to read; a given count is kept as it is.
    file.retain(|t| !t.key.starts_with("fc."));
    assert_eq!(
        resnet18.build_args(&file, BuildArgs::default()).num_classes,
        None
    );
    assert_eq!(
        resnet18.build_args(&file, BuildArgs::num_classes(3)),
        BuildArgs::num_classes(3)
    );
}

#[test]
fn a_vits_image_size_is_read_from_its_positional_embedding() {
    for (name, size) in [("vit_b_16", 384), ("vit_b_32", 384), ("vit_l_16", 512)] {
        let arch = find(name).unwrap();
        let trained = BuildArgs {
            num_classes: Some(10),
            image_size: Some(size),
        };
        let (args, report) = arch.fit(&file_of(arch, trained), BuildArgs::default());
        assert_eq!(args, trained, "{name}");
        assert!(report.fits(), "{name}: {report:?}");
    }
    // Built lazily: the input size without drawing 86M random weights.
    let vit = crate::VitConfig::vit_b_16(10).with_image_size(Some(384));
    assert_eq!(
        vit.init(&Device::flex()).input_spec().size,
        Some([384, 384])
    );
    let default = file_of(find("vit_b_16").unwrap(), BuildArgs::default());
    assert_eq!(crate::vit::image_size_from(&default, 16), Some(224));
    // CNNs take any size: nothing to read.
    let resnet = find("resnet50").unwrap();
    let file = file_of(resnet, BuildArgs::default());
    assert_eq!(resnet.file_image_size(&file), None);
    assert_eq!(
        resnet.build_args(&file, BuildArgs::default()).image_size,
        None
    );
}

#[test]
fn a_vit_file_fits_another_image_size_by_interpolation() {
    // A 384x384 SWAG-like ViT-B/16 checkpoint asked for at 224: only the positional
    // embedding differs, and loading interpolates it, so the file fits.
    let arch = find("vit_b_16").unwrap();
    let swag = file_of(
        arch,
        BuildArgs {
            num_classes: None,
            image_size: Some(384),
        },
    );
    assert_eq!(arch.file_image_size(&swag), Some(384));
    let given = BuildArgs {
        num_classes: None,
        image_size: Some(224),
    };
    let (args, report) = arch.fit(&swag, given);
    assert_eq!(args.image_size, Some(224));
    assert!(report.fits(), "{report:?}");
    // A size that is no multiple of the patch cannot be interpolated: the report keeps the
    // file's shape, a mismatch.
    let (_, report) = arch.fit(
        &swag,
        BuildArgs {
            num_classes: None,
            image_size: Some(200),
        },
    );
    assert_eq!(report.mismatched.len(), 1, "{report:?}");
    assert_eq!(report.mismatched[0].key, "encoder.pos_embedding");
    // Models of any input size take no image size from a file, and none interpolates.
    let resnet = find("resnet18").unwrap();
    let file = file_of(resnet, BuildArgs::default());
    assert!(resnet.fit(&file, given).1.fits());
}
