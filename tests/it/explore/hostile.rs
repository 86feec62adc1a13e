//! Bad input, hostile parameters and uploads, and who gets in (Host, Origin, token).

use std::path::Path;

use super::{Server, http, png};

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
    assert_eq!(upload(&server, &vec![7u8; 1_100_000]), 413);
    assert_eq!(upload(&server, b"GIF89a not really"), 400);
    assert_eq!(upload(&server, &good[..good.len() / 2]), 400);
    // 2000x2000 is 4 million pixels, past the cap of 1 million: refused before decoding.
    let mut bomb = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(2000, 2000)
        .write_to(&mut bomb, image::ImageFormat::Png)
        .unwrap();
    let bomb = bomb.into_inner();
    assert!(bomb.len() < 1 << 20);
    assert_eq!(upload(&server, &bomb), 400);
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

/// The status of `POST /api/images` with `body`.
fn upload(server: &Server, body: &[u8]) -> u16 {
    http(&server.addr, "POST", "/api/images", &[], body).status
}
