//! A full queue, and many clients at once.

use std::time::{Duration, Instant};

use super::{Server, http};

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
