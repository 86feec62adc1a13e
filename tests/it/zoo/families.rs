//! Behaviour particular to one family, against torchvision: GoogLeNet's and Inception v3's
//! train graphs and published builds, ViT's token nodes and batches, DenseNet's legacy keys and
//! folding, MaxViT's index buffers, and which CPU kernels MobileNetV3 runs on.

use super::*;

#[test]
fn googlenet_train_mode_nodes_match_torchvision() {
    check_train_values("googlenet");
}

#[test]
fn inception_v3_train_mode_nodes_match_torchvision() {
    check_train_values("inception_v3");
}

#[test]
fn googlenet_as_published_matches_torchvision() {
    check_published("googlenet");
}

#[test]
fn inception_v3_as_published_matches_torchvision() {
    check_published("inception_v3");
}

/// GoogLeNet's auxiliary heads are nodes of its train graph only: asking for one in eval mode
/// is a typed error that says so, in train mode it is a feature, and an extractor built in
/// train mode for it fails the same way once switched to eval mode.
#[test]
fn googlenet_aux_heads_exist_in_train_mode_only() {
    let device = Device::flex();
    let traced = arch("googlenet").random(&device);
    for query in ["aux1.fc2", "aux2", "aux1.conv"] {
        let err = FeatureExtractor::new(traced.clone(), &ReturnNodes::from([query])).unwrap_err();
        assert!(
            matches!(&err, ExtractError::ModeOnly { node, mode: Mode::Train, .. } if node == query),
            "{query}: {err}"
        );
        assert!(err.to_string().contains("train mode"), "{err}");
    }
    let unknown = FeatureExtractor::new(traced.clone(), &ReturnNodes::from(["aux3"])).unwrap_err();
    assert!(
        matches!(unknown, ExtractError::UnknownNode { .. }),
        "{unknown}"
    );
    let request = ReturnNodes::from(["aux1.fc2", "aux2.conv", "inception4e"]);
    let train = FeatureExtractor::new_in(traced, &request, Mode::Train).unwrap();
    let x = support::generated_input([2, 3, 64, 64], &device);
    let features = train.forward(x.clone()).unwrap();
    assert_eq!(features.get("aux1.fc2").unwrap().dims(), [2, 1000]);
    assert_eq!(features.get("aux2.conv").unwrap().dims(), [2, 128, 4, 4]);
    let err = train.with_mode(Mode::Eval).forward(x).unwrap_err();
    assert!(
        matches!(&err, ExtractError::ModeOnly { node, mode: Mode::Train, .. } if node == "aux1.fc2"),
        "{err}"
    );
}

#[test]
fn vit_l_16_values_match_torchvision_through_two_encoder_layers() {
    check_values_through("vit_l_16", Some("encoder.layers.encoder_layer_1"));
}

/// torchvision's published DenseNet files use the keys before its module renames
/// (`denselayer1.norm.1.weight`); featx loads them as torchvision does, renaming on load.
#[test]
fn densenet_loads_published_files_with_legacy_keys() {
    let arch = arch("densenet121");
    let legacy: Vec<(String, Vec<usize>)> = arch
        .expected_keys()
        .into_iter()
        .map(|(key, shape)| {
            let mut parts: Vec<String> = key.split('.').map(str::to_string).collect();
            let n = parts.len();
            let is_layer = n >= 3 && parts[n - 3].starts_with("denselayer");
            let renamed =
                is_layer && ["norm1", "norm2", "conv1", "conv2"].contains(&parts[n - 2].as_str());
            if renamed {
                let (kind, digit) = parts[n - 2].split_at(4);
                parts[n - 2] = format!("{kind}.{digit}");
            }
            (parts.join("."), shape)
        })
        .collect();
    assert!(
        legacy
            .iter()
            .any(|(k, _)| k == "features.denseblock1.denselayer1.norm.1.weight")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = support::write_generated_state_dict(&legacy, dir.path(), safetensors::Dtype::F32);
    let traced = arch.load(&Device::flex(), &path).unwrap();
    assert_eq!(traced.name, "densenet121");
}

/// A batch of two through ViT (class token expanded to the batch, position embedding
/// broadcast over it) equals each image alone.
#[test]
fn vit_batch_of_two_equals_each_image_alone() {
    let device = Device::flex();
    let traced = arch("vit_b_32").random(&device);
    let request = ReturnNodes::from(["cat", "encoder.add", "heads.head"]);
    let extractor = FeatureExtractor::new(traced, &request).unwrap();
    let x = support::generated_input([2, 3, 224, 224], &device);
    let both = extractor.forward(x.clone()).unwrap();
    for i in 0..2 {
        let one = extractor.forward(x.clone().narrow(0, i, 1)).unwrap();
        for (key, feature) in one.iter() {
            let pair = both.get(key).unwrap().to_vec_f32().unwrap();
            let alone = feature.to_vec_f32().unwrap();
            let part = &pair[i * alone.len()..(i + 1) * alone.len()];
            let worst = part
                .iter()
                .zip(&alone)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "{key} of image {i}: {worst}");
        }
    }
}

