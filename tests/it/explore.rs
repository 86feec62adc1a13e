//! `featx explore`: the HTTP contract (pictures, features and CAMs byte-identical to the
//! commands), the guard (Host, Origin, token), hostile parameters and uploads, a full queue,
//! a load test, a clean shutdown, and the page in a real browser.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{featx, fixture, read_safetensors, stderr};

/// A running `featx explore`, stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    /// The URL line's URL.
    url: String,
    /// The folder the server's temporary files go to.
    tmp: tempfile::TempDir,
}

fn image(name: &str) -> String {
    fixture(&format!("images/{name}"))
        .to_str()
        .unwrap()
        .to_string()
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_featx"))
            .args([
                "explore",
                "--model",
                "resnet18",
                "--weights",
                "random",
                "--port",
                "0",
            ])
            .args(["--images", &image("chelsea.jpg"), &image("portrait.png")])
            .args(extra)
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("featx starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("featx explore: serving ")
            .unwrap_or_else(|| panic!("the first line names the URL: {line:?}"))
            .to_string();
        let port = url.rsplit(':').next().unwrap().split('/').next().unwrap();
        let addr = format!("127.0.0.1:{port}");
        Server {
            child,
            addr,
            url,
            tmp,
        }
    }

    fn get(&self, target: &str) -> Reply {
        http(&self.addr, "GET", target, &[], &[])
    }

    /// Sends SIGTERM and waits for the exit status.
    fn stop(self) -> std::process::ExitStatus {
        self.stop_keeping_tmp().0
    }

    /// [`Server::stop`], handing over the server's temporary folder to look into.
    fn stop_keeping_tmp(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        terminate(&self.child);
        let status = wait_exit(&mut self.child);
        let tmp = std::mem::replace(&mut self.tmp, tempfile::tempdir().unwrap());
        (status, tmp)
    }
}

fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            terminate(&self.child);
            let _ = wait_exit(&mut self.child);
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request on a fresh connection, written byte for byte as given (so a test can
/// send any Host, Origin or encoded target), `Host: addr` unless a header names another.
fn http(addr: &str, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let text = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = text.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// `featx CMD --model resnet18 --weights random ARGS...`, which must succeed.
fn resnet18(cmd: &str, args: &[&str]) -> std::process::Output {
    let run = featx(
        &[
            &[cmd, "--model", "resnet18", "--weights", "random"][..],
            args,
        ]
        .concat(),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    run
}

/// What `featx viz` writes for these arguments.
fn viz(image_name: &str, node: &str, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("viz.png");
    let path = image(image_name);
    let args = [
        &[
            "--image",
            &path,
            "--node",
            node,
            "--out",
            out.to_str().unwrap(),
        ][..],
        extra,
    ];
    resnet18("viz", &args.concat());
    std::fs::read(out).unwrap()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

#[test]
fn pictures_features_cams_and_lists_equal_the_commands() {
    let server = Server::start(&[]);
    assert!(server.url.starts_with("http://127.0.0.1:") && server.url.ends_with('/'));

    // The page and its assets.
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("id=\"search\""));
    assert!(page.headers["content-security-policy"].contains("connect-src 'self'"));
    assert_eq!(server.get("/app.js").status, 200);

    // Lists.
    let listed = featx(&["nodes", "--model", "resnet18", "--format", "json"]);
    assert_eq!(server.get("/api/nodes").body, listed.stdout);
    let images = server.get("/api/images").json();
    let names: Vec<(&str, &str)> = images["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("i0", "chelsea.jpg"), ("i1", "portrait.png")]);
    assert!(!String::from_utf8_lossy(&server.get("/api/images").body).contains("fixtures"));

    // Pictures, byte for byte: a node outside the one pass (a convolution before its
    // BatchNorm), nodes inside it, every kind.
    let cases: [(&str, &str, &str, &[&str]); 6] = [
        ("i0", "layer1.0.conv1", "kind=auto&reduce=sum", &[]),
        (
            "i0",
            "layer2",
            "kind=heatmap&reduce=mean",
            &["--kind", "heatmap", "--reduce", "mean"],
        ),
        (
            "i1",
            "layer3.1.bn2",
            "kind=grid&reduce=sum",
            &["--kind", "grid"],
        ),
        (
            "i0",
            "layer4",
            "kind=overlay&reduce=max",
            &["--kind", "overlay", "--reduce", "max"],
        ),
        ("i0", "fc", "kind=auto&reduce=sum", &[]),
        (
            "i0",
            "layer1.0.conv1",
            "kind=grid&reduce=sum&select=first",
            &["--kind", "grid", "--select", "first"],
        ),
    ];
    for (id, node, query, flags) in cases {
        let got = server.get(&format!("/api/picture?image={id}&node={node}&{query}"));
        assert_eq!(
            got.status,
            200,
            "{node}: {}",
            String::from_utf8_lossy(&got.body)
        );
        assert_eq!(got.headers["content-type"], "image/png");
        let file = if id == "i0" {
            "chelsea.jpg"
        } else {
            "portrait.png"
        };
        assert!(
            got.body == viz(file, node, flags),
            "{node} {query}: not featx viz's bytes"
        );
    }
    // A later page of the grid is other channels; a shared scale is another picture.
    let page0 = server.get("/api/picture?image=i0&node=layer2&kind=grid");
    let page1 = server.get("/api/picture?image=i0&node=layer2&kind=grid&page=1");
    assert_eq!(page1.status, 200);
    assert_ne!(page0.body, page1.body);
    let shared = server.get("/api/picture?image=i0&node=layer2&kind=heatmap&with=i1");
    assert_eq!(shared.status, 200);
    assert_ne!(
        shared.body,
        server
            .get("/api/picture?image=i0&node=layer2&kind=heatmap")
            .body
    );

    // Features: `featx extract`'s values, as .npy.
    let npy = server.get("/api/features?image=i0&node=layer1");
    assert_eq!(npy.status, 200);
    let file = npyz::NpyFile::new(&npy.body[..]).unwrap();
    assert_eq!(file.shape(), [1, 64, 56, 56]);
    let values: Vec<f32> = file.into_vec().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.safetensors");
    let chelsea = image("chelsea.jpg");
    let out_arg = out.to_str().unwrap();
    resnet18(
        "extract",
        &["--input", &chelsea, "--nodes", "layer1", "--out", out_arg],
    );
    let extracted = read_safetensors(&out);
    assert_eq!(extracted[0].2, values);

    // Statistics and the top classes.
    let stats = server.get("/api/stats?image=i0&node=layer1").json();
    assert_eq!(stats["node"], "layer1.1.relu_1");
    let zeros = values.iter().filter(|v| **v == 0.0).count() as f64 / values.len() as f64;
    assert!((stats["zeros"].as_f64().unwrap() - zeros).abs() < 1e-12);
    let max = values.iter().copied().fold(f32::MIN, f32::max);
    assert_eq!(stats["max"].as_f64().unwrap() as f32, max);
    let top5 = server.get("/api/top5?image=i0").json();
    let classes = top5["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 5);
    assert!(classes[0]["logit"].as_f64() >= classes[4]["logit"].as_f64());

    // The CAM: `featx cam`'s bytes.
    let cam = server.get("/api/cam?image=i0&node=layer4&method=gradcam");
    assert_eq!(cam.status, 200, "{}", String::from_utf8_lossy(&cam.body));
    let out = dir.path().join("cam.png");
    let out_arg = out.to_str().unwrap();
    let flags = ["--node", "layer4", "--method", "gradcam", "--out", out_arg];
    resnet18("cam", &[&["--input", &chelsea][..], &flags].concat());
    assert!(
        cam.body == std::fs::read(&out).unwrap(),
        "not featx cam's bytes"
    );

    // The graph: `featx graph --format svg`'s, folded or not; an open module unfolds.
    for (query, flags) in [("?fold=1", &["--fold", "1"][..]), ("", &[][..])] {
        let svg = server.get(&format!("/api/graph.svg{query}"));
        let run = featx(
            &[
                &["graph", "--model", "resnet18", "--format", "svg"][..],
                flags,
            ]
            .concat(),
        );
        assert_eq!(svg.body, run.stdout, "graph.svg{query}");
    }
    let open = String::from_utf8(server.get("/api/graph.svg?fold=1&open=layer1").body).unwrap();
    assert!(open.contains("data-name=\"layer1.0\"") && !open.contains("data-name=\"layer1\""));

    // Cache size is reported and within its limit.
    let info = server.get("/api/info").json();
    assert!(info["cache"]["bytes"].as_u64().unwrap() <= info["cache"]["limit"].as_u64().unwrap());
    assert!(server.stop().success());
}

#[test]
fn bad_requests_get_typed_json_errors_and_never_a_file() {
    let server = Server::start(&["--max-upload-mb", "1", "--max-pixels", "1000000"]);
    let error = |target: &str, status: u16| {
        let reply = server.get(target);
        assert_eq!(
            reply.status,
            status,
            "{target}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let body = reply.json();
        assert!(body["error"].is_string(), "{target}");
        assert!(
            !String::from_utf8_lossy(&reply.body).contains("root:"),
            "{target}"
        );
        body
    };
    let unknown = error("/api/picture?image=i0&node=layr1.0.conv1", 404);
    assert!(
        unknown["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "layer1.0.conv1")
    );
    let resolved = error("/api/resolve?node=layer9", 404);
    assert!(!resolved["suggestions"].as_array().unwrap().is_empty());
    assert_eq!(
        server.get("/api/resolve?node=layer1").json()["node"],
        "layer1.1.relu_1"
    );
    for target in [
        "/api/picture?image=../../etc/passwd&node=layer1",
        "/api/picture?image=%2e%2e%2f%2e%2e%2fetc%2fpasswd&node=layer1",
        "/api/picture?image=/etc/passwd&node=layer1",
        "/api/picture?image=i0&node=../../etc/passwd",
        "/api/features?image=i0&node=%2Fetc%2Fpasswd",
        "/api/picture?image=i7&node=layer1",
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/etc/passwd",
        "/api/unknown",
    ] {
        error(target, 404);
    }
    for target in [
        "/api/picture?image=i0%00&node=layer1",
        "/api/picture?image=i0&node=layer1%00.conv1",
        "/api/picture?image=i0&node=layer1&kind=sketch",
        "/api/picture?image=i0&node=layer1&page=-1",
        "/api/picture?image=i0",
        "/api/picture?image=i0&node=layer1,layer2",
        "/api/cam?image=i0&node=layer4&method=magic",
        "/api/cam?image=i0&node=fc&method=gradcam",
        "/api/cam?image=i0&node=layer4&method=gradcam&target=99999",
        "/api/graph.svg?fold=0",
    ] {
        error(target, 400);
    }

    // Uploads: a good one is usable; too big, not an image, truncated, or a bomb is not.
    let good = png(40, 30);
    let reply = http(&server.addr, "POST", "/api/images", &[], &good);
    assert_eq!(reply.status, 200);
    let id = reply.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        server
            .get(&format!("/api/picture?image={id}&node=layer1"))
            .status,
        200
    );
    assert_eq!(
        http(
            &server.addr,
            "POST",
            "/api/images",
            &[],
            &vec![7u8; 1_100_000]
        )
        .status,
        413
    );
    assert_eq!(
        http(
            &server.addr,
            "POST",
            "/api/images",
            &[],
            b"GIF89a not really"
        )
        .status,
        400
    );
    assert_eq!(
        http(
            &server.addr,
            "POST",
            "/api/images",
            &[],
            &good[..good.len() / 2]
        )
        .status,
        400
    );
    // 2000x2000 is 4 million pixels, past the cap of 1 million: refused before decoding.
    let mut bomb = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(2000, 2000)
        .write_to(&mut bomb, image::ImageFormat::Png)
        .unwrap();
    let bomb = bomb.into_inner();
    assert!(bomb.len() < 1 << 20);
    assert_eq!(
        http(&server.addr, "POST", "/api/images", &[], &bomb).status,
        400
    );
    assert_eq!(
        http(&server.addr, "DELETE", "/api/images", &[], &[]).status,
        405
    );

    // Uploads live in the server's own temporary folder, which goes with it.
    let kept = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("featx-explore-")
            })
            .count()
    };
    assert_eq!(kept(server.tmp.path()), 1);
    let (status, tmp) = server.stop_keeping_tmp();
    assert!(status.success(), "{status:?}");
    assert_eq!(kept(tmp.path()), 0, "the upload folder is removed on exit");
}

#[test]
fn only_loopback_hosts_same_origin_and_the_token_get_in() {
    let server = Server::start(&[]);
    let host = |h: &str| http(&server.addr, "GET", "/api/info", &[("Host", h)], &[]).status;
    assert_eq!(host("localhost:1"), 200);
    assert_eq!(host("attacker.example"), 400);
    assert_eq!(host("127.0.0.1.nip.io"), 400);
    let origin = |o: &str| http(&server.addr, "GET", "/api/info", &[("Origin", o)], &[]).status;
    assert_eq!(origin("http://attacker.example"), 400);
    assert_eq!(origin(&format!("http://{}", server.addr)), 200);
    drop(server);

    let server = Server::start(&["--token", "s3cret"]);
    assert!(server.url.ends_with("/?token=s3cret"), "{}", server.url);
    assert_eq!(server.get("/api/info").status, 401);
    assert_eq!(server.get("/?token=wrong").status, 401);
    let page = server.get("/?token=s3cret");
    assert_eq!(page.status, 200);
    let cookie = page.headers["set-cookie"]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(cookie, "featx_token=s3cret");
    let with_cookie = http(
        &server.addr,
        "GET",
        "/api/images",
        &[("Cookie", &cookie)],
        &[],
    );
    assert_eq!(with_cookie.status, 200);
    drop(server);

    // Bound beyond loopback, a random token is required.
    let server = Server::start(&["--bind", "0.0.0.0"]);
    let token = server
        .url
        .split("?token=")
        .nth(1)
        .expect("a token in the URL");
    assert_eq!(token.len(), 32);
    assert_eq!(server.get("/api/info").status, 401);
    assert_eq!(server.get(&format!("/api/info?token={token}")).status, 200);
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let server = Server::start(&["--queue", "1"]);
    let addr = &server.addr;
    let (slow, quick) = std::thread::scope(|s| {
        // ScoreCAM (a forward per channel of layer4) keeps the model busy for seconds.
        let slow = s.spawn(|| {
            let target = "/api/cam?image=i0&node=layer4&method=scorecam";
            http(addr, "GET", target, &[], &[]).status
        });
        std::thread::sleep(Duration::from_millis(500));
        // While it runs, one request waits in the queue of 1 and the others are turned away.
        let quick: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let r = http(addr, "GET", "/api/stats?image=i1&node=layer1", &[], &[]);
                    (r.status, r.headers.get("retry-after").cloned())
                })
            })
            .collect();
        let quick: Vec<(u16, Option<String>)> =
            quick.into_iter().map(|h| h.join().unwrap()).collect();
        (slow.join().unwrap(), quick)
    });
    assert_eq!(slow, 200);
    let busy: Vec<_> = quick.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(busy.len(), 3, "{quick:?}");
    assert!(busy.iter().all(|(_, r)| r.as_deref() == Some("1")));
    assert!(quick.iter().any(|(s, _)| *s == 200), "{quick:?}");
}

