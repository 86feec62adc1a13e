//! Test support: the deterministic weights and inputs shared with `scripts/make_fixtures.py`,
//! and the torchvision fixtures it wrote.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

use featx::burn::prelude::*;
use featx::burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
use featx::burn::tensor::TensorData;
use serde::Deserialize;

/// `n` values in [-1, 1): splitmix64 over a counter seeded by FNV-1a of `key`, exactly as the
/// fixture script computes them with numpy.
pub fn uniform(key: &str, n: usize) -> Vec<f32> {
    let mut seed: u64 = 0xCBF2_9CE4_8422_2325;
    for b in key.bytes() {
        seed = (seed ^ b as u64).wrapping_mul(0x100_0000_01B3);
    }
    (1..=n as u64)
        .map(|i| {
            let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 * 2f32.powi(-23) - 1.0
        })
        .collect()
}

/// The value the fixtures give the state_dict entry `key` of `shape` (torch layout).
pub fn generated(key: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let u = uniform(key, n);
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let (scale, offset) = match leaf {
        "running_var" => (0.5, 1.0),
        "weight" if shape.len() == 1 => (0.25, 1.0),
        "bias" | "running_mean" | "in_proj_bias" => (0.1, 0.0),
        "weight" | "in_proj_weight" => {
            let fan_in: usize = shape[1..].iter().product();
            ((6.0f64 / fan_in as f64).sqrt() as f32, 0.0)
        }
        _ => (2.0, 0.0),
    };
    u.into_iter()
        .map(|v| {
            if offset == 0.0 {
                v * scale
            } else {
                v * scale + offset
            }
        })
        .collect()
}

/// The generated input batch of `shape` on `device`.
pub fn generated_input(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(generated("input", &shape), shape), device)
}

/// Writes `model`'s generated weights as a torch-layout `.safetensors` file in `dir`.
pub fn write_generated_weights(model: &impl ModuleSnapshot, dir: &Path) -> PathBuf {
    write_generated_weights_as(model, dir, safetensors::Dtype::F32)
}

/// [`write_generated_weights`] with float32 or float64 values.
pub fn write_generated_weights_as(
    model: &impl ModuleSnapshot,
    dir: &Path,
    dtype: safetensors::Dtype,
) -> PathBuf {
    write_generated_state_dict(&featx::weights::expected_keys(model), dir, dtype)
}