/// FX's shape checks and attention's `(output, None)` tuple are nodes, but not tensors:
/// asking for one is a typed error that says what it is. Parameters read in `forward`
/// (`get_attr`) are tensors and come back as they are.
#[test]
fn vit_non_tensor_nodes_are_typed_errors_and_parameters_are_features() {
    let device = Device::flex();
    let traced = arch("vit_b_32").random(&device);
    for (node, what) in [
        ("getattr", "torch.Size"),
        ("getitem_2", "an int"),
        ("eq", "a bool"),
        ("_assert", "input check"),
        ("encoder.layers.encoder_layer_0.self_attention", "a tuple"),
        ("encoder.layers.encoder_layer_0.getitem_1", "None"),
    ] {
        let err = FeatureExtractor::new(traced.clone(), &ReturnNodes::from([node])).unwrap_err();
        assert!(
            matches!(&err, featx::ExtractError::NotATensor { node: n, .. } if n == node),
            "{node}: {err}"
        );
        assert!(err.to_string().contains(what), "{node}: {err}");
    }
    let request = ReturnNodes::from(["class_token", "encoder.encoder_pos_embedding"]);
    let extractor = FeatureExtractor::new(traced, &request).unwrap();
    let features = extractor
        .forward(support::generated_input([1, 3, 224, 224], &device))
        .unwrap();
    assert_eq!(features.get("class_token").unwrap().dims(), [1, 1, 768]);
    assert_eq!(
        features
            .get("encoder.encoder_pos_embedding")
            .unwrap()
            .dims(),
        [1, 50, 768]
    );
    // ViT's position embedding has one entry per patch of a 224x224 image.
    let err = extractor
        .forward(support::generated_input([1, 3, 64, 64], &device))
        .unwrap_err();
    assert!(
        matches!(err, featx::ExtractError::InvalidInput { .. }),
        "{err}"
    );
}

/// DenseNet's layers run BN → ReLU → conv1 → BN → ReLU → conv2: only `conv1 → norm2` (and the
/// stem's `conv0 → norm0`) may fold, never a BatchNorm into the convolution after it. With
/// only late nodes requested the folds and fused ReLUs happen, and the values are still
/// torchvision's.
#[test]
fn densenet_folds_only_convolutions_followed_by_their_batch_norm() {
    let name = "densenet169";
    let fx = value_fixtures(name);
    let device = Device::flex();
    let traced = generated_model(name, &device);
    let requested: Vec<String> = [
        "features.denseblock2.denselayer3.norm1",
        "features.transition2.pool",
        "relu",
        "classifier",
    ]
    .map(String::from)
    .to_vec();
    let extractor = FeatureExtractor::new(traced, &ReturnNodes::from(requested.clone())).unwrap();
    // 1 stem + one per dense layer (6 + 12 + 32 + 32); transitions' convolutions feed a pool.
    assert_eq!(
        extractor.plan_report().folded_convolutions,
        1 + 6 + 12 + 32 + 32
    );
    // The ReLUs after those folded convolutions, and the pre-activation ReLUs after the
    // BatchNorms that cannot fold (they read a concatenation): every dense layer's `norm1`
    // but the requested one, the three transitions' norms and `norm5`, in one pass with
    // their BatchNorm.
    let report = extractor.plan_report();
    assert_eq!(
        report.fused_relus,
        (1 + 6 + 12 + 32 + 32) + (6 + 12 + 32 + 32 - 1) + 3 + 1
    );
    assert!(report.ran_on("features.denseblock2.denselayer3.norm1", "cpu-batch-norm"));
    assert!(report.ran_on("features.denseblock2.denselayer3.relu1", "burn"));
    assert!(report.ran_on("features.norm5", "cpu-batch-norm"));
    assert!(report.ran_on("relu", "pass-through"));
    let share = check_features(&extractor, &requested, &fx, name, &device);
    assert!(share <= 1.0, "{share}");
}

