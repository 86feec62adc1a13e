//! Every route against the command it mirrors: pictures, CAMs, `.npy`, node list, graph.

use super::{Server, image, resnet18, viz};
use crate::support::{featx, read_safetensors};

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
