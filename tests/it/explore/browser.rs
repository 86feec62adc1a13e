//! The page in a real browser over WebDriver.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Server, viz};

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
