//! Scale-out: `featx extract --shard auto` workers started the way a Kubernetes Indexed Job or
//! a Slurm job array starts them (simulated by their environment variables) into one folder,
//! one of them killed and finished again; `featx dataset status` and `featx dataset merge`;
//! and the files in `deploy/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use featx::burn::prelude::Device;
use featx::models::ResNetConfig;
use serde_json::Value;

use crate::support::{
    CORRUPT_IMAGES, Row, features_by_path, python, read_index, stderr, write_generated_weights,
    write_image_folder,
};

/// Every variable `--shard auto` reads: removed from each worker's environment before the
/// simulated scheduler's are set, so that the machine running the tests cannot interfere.
const SCHEDULER_VARS: [&str; 7] = [
    "JOB_COMPLETION_INDEX",
    "FEATX_SHARDS",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
];

/// Good images of the four-shard job; with the broken ones, 101 are listed.
const GOOD: usize = 96;

/// A folder of generated images (with broken ones) and ResNet18 weights.
struct Job {
    dir: tempfile::TempDir,
    weights: PathBuf,
}

impl Job {
    fn new(good: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_image_folder(&dir.path().join("images"), good);
        let weights = write_generated_weights(
            &ResNetConfig::resnet18(1000).init(&Device::flex()),
            dir.path(),
        );
        Job { dir, weights }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The one `featx extract` command line of every worker: the smallest node on small
    /// inputs, small parts, and `--shard SHARD` when given.
    fn extract_args(&self, input: &Path, out: &Path, shard: Option<&str>) -> Vec<String> {
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
            "--nodes",
            "conv1",
            "--pool",
            "avg",
            "--resize",
            "32",
            "--crop",
            "32",
            "--part-size",
            "4",
            "--batch-size",
            "2",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(shard) = shard {
            args.extend(["--shard".to_string(), shard.to_string()]);
        }
        args
    }
}

/// `featx ARGS` with the scheduler's variables `env` (and no others), in the test's folder.
fn featx_command(args: &[String], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_featx"));
    command.args(args).env_remove("BURN_DEVICE");
    for var in SCHEDULER_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
}

fn run(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    featx_command(&args, &[]).output().unwrap()
}

fn spawn(args: &[String], env: &[(&str, String)]) -> Child {
    featx_command(args, env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A worker that finished: exit 0, or 3 when its slice had broken images.
fn assert_finished(output: Output, what: &str) {
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "{what}: {:?} {}",
        output.status,
        stderr(&output)
    );
}

/// `featx dataset status DIR --format json`: exit code and report.
fn status(dir: &Path) -> (Option<i32>, Value) {
    let out = run(&[
        "dataset",
        "status",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (out.status.code(), report)
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn relative_difference(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

/// The merged summary has the one-process summary's counts and statistics: integers, minima
/// and maxima exactly, sums, means and deviations to float rounding (parts end elsewhere, so
/// the sums are added in another order).
fn assert_same_statistics(merged: &Value, single: &Value) {
    for field in [
        "listed", "images", "ok", "failed", "model", "weights", "pool", "format",
    ] {
        assert_eq!(merged[field], single[field], "{field}");
    }
    let (m, s) = (
        merged["outputs"].as_array().unwrap(),
        single["outputs"].as_array().unwrap(),
    );
    assert_eq!(m.len(), s.len());
    for (m, s) in m.iter().zip(s) {
        for field in ["key", "node", "shape", "count", "nonfinite", "min", "max"] {
            assert_eq!(m[field], s[field], "{} {field}", s["key"]);
        }
        for field in ["sum", "sum_squares", "mean", "std"] {
            let (a, b) = (m[field].as_f64().unwrap(), s[field].as_f64().unwrap());
            assert!(
                relative_difference(a, b) <= 1e-9,
                "{} {field}: merged {a}, one process {b}",
                s["key"]
            );
        }
    }
}

/// `(index, path, status, error)` of every row: what a merged index shares with a one-process
/// index (file names and rows differ, as parts end elsewhere).
fn images(index: &[Row]) -> Vec<(usize, String, String, String)> {
    index
        .iter()
        .map(|r| (r.index, r.path.clone(), r.status.clone(), r.error.clone()))
        .collect()
}

#[test]
fn four_workers_one_killed_and_finished_again_merge_into_the_one_process_dataset() {
    let job = Job::new(GOOD);
    let input = job.path("images");
    let listed = GOOD + CORRUPT_IMAGES.len();

    // The reference: one process over the whole folder.
    let single = job.path("single");
    let one = featx_command(&job.extract_args(&input, &single, None), &[])
        .output()
        .unwrap();
    assert_eq!(one.status.code(), Some(3), "{}", stderr(&one));

    // Four workers as an Indexed Job starts them, one command line for all, one folder;
    // worker 2 is killed once its first part is committed.
    let shared = job.path("shared");
    let args = job.extract_args(&input, &shared, Some("auto"));
    let started = Instant::now();
    let mut workers: Vec<Child> = (0..4)
        .map(|i| {
            let env = [
                ("JOB_COMPLETION_INDEX", i.to_string()),
                ("FEATX_SHARDS", "4".to_string()),
            ];
            spawn(&args, &env)
        })
        .collect();
    let first_part = shared.join("shard-2-of-4.part-00000.json");
    while !first_part.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "worker 2 committed no part"
        );
        std::thread::yield_now();
    }
    let mut killed = workers.remove(2);
    killed.kill().unwrap();
    killed.wait().unwrap();
    for (i, worker) in workers.into_iter().enumerate() {
        assert_finished(worker.wait_with_output().unwrap(), &format!("worker {i}"));
    }
    let workers_s = started.elapsed().as_secs_f64();

    // Status names exactly the killed shard as partial, and how to finish it.
    let (code, report) = status(&shared);
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(report["complete"], false);
    assert_eq!(report["covered_exactly_once"], false);
    assert_eq!(report["listed"], listed);
    let states: Vec<&str> = report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "done", "partial", "done"], "{report:#}");
    let partial = &report["shards"][2];
    let committed = partial["committed_parts"].as_u64().unwrap();
    assert!(committed >= 1 && committed < partial["parts"].as_u64().unwrap());
    let missing = partial["missing"].as_u64().unwrap();
    assert!(missing > 0);
    assert_eq!(report["missing"].as_u64(), Some(missing));
    assert_eq!(
        partial["done"].as_u64().unwrap() + partial["failed"].as_u64().unwrap() + missing,
        partial["images"].as_u64().unwrap()
    );
    assert_eq!(partial["finished"], false);
    for (i, shard) in report["shards"].as_array().unwrap().iter().enumerate() {
        assert_eq!(shard["shard"]["index"], i);
        assert_eq!(shard["finished"], i != 2, "shard {i}");
        assert_eq!(shard.get("finish").is_some(), i == 2, "shard {i}");
    }
    let finish = strings(&partial["finish"]["args"]);
    assert_eq!(&finish[0], env!("CARGO_BIN_EXE_featx"));
    let shard_arg = finish.iter().position(|a| a == "--shard").unwrap();
    assert_eq!(finish[shard_arg + 1], "2/4", "{finish:?}");
    assert_eq!(
        strings(&report["finish"]),
        [partial["finish"]["shell"].as_str().unwrap()]
    );

    // The text report says the same for people; merging is refused and writes nothing.
    let text = run(&["dataset", "status", shared.to_str().unwrap()]);
    assert_eq!(text.status.code(), Some(3));
    let printed = String::from_utf8_lossy(&text.stdout);
    assert!(printed.contains("partial"), "{printed}");
    assert!(
        printed.contains(partial["finish"]["shell"].as_str().unwrap()),
        "{printed}"
    );
    assert!(stderr(&text).contains("is incomplete"), "{}", stderr(&text));
    let refused = run(&["dataset", "merge", shared.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(!shared.join("index.csv").exists() && !shared.join("summary.json").exists());

    // The command status gave finishes the job, without a scheduler, from the committed parts.
    let rerun = Command::new(&finish[0])
        .args(&finish[1..])
        .current_dir(partial["finish"]["dir"].as_str().unwrap())
        .env_remove("BURN_DEVICE")
        .output()
        .unwrap();
    assert_finished(rerun, "the finishing command");
    let shard2 = json(&shared.join("shard-2-of-4.summary.json"));
    assert_eq!(shard2["resumed_parts"].as_u64(), Some(committed));

    let (code, report) = status(&shared);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["complete"], true);
    assert_eq!(report["covered_exactly_once"], true);
    assert_eq!(report["merged"], false);
    assert_eq!(report["finish"], serde_json::json!([]));
    assert_eq!(
        (report["ok"].as_u64(), report["failed"].as_u64()),
        (Some(GOOD as u64), Some(CORRUPT_IMAGES.len() as u64))
    );

    let merged = run(&["dataset", "merge", shared.to_str().unwrap()]);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    assert_eq!(status(&shared).1["merged"], true);

    // Same rows and same statistics as the one-process run.
    let (one_index, merged_index) = (
        read_index(&single.join("index.csv")),
        read_index(&shared.join("index.csv")),
    );
    assert_eq!(images(&merged_index), images(&one_index));
    assert_eq!(merged_index.len(), listed);
    for r in merged_index.iter().filter(|r| r.status == "ok") {
        assert!(r.file.starts_with("shard-"), "{r:?}");
    }
    let (one_rows, merged_rows) = (
        features_by_path(&single, &one_index),
        features_by_path(&shared, &merged_index),
    );
    assert_eq!(merged_rows.len(), GOOD);
    assert_eq!(merged_rows, one_rows, "stored values by image");
    let merged_summary = json(&shared.join("summary.json"));
    assert_same_statistics(&merged_summary, &json(&single.join("summary.json")));
    assert_eq!(merged_summary["merged_shards"], 4);
    assert_eq!(merged_summary["index"], "index.csv");
    for file in strings(&merged_summary["files"]) {
        assert!(shared.join(&file).is_file(), "{file}");
    }

    // A Python reader takes the merged folder as one dataset.
    if let Some(python) = python() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/read-features.py");
        let read = Command::new(python)
            .arg(script)
            .arg(&shared)
            .output()
            .unwrap();
        assert!(read.status.success(), "{}", stderr(&read));
        let got: Value = serde_json::from_slice(&read.stdout).unwrap();
        assert_eq!(got["ok"], GOOD);
        assert_eq!(
            got["outputs"]["conv1"]["shape"],
            serde_json::json!([GOOD, 64])
        );
    }

    // A part of the same run split in two, in the same folder, is refused, naming both files.
    let mut other = json(&shared.join("shard-0-of-4.part-00000.json"));
    other["run"]["shard"] = serde_json::json!({"index": 0, "count": 2});
    std::fs::write(
        shared.join("shard-0-of-2.part-00000.json"),
        serde_json::to_vec(&other).unwrap(),
    )
    .unwrap();
    let mixed = run(&["dataset", "status", shared.to_str().unwrap()]);
    assert_eq!(mixed.status.code(), Some(2), "{}", stderr(&mixed));
    assert!(
        stderr(&mixed).contains("shard-0-of-2.part-00000.json")
            && stderr(&mixed).contains("shard-0-of-4.part-00000.json")
            && stderr(&mixed).contains("split into 4 shards, not 2"),
        "{}",
        stderr(&mixed)
    );
    eprintln!(
        "four workers took {workers_s:.1} s (worker 2 killed with {committed} of {} parts \
         committed); the whole test {:.1} s",
        partial["parts"],
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_slurm_array_from_task_1_covers_a_list_exactly_once() {
    let job = Job::new(18);
    // A list keeps its own order: the folder's images, reversed.
    let mut names: Vec<String> = std::fs::read_dir(job.path("images/a"))
        .unwrap()
        .chain(std::fs::read_dir(job.path("images/b")).unwrap())
        .chain(std::fs::read_dir(job.path("images/c")).unwrap())
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .collect();
    names.sort();
    names.reverse();
    let list = job.path("list.txt");
    std::fs::write(&list, names.join("\n")).unwrap();

    // `sbatch --array=1-3`: tasks 1, 2, 3 are shards 0, 1, 2 of 3.
    let out = job.path("features");
    let args = job.extract_args(&list, &out, Some("auto"));
    let workers: Vec<Child> = (1..=3)
        .map(|task| {
            let env = [
                ("SLURM_ARRAY_TASK_ID", task.to_string()),
                ("SLURM_ARRAY_TASK_COUNT", "3".to_string()),
                ("SLURM_ARRAY_TASK_MIN", "1".to_string()),
                ("SLURM_ARRAY_TASK_MAX", "3".to_string()),
                ("SLURM_ARRAY_TASK_STEP", "1".to_string()),
            ];
            spawn(&args, &env)
        })
        .collect();
    for (task, worker) in (1..=3).zip(workers) {
        let output = worker.wait_with_output().unwrap();
        let says = format!("shard {}/3 (Slurm array task {task})", task - 1);
        assert!(stderr(&output).contains(&says), "{}", stderr(&output));
        assert_finished(output, &format!("task {task}"));
    }
    let (code, report) = status(&out);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["complete"], true);
    assert_eq!(report["listed"], names.len());
    let text = run(&["dataset", "status", out.to_str().unwrap()]);
    assert_eq!(text.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("next: featx dataset merge"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    let merged = run(&["dataset", "merge", out.to_str().unwrap()]);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let index = read_index(&out.join("index.csv"));
    let paths: Vec<&str> = index.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, names, "the merged index keeps the list's order");

    // The merged statistics are the shards' own summaries combined exactly.
    let summary = json(&out.join("summary.json"));
    let shards: Vec<Value> = (0..3)
        .map(|i| json(&out.join(format!("shard-{i}-of-3.summary.json"))))
        .collect();
    let total = |field: &str| -> u64 {
        shards
            .iter()
            .map(|s| s["outputs"][0][field].as_u64().unwrap())
            .sum()
    };
    let merged_stats = &summary["outputs"][0];
    assert_eq!(merged_stats["count"].as_u64(), Some(total("count")));
    assert_eq!(merged_stats["nonfinite"].as_u64(), Some(total("nonfinite")));
    let lowest = shards
        .iter()
        .map(|s| s["outputs"][0]["min"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(merged_stats["min"].as_f64(), Some(lowest));
    let sum: f64 = shards
        .iter()
        .map(|s| s["outputs"][0]["sum"].as_f64().unwrap())
        .sum();
    assert!(relative_difference(merged_stats["sum"].as_f64().unwrap(), sum) <= 1e-12);
}

#[test]
fn shard_auto_without_a_usable_scheduler_is_refused_naming_its_variables() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = |shard: &str| -> Vec<String> {
        [
            "extract",
            "--model",
            "resnet18",
            "--weights",
            "random",
            "--input",
            dir.path().to_str().unwrap(),
            "--nodes",
            "conv1",
            "--out",
            out.to_str().unwrap(),
            "--shard",
            shard,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "no scheduler index is set"),
        (&[("JOB_COMPLETION_INDEX", "1")], "FEATX_SHARDS is not set"),
        (
            &[("JOB_COMPLETION_INDEX", "4"), ("FEATX_SHARDS", "4")],
            "JOB_COMPLETION_INDEX=4 is not below FEATX_SHARDS=4",
        ),
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "2"),
            ],
            "SLURM_ARRAY_TASK_MIN is not set",
        ),
    ];
    for (env, says) in cases {
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let refused = featx_command(&args("auto"), &env).output().unwrap();
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{env:?}: {}",
            stderr(&refused)
        );
        let message = stderr(&refused);
        assert!(message.contains(says), "{message}");
        for name in &SCHEDULER_VARS[..5] {
            assert!(message.contains(name), "{message}");
        }
    }
    assert!(!out.exists());

    let empty = dir.path().to_str().unwrap();
    let not_a_dataset = run(&["dataset", "status", empty]);
    assert_eq!(not_a_dataset.status.code(), Some(2));
    assert!(stderr(&not_a_dataset).contains("not a featx dataset"));
    let nowhere = run(&["dataset", "merge", out.to_str().unwrap()]);
    assert_eq!(nowhere.status.code(), Some(2), "{}", stderr(&nowhere));
}

/// A deploy/ file's text.
fn deploy(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(path),
    )
    .unwrap()
}