#[test]
fn load_test_200_requests_from_20_clients() {
    // 16 MiB keeps about one image's whole pass: the two images evict each other.
    let server = Server::start(&["--cache-mb", "16"]);
    let targets: Vec<String> = ["i0", "i1"]
        .iter()
        .flat_map(|id| {
            ["layer1", "layer2.0.conv1", "layer3", "layer4.1.bn2", "fc"]
                .iter()
                .map(move |node| format!("/api/picture?image={id}&node={node}"))
        })
        .chain([
            "/api/stats?image=i1&node=layer2".to_string(),
            "/api/nodes".into(),
        ])
        .collect();
    // What each answer must be, asked one at a time.
    let expected: Vec<Vec<u8>> = targets
        .iter()
        .map(|t| {
            let r = server.get(t);
            assert_eq!(r.status, 200, "{t}");
            r.body
        })
        .collect();
    let started = Instant::now();
    let latencies: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|client| {
                let (addr, targets, expected) = (&server.addr, &targets, &expected);
                s.spawn(move || {
                    (0..10)
                        .map(|i| {
                            let k = (client * 7 + i * 3) % targets.len();
                            let t0 = Instant::now();
                            let r = http(addr, "GET", &targets[k], &[], &[]);
                            assert_eq!(r.status, 200, "{}", targets[k]);
                            assert!(r.body == expected[k], "{}: another answer", targets[k]);
                            t0.elapsed().as_secs_f64() * 1e3
                        })
                        .collect::<Vec<f64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    eprintln!(
        "explore load: {} requests in {:.1} s, median {:.0} ms, p95 {:.0} ms",
        sorted.len(),
        started.elapsed().as_secs_f64(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 95 / 100]
    );
    assert_eq!(sorted.len(), 200);
    let info = server.get("/api/info").json();
    assert!(
        info["cache"]["bytes"].as_u64().unwrap() <= 16 << 20,
        "{info}"
    );
    assert!(server.stop().success());
}

/// The page in Debian's chromium over WebDriver: search a node, wait for its picture, and
/// check the bytes the browser got are `featx viz`'s. Skipped without chromedriver unless
/// `FEATX_REQUIRE_BROWSER=1`. With `FEATX_SCREENSHOT=path` the page is saved there.
#[test]
fn the_page_in_a_real_browser_shows_the_clis_picture() {
    let (Some(driver), Some(browser)) = (which("chromedriver"), which("chromium")) else {
        assert!(
            std::env::var_os("FEATX_REQUIRE_BROWSER").is_none(),
            "FEATX_REQUIRE_BROWSER is set but chromium/chromedriver are missing"
        );
        eprintln!("skipped: no chromium and chromedriver");
        return;
    };
    let server = Server::start(&[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut chromedriver = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": browser,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut connected = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match fantoccini::ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => {
                    connected = Some(client);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let client = connected.expect("chromedriver answers");
        let outcome = browse(&client, &server.url).await;
        let _ = client.close().await;
        outcome
    });
    let _ = chromedriver.kill();
    let _ = chromedriver.wait();
    let (shown, screenshot) = result.expect("the page works");
    assert!(
        shown == viz("chelsea.jpg", "layer1.0.conv1", &[]),
        "the browser's picture is not featx viz's"
    );
    let path = std::env::var_os("FEATX_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| server.tmp.path().join("explore.png"));
    std::fs::write(&path, &screenshot).unwrap();
    let shot = image::load_from_memory(&screenshot).unwrap();
    // The viewport of a 1280x800 window.
    assert!(
        shot.width() == 1280 && shot.height() > 600,
        "{}x{}",
        shot.width(),
        shot.height()
    );
}

/// Opens the page, searches `layer1.0.conv1`, waits for its picture and returns the picture's
/// bytes as the browser fetched them, and a screenshot.
async fn browse(
    client: &fantoccini::Client,
    url: &str,
) -> Result<(Vec<u8>, Vec<u8>), fantoccini::error::CmdError> {
    use fantoccini::Locator;
    client.goto(url).await?;
    let search = client.wait().for_element(Locator::Id("search")).await?;
    search.send_keys("layer1.0.conv1").await?;
    client
        .find(Locator::Css(
            "#search-form button, #search-form [type=submit]",
        ))
        .await?
        .click()
        .await?;
    // The selected box in the graph is the node's own, as text.
    client
        .wait()
        .at_most(Duration::from_secs(120))
        .for_element(Locator::Css("g.node.selected[data-name='layer1.0.conv1']"))
        .await?;
    let loaded = "const img = document.getElementById('picture');
        return img && img.complete && img.naturalWidth > 0 &&
               img.src.includes('node=layer1.0.conv1');";
    let deadline = Instant::now() + Duration::from_secs(120);
    while client.execute(loaded, vec![]).await? != Value::Bool(true) {
        assert!(Instant::now() < deadline, "the picture never loaded");
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(100));
    }
    let fetched = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.getElementById('picture').src)
               .then(r => r.arrayBuffer())
               .then(b => done(Array.from(new Uint8Array(b))));",
            vec![],
        )
        .await?;
    let bytes = fetched
        .as_array()
        .expect("bytes")
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    Ok((bytes, client.screenshot().await?))
}

fn which(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}