/// Depthwise convolutions run on featx's own CPU kernel, folded with their BatchNorm and
/// activation, the squeeze-excitation blocks and the Linear layers on featx's, and give
/// torchvision's values (ConvNeXt's unfolded ones are checked by its zoo values test, every
/// node requested).
#[test]
fn depthwise_convolutions_run_on_the_cpu_kernel_with_torchvision_values() {
    let name = "mobilenet_v3_large";
    let fx = value_fixtures(name);
    let device = Device::flex();
    // Two folded blocks (convolution, BatchNorm and activation in one step; 3x3 and 5x5,
    // stride 2) and the logits through every other depthwise layer.
    let requested: Vec<String> = ["features.2.block.1", "features.4.block.1", "classifier.3"]
        .map(String::from)
        .to_vec();
    let extractor = FeatureExtractor::new(
        generated_model(name, &device),
        &ReturnNodes::from(requested.clone()),
    )
    .unwrap();
    let report = extractor.plan_report();
    let depthwise = report.count("cpu-depthwise");
    // One per inverted residual block: features.1 to features.15.
    assert_eq!(depthwise, 15, "{:?}", report.kernels);
    assert!(report.ran_on("features.4.block.1", "cpu-depthwise"));
    // And the squeeze-excitation blocks on featx's (features.4-6 and 11-15).
    let squeeze = report.count("cpu-squeeze-excitation");
    assert_eq!(squeeze, 8, "{:?}", report.kernels);
    assert!(report.ran_on("features.4.block.2", "cpu-squeeze-excitation"));
    // The classifier's Linear layers too (featx's CPU Linear kernel).
    assert!(
        report.ran_on("classifier.3", "cpu-linear"),
        "{:?}",
        report.kernels
    );
    let share = check_features(&extractor, &requested, &fx, name, &device);
    assert!(share <= 1.0, "{share}");
}

/// A ResNet block's `add` (and the ReLU after it) runs in the epilogue of the convolution
/// before it on the CPU, in the Winograd form (ResNet34's 3x3 layers; its last stage's, with
/// few tiles, in the direct form) and on the packed product (ResNet50's 1x1 layers), and the
/// blocks' outputs and the logits are still torchvision's. A requested add still takes its convolution in (its value is the sum); the
/// ReLU after it then runs apart.
#[test]
fn resnet_adds_fold_into_the_cpu_convolution_with_torchvision_values() {
    let device = Device::flex();
    for (name, relu, kernel) in [
        ("resnet34", "relu_1", "cpu-winograd"),
        ("resnet50", "relu_2", "cpu-gemm"),
    ] {
        let fx = value_fixtures(name);
        let first_block = format!("layer1.0.{relu}");
        let requested: Vec<String> = [first_block.as_str(), "layer4.1.add", "fc"]
            .map(String::from)
            .to_vec();
        let extractor = FeatureExtractor::new(
            generated_model(name, &device),
            &ReturnNodes::from(requested.clone()),
        )
        .unwrap();
        let report = extractor.plan_report();
        // Both have 16 blocks.
        assert_eq!(report.fused_adds, 16, "{name}: {:?}", report.kernels);
        for (node, kernel) in [
            // The 7x7 stem (its BatchNorm folded in) on the direct form.
            ("bn1".to_string(), "cpu-direct"),
            ("layer1.0.add".to_string(), kernel),
            (first_block.clone(), "pass-through"),
            ("layer4.1.add".to_string(), kernel),
            (format!("layer4.1.{relu}"), "burn"),
        ] {
            assert!(
                report.ran_on(&node, kernel),
                "{name} {node}: {:?}",
                report.kernels
            );
        }
        let share = check_features(&extractor, &requested, &fx, name, &device);
        assert!(share <= 1.0, "{name}: {share}");
    }
}

/// The transformer blocks' CPU kernels (self attention, MLP, Linear, LayerNorm; a GELU in its
/// Linear layer's epilogue, ConvNeXt's layer scale folded into its weights) run where they
/// apply and give torchvision's values: ViT-B/16's first two encoder layers and ConvNeXt-T's
/// first stage, through their last node there.
#[test]
fn transformer_blocks_run_on_the_cpu_kernels_with_torchvision_values() {
    let device = Device::flex();
    for (name, requested, kernels, scales) in [
        (
            "vit_b_16",
            ["encoder.layers.encoder_layer_1.add_1"],
            &[
                (
                    "encoder.layers.encoder_layer_0.self_attention",
                    "cpu-attention",
                ),
                ("encoder.layers.encoder_layer_1.mlp", "cpu-mlp"),
                ("encoder.layers.encoder_layer_1.ln_1", "cpu-layer-norm"),
                ("encoder.layers.encoder_layer_1.add_1", "cpu-add"),
            ][..],
            0,
        ),
        (
            "convnext_tiny",
            ["features.2.1"],
            &[
                // The stem: its convolution and LayerNorm2d, channels first throughout.
                ("features.0", "cpu-conv-layer-norm"),
                ("features.1.0.block.2", "cpu-layer-norm"),
                ("features.1.0.block.3", "cpu-linear"),
                // Its GELU runs in the Linear layer's epilogue.
                ("features.1.0.block.4", "pass-through"),
                ("features.1.2.block.5", "cpu-linear"),
                // The residual add, reading the permuted Linear output in tiles.
                ("features.1.2.add", "cpu-add"),
                // `LayerNorm2d`'s `F.layer_norm`, its weight and bias read from its inputs.
                ("features.2.0.layer_norm", "cpu-layer-norm"),
            ][..],
            // Each of the stage's three blocks scales its last Linear layer's output.
            3,
        ),
    ] {
        let fx = value_fixtures(name);
        let requested = requested.map(String::from).to_vec();
        let extractor = FeatureExtractor::new(
            generated_model(name, &device),
            &ReturnNodes::from(requested.clone()),
        )
        .unwrap();
        let report = extractor.plan_report();
        assert_eq!(report.folded_scales, scales, "{name}");
        for &(node, kernel) in kernels {
            assert!(
                report.ran_on(node, kernel),
                "{name} {node}: {:?}",
                report.kernels
            );
        }
        let share = check_features(&extractor, &requested, &fx, name, &device);
        assert!(share <= 1.0, "{name}: {share}");
    }
}