/// Writes the generated values of these torch-layout `(key, shape)`s as a `.safetensors` file
/// in `dir`.
pub fn write_generated_state_dict(
    keys: &[(String, Vec<usize>)],
    dir: &Path,
    dtype: safetensors::Dtype,
) -> PathBuf {
    let tensors: Vec<(String, Vec<usize>, Arc<Vec<u8>>)> = keys
        .iter()
        .map(|(key, shape)| {
            let bytes = match dtype {
                safetensors::Dtype::F64 => Arc::new(
                    generated(key, shape)
                        .iter()
                        .flat_map(|v| f64::from(*v).to_le_bytes())
                        .collect(),
                ),
                _ => generated_f32_bytes(key, shape),
            };
            (key.clone(), shape.clone(), bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(k, s, b)| {
            let view = safetensors::tensor::TensorView::new(dtype, s.clone(), b)
                .expect("valid tensor view");
            (k.clone(), view)
        })
        .collect();
    let path = dir.join(format!("generated_{dtype:?}.safetensors"));
    safetensors::serialize_to_file(views, None, &path).expect("write safetensors");
    path
}

/// The generated float32 values of `key` as little-endian bytes. Large tensors are kept for
/// the rest of the process: every VGG has the same 120M-value classifier.
fn generated_f32_bytes(key: &str, shape: &[usize]) -> Arc<Vec<u8>> {
    type Cache = Mutex<HashMap<(String, Vec<usize>), Arc<Vec<u8>>>>;
    static LARGE: OnceLock<Cache> = OnceLock::new();
    let make = || {
        let values = generated(key, shape);
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Arc::new(bytes)
    };
    if shape.iter().product::<usize>() < 1 << 23 {
        return make();
    }
    let cache = LARGE.get_or_init(Cache::default);
    let id = (key.to_string(), shape.to_vec());
    if let Some(bytes) = cache.lock().unwrap().get(&id) {
        return bytes.clone();
    }
    let bytes = make();
    cache.lock().unwrap().insert(id, bytes.clone());
    bytes
}

/// `model` with the generated weights, loaded through the SafeTensors loader.
pub fn with_generated_weights<M: ModuleSnapshot>(model: M) -> M {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_generated_weights(&model, dir.path());
    featx::weights::load_state_dict(model, &path).expect("generated weights load")
}

/// Every parameter of `model` as `(torch key, torch shape, values)`.
pub fn torch_layout_params(model: &impl ModuleSnapshot) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| {
            let (name, _, shape, _, bytes) = t.into_parts().expect("tensor bytes");
            let values = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (name, shape.as_slice().to_vec(), values)
        })
        .collect()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// torch's record of one node: shape, statistics and strided samples.
#[derive(Debug, Deserialize)]
pub struct NodeRecord {
    pub shape: Vec<usize>,
    pub stride: usize,
    pub sum: f64,
    pub mean_sq: f64,
    pub abs_max: f64,
    /// torch's own float32 error on this node: the largest |float32 - float64| over all its
    /// elements, where the fixture records it (the deep mobile nets).
    #[serde(default)]
    pub fp32_error: Option<f64>,
    #[serde(skip)]
    pub samples: Vec<f32>,
}

#[derive(Debug, Deserialize)]
pub struct NodeFixtures {
    pub input_shape: Vec<usize>,
    pub nodes: BTreeMap<String, NodeRecord>,
}

/// Reads `<stem>.json` and `<stem>_nodes.safetensors` (or `<stem>_nodes.json` and
/// `<stem>_nodes.safetensors` for the parity sets).
pub fn node_fixtures(json: &str, samples: &str) -> NodeFixtures {
    let text = std::fs::read_to_string(fixture(json)).expect("fixture json");
    let mut fx: NodeFixtures = serde_json::from_str(&text).expect("fixture json parses");
    fill_samples(&mut fx.nodes, samples);
    fx
}

/// Statistics and samples keyed by name, from a JSON map and a samples file.
pub fn node_fixtures_map(json: &str, samples: &str) -> BTreeMap<String, NodeRecord> {
    let text = std::fs::read_to_string(fixture(json)).expect("fixture json");
    let mut records: BTreeMap<String, NodeRecord> =
        serde_json::from_str(&text).expect("fixture json parses");
    fill_samples(&mut records, samples);
    records
}

pub fn fill_samples(records: &mut BTreeMap<String, NodeRecord>, samples: &str) {
    let bytes = std::fs::read(fixture(samples)).expect("fixture samples");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("fixture samples parse");
    for (name, record) in records.iter_mut() {
        let view = st.tensor(name).expect("samples for every entry");
        record.samples = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
    }
}

/// The parity tolerance: 1e-4 absolute, or 1e-5 of the node's largest magnitude if larger;
/// or, where the fixture records torch's own float32 error against float64 and eight times it
/// is larger, that. Deep nets on generated weights (MobileNet, EfficientNet) grow values into
/// the thousands and clamp them again (ReLU6), so torch's float32 result is itself up to five
/// times the fixed tolerance away from the exact one. Rounding errors compound through the
/// layers in both implementations, each with its own summation order, so two float32 results
/// differ by several times either's distance to the exact one.
pub fn tolerance(record: &NodeRecord) -> f64 {
    let fixed = (1e-5 * record.abs_max).max(1e-4);
    record.fp32_error.map_or(fixed, |e| fixed.max(8.0 * e))
}

/// Compares a node's values with torch's record; returns the largest sampled difference.
pub fn compare(name: &str, shape: &[usize], values: &[f32], record: &NodeRecord) -> f64 {
    assert_eq!(shape, record.shape.as_slice(), "shape of node '{name}'");
    let tol = tolerance(record);
    let mut worst = 0f64;
    for (k, expected) in record.samples.iter().enumerate() {
        let got = values[k * record.stride];
        let diff = (got as f64 - *expected as f64).abs();
        worst = worst.max(diff);
        assert!(
            diff <= tol,
            "node '{name}' element {}: featx {got}, torch {expected} (tolerance {tol})",
            k * record.stride
        );
    }
    let n = values.len() as f64;
    let sum: f64 = values.iter().map(|&v| v as f64).sum();
    let mean_sq: f64 = values.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / n;
    let abs_max = values.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
    assert!(
        (abs_max - record.abs_max).abs() <= tol,
        "node '{name}' max |x|: featx {abs_max}, torch {}",
        record.abs_max
    );
    assert!(
        (sum - record.sum).abs() <= tol * n,
        "node '{name}' sum: featx {sum}, torch {}",
        record.sum
    );
    assert!(
        (mean_sq - record.mean_sq).abs() <= 2.0 * tol * record.abs_max.max(1.0),
        "node '{name}' mean square: featx {mean_sq}, torch {}",
        record.mean_sq
    );
    worst
}

/// Writes `values` of `shape` as a C-ordered `.npy` file of the element type `T`.
pub fn write_npy<T: npyz::AutoSerialize + Clone>(path: &Path, shape: &[u64], values: &[T]) {
    use npyz::WriterBuilder;
    let file = std::fs::File::create(path).expect("create npy");
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .expect("npy header");
    writer.extend(values.iter().cloned()).expect("npy data");
    writer.finish().expect("npy finish");
}

/// Extracts every node of `model` on `device` for the fixture input and compares each with
/// torchvision's record; prints the largest difference.
pub fn check_all_nodes(
    model: &impl featx::models::FeatureModel,
    fixture_stem: &str,
    device: &Device,
) {
    check_nodes(model, fixture_stem, device, |_| true);
}

/// [`check_all_nodes`] for the nodes `keep` accepts; returns the extractor it ran.
pub fn check_nodes(
    model: &impl featx::models::FeatureModel,
    fixture_stem: &str,
    device: &Device,
    keep: impl Fn(&str) -> bool,
) -> featx::FeatureExtractor {
    let fx = node_fixtures(
        &format!("{fixture_stem}_nodes.json"),
        &format!("{fixture_stem}_nodes.safetensors"),
    );
    let (_, all_nodes) = featx::get_graph_node_names(model);
    assert_eq!(all_nodes.len(), fx.nodes.len());
    let eval_nodes: Vec<String> = all_nodes.into_iter().filter(|n| keep(n)).collect();
    let extractor = featx::create_feature_extractor(model, eval_nodes.as_slice()).unwrap();
    check_features(&extractor, &eval_nodes, &fx, fixture_stem, device);
    extractor
}

/// Runs `extractor` (which returns `nodes`) on the fixture's input and compares every node
/// with torchvision's record; prints and returns the largest difference as a share of the
/// tolerance.
pub fn check_features(
    extractor: &featx::FeatureExtractor,
    nodes: &[String],
    fx: &NodeFixtures,
    label: &str,
    device: &Device,
) -> f64 {
    let shape: [usize; 4] = fx.input_shape.clone().try_into().unwrap();
    let features = extractor.forward(generated_input(shape, device)).unwrap();
    assert_eq!(features.keys().collect::<Vec<_>>(), nodes);
    let mut worst = (0f64, String::new());
    let mut closest = (0f64, String::new());
    for (name, feature) in features.iter() {
        let record = &fx.nodes[name];
        let diff = compare(
            name,
            &feature.dims(),
            &feature.to_vec_f32().unwrap(),
            record,
        );
        if diff > worst.0 {
            worst = (diff, name.to_string());
        }
        let share = diff / tolerance(record);
        if share > closest.0 {
            closest = (share, name.to_string());
        }
    }
    eprintln!(
        "{label}: largest difference to torch {:.3e} at '{}'; closest to the tolerance: \
         {:.0}% of it at '{}'",
        worst.0,
        worst.1,
        100.0 * closest.0,
        closest.1
    );
    closest.0
}

/// Runs the `featx` binary with `args` (and no `BURN_DEVICE` from the environment).
pub fn featx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_featx"))
        .args(args)
        .env_remove("BURN_DEVICE")
        .output()
        .expect("featx runs")
}

