//! Downloading published weights into the verified cache, against a server on 127.0.0.1.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use featx::burn::prelude::*;
use featx::models::ResNetConfig;
use featx::weights::{RemoteWeights, WeightsError, fetch, load_state_dict};
use sha2::{Digest, Sha256};

use crate::support;

/// The torch-written ResNet18 `.pth` fixture, un-gzipped.
fn pth_bytes() -> Vec<u8> {
    let file = std::fs::File::open(support::fixture("resnet18_pattern.pth.gz")).unwrap();
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn sha_prefix(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How the test server answers one request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// The whole file (or the asked-for range).
    Serve,
    /// Announce the whole file, send half, then drop the connection.
    CutHalfway,
}

/// A one-file HTTP server on 127.0.0.1 that answers `plan.len()` requests, recording each
/// request's path and Range header.
struct Server {
    base: String,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
    paths: Arc<Mutex<Vec<String>>>,
    handle: JoinHandle<()>,
}

/// Reads one request's head; returns its path and its Range header, if any.
fn read_request(stream: &mut std::net::TcpStream) -> (String, Option<String>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && matches!(stream.read(&mut byte), Ok(1)) {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_string();
    let range = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Range: ")
                .or_else(|| l.strip_prefix("range: "))
        })
        .map(str::to_string);
    (path, range)
}

