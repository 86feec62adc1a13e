//! ViT checkpoints at another input size: the positional embedding interpolated on load as
//! torchvision's `interpolate_embeddings` does (`zoo/vit_interpolate/`, made by
//! `scripts/make_zoo_fixtures.py vit_interpolate`), its typed errors, and `--input-size`.

use featx::burn::prelude::*;
use featx::create_feature_extractor;
use featx::weights::WeightsError;

use crate::support;
use crate::support::fixture;

/// The small torchvision `VisionTransformer` of `zoo/vit_interpolate/` (8x8 patches, 2 layers
/// of width 16, 10 classes), built for `image_size` inputs.
fn tiny_vit(image_size: usize) -> featx::models::VitConfig {
    featx::models::VitConfig {
        name: "vit_tiny".into(),
        image_size,
        patch_size: 8,
        num_layers: 2,
        num_heads: 2,
        hidden_dim: 16,
        mlp_dim: 32,
        num_classes: 10,
    }
}

/// The largest absolute difference between two equally long slices.
fn worst(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max)
}

/// A ViT checkpoint made for 32x32 inputs loads into the model built for 48x48 with its
/// positional embedding interpolated as torchvision's `interpolate_embeddings(48, 8, sd)`
/// does: the embedding and the logits of torchvision's 48x48 model equal featx's.
#[test]
fn a_vit_checkpoint_loads_at_another_size_as_torchvision_interpolates_it() {
    use featx::weights::{WeightsFile, expected_keys};

    let device = Device::flex();
    let path = fixture("zoo/vit_interpolate/vit_tiny_32.safetensors");
    let want =
        support::read_safetensors(&fixture("zoo/vit_interpolate/interpolated_48.safetensors"));
    let (want_logits, want_pos, want_exact) = (&want[0], &want[1], &want[2]);
    assert_eq!(
        [&want_logits.0, &want_pos.0, &want_exact.0],
        ["logits", "pos_embedding", "pos_embedding_f64"]
    );

    let model = tiny_vit(48).init(&device);
    let keys: Vec<String> = expected_keys(&model).into_iter().map(|(k, _)| k).collect();
    let mut file = WeightsFile::open(&path, &keys).unwrap();
    // As it is, the 32x32 file does not fit the 48x48 model.
    let report = file.fit(&model);
    assert_eq!(report.mismatched.len(), 1, "{report:?}");
    assert_eq!(report.mismatched[0].key, "encoder.pos_embedding");
    let grid = featx::models::vit::grid(8);
    assert!(file.interpolate_positions(grid, 48).unwrap());
    // Once interpolated, a second call has nothing left to do.
    assert!(!file.interpolate_positions(grid, 48).unwrap());
    let model = file.load_into(model).unwrap();

    let params = support::torch_layout_params(&model);
    let (_, shape, pos) = params
        .iter()
        .find(|(k, _, _)| k == "encoder.pos_embedding")
        .unwrap();
    assert_eq!(shape, &want_pos.1);
    assert_eq!(shape, &[1, 37, 16]);
    // torchvision's interpolation run in float64 (rounded to float32): featx's, computed in
    // float64, is that to the rounding.
    let exact_diff = worst(pos, &want_exact.2);
    assert!(
        exact_diff <= 1e-6,
        "pos_embedding differs from torchvision's (float64) by {exact_diff}"
    );
    // torchvision's on the float32 file, as it loads it: torch's float32 kernel rounds on
    // the way (about 1e-6 of the values' magnitude, here up to 2).
    let scale = want_pos.2.iter().fold(0f32, |m, v| m.max(v.abs()));
    let pos_diff = worst(pos, &want_pos.2);
    assert!(
        pos_diff <= 1e-6 * scale,
        "pos_embedding differs from torchvision's by {pos_diff} (values up to {scale})"
    );
    eprintln!("pos_embedding: {exact_diff} from float64, {pos_diff} from float32 torchvision");

    let x = Tensor::<4>::from_data(
        TensorData::new(
            support::generated("vit_interpolate_input", &[2, 3, 48, 48]),
            [2, 3, 48, 48],
        ),
        &device,
    );
    let out = create_feature_extractor(&model, ["heads.head"])
        .unwrap()
        .forward(x)
        .unwrap();
    let logits = out.get("heads.head").unwrap();
    assert_eq!(logits.dims(), want_logits.1);
    let logit_diff = worst(&logits.to_vec_f32().unwrap(), &want_logits.2);
    assert!(
        logit_diff <= 1e-4,
        "logits differ from torchvision's by {logit_diff}"
    );
    eprintln!("logits: {logit_diff} from torchvision");
}

/// An input size that is no multiple of the patch size is a typed error naming the file, the
/// embedding and both sizes, from the file and from the registry's loader alike; nothing panics.
#[test]
fn a_vit_size_that_is_no_multiple_of_the_patch_is_a_typed_error() {
    use featx::weights::{GridError, WeightsFile};

    let path = fixture("zoo/vit_interpolate/vit_tiny_32.safetensors");
    let mut file = WeightsFile::open(&path, &[]).unwrap();
    let err = file
        .interpolate_positions(featx::models::vit::grid(8), 50)
        .unwrap_err();
    match &err {
        WeightsError::Interpolation {
            key,
            image_size,
            source,
            ..
        } => {
            assert_eq!(key, "encoder.pos_embedding");
            assert_eq!(*image_size, 50);
            assert_eq!(
                source,
                &GridError::NotAMultiple {
                    image_size: 50,
                    patch: 8
                }
            );
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("vit_tiny_32.safetensors") && text.contains("50x50"),
        "{text}"
    );
    // Through a zoo ViT: the size is checked before the model is built.
    let arch = featx::models::find("vit_b_32").unwrap();
    let args = featx::models::BuildArgs {
        num_classes: None,
        image_size: Some(48),
    };
    match arch.load_with(&Device::flex(), &path, args) {
        Err(WeightsError::Interpolation { source, .. }) => assert_eq!(
            source,
            GridError::NotAMultiple {
                image_size: 48,
                patch: 32
            }
        ),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a 48x48 vit_b_32 loaded"),
    }
}

/// `--input-size` builds a zoo ViT for that input: a 64x64 image runs through vit_b_32 built
/// for it, and is refused by the 224x224 model built without the flag; a model that takes any
/// size, or a non-square size for a ViT, is a usage error.
#[test]
fn the_cli_builds_a_vit_for_the_image_size_asked() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.npy");
    support::write_npy(
        &input,
        &[1, 3, 64, 64],
        &support::generated("input", &[1, 3, 64, 64]),
    );
    let out_path = dir.path().join("logits.safetensors");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "extract",
            "--model",
            "vit_b_32",
            "--weights",
            "random",
            "--input",
            input.to_str().unwrap(),
            "--nodes",
            "heads.head=logits",
            "--out",
            out_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        support::featx(&args)
    };
    let out = run(&["--input-size", "64"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert_eq!(support::read_safetensors(&out_path)[0].1, [1, 1000]);
    std::fs::remove_file(&out_path).unwrap();
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(!out_path.exists());
    let out = run(&["--input-size", "64x96"]);
    assert_eq!(out.status.code(), Some(2), "{}", support::stderr(&out));
    assert!(support::stderr(&out).contains("takes square inputs"));
    let out = support::featx(&[
        "extract",
        "--model",
        "resnet18",
        "--weights",
        "random",
        "--input-size",
        "64",
        "--input",
        input.to_str().unwrap(),
        "--nodes",
        "fc",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", support::stderr(&out));
    assert!(support::stderr(&out).contains("takes any input size"));
    assert!(!out_path.exists());
}