/// What a run printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A safetensors file's float32 tensors as `(name, shape, values)`, sorted by name.
pub fn read_safetensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32);
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (name, view.shape().to_vec(), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The broken files [`write_image_folder`] adds: a JPEG cut in half, text, an empty file,
/// garbage bytes, a PNG with a corrupted chunk.
pub const CORRUPT_IMAGES: [&str; 5] = [
    "b/truncated.jpg",
    "b/text.png",
    "c/empty.jpg",
    "c/garbage.webp",
    "a/zz-bad-crc.png",
];

/// Writes `good` (at least 2) small PNG/JPEG images of varied sizes into `images/{a,b,c}`,
/// deterministically, plus the broken files of [`CORRUPT_IMAGES`].
pub fn write_image_folder(images: &Path, good: usize) {
    for sub in ["a", "b", "c"] {
        std::fs::create_dir_all(images.join(sub)).unwrap();
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in 0..good {
        let (w, h) = (24 + (next() % 40) as u32, 24 + (next() % 40) as u32);
        let seed = next();
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let v = seed
                .wrapping_add((x * 31 + y * 17) as u64)
                .wrapping_mul(0x2545_f491);
            image::Rgb([(v >> 8) as u8, (v >> 24) as u8, ((x * 255) / w) as u8])
        });
        let sub = ["a", "b", "c"][i % 3];
        let ext = if i % 2 == 0 { "png" } else { "jpg" };
        img.save(images.join(format!("{sub}/img-{i:04}.{ext}")))
            .unwrap();
    }
    let jpeg = std::fs::read(images.join("b/img-0001.jpg")).unwrap();
    std::fs::write(images.join(CORRUPT_IMAGES[0]), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(images.join(CORRUPT_IMAGES[1]), "not a picture").unwrap();
    std::fs::write(images.join(CORRUPT_IMAGES[2]), "").unwrap();
    std::fs::write(images.join(CORRUPT_IMAGES[3]), [0u8, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    let mut png = std::fs::read(images.join("a/img-0000.png")).unwrap();
    let mid = png.len() / 2;
    png[mid..mid + 16].fill(0xAB);
    std::fs::write(images.join(CORRUPT_IMAGES[4]), png).unwrap();
}

/// The Python interpreter with numpy and safetensors: `FEATX_PYTHON`, else `python3`; `None`
/// (the caller skips) without them, unless `FEATX_REQUIRE_PYTHON` is set.
pub fn python() -> Option<String> {
    let python = std::env::var("FEATX_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import numpy, safetensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var_os("FEATX_REQUIRE_PYTHON").is_none(),
        "FEATX_REQUIRE_PYTHON is set but {python} cannot import numpy and safetensors"
    );
    eprintln!("SKIPPED: {python} has no numpy/safetensors (set FEATX_PYTHON)");
    None
}

/// One index.csv line.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub index: usize,
    pub path: String,
    pub status: String,
    pub file: String,
    pub row: Option<usize>,
    pub error: String,
}

/// A dataset run's `index.csv` (the header checked).
pub fn read_index(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("index,path,status,file,row,error"));
    lines
        .map(|l| {
            // Paths here have no commas or quotes; errors may have commas and come quoted last.
            let f: Vec<&str> = l.splitn(6, ',').collect();
            Row {
                index: f[0].parse().unwrap(),
                path: f[1].into(),
                status: f[2].into(),
                file: f[3].into(),
                row: f[4].parse().ok(),
                error: f[5].trim_matches('"').into(),
            }
        })
        .collect()
}

/// Every stored row of a run (each ok image once), by image path: output key -> values.
pub fn features_by_path(out: &Path, index: &[Row]) -> BTreeMap<String, BTreeMap<String, Vec<f32>>> {
    let mut parts = BTreeMap::new();
    let mut by_path = BTreeMap::new();
    for r in index.iter().filter(|r| r.status == "ok") {
        let tensors = parts
            .entry(r.file.clone())
            .or_insert_with(|| read_safetensors(&out.join(&r.file)));
        let row = r.row.unwrap();
        let values = tensors
            .iter()
            .map(|(key, shape, values)| {
                let len: usize = shape[1..].iter().product();
                (key.clone(), values[row * len..(row + 1) * len].to_vec())
            })
            .collect();
        assert!(
            by_path.insert(r.path.clone(), values).is_none(),
            "{} twice",
            r.path
        );
    }
    by_path
}
