//! The `featx` command line: flags and file formats are a contract.

use std::path::Path;

use serde_json::Value;

use crate::support;
use crate::support::{featx, fixture, generated, read_safetensors, stderr, write_npy};

#[test]
fn nodes_text_lists_names_in_execution_order() {
    let out = featx(&["nodes", "--model", "resnet18"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text.lines().collect();
    assert_eq!(names.len(), 70);
    assert_eq!(names[..4], ["x", "conv1", "bn1", "relu"]);
    assert_eq!(names[69], "fc");
    let train = featx(&["nodes", "--model", "alexnet", "--mode", "train"]);
    assert_eq!(String::from_utf8(train.stdout).unwrap().lines().count(), 22);
}

/// GoogLeNet's train graph adds the auxiliary heads: `--mode train` lists torchvision's train
/// list and JSON describes that graph; extracting an auxiliary node needs `--mode train`.
#[test]
fn googlenet_nodes_and_extraction_follow_the_mode() {
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("zoo/googlenet.json")).unwrap())
            .unwrap();
    let list = |mode: &str| {
        let out = featx(&["nodes", "--model", "googlenet", "--mode", mode]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        Value::from(text.lines().collect::<Vec<_>>())
    };
    assert_eq!(list("train"), reference["train_nodes"]);
    assert_eq!(list("eval"), reference["eval_nodes"]);
    let out = featx(&[
        "nodes",
        "--model",
        "googlenet",
        "--mode",
        "train",
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["train_nodes"], reference["train_nodes"]);
    assert_eq!(doc["eval_nodes"], reference["eval_nodes"]);
    let names: Vec<&Value> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["name"])
        .collect();
    assert_eq!(
        Value::from(names.into_iter().cloned().collect::<Vec<_>>()),
        reference["train_nodes"]
    );

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.npy");
    write_npy(
        &input,
        &[2, 3, 64, 64],
        &generated("input", &[2, 3, 64, 64]),
    );
    let out_path = dir.path().join("aux.safetensors");
    let extract = |mode: &str| {
        featx(&[
            "extract",
            "--model",
            "googlenet",
            "--weights",
            "random",
            "--input",
            input.to_str().unwrap(),
            "--nodes",
            "aux1.fc2=aux",
            "--mode",
            mode,
            "--out",
            out_path.to_str().unwrap(),
        ])
    };
    let eval = extract("eval");
    assert_eq!(eval.status.code(), Some(2), "{}", stderr(&eval));
    assert!(
        stderr(&eval).contains("train mode graph only"),
        "{}",
        stderr(&eval)
    );
    let train = extract("train");
    assert!(train.status.success(), "{}", stderr(&train));
    let tensors = read_safetensors(&out_path);
    assert_eq!(tensors[0].0, "aux");
    assert_eq!(tensors[0].1, [2, 1000]);
}

#[test]
fn nodes_json_has_the_documented_fields() {
    let out = featx(&["nodes", "--model", "alexnet", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("torchvision_nodes_alexnet.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(doc["model"], "alexnet");
    assert_eq!(doc["train_nodes"], reference["train_nodes"]);
    assert_eq!(doc["eval_nodes"], reference["eval_nodes"]);
    let view = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "view")
        .unwrap();
    assert_eq!(view["op"], "call_method");
    assert_eq!(view["target"], "view");
    assert_eq!(view["inputs"], serde_json::json!(["conv3.6"]));
    assert_eq!(view["shape"], serde_json::json!([1, 9216]));
}

#[test]
fn extract_writes_one_float32_tensor_per_key_matching_torch() {
    let dir = tempfile::tempdir().unwrap();
    // Real weights file (torch-written layout, generated values) and the fixture input.
    let device = featx::burn::prelude::Device::flex();
    let model = featx::models::ResNetConfig::resnet18(1000).init(&device);
    let weights = support::write_generated_weights(&model, dir.path());
    let input = dir.path().join("x.npy");
    write_npy(
        &input,
        &[2, 3, 224, 224],
        &generated("input", &[2, 3, 224, 224]),
    );
    let out_path = dir.path().join("features.safetensors");
    let out = featx(&[
        "extract",
        "--model",
        "resnet18",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--nodes",
        "layer3,fc=logits,bn1",
        "--out",
        out_path.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tensors = read_safetensors(&out_path);
    let keys: Vec<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(keys, ["bn1", "layer3", "logits"]);
    let fx = support::node_fixtures("resnet18_nodes.json", "resnet18_nodes.safetensors");
    for (key, node) in [
        ("bn1", "bn1"),
        ("layer3", "layer3.1.relu_1"),
        ("logits", "fc"),
    ] {
        let (_, shape, values) = tensors.iter().find(|t| t.0 == key).unwrap();
        support::compare(node, shape, values, &fx.nodes[node]);
    }
}

#[test]
fn bad_usage_and_bad_input_exit_2_with_a_message_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("x.npy");
    write_npy(&good, &[1, 3, 32, 32], &vec![0f32; 3 * 32 * 32]);
    let rank3 = dir.path().join("rank3.npy");
    write_npy(&rank3, &[3, 32, 32], &vec![0f32; 3 * 32 * 32]);
    let ints = dir.path().join("ints.npy");
    write_npy(&ints, &[1, 3, 4, 4], &[1i32; 48]);
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"definitely not numpy").unwrap();
    let out_path = dir.path().join("out.safetensors");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--nodes".into(), "layer9".into()],
            "did you mean layer1",
        ),
        (vec!["--nodes".into(), "".into()], "nothing to extract"),
        (
            vec!["--nodes".into(), "fc,,layer1".into()],
            "invalid node request",
        ),
        (vec!["--nodes".into(), "layer1=f,layer2=f".into()], "'f'"),
        (
            vec!["--nodes".into(), "fc".into(), "--input".into(), s(&rank3)],
            "rank",
        ),
        (
            vec!["--nodes".into(), "fc".into(), "--input".into(), s(&ints)],
            "float32",
        ),
        (
            vec!["--nodes".into(), "fc".into(), "--input".into(), s(&garbage)],
            "not a .npy",
        ),
        (
            vec![
                "--nodes".into(),
                "fc".into(),
                "--weights".into(),
                "/no/such.pth".into(),
            ],
            "/no/such.pth",
        ),
        (
            vec![
                "--nodes".into(),
                "fc".into(),
                "--device".into(),
                "tpu".into(),
            ],
            "unknown device",
        ),
        (
            vec![
                "--nodes".into(),
                "fc".into(),
                "--precision".into(),
                "f16".into(),
            ],
            "reduced precision runs on GPU devices only",
        ),
        (
            vec![
                "--nodes".into(),
                "fc".into(),
                "--precision".into(),
                "bf8".into(),
            ],
            "[possible values: f32, f16, mixed]",
        ),
    ];
    for (extra, expected) in cases {
        let mut args: Vec<String> = ["extract", "--model", "resnet18", "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(s(&out_path));
        if !extra.contains(&"--input".to_string()) {
            args.extend(["--input".to_string(), s(&good)]);
        }
        if !extra.contains(&"--weights".to_string()) {
            args.extend(["--weights".to_string(), "random".to_string()]);
        }
        args.extend(extra.iter().cloned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = featx(&argv);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(expected), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
        assert!(!out_path.exists(), "{extra:?} left an output file");
    }
    // Missing flags are clap usage errors, also exit code 2.
    assert_eq!(
        featx(&["extract", "--model", "resnet18"]).status.code(),
        Some(2)
    );
    // --weights is required to extract (random weights are never a silent default)...
    let missing = featx(&[
        "extract",
        "--model",
        "resnet18",
        "--input",
        &s(&good),
        "--nodes",
        "fc",
        "--out",
        &s(&out_path),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("--weights is required"),
        "{}",
        stderr(&missing)
    );
    assert!(!out_path.exists());
    assert_eq!(featx(&["nodes", "--model", "vgg"]).status.code(), Some(2));
}

#[test]
fn extract_takes_images_as_a_batch_preprocessed_like_torchvision() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("x.safetensors");
    let a = fixture("images/chelsea.jpg");
    let b = fixture("images/portrait.png");
    let out = featx(&[
        "extract",
        "--model",
        "resnet18",
        "--weights",
        "random",
        "--input",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--nodes",
        "x,layer4",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tensors = read_safetensors(&out_path);
    assert_eq!(tensors[0].0, "layer4");
    assert_eq!(tensors[0].1, [2, 512, 7, 7]);
    let (_, shape, x) = &tensors[1];
    assert_eq!(shape, &[2, 3, 224, 224]);
    // Row 0 is the cat, preprocessed exactly as torchvision does.
    let fx = support::node_fixtures_map("preprocess.json", "preprocess.safetensors");
    let record = &fx["chelsea.jpg"];
    for (k, expected) in record.samples.iter().enumerate() {
        assert!((x[k * record.stride] - expected).abs() <= 1e-5);
    }
}

#[test]
fn models_lists_every_architecture_with_its_numbers_and_weights() {
    let cache = tempfile::tempdir().unwrap();
    // A file under the published name counts as cached (it is verified when used).
    std::fs::write(
        cache.path().join("resnet50-11ad3fa6.pth"),
        b"not checked here",
    )
    .unwrap();
    let run = |format: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_featx"))
            .args(["models", "--format", format])
            .env("FEATX_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let doc: Value = serde_json::from_str(&run("json")).unwrap();
    let models = doc["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    let registry: Vec<&str> = featx::models::MODELS.iter().map(|a| a.name).collect();
    assert_eq!(names, registry);
    let model = |name: &str| models.iter().find(|m| m["name"] == name).unwrap();
    let resnet50 = model("resnet50");
    // torchvision's `weights.meta["num_params"]` and node count.
    assert_eq!(resnet50["parameters"], 25_557_032);
    assert_eq!(resnet50["nodes"], 176);
    assert_eq!(resnet50["preprocess"]["resize"], 232);
    assert_eq!(resnet50["preprocess"]["crop"], 224);
    assert_eq!(resnet50["preprocess"]["interpolation"], "bilinear");
    assert_eq!(resnet50["weights"]["file"], "resnet50-11ad3fa6.pth");
    assert_eq!(resnet50["weights"]["sha256_prefix"], "11ad3fa6");
    assert_eq!(resnet50["weights"]["cached"], true);
    assert_eq!(model("vgg16")["weights"]["cached"], false);
    assert_eq!(model("vgg16")["parameters"], 138_357_544);
    assert_eq!(model("alexnet")["weights"], Value::Null);
    assert_eq!(
        model("alexnet")["input"]["size"],
        serde_json::json!([224, 224])
    );
    assert_eq!(model("tv_alexnet")["input"]["size"], Value::Null);

    let text = run("text");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
            .to_string()
    };
    assert!(
        line("resnet50").contains("resnet50-11ad3fa6.pth (cached)"),
        "{text}"
    );
    assert!(line("resnet50").contains("232/224"), "{text}");
    assert!(line("vgg19_bn").contains("143.7M"), "{text}");
    assert!(line("alexnet").contains("none"), "{text}");
}

#[test]
fn nodes_of_a_zoo_model_are_torchvisions() {
    let out = featx(&["nodes", "--model", "vgg11_bn", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("zoo/vgg11_bn.json")).unwrap())
            .unwrap();
    assert_eq!(doc["model"], "vgg11_bn");
    assert_eq!(doc["eval_nodes"], reference["eval_nodes"]);
    let last = doc["nodes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["name"], "classifier.6");
    assert_eq!(last["shape"], serde_json::json!([1, 1000]));
    // A family name is not a model.
    assert_eq!(
        featx(&["nodes", "--model", "resnet"]).status.code(),
        Some(2)
    );
}

#[test]
fn images_get_the_preprocessing_of_the_models_published_weights() {
    use featx::preprocess::{Filter, Preprocess, load_rgb};
    let dir = tempfile::tempdir().unwrap();
    let image = fixture("images/chelsea.jpg");
    let input = |model: &str, extra: &[&str]| {
        let out_path = dir.path().join(format!("{model}.safetensors"));
        let mut args = vec![
            "extract",
            "--model",
            model,
            "--weights",
            "random",
            "--input",
        ];
        let image = image.to_str().unwrap();
        let out = out_path.to_str().unwrap();
        args.extend([image, "--nodes", "x", "--out", out]);
        args.extend(extra);
        let run = featx(&args);
        assert!(run.status.success(), "{}", stderr(&run));
        read_safetensors(&out_path).remove(0).2
    };
    let rgb = load_rgb(&image).unwrap();
    let sized = |resize: u32, crop: u32, filter: Filter| {
        let pre = Preprocess {
            resize: Some(resize),
            crop: Some(crop),
            filter,
            ..Preprocess::imagenet()
        };
        pre.apply(&rgb).unwrap().values
    };
    let expected = |resize: u32| sized(resize, 224, Filter::Bilinear);
    // ResNet50's V2 weights were evaluated with Resize(232), ResNet18's with Resize(256).
    assert_eq!(input("resnet50", &[]), expected(232));
    assert_eq!(input("resnet18", &[]), expected(256));
    assert_ne!(expected(232), expected(256));
    // A flag still wins over the model's default.
    assert_eq!(input("resnet50", &["--resize", "256"]), expected(256));
    // EfficientNet resizes bicubically, at sizes of its own; B1's DEFAULT (V2) bilinearly.
    let b0 = sized(256, 224, Filter::Bicubic);
    assert_eq!(input("efficientnet_b0", &[]), b0);
    assert_ne!(b0, expected(256));
    assert_eq!(
        input("efficientnet_b3", &[]),
        sized(320, 300, Filter::Bicubic)
    );
    assert_eq!(
        input("efficientnet_b1", &[]),
        sized(255, 240, Filter::Bilinear)
    );
}

#[test]
fn bench_needs_no_weights_and_reports_json() {
    // A benchmark's numbers do not depend on the weights' values: random by default.
    let out = featx(&[
        "bench", "--model", "resnet18", "--nodes", "layer1", "--size", "64", "--iters", "2",
        "--warmup", "0", "--format", "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["model"], "resnet18");
    assert_eq!(report["nodes"], 1);
    assert_eq!(report["gpu_kernels"], "featx");
    assert!(report["median_ms"].as_f64().unwrap() > 0.0);
}

/// The CPUs this process may run on, from `/proc/self/status`'s `Cpus_allowed_list` ("0-3,6").
#[cfg(target_os = "linux")]
fn allowed_cpus() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    list.split(',')
        .map(|range| match range.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

#[cfg(target_os = "linux")]
#[test]
fn bench_pins_one_worker_per_allowed_cpu_and_only_then() {
    let cpus = allowed_cpus();
    let report = |threads: usize, pin: Option<&str>| -> (u64, u64) {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_featx"));
        command
            .args([
                "bench", "--model", "resnet18", "--nodes", "layer1", "--size", "32", "--iters",
                "1", "--warmup", "0", "--format", "json",
            ])
            .env_remove("BURN_DEVICE")
            .env_remove("FEATX_PIN_THREADS")
            .env("RAYON_NUM_THREADS", threads.to_string());
        if let Some(pin) = pin {
            command.env("FEATX_PIN_THREADS", pin);
        }
        let out = command.output().expect("featx runs");
        assert!(out.status.success(), "{}", stderr(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let count = |key: &str| report[key].as_u64().unwrap();
        (count("threads"), count("pinned_threads"))
    };
    let n = cpus as u64;
    // As many workers as allowed CPUs: each on its own.
    assert_eq!(report(cpus, None), (n, n));
    // Turned off, or more workers than CPUs: the scheduler places them.
    assert_eq!(report(cpus, Some("0")), (n, 0));
    assert_eq!(report(cpus + 1, None), (n + 1, 0));
}
