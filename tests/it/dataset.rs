//! `featx extract` over datasets: folders, globs and lists; batches and parts; the index;
//! resuming; shards; pooling; and a real Python client reading the output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use featx::burn::prelude::Device;
use featx::models::ResNetConfig;
use serde_json::Value;

use crate::support::{
    CORRUPT_IMAGES, Row, features_by_path, featx, python, read_index, read_safetensors, stderr,
    write_generated_weights, write_image_folder,
};

/// Small inputs keep the runs quick: ResNet18 works at 32x32 (layer4 is 1x1 there).
const PRE: [&str; 4] = ["--resize", "32", "--crop", "32"];
const GOOD: usize = 240;
const CORRUPT: [&str; 5] = CORRUPT_IMAGES;

/// A generated dataset: `GOOD` small PNG/JPEG images of varied sizes in three folders, plus
/// the corrupt files of `CORRUPT`, and ResNet18 weights.
struct Dataset {
    dir: tempfile::TempDir,
    weights: PathBuf,
}

impl Dataset {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_image_folder(&dir.path().join("images"), GOOD);
        let weights = write_generated_weights(
            &ResNetConfig::resnet18(1000).init(&Device::flex()),
            dir.path(),
        );
        Dataset { dir, weights }
    }

    fn images(&self) -> PathBuf {
        self.dir.path().join("images")
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `featx extract` of `input` into `out` with the dataset's weights, small inputs, and `extra`.
    fn args(&self, input: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
        self.args_sized(&PRE, input, out, extra)
    }

    /// [`Dataset::args`] with preprocessing flags `pre` instead of [`PRE`].
    fn args_sized(&self, pre: &[&str], input: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "extract",
            "--model",
            "resnet18",
            "--weights",
            self.weights.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(pre.iter().chain(extra).map(|s| s.to_string()));
        args
    }

    fn extract(&self, input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
        self.extract_sized(&PRE, input, out, extra)
    }

    fn extract_sized(
        &self,
        pre: &[&str],
        input: &Path,
        out: &Path,
        extra: &[&str],
    ) -> std::process::Output {
        let args = self.args_sized(pre, input, out, extra);
        featx(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// The run was refused as bad usage or input (exit 2), saying `needle`.
fn assert_usage_error(out: &std::process::Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    assert!(stderr(out).contains(needle), "{}", stderr(out));
}

fn summary(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * (1.0 + x.abs().max(y.abs())),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

#[test]
fn a_folder_run_stores_every_good_image_once_in_order_and_reports_the_bad_ones() {
    let data = Dataset::new();
    let out = data.out("run");
    let result = data.extract(
        &data.images(),
        &out,
        &[
            "--nodes",
            "layer3,fc=logits",
            "--pool",
            "avg",
            "--batch-size",
            "8",
            "--part-size",
            "64",
        ],
    );
    assert_eq!(result.status.code(), Some(3), "{}", stderr(&result));
    assert!(
        stderr(&result).contains("5 of 245 images could not be used"),
        "{}",
        stderr(&result)
    );

    let index = read_index(&out.join("index.csv"));
    let mut listed: Vec<String> = walk(&data.images());
    listed.sort();
    let paths: Vec<&str> = index.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths, listed,
        "the index lists every file once, in sorted path order"
    );
    assert!(index.iter().enumerate().all(|(i, r)| r.index == i));
    let failed: Vec<&Row> = index.iter().filter(|r| r.status == "failed").collect();
    assert_eq!(failed.len(), CORRUPT.len());
    for r in &failed {
        assert!(
            CORRUPT.iter().any(|c| r.path.ends_with(c)),
            "{} failed",
            r.path
        );
        assert!(!r.error.is_empty() && r.file.is_empty() && r.row.is_none());
    }

    // Parts of 64 images: rows are numbered within each part, in index order.
    let files: Vec<&str> = index
        .iter()
        .filter(|r| r.status == "ok")
        .map(|r| r.file.as_str())
        .collect();
    assert_eq!(files[0], "part-00000.safetensors");
    assert_eq!(*files.last().unwrap(), "part-00003.safetensors");
    let part1: Vec<usize> = index[64..128].iter().filter_map(|r| r.row).collect();
    assert_eq!(part1, (0..part1.len()).collect::<Vec<_>>());
    let tensors = read_safetensors(&out.join("part-00001.safetensors"));
    assert_eq!(tensors[0].0, "layer3");
    assert_eq!(tensors[0].1, [part1.len(), 256]);
    assert_eq!(tensors[1].1, [part1.len(), 1000]);

    let s = summary(&out.join("summary.json"));
    assert_eq!(
        (s["images"].as_u64(), s["ok"].as_u64(), s["failed"].as_u64()),
        (Some(245), Some(240), Some(5))
    );
    assert_eq!(s["outputs"][0]["shape"], serde_json::json!([240, 256]));
    assert_eq!(s["outputs"][0]["node"], "layer3.1.relu_1");
    // Where the time went: three parts within the run's time, the largest named as its limit
    // and reported on stderr.
    let t = &s["timing"];
    let parts = ["waiting_for_images_s", "model_s", "writing_s"].map(|k| t[k].as_f64().unwrap());
    assert!(parts.iter().all(|&p| p >= 0.0), "{t}");
    assert!(
        parts.iter().sum::<f64>() <= s["elapsed_s"].as_f64().unwrap(),
        "{t}"
    );
    assert!(parts[1] > 0.0, "the model ran: {t}");
    let largest = ["decoding", "model", "writing"][parts
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0];
    assert_eq!(t["limit"], largest, "{t}");
    assert!(
        stderr(&result).contains(&format!("the limit is {largest}")),
        "{}",
        stderr(&result)
    );
    let features = features_by_path(&out, &index);
    let all_layer3: Vec<f32> = features
        .values()
        .flat_map(|f| f["layer3"].clone())
        .collect();
    let mean = all_layer3.iter().map(|&v| v as f64).sum::<f64>() / all_layer3.len() as f64;
    assert!((s["outputs"][0]["mean"].as_f64().unwrap() - mean).abs() < 1e-6 * (1.0 + mean.abs()));
    let min = all_layer3.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    assert_eq!(s["outputs"][0]["min"].as_f64(), Some(min));

    // Each row equals a one-image extraction of the same file.
    for r in index.iter().filter(|r| r.status == "ok").step_by(47) {
        let one = data.out(&format!("one-{}.safetensors", r.index));
        let single = data.extract(
            Path::new(&r.path),
            &one,
            &["--nodes", "layer3,fc=logits", "--pool", "avg"],
        );
        assert!(single.status.success(), "{}", stderr(&single));
        for (key, shape, values) in read_safetensors(&one) {
            assert_eq!(shape[0], 1);
            close(
                &features[&r.path][&key],
                &values,
                &format!("{} {key}", r.path),
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.to_str().unwrap().to_string());
        }
    }
    found
}

#[test]
fn average_pooling_of_layer4_is_resnets_own_avgpool() {
    let data = Dataset::new();
    let one = data.out("pooled.safetensors");
    let image = data.images().join("a/img-0006.png");
    let pre = ["--resize", "64", "--crop", "64"];
    let out = data.extract_sized(
        &pre,
        &image,
        &one,
        &["--nodes", "layer4,flatten", "--pool", "avg"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let t = read_safetensors(&one);
    assert_eq!(
        (t[0].0.as_str(), t[0].1.as_slice()),
        ("flatten", &[1, 512][..])
    );
    assert_eq!(
        (t[1].0.as_str(), t[1].1.as_slice()),
        ("layer4", &[1, 512][..])
    );
    close(&t[1].2, &t[0].2, "avg-pooled layer4 vs flatten");
    let max = data.out("max.safetensors");
    let out = data.extract_sized(&pre, &image, &max, &["--nodes", "layer4", "--pool", "max"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pooled = &read_safetensors(&max)[0].2;
    assert!(
        pooled.iter().zip(&t[1].2).all(|(m, a)| m >= a),
        "max >= mean per channel"
    );
}

#[test]
fn an_interrupted_run_resumes_to_the_same_output() {
    let data = Dataset::new();
    let flags = [
        "--nodes",
        "layer2,avgpool",
        "--batch-size",
        "4",
        "--part-size",
        "16",
        "--quiet",
    ];
    let whole = data.out("whole");
    assert_eq!(
        data.extract(&data.images(), &whole, &flags).status.code(),
        Some(3)
    );

    // Kill a run once two parts are committed, then run it again.
    let resumed = data.out("resumed");
    let args = data.args(&data.images(), &resumed, &flags);
    let mut child = Command::new(env!("CARGO_BIN_EXE_featx"))
        .args(&args)
        .env_remove("BURN_DEVICE")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !resumed.join("part-00001.json").exists() && started.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // A leftover of a write in progress, and a part whose manifest was lost, are both redone.
    std::fs::write(resumed.join(".featx-tmp-leftover"), "half a part").unwrap();
    std::fs::remove_file(resumed.join("part-00000.json")).unwrap();
    let again = data.extract(&data.images(), &resumed, &flags);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(!resumed.join(".featx-tmp-leftover").exists());
    let s = summary(&resumed.join("summary.json"));
    assert!(s["resumed_parts"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["parts"], 16);
    assert!(s["processed"].as_u64().unwrap() < 245, "{s}");

    let (a, b) = (
        read_index(&whole.join("index.csv")),
        read_index(&resumed.join("index.csv")),
    );
    assert_eq!(a, b);
    assert_eq!(features_by_path(&whole, &a), features_by_path(&resumed, &b));
    let mut names: Vec<String> = std::fs::read_dir(&resumed)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        16 * 2 + 2,
        "parts, manifests, index, summary only: {names:?}"
    );

    // Resuming with other settings is refused and changes nothing.
    let before = std::fs::read(resumed.join("part-00003.safetensors")).unwrap();
    let other = data.extract(
        &data.images(),
        &resumed,
        &["--nodes", "layer3", "--part-size", "16"],
    );
    assert_usage_error(&other, "different run");
    assert_eq!(
        std::fs::read(resumed.join("part-00003.safetensors")).unwrap(),
        before
    );
}

#[test]
fn shards_together_equal_the_unsharded_run() {
    let data = Dataset::new();
    let list = data.out("list.txt");
    let mut names: Vec<String> = walk(&data.images());
    names.sort();
    names.reverse(); // a list keeps its own order
    std::fs::write(&list, names.join("\n")).unwrap();
    let flags = [
        "--nodes",
        "layer4",
        "--pool",
        "max",
        "--batch-size",
        "16",
        "--quiet",
    ];
    let whole = data.out("whole");
    assert_eq!(data.extract(&list, &whole, &flags).status.code(), Some(3));
    let shared = data.out("shards");
    let mut joined = Vec::new();
    for i in 0..3 {
        let shard = format!("{i}/3");
        let mut f = flags.to_vec();
        f.extend(["--shard", shard.as_str()]);
        let out = data.extract(&list, &shared, &f);
        assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
        joined.extend(read_index(
            &shared.join(format!("shard-{i}-of-3.index.csv")),
        ));
    }
    let unsharded = read_index(&whole.join("index.csv"));
    let strip = |rows: &[Row]| -> Vec<(usize, String, String)> {
        rows.iter()
            .map(|r| (r.index, r.path.clone(), r.status.clone()))
            .collect()
    };
    assert_eq!(strip(&joined), strip(&unsharded));
    assert_eq!(unsharded[0].path, names[0]);
    let mut by_path = BTreeMap::new();
    for i in 0..3 {
        let index = read_index(&shared.join(format!("shard-{i}-of-3.index.csv")));
        by_path.extend(features_by_path(&shared, &index));
    }
    let expected = features_by_path(&whole, &unsharded);
    assert_eq!(by_path.len(), GOOD);
    for (path, f) in &expected {
        close(&by_path[path]["layer4"], &f["layer4"], path);
    }

    let bad = data.extract(&list, &shared, &["--nodes", "layer4", "--shard", "3/3"]);
    assert_usage_error(&bad, "3/3");
}

#[test]
fn globs_npy_parts_and_usage_errors() {
    let data = Dataset::new();
    let pattern = data.images().join("a/*.png");
    let out = data.out("npy");
    let run = data.extract(
        &pattern,
        &out,
        &[
            "--nodes",
            "conv1,fc",
            "--pool",
            "avg",
            "--format",
            "npy",
            "--part-size",
            "32",
        ],
    );
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run)); // a/zz-bad-crc.png
    let index = read_index(&out.join("index.csv"));
    assert_eq!(index.len(), GOOD / 6 + 1);
    let file = &index[0].file;
    assert_eq!(file, "part-00000");
    let mut npy =
        npyz::NpyFile::new(std::fs::File::open(out.join(file).join("conv1.npy")).unwrap()).unwrap();
    assert_eq!(npy.shape(), [32, 64]);
    assert!(npy.data::<f32>().unwrap().all(|v| v.is_ok()));
    npy = npyz::NpyFile::new(std::fs::File::open(out.join(file).join("fc.npy")).unwrap()).unwrap();
    assert_eq!(npy.shape(), [32, 1000]);

    let to_file = data.extract(
        &data.images(),
        &data.out("x.safetensors"),
        &["--nodes", "fc"],
    );
    assert_usage_error(&to_file, "names a file");
    let nothing = data.extract(
        &data.images().join("*.gif"),
        &data.out("none"),
        &["--nodes", "fc"],
    );
    assert_usage_error(&nothing, "no images found");
    let one = data.images().join("a/img-0000.png");
    let misuse = data.extract(
        &one,
        &data.out("y.safetensors"),
        &["--nodes", "fc", "--shard", "0/2"],
    );
    assert_usage_error(&misuse, "--shard applies to datasets");
    let no_crop = data.extract(
        &data.images(),
        &data.out("z"),
        &["--nodes", "fc", "--crop", "0"],
    );
    assert_usage_error(&no_crop, "--crop");
}

#[test]
fn numpy_and_safetensors_read_the_output() {
    let Some(python) = python() else { return };
    let data = Dataset::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/read-features.py");
    for (format, prefix, extra) in [
        ("safetensors", "", vec!["--part-size", "50"]),
        ("npy", "shard-1-of-2.", vec!["--shard", "1/2"]),
    ] {
        let out = data.out(format);
        let mut flags = vec![
            "--nodes",
            "layer1.0.conv1=early/conv,fc",
            "--pool",
            "avg",
            "--format",
            format,
            "--quiet",
        ];
        flags.extend(extra);
        let run = data.extract(&data.images(), &out, &flags);
        assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
        let read = Command::new(&python)
            .arg(&script)
            .arg(&out)
            .arg(prefix)
            .output()
            .unwrap();
        assert!(
            read.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&read.stderr)
        );
        let got: Value = serde_json::from_slice(&read.stdout).unwrap();

        let index = read_index(&out.join(format!("{prefix}index.csv")));
        let ok: Vec<&Row> = index.iter().filter(|r| r.status == "ok").collect();
        assert_eq!(got["ok"].as_u64(), Some(ok.len() as u64), "{format}");
        assert_eq!(
            got["failed"].as_u64(),
            Some((index.len() - ok.len()) as u64)
        );
        assert_eq!(got["first_ok_path"].as_str(), Some(ok[0].path.as_str()));
        assert_eq!(
            got["outputs"]["early/conv"]["shape"],
            serde_json::json!([ok.len(), 64])
        );
        assert_eq!(
            got["outputs"]["fc"]["shape"],
            serde_json::json!([ok.len(), 1000])
        );
        // The first values Python read are the ones featx computed for that image.
        let one = data.out(&format!("{format}-first.safetensors"));
        let single = data.extract(
            Path::new(&ok[0].path),
            &one,
            &["--nodes", "layer1.0.conv1=early/conv,fc", "--pool", "avg"],
        );
        assert!(single.status.success(), "{}", stderr(&single));
        for (key, _, values) in read_safetensors(&one) {
            let head: Vec<f32> = got["outputs"][&key]["first_row_head"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            close(&head, &values[..8], &format!("{format} {key}"));
        }
    }
}