/// With a ConvNeXt block's GELU and layer-scale product requested, as in an every-node
/// extraction, neither folds into its Linear layer: the GELU maps the requested Linear output
/// into a new buffer (`cpu-vectorised`), the scale multiplies the permuted Linear output in its
/// own memory order (`cpu-scale`), the add reads that in tiles; values are torchvision's.
#[test]
fn convnext_requested_gelu_and_layer_scale_run_on_their_own_kernels() {
    let device = Device::flex();
    let name = "convnext_tiny";
    let requested: Vec<String> = [
        "features.1.0.block.3",
        "features.1.0.block.4",
        "features.1.0.block.5",
        "features.1.0.mul",
        "features.1.0.add",
    ]
    .map(String::from)
    .to_vec();
    let extractor = FeatureExtractor::new(
        generated_model(name, &device),
        &ReturnNodes::from(requested.clone()),
    )
    .unwrap();
    let report = extractor.plan_report();
    assert_eq!(report.folded_scales, 0);
    for (node, kernel) in [
        ("features.1.0.block.4", "cpu-vectorised"),
        ("features.1.0.mul", "cpu-scale"),
        ("features.1.0.add", "cpu-add"),
    ] {
        assert!(report.ran_on(node, kernel), "{node}: {:?}", report.kernels);
    }
    let share = check_features(&extractor, &requested, &value_fixtures(name), name, &device);
    assert!(share <= 1.0, "{share}");
}

/// A torchvision MaxViT state dict holds an integer `relative_position_index` buffer per
/// attention beside BatchNorm's counters (the integer tensors the fixture lists, with
/// torchvision's dtype): it loads, the buffers ignored (featx computes the index from the
/// window size), and the bias looked up through the index and the last block's output are
/// still torchvision's.
#[test]
fn maxvit_loads_state_dicts_holding_relative_position_index_buffers() {
    let name = "maxvit_t";
    let arch = arch(name);
    let reference = reference(name);
    let dir = tempfile::tempdir().unwrap();
    let floats = support::write_generated_state_dict(
        &arch.expected_keys(),
        dir.path(),
        safetensors::Dtype::F32,
    );
    let bytes = std::fs::read(&floats).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let buffers: Vec<(String, Vec<usize>)> = reference["state_dict"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["dtype"] == "int64")
        .map(|(k, v)| (k.clone(), dims(&v["shape"])))
        .collect();
    // BatchNorm's counters, and an index per attention: two in each of the 2 + 2 + 5 + 2 layers.
    let indices = buffers
        .iter()
        .filter(|(k, _)| k.ends_with("relative_position_index"))
        .count();
    assert_eq!(indices, 22);
    let zeros: Vec<Vec<u8>> = buffers
        .iter()
        .map(|(_, shape)| vec![0; 8 * shape.iter().product::<usize>()])
        .collect();
    let mut views = file.tensors();
    for ((key, shape), data) in buffers.iter().zip(&zeros) {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, shape.clone(), data)
                .unwrap();
        views.push((key.clone(), view));
    }
    let path = dir.path().join("with_buffers.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();

    let device = Device::flex();
    let traced = arch.load(&device, &path).unwrap();
    let requested: Vec<String> = [
        "blocks.0.layers.0.layers.window_attention.attn_layer.1.unsqueeze",
        "blocks.3.layers.1.layers.grid_attention.departition_op.reshape_1",
    ]
    .map(String::from)
    .to_vec();
    let extractor = FeatureExtractor::new(traced, &ReturnNodes::from(requested.clone())).unwrap();
    let share = check_features(&extractor, &requested, &value_fixtures(name), name, &device);
    assert!(share <= 1.0, "{share}");
}
