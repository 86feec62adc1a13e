//! Preprocessing equals torchvision's PIL pipeline; bad images are typed errors.

use std::path::Path;

use featx::preprocess::{
    DecodeLimits, Filter, Preprocess, PreprocessError, load_rgb, load_rgb_with,
};
use serde_json::Value;

use crate::support;
use crate::support::fixture;

const IMAGES: [&str; 8] = [
    "synthetic_444.jpg",
    "synthetic_420.jpg",
    "synthetic.png",
    "portrait.png",
    "grey.png",
    "rgba.png",
    "chelsea.jpg",
    "large.jpg",
];

#[test]
fn crops_and_tensors_match_pil_and_torchvision() {
    let fx = support::node_fixtures_map("preprocess.json", "preprocess.safetensors");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("preprocess.json")).unwrap())
            .unwrap();
    let pre = Preprocess::imagenet();
    for name in IMAGES {
        let image = load_rgb(&fixture(&format!("images/{name}"))).unwrap();
        let resized = pre.resized_size(image.width(), image.height());
        let expected_size = &meta[name]["resized_size_wh"];
        assert_eq!(
            [resized.0 as u64, resized.1 as u64],
            [
                expected_size[0].as_u64().unwrap(),
                expected_size[1].as_u64().unwrap()
            ],
            "{name}: resized size"
        );
        let input = pre.apply(&image).unwrap();
        let (crop, values) = (&input.image, &input.values);
        assert_eq!(
            input.size,
            [crop.height() as usize, crop.width() as usize],
            "{name}"
        );
        let pil = image::open(fixture(&format!(
            "images/{}_crop.png",
            name.replace('.', "_")
        )))
        .unwrap()
        .to_rgb8();
        assert_eq!(crop.dimensions(), pil.dimensions(), "{name}");
        let worst_level = crop
            .as_raw()
            .iter()
            .zip(pil.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(
            worst_level <= 1,
            "{name}: 8-bit crop differs from PIL by {worst_level} levels"
        );
        let record = &fx[name];
        let mut worst = 0f32;
        for (k, expected) in record.samples.iter().enumerate() {
            worst = worst.max((values[k * record.stride] - expected).abs());
        }
        assert!(worst <= 0.02, "{name}: tensor differs by {worst}");
        eprintln!("{name}: max 8-bit difference {worst_level}, max tensor difference {worst:.4}");
    }
}

/// PIL's bicubic `Resize(n) -> CenterCrop(c)` at EfficientNet's published sizes
/// (`zoo/bicubic`, made by `scripts/make_zoo_fixtures.py bicubic`): downscaling
/// (antialiased) and upscaling.
#[test]
fn bicubic_crops_match_pil() {
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("zoo/bicubic/cases.json")).unwrap())
            .unwrap();
    for case in cases.as_array().unwrap() {
        let name = case["image"].as_str().unwrap();
        let resize = case["resize"].as_u64().unwrap() as u32;
        let crop = case["crop"].as_u64().unwrap() as u32;
        let pre = Preprocess {
            resize: Some(resize),
            crop: Some(crop),
            filter: Filter::Bicubic,
            ..Preprocess::imagenet()
        };
        let image = load_rgb(&fixture(&format!("images/{name}"))).unwrap();
        let (w, h) = pre.resized_size(image.width(), image.height());
        let size = &case["resized_size_wh"];
        assert_eq!(
            [u64::from(w), u64::from(h)],
            [size[0].as_u64().unwrap(), size[1].as_u64().unwrap()],
            "{name} at {resize}"
        );
        let ours = pre.geometry(&image).unwrap();
        let file = case["crop_file"].as_str().unwrap();
        let pil = image::open(fixture(&format!("zoo/bicubic/{file}")))
            .unwrap()
            .to_rgb8();
        assert_eq!(ours.dimensions(), pil.dimensions(), "{file}");
        let worst = ours
            .as_raw()
            .iter()
            .zip(pil.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 1, "{file}: differs from PIL by {worst} levels");
        eprintln!("{file}: max 8-bit difference {worst}");
    }
}

#[test]
fn grey_rgba_and_16_bit_images_become_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.png");
    let deep = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(40, 30, |x, _| {
        image::Rgb([65535, (x * 1000) as u16, 257])
    });
    deep.save(&path).unwrap();
    let rgb = load_rgb(&path).unwrap();
    assert_eq!(rgb.dimensions(), (40, 30));
    assert_eq!(
        rgb.get_pixel(0, 0).0,
        [255, 0, 1],
        "16-bit samples scale to 8 bits"
    );
    let grey = load_rgb(&fixture("images/grey.png")).unwrap();
    assert!(grey.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
}

#[test]
fn webp_and_bmp_decode() {
    let dir = tempfile::tempdir().unwrap();
    let src = load_rgb(&fixture("images/synthetic.png")).unwrap();
    for ext in ["bmp", "webp"] {
        let path = dir.path().join(format!("x.{ext}"));
        image::DynamicImage::ImageRgb8(src.clone())
            .save(&path)
            .unwrap();
        let back = load_rgb(&path).unwrap();
        assert_eq!(back.dimensions(), src.dimensions(), "{ext}");
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn truncated_foreign_missing_and_huge_images_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = std::fs::read(fixture("images/chelsea.jpg")).unwrap();
    let truncated = write(dir.path(), "cut.jpg", &jpeg[..jpeg.len() / 3]);
    assert!(matches!(
        load_rgb(&truncated),
        Err(PreprocessError::Decode { .. })
    ));
    let text = write(dir.path(), "notes.jpg", b"this is not an image");
    let err = load_rgb(&text).unwrap_err();
    assert!(matches!(err, PreprocessError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("notes.jpg"));
    assert!(matches!(
        load_rgb(&dir.path().join("missing.png")),
        Err(PreprocessError::Io { .. })
    ));
    let limits = DecodeLimits {
        max_pixels: 10_000,
        ..DecodeLimits::default()
    };
    match load_rgb_with(&fixture("images/chelsea.jpg"), limits) {
        Err(PreprocessError::TooLarge { width, height, .. }) => {
            assert_eq!((width, height), (451, 300))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn images_smaller_than_the_crop_are_rejected() {
    let small = image::RgbImage::new(100, 80);
    let pre = Preprocess {
        resize: None,
        ..Preprocess::imagenet()
    };
    match pre.apply(&small) {
        Err(PreprocessError::TooSmall {
            width,
            height,
            crop,
        }) => {
            assert_eq!((width, height, crop), (100, 80, 224))
        }
        other => panic!("{other:?}"),
    }
    // With the default Resize(256) the same image is upscaled and cropped.
    assert_eq!(
        Preprocess::imagenet()
            .apply(&small)
            .unwrap()
            .image
            .dimensions(),
        (224, 224)
    );
}

#[test]
fn crop_offsets_round_half_to_even() {
    // 341 wide: (341 - 224) / 2 = 58.5 rounds to 58, as Python's round does.
    let mut image = image::RgbImage::new(341, 256);
    for (x, _, p) in image.enumerate_pixels_mut() {
        *p = image::Rgb([(x % 256) as u8, 0, 0]);
    }
    let pre = Preprocess {
        resize: None,
        ..Preprocess::imagenet()
    };
    let crop = pre.geometry(&image).unwrap();
    assert_eq!(crop.get_pixel(0, 0).0[0], 58);
}