/// A bare HTTP/1.1 server (std only, so a connection can really be cut mid-body).
fn serve(body: Vec<u8>, plan: Vec<Behaviour>) -> Server {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let paths = Arc::new(Mutex::new(Vec::new()));
    let (seen, seen_paths) = (ranges.clone(), paths.clone());
    let handle = std::thread::spawn(move || {
        for behaviour in plan {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let (path, range) = read_request(&mut stream);
            seen.lock().unwrap().push(range.clone());
            seen_paths.lock().unwrap().push(path);
            let start: usize = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.trim_end_matches('-').parse().ok())
                .unwrap_or(0);
            let status = if start > 0 {
                "206 Partial Content"
            } else {
                "200 OK"
            };
            let rest = &body[start..];
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                rest.len()
            );
            let sent = match behaviour {
                Behaviour::Serve => rest,
                Behaviour::CutHalfway => &rest[..rest.len() / 2],
            };
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(sent);
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    Server {
        base: format!("http://127.0.0.1:{port}/models"),
        ranges,
        paths,
        handle,
    }
}

fn remote(prefix: &str) -> RemoteWeights {
    RemoteWeights {
        file_name: "resnet18-test.pth".into(),
        sha256_prefix: prefix.into(),
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn downloads_once_verifies_and_then_works_offline() {
    let body = pth_bytes();
    let cache = tempfile::tempdir().unwrap();
    let server = serve(body.clone(), vec![Behaviour::Serve]);
    let wanted = remote(&sha_prefix(&body));
    let path = fetch(&wanted, &server.base, cache.path(), false).unwrap();
    assert_eq!(path, cache.path().join("resnet18-test.pth"));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    server.handle.join().unwrap();
    // The server is gone: the cache answers, and the file is a working state dict.
    let again = fetch(&wanted, "http://127.0.0.1:9/nowhere", cache.path(), false).unwrap();
    assert_eq!(again, path);
    load_state_dict(ResNetConfig::resnet18(1000).init(&Device::flex()), &path).unwrap();
    assert_eq!(files_in(cache.path()), ["resnet18-test.pth"]);
}

#[test]
fn an_interrupted_download_resumes_where_it_stopped() {
    let body = pth_bytes();
    let cache = tempfile::tempdir().unwrap();
    let server = serve(body.clone(), vec![Behaviour::CutHalfway, Behaviour::Serve]);
    let wanted = remote(&sha_prefix(&body));
    let err = fetch(&wanted, &server.base, cache.path(), false).unwrap_err();
    assert!(matches!(err, WeightsError::Download { .. }), "{err}");
    // Nothing under the final name; the part file keeps what arrived.
    assert_eq!(files_in(cache.path()), ["resnet18-test.pth.part"]);
    let partial = std::fs::metadata(cache.path().join("resnet18-test.pth.part"))
        .unwrap()
        .len();
    assert!(partial > 0 && (partial as usize) < body.len());
    let path = fetch(&wanted, &server.base, cache.path(), false).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    server.handle.join().unwrap();
    let ranges = server.ranges.lock().unwrap().clone();
    assert_eq!(ranges, [None, Some(format!("bytes={partial}-"))]);
    assert_eq!(files_in(cache.path()), ["resnet18-test.pth"]);
}

#[test]
fn a_wrong_checksum_is_rejected_and_nothing_is_kept() {
    let body = pth_bytes();
    let cache = tempfile::tempdir().unwrap();
    let server = serve(body, vec![Behaviour::Serve]);
    let err = fetch(&remote("f37072fd"), &server.base, cache.path(), false).unwrap_err();
    match &err {
        WeightsError::Checksum {
            expected_prefix,
            found,
            ..
        } => {
            assert_eq!(expected_prefix, "f37072fd");
            assert_eq!(found.len(), 64);
        }
        other => panic!("{other}"),
    }
    assert!(
        files_in(cache.path()).is_empty(),
        "{:?}",
        files_in(cache.path())
    );
    server.handle.join().unwrap();
}

#[test]
fn server_down_says_where_to_put_the_file_and_that_random_exists() {
    let cache = tempfile::tempdir().unwrap();
    // Bind and drop a port so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/models");
    let err = fetch(&remote("abcd"), &base, cache.path(), false).unwrap_err();
    let WeightsError::Download { url, place_at, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(url, &format!("{base}/resnet18-test.pth"));
    assert_eq!(place_at, &cache.path().join("resnet18-test.pth"));
    let message = err.to_string();
    assert!(
        message.contains(&place_at.display().to_string()),
        "{message}"
    );
    // The library speaks of its own API; the command line adds its flags (below).
    assert!(message.contains("random weights"), "{message}");
    assert!(!message.contains("--weights"), "{message}");
}

#[test]
fn cli_imagenet_weights_use_the_overridable_url_and_cache() {
    let cache = tempfile::tempdir().unwrap();
    let server = serve(pth_bytes(), vec![Behaviour::Serve]);
    let out = extract_with_imagenet_weights("resnet18", "fc", &server.base, cache.path());
    // The fixture is not torchvision's ImageNet file, so its hash cannot match f37072fd.
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("resnet18-f37072fd.pth") && stderr.contains("f37072fd"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: --weights random"), "{stderr}");
    assert_eq!(files_in(cache.path()), Vec::<String>::new());
    server.handle.join().unwrap();
}

#[test]
fn cli_imagenet_weights_of_each_new_family_are_torchvisions_published_file() {
    // resnet50's DEFAULT weights are the V2 file; torchvision's AlexNet file has two dashes,
    // and the hash is what follows the last.
    for (model, file, prefix) in [
        ("resnet50", "resnet50-11ad3fa6.pth", "11ad3fa6"),
        ("vgg11_bn", "vgg11_bn-6002323d.pth", "6002323d"),
        ("tv_alexnet", "alexnet-owt-7be5be79.pth", "7be5be79"),
        (
            "mobilenet_v3_large",
            "mobilenet_v3_large-5c1a4163.pth",
            "5c1a4163",
        ),
        (
            "efficientnet_b0",
            "efficientnet_b0_rwightman-7f5810bc.pth",
            "7f5810bc",
        ),
        ("regnet_y_400mf", "regnet_y_400mf-e6988f5f.pth", "e6988f5f"),
        ("densenet121", "densenet121-a639ec97.pth", "a639ec97"),
        ("convnext_tiny", "convnext_tiny-983f1562.pth", "983f1562"),
        ("vit_b_16", "vit_b_16-c867db91.pth", "c867db91"),
    ] {
        let cache = tempfile::tempdir().unwrap();
        let server = serve(pth_bytes(), vec![Behaviour::Serve]);
        let out = extract_with_imagenet_weights(model, "x", &server.base, cache.path());
        server.handle.join().unwrap();
        assert_eq!(*server.paths.lock().unwrap(), [format!("/models/{file}")]);
        // The served file is not torchvision's, so its hash cannot match: refused, not kept.
        assert_eq!(out.status.code(), Some(2), "{model}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(file) && stderr.contains(prefix), "{stderr}");
        assert_eq!(files_in(cache.path()), Vec::<String>::new());
    }
}

#[test]
fn the_articles_alexnet_has_no_published_weights_and_says_which_model_has() {
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_featx"))
        .args(["nodes", "--model", "alexnet"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_featx"))
        .args([
            "extract",
            "--model",
            "alexnet",
            "--weights",
            "imagenet",
            "--input",
        ])
        .arg(support::fixture("images/chelsea.jpg"))
        .args(["--nodes", "x", "--out"])
        .arg(cache.path().join("out.safetensors"))
        .env("FEATX_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tv_alexnet"), "{stderr}");
}

/// `featx extract --weights imagenet` of `model`'s `nodes` on the fixture photograph, with the
/// weights served from `base` and cached in `cache`.
fn extract_with_imagenet_weights(
    model: &str,
    nodes: &str,
    base: &str,
    cache: &std::path::Path,
) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_featx"))
        .args([
            "extract",
            "--model",
            model,
            "--weights",
            "imagenet",
            "--input",
        ])
        .arg(support::fixture("images/chelsea.jpg"))
        .args(["--nodes", nodes, "--out"])
        .arg(cache.join("out.safetensors"))
        .env("FEATX_WEIGHTS_URL", base)
        .env("FEATX_CACHE_DIR", cache)
        .output()
        .unwrap()
}
