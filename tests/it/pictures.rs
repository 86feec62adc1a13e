//! Pictures, checked the way a person would look at them: decode the PNG and look at where
//! things are and what colours they have.

use std::path::Path;
use std::process::Command;

use featx::burn::prelude::*;
use featx::models::ResNetConfig;
use featx::preprocess::{Preprocess, batch_tensor};
use featx::viz::{Channels, FeatureMap, Figure, Rect, Reduce, bars, grid, heatmap, overlay};
use featx::{Feature, create_feature_extractor};
use image::{Rgb, RgbImage};

const VIRIDIS_LOW: [u8; 3] = [68, 1, 84];
const VIRIDIS_HIGH: [u8; 3] = [254, 232, 37];

/// A mid-grey image (normalises to about zero) with a white square at x 140..180, y 30..70.
fn hot_spot_image() -> RgbImage {
    RgbImage::from_fn(224, 224, |x, y| {
        if (140..180).contains(&x) && (30..70).contains(&y) {
            Rgb([255, 255, 255])
        } else {
            Rgb([124, 116, 104])
        }
    })
}

fn saved_and_decoded(figure: &Figure, dir: &Path, name: &str) -> RgbImage {
    let path = dir.join(name);
    figure.save_png(&path).unwrap();
    let decoded = image::open(&path).unwrap().to_rgb8();
    assert_eq!(decoded.dimensions(), figure.image.dimensions());
    decoded
}

fn close(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

/// The pixel of `rect` closest to viridis' top colour, as a fraction of the rect's size.
fn hottest(image: &RgbImage, rect: Rect) -> (f32, f32, [u8; 3]) {
    let mut best = (u32::MAX, 0, 0, [0u8; 3]);
    for y in rect.y..rect.y + rect.height {
        for x in rect.x..rect.x + rect.width {
            let p = image.get_pixel(x, y).0;
            let d: u32 = p
                .iter()
                .zip(VIRIDIS_HIGH)
                .map(|(a, b)| u32::from(a.abs_diff(b)))
                .sum();
            if d < best.0 {
                best = (d, x, y, p);
            }
        }
    }
    (
        (best.1 - rect.x) as f32 / rect.width as f32,
        (best.2 - rect.y) as f32 / rect.height as f32,
        best.3,
    )
}

fn layer1_of_hot_spot() -> (Vec<f32>, Vec<usize>, RgbImage) {
    let device = Device::flex();
    device.seed(7);
    let model = ResNetConfig::resnet18(1000).init(&device);
    let extractor = create_feature_extractor(&model, ["layer1"]).unwrap();
    let pre = Preprocess::imagenet();
    let input = pre.apply(&hot_spot_image()).unwrap();
    assert_eq!(input.size, [224, 224]);
    let x = batch_tensor(std::slice::from_ref(&input), &device).unwrap();
    let out = extractor.forward(x).unwrap();
    let feature: &Feature = out.get("layer1").unwrap();
    (feature.to_vec_f32().unwrap(), feature.dims(), input.image)
}

#[test]
fn heatmap_is_brightest_where_the_input_is_hot_and_the_bar_spans_min_to_max() {
    let dir = tempfile::tempdir().unwrap();
    let (values, shape, _) = layer1_of_hot_spot();
    let map = FeatureMap::sample(&values, &shape, 0).unwrap();
    let figure = heatmap(&map, Reduce::Sum, "layer1").unwrap();
    let png = saved_and_decoded(&figure, dir.path(), "heat.png");
    let panel = figure.panels[0];
    let (fx, fy, color) = hottest(&png, panel);
    // The white square spans x 0.625..0.80, y 0.13..0.31 of the input; allow the receptive
    // field's spread of a few feature cells.
    assert!(
        (0.55..0.87).contains(&fx) && (0.06..0.38).contains(&fy),
        "hottest at {fx}, {fy}"
    );
    // The map reaches both ends of the colour scale.
    assert!(close(color, VIRIDIS_HIGH, 12), "hottest colour {color:?}");
    let has_low = (panel.y..panel.y + panel.height)
        .flat_map(|y| (panel.x..panel.x + panel.width).map(move |x| (x, y)))
        .any(|(x, y)| close(png.get_pixel(x, y).0, VIRIDIS_LOW, 12));
    assert!(
        has_low,
        "the map's minimum is drawn in the bar's bottom colour"
    );
    // The colour bar runs from the bottom colour (min) to the top colour (max).
    let bar = figure.colorbar.unwrap();
    let mid = bar.x + bar.width / 2;
    assert!(close(png.get_pixel(mid, bar.y + 1).0, VIRIDIS_HIGH, 12));
    assert!(close(
        png.get_pixel(mid, bar.y + bar.height - 2).0,
        VIRIDIS_LOW,
        12
    ));
}

#[test]
fn overlay_blends_the_upsampled_map_over_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let (values, shape, crop) = layer1_of_hot_spot();
    let map = FeatureMap::sample(&values, &shape, 0).unwrap();
    // alpha 0 shows the input itself, scaled into the panel.
    let plain = overlay(&map, Reduce::Sum, &crop, 0.0, "layer1").unwrap();
    let png = saved_and_decoded(&plain, dir.path(), "plain.png");
    let p = plain.panels[0];
    let inside = png
        .get_pixel(p.x + p.width * 160 / 224, p.y + p.height * 50 / 224)
        .0;
    let outside = png
        .get_pixel(p.x + p.width * 40 / 224, p.y + p.height * 180 / 224)
        .0;
    assert_eq!(inside, [255, 255, 255]);
    assert_eq!(outside, [124, 116, 104]);
    // alpha 1 shows the heatmap, hottest around the square.
    let heat = overlay(&map, Reduce::Sum, &crop, 1.0, "layer1").unwrap();
    let png = saved_and_decoded(&heat, dir.path(), "heat.png");
    let (fx, fy, _) = hottest(&png, heat.panels[0]);
    assert!(
        (0.55..0.87).contains(&fx) && (0.06..0.38).contains(&fy),
        "hottest at {fx}, {fy}"
    );
}