/// A folder that stands in for the shared volume: an empty `images/`, so that featx gets as
/// far as listing it, after parsing every flag and resolving `--shard auto`.
fn stand_in_volume() -> tempfile::TempDir {
    let volume = tempfile::tempdir().unwrap();
    std::fs::create_dir(volume.path().join("images")).unwrap();
    volume
}

fn assert_reaches_the_input(output: &Output, volume: &Path) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    let expected = format!("no images found in {}", volume.join("images").display());
    assert!(stderr(output).contains(&expected), "{}", stderr(output));
}

#[test]
fn the_kubernetes_manifest_is_an_indexed_job_running_featx_with_shard_auto() {
    let job: Value = serde_yaml_ng::from_str(&deploy("kubernetes/featx-job.yaml")).unwrap();
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let completions = spec["completions"].as_u64().unwrap();
    assert!((1..=completions).contains(&spec["parallelism"].as_u64().unwrap()));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    assert!(!container["image"].as_str().unwrap().is_empty());
    let shards = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "FEATX_SHARDS")
        .unwrap();
    assert_eq!(
        shards["value"].as_str().unwrap().parse::<u64>().unwrap(),
        completions,
        "FEATX_SHARDS must equal completions"
    );
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(
        container["volumeMounts"][0]["name"],
        pod["volumes"][0]["name"]
    );
    assert!(pod["volumes"][0]["persistentVolumeClaim"]["claimName"].is_string());
    assert_eq!(strings(&container["command"]), ["/bin/sh", "-c"]);
    let script = container["args"][0].as_str().unwrap();
    for flag in ["--shard auto", "--input /data/", "--out /data/"] {
        assert!(script.contains(flag), "{script}");
    }
    assert!(mount == "/data", "{mount}");

    // The pod's script, on a stand-in volume, as index 0 of the Job.
    let volume = stand_in_volume();
    let bin = Path::new(env!("CARGO_BIN_EXE_featx")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = script.replace("/data/", &format!("{}/", volume.path().display()));
    let env = [
        ("JOB_COMPLETION_INDEX", "0".to_string()),
        ("FEATX_SHARDS", completions.to_string()),
    ];
    let mut pod = Command::new("/bin/sh");
    pod.args(["-c", &script])
        .env("PATH", path)
        .env_remove("BURN_DEVICE");
    for var in SCHEDULER_VARS {
        pod.env_remove(var);
    }
    let output = pod.envs(env).output().unwrap();
    assert_reaches_the_input(&output, volume.path());
}

