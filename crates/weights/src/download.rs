use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::{DownloadError, Result, WeightsError};

/// Environment variable overriding where downloaded weights are cached.
pub const CACHE_DIR_ENV: &str = "FEATX_CACHE_DIR";
/// Environment variable overriding the base URL weights are downloaded from.
pub const BASE_URL_ENV: &str = "FEATX_WEIGHTS_URL";
/// torchvision's download location.
pub const DEFAULT_BASE_URL: &str = "https://download.pytorch.org/models/";

/// A published weights file: its name under the base URL and the start of its SHA-256, which
/// torch hub also puts in the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteWeights {
    /// File name, e.g. `resnet18-f37072fd.pth`.
    pub file_name: String,
    /// Hex prefix the file's SHA-256 must start with.
    pub sha256_prefix: String,
}

/// Where downloads are cached: `$FEATX_CACHE_DIR`, else the platform's cache directory
/// (`~/.cache/featx/weights` on Linux).
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("featx")
            .join("weights"),
    }
}

/// The base URL: `$FEATX_WEIGHTS_URL`, else torchvision's.
pub fn base_url() -> String {
    std::env::var(BASE_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string())
}

/// The cached, verified file for `remote`, downloading it first if needed.
///
/// The download goes to `<name>.part` beside the final file and resumes from there after an
/// interruption; the file is renamed into place only once its SHA-256 matches, so the cache
/// never holds a half or wrong file under the final name. A cached file is re-verified on use.
pub fn fetch(
    remote: &RemoteWeights,
    base_url: &str,
    cache: &Path,
    progress: bool,
) -> Result<PathBuf> {
    let target = cache.join(&remote.file_name);
    if target.is_file() {
        if verify(&target, &remote.sha256_prefix)? {
            return Ok(target);
        }
        // A corrupted cache entry: drop it and download again.
        fs::remove_file(&target).map_err(|source| WeightsError::Io {
            path: target.clone(),
            source,
        })?;
    }
    let url = format!("{}/{}", base_url.trim_end_matches('/'), remote.file_name);
    let fail = |source: DownloadError| WeightsError::Download {
        url: url.clone(),
        source,
        place_at: target.clone(),
    };
    fs::create_dir_all(cache).map_err(|source| {
        fail(DownloadError::CacheDir {
            path: cache.to_path_buf(),
            source,
        })
    })?;
    let part = cache.join(format!("{}.part", remote.file_name));
    download_resuming(&url, &part, progress).map_err(fail)?;
    if !verify(&part, &remote.sha256_prefix)? {
        let found = sha256_hex(&part)?;
        let _ = fs::remove_file(&part);
        return Err(WeightsError::Checksum {
            url,
            expected_prefix: remote.sha256_prefix.clone(),
            found,
        });
    }
    fs::rename(&part, &target).map_err(|source| WeightsError::Io {
        path: target.clone(),
        source,
    })?;
    Ok(target)
}

/// Appends the rest of `url` to `part`, asking the server to resume where `part` ends.
fn download_resuming(
    url: &str,
    part: &Path,
    progress: bool,
) -> std::result::Result<(), DownloadError> {
    let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_secs(20)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request
        .call()
        .map_err(|e| DownloadError::Request(Box::new(e)))?;
    let status = response.status().as_u16();
    let (append, offset) = match status {
        206 => (true, have),
        200 => (false, 0),
        // The part file already holds everything the server has.
        416 if have > 0 => return Ok(()),
        other => return Err(DownloadError::Status(other)),
    };
    let length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(write_error(part))?;
    let bar = progress_bar(progress, length.map(|l| l + offset), offset);
    let mut body = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = body.read(&mut buf).map_err(|source| DownloadError::Read {
            received: offset + received,
            source,
        })?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).map_err(write_error(part))?;
        received += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(length) = length
        && received < length
    {
        return Err(DownloadError::Truncated {
            received: offset + received,
            expected: offset + length,
        });
    }
    Ok(())
}

/// Wraps a write failure on `path`.
fn write_error(path: &Path) -> impl Fn(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// A progress bar on stderr with size, speed and ETA; hidden when stderr is not a terminal.
fn progress_bar(enabled: bool, total: Option<u64>, done: u64) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message("downloading weights");
    bar.set_position(done);
    bar
}

fn sha256_hex(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Whether the file's SHA-256 starts with `prefix` (torch hub's `check_hash`).
pub fn verify(path: &Path, prefix: &str) -> Result<bool> {
    Ok(sha256_hex(path)?.starts_with(&prefix.to_ascii_lowercase()))
}
