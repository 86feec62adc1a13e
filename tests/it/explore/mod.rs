//! `featx explore`: the HTTP contract (pictures, features and CAMs byte-identical to the
//! commands), the guard (Host, Origin, token), hostile parameters and uploads, a full queue,
//! a load test, a clean shutdown, and the page in a real browser. This module starts servers
//! and speaks HTTP to them; each file below is one area.

mod browser;
mod contract;
mod hostile;
mod load;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{featx, fixture, stderr};

/// A running `featx explore`, stopped with SIGTERM when dropped.
pub(crate) struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    /// The URL line's URL.
    url: String,
    /// The folder the server's temporary files go to.
    tmp: tempfile::TempDir,
}

pub(crate) fn image(name: &str) -> String {
    fixture(&format!("images/{name}"))
        .to_str()
        .unwrap()
        .to_string()
}

impl Server {
    pub(crate) fn start(extra: &[&str]) -> Server {
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

    pub(crate) fn get(&self, target: &str) -> Reply {
        http(&self.addr, "GET", target, &[], &[])
    }

    /// Sends SIGTERM and waits for the exit status.
    pub(crate) fn stop(self) -> std::process::ExitStatus {
        self.stop_keeping_tmp().0
    }

    /// [`Server::stop`], handing over the server's temporary folder to look into.
    pub(crate) fn stop_keeping_tmp(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
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
pub(crate) struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request on a fresh connection, written byte for byte as given (so a test can
/// send any Host, Origin or encoded target), `Host: addr` unless a header names another.
pub(crate) fn http(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
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
pub(crate) fn resnet18(cmd: &str, args: &[&str]) -> std::process::Output {
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
pub(crate) fn viz(image_name: &str, node: &str, extra: &[&str]) -> Vec<u8> {
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

pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}