#[test]
fn the_slurm_script_is_valid_bash_and_runs_featx_as_an_array_task() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/slurm/featx-array.sbatch");
    let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    let text = deploy("slurm/featx-array.sbatch");
    let array = text
        .lines()
        .find_map(|l| l.strip_prefix("#SBATCH --array="))
        .unwrap();
    let (first, last) = array.split_once('-').unwrap();
    let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
    assert!(text.contains("--shard auto"));

    // The last task of the array, on a stand-in shared folder.
    let shared = stand_in_volume();
    let env = [
        ("SLURM_ARRAY_TASK_ID", last.to_string()),
        ("SLURM_ARRAY_TASK_COUNT", (last - first + 1).to_string()),
        ("SLURM_ARRAY_TASK_MIN", first.to_string()),
        ("SLURM_ARRAY_TASK_MAX", last.to_string()),
    ];
    let mut task = Command::new("bash");
    task.arg(&path)
        .env("DATA", shared.path())
        .env("FEATX", env!("CARGO_BIN_EXE_featx"))
        .env_remove("BURN_DEVICE");
    for var in SCHEDULER_VARS {
        task.env_remove(var);
    }
    let output = task.envs(env).output().unwrap();
    assert_reaches_the_input(&output, shared.path());
}

#[test]
fn the_dockerfile_builds_a_release_with_wgpu_and_runs_it_on_a_slim_image_with_vulkan() {
    let text = deploy("Dockerfile");
    let from: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "{from:?}");
    assert!(from[0].starts_with("FROM rust:") && from[0].ends_with(" AS build"));
    assert_eq!(from[1], "FROM debian:bookworm-slim");
    // The build image's Rust is at least the workspace's rust-version.
    let rust = from[0]["FROM rust:".len()..].split('-').next().unwrap();
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let required = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    let version = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(version(rust) >= version(required), "{rust} < {required}");
    for needed in [
        "cargo build --release --locked --features wgpu",
        "libvulkan1",
        "mesa-vulkan-drivers",
        "COPY --from=build",
        "ENTRYPOINT [\"featx\"]",
    ] {
        assert!(text.contains(needed), "{needed}");
    }
}