#[test]
fn grid_has_one_tile_per_requested_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (values, shape, _) = layer1_of_hot_spot();
    let map = FeatureMap::sample(&values, &shape, 0).unwrap();
    for (channels, count) in [
        (Channels::First(9), 9),
        (Channels::Top(5), 5),
        (Channels::First(100), 64),
    ] {
        let figure = grid(&map, channels, "layer1").unwrap();
        let png = saved_and_decoded(&figure, dir.path(), "grid.png");
        assert_eq!(figure.panels.len(), count);
        for (i, tile) in figure.panels.iter().enumerate() {
            // Each tile is filled with viridis colours, never the white background.
            let centre = png
                .get_pixel(tile.x + tile.width / 2, tile.y + tile.height / 2)
                .0;
            assert_ne!(centre, [255, 255, 255], "tile {i}");
            // Tiles do not overlap.
            for other in &figure.panels[i + 1..] {
                let apart = tile.x + tile.width <= other.x
                    || other.x + other.width <= tile.x
                    || tile.y + tile.height <= other.y
                    || other.y + other.height <= tile.y;
                assert!(apart, "tiles {tile:?} and {other:?} overlap");
            }
        }
    }
    let top = Channels::Top(3).select(&map);
    let mean = |c: usize| map.channel(c).iter().sum::<f32>();
    assert!(mean(top[0]) >= mean(top[1]) && mean(top[1]) >= mean(top[2]));
    assert!((0..64).all(|c| mean(c) <= mean(top[0])));
}

#[test]
fn bars_show_the_top_k_values_largest_first() {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f32> = (0..100).map(|i| ((i * 37) % 100) as f32 / 10.0).collect();
    let figure = bars(&values, 5, "fc", &[1, 100]).unwrap();
    let png = saved_and_decoded(&figure, dir.path(), "bars.png");
    let panel = figure.panels[0];
    // Walk a row just above the zero line: it crosses exactly 5 bars.
    let y = panel.y + panel.height * 80 / 100;
    let mut runs = 0;
    let mut inside = false;
    for x in panel.x..panel.x + panel.width {
        let bar = close(png.get_pixel(x, y).0, [59, 82, 139], 20);
        if bar && !inside {
            runs += 1;
        }
        inside = bar;
    }
    assert_eq!(runs, 5);
    // The first bar is the tallest: its top is the highest bar pixel.
    let top_of = |x: u32| {
        (panel.y..panel.y + panel.height)
            .find(|&y| close(png.get_pixel(x, y).0, [59, 82, 139], 20))
            .unwrap_or(u32::MAX)
    };
    let columns: Vec<u32> = (panel.x..panel.x + panel.width)
        .filter(|&x| top_of(x) != u32::MAX)
        .collect();
    let first = top_of(columns[0]);
    let last = top_of(*columns.last().unwrap());
    assert!(
        first < last,
        "largest bar first ({first}) and smallest last ({last})"
    );
}

#[test]
fn viz_command_writes_one_png_per_node() {
    let dir = tempfile::tempdir().unwrap();
    let image_path = dir.path().join("hot.png");
    hot_spot_image().save(&image_path).unwrap();
    let out = dir.path().join("pic.png");
    let status = Command::new(env!("CARGO_BIN_EXE_featx"))
        .args([
            "viz",
            "--model",
            "resnet18",
            "--weights",
            "random",
            "--image",
        ])
        .arg(&image_path)
        .args(["--node", "layer1,fc", "--out"])
        .arg(&out)
        .env_remove("BURN_DEVICE")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let heat = image::open(dir.path().join("pic_layer1.png")).unwrap();
    let bar = image::open(dir.path().join("pic_fc.png")).unwrap();
    assert!(heat.width() > 500 && heat.height() > 500);
    assert!(bar.width() >= 560);
    // A vector asked for as a heatmap is drawn as bars by `auto`, and an unreadable image is
    // an input error.
    let bad = dir.path().join("bad.jpg");
    std::fs::write(&bad, b"nope").unwrap();
    let failed = Command::new(env!("CARGO_BIN_EXE_featx"))
        .args([
            "viz",
            "--model",
            "resnet18",
            "--weights",
            "random",
            "--image",
        ])
        .arg(&bad)
        .args(["--node", "layer1", "--out"])
        .arg(dir.path().join("x.png"))
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("bad.jpg"));
}
