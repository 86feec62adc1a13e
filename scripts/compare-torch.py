#!/usr/bin/env python3
"""Side-by-side timing of featx, torchvision's create_feature_extractor and the fastest CPU
runtimes (onnxruntime, tract), in one run.

    cargo build --release
    python3 scripts/compare-torch.py                      # torch already importable
    python3 scripts/compare-torch.py --venv /tmp/torchenv # installs torch there if needed

Every side gets the same weights (torch writes them, featx loads the .pth), the same input
size, the same thread count, and warm-up runs before timing. featx is timed in-process by
`featx bench` (weight loading and tracing excluded, as for torch). When `onnxruntime` and
`tract` are importable, the same torchvision model exported with `torch.onnx.export` (opset 17,
fixed batch) runs there too: the full forward as exported, and for "all nodes" the graph with
every node output made a graph output (how onnxruntime's users get intermediates; tract is
timed on the full forward only). Prints median ms per case, featx/torch and featx/fastest
(below 1 means featx is faster), then peak memory (max RSS of a fresh process) for extracting
every node at batch 8 (every tensor node: ViT's shape checks are nodes but not features, and
torch returns them as Python values), and last, for batch 1 in fresh processes, the first call
(weights already read) and the weight loading (torch.load + load_state_dict against featx's
load) of both sides (`--no-first` skips it). Not part of CI.
"""
import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# Seconds between the two sides, so neither measures the other's idle-spinning threads.
SETTLE_S = 1.0

CASES = [
    ("resnet18", "full forward", ["fc"]),
    ("resnet18", "conv1", ["conv1"]),
    ("resnet18", "layer3", ["layer3"]),
    ("resnet18", "layer3.0.conv1+layer4.0.conv1", ["layer3.0.conv1", "layer4.0.conv1"]),
    ("resnet18", "all nodes", "all"),
    ("alexnet", "full forward", ["fc"]),
    ("alexnet", "all nodes", "all"),
    ("mobilenet_v3_large", "full forward", ["classifier.3"]),
    ("mobilenet_v3_large", "all nodes", "all"),
    ("efficientnet_b0", "full forward", ["classifier.1"]),
    ("efficientnet_b0", "all nodes", "all"),
    ("efficientnet_v2_s", "full forward", ["classifier.1"]),
    ("efficientnet_v2_s", "all nodes", "all"),
    ("resnet50", "full forward", ["fc"]),
    ("resnet50", "all nodes", "all"),
    ("convnext_tiny", "full forward", ["classifier.2"]),
    ("convnext_tiny", "all nodes", "all"),
    ("vit_b_16", "full forward", ["heads.head"]),
    ("vit_b_16", "all nodes", "all"),
    ("squeezenet1_0", "full forward", ["flatten"]),
    ("squeezenet1_0", "all nodes", "all"),
    ("squeezenet1_1", "full forward", ["flatten"]),
    ("squeezenet1_1", "all nodes", "all"),
    ("mnasnet1_0", "full forward", ["classifier.1"]),
    ("mnasnet1_0", "all nodes", "all"),
    ("shufflenet_v2_x1_0", "full forward", ["fc"]),
    ("shufflenet_v2_x1_0", "all nodes", "all"),
    ("swin_t", "full forward", ["head"]),
    ("swin_t", "all nodes", "all"),
    ("swin_v2_t", "full forward", ["head"]),
    ("swin_v2_t", "all nodes", "all"),
    ("maxvit_t", "full forward", ["classifier.5"]),
    ("maxvit_t", "all nodes", "all"),
    ("googlenet", "full forward", ["fc"]),
    ("googlenet", "all nodes", "all"),
    ("inception_v3", "full forward", ["fc"]),
    ("inception_v3", "all nodes", "all"),
]

# Models whose all-nodes extraction peak memory is measured (batch 8).
PEAK_MODELS = ["resnet18", "resnet50", "convnext_tiny", "vit_b_16"]


def ensure_torch(venv):
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
        return
    except ImportError:
        if not venv:
            sys.exit("torch is not importable: pass --venv DIR to install it there")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        subprocess.check_call([py, "-m", "pip", "install", "-q", "torch", "torchvision"])
    os.execv(py, [py] + sys.argv)


def build_model(name):
    import torch.nn as nn
    import torchvision
    if name != "alexnet":
        return torchvision.models.get_model(name).eval()

    class AlexNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Sequential(nn.Conv2d(3, 96, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2))
            self.conv2 = nn.Sequential(nn.Conv2d(96, 256, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(3, 2))
            self.conv3 = nn.Sequential(
                nn.Conv2d(256, 384, 3, 1, 1), nn.ReLU(), nn.Conv2d(384, 384, 3, 1, 1), nn.ReLU(),
                nn.Conv2d(384, 256, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(3, 2))
            self.fc = nn.Sequential(
                nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
                nn.Dropout(0.5), nn.Linear(4096, 100))

        def forward(self, x):
            return self.fc(self.conv3(self.conv2(self.conv1(x))).view(-1, 9216))

    return AlexNet().eval()


def torch_median(model, nodes, batch, iters, warmup):
    import torch
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    if nodes == "all":
        nodes = get_graph_node_names(model)[1]
    extractor = create_feature_extractor(model, return_nodes=nodes)
    x = torch.rand(batch, 3, 224, 224)
    times = []
    with torch.no_grad():
        for i in range(warmup + iters):
            start = time.perf_counter()
            extractor(x)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def torch_first(name, weights, nodes, batch):
    """In this (fresh) process: torch.load + load_state_dict of `weights` into a constructed
    model, then the first and the steady call of a feature extractor for `nodes`, in ms."""
    import torch
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    model = build_model(name)
    start = time.perf_counter()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    load_ms = (time.perf_counter() - start) * 1000
    if nodes == "all":
        nodes = get_graph_node_names(model)[1]
    extractor = create_feature_extractor(model, return_nodes=nodes)
    x = torch.rand(batch, 3, 224, 224)
    times = []
    with torch.no_grad():
        for _ in range(4):
            start = time.perf_counter()
            extractor(x)
            times.append((time.perf_counter() - start) * 1000)
    return {"load_ms": load_ms, "first_ms": times[0], "steady_ms": statistics.median(times[1:])}


def export_onnx(model, batch, path):
    """The model as torch.onnx.export writes it at opset 17 (TorchScript exporter, fixed batch)."""
    import torch
    x = torch.rand(batch, 3, 224, 224)
    # Not under no_grad: there nn.MultiheadAttention takes its fused fast path
    # (`_native_multi_head_attention`), which the exporter cannot write.
    torch.onnx.export(model, x, path, opset_version=17, input_names=["x"], dynamo=False)


def every_output(path, out):
    """A copy of the ONNX file whose graph outputs are every node's outputs."""
    import onnx
    m = onnx.load(path)
    known = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for name in node.output:
            if name and name not in known:
                m.graph.output.append(onnx.ValueInfoProto(name=name))
                known.add(name)
    onnx.save(m, out)


def median_ms(run, iters, warmup):
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        run()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def onnxruntime_median(path, batch, threads, iters, warmup):
    import numpy as np
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {"x": np.random.rand(batch, 3, 224, 224).astype(np.float32)}
    return median_ms(lambda: session.run(None, feed), iters, warmup)


def tract_median(path, batch, iters, warmup):
    import numpy as np
    import tract
    onnx = tract.onnx()
    if hasattr(onnx, "model_for_path"):  # tract before 0.22
        model = onnx.model_for_path(path).into_optimized().into_runnable()
    else:  # into_model declutters and optimises
        model = onnx.load(path).into_model().into_runnable()
    x = np.random.rand(batch, 3, 224, 224).astype(np.float32)
    return median_ms(lambda: model.run([x]), iters, warmup)


def peers_available(wanted):
    found = []
    for name in wanted:
        try:
            __import__(name)
            if name == "onnxruntime":
                __import__("onnx")
            found.append(name)
        except ImportError:
            print(f"({name} is not importable: its column is left out)")
    return found


def featx_args(featx, model, weights, nodes, batch, iters, warmup):
    spec = nodes if nodes == "all" else ",".join(nodes)
    return [featx, "bench", "--model", model, "--weights", weights, "--batch", str(batch),
            "--nodes", spec, "--iters", str(iters), "--warmup", str(warmup), "--format", "json"]


def vm_hwm_mb():
    """Peak RSS of this process. (getrusage's ru_maxrss of a child started from this large
    process includes the parent's memory at spawn time, so each side reports its own.)"""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--featx", default="target/release/featx")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--venv", default=None)
    ap.add_argument("--models", default=None,
                    help="comma-separated models to time (default: every case's)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--peers", default="onnxruntime,tract",
                    help="runtimes timed beside torch when importable (empty: none)")
    ap.add_argument("--baseline", default=None,
                    help="another featx binary (e.g. a build of the previous commit) timed in the "
                         "same run; adds its ms and featx/baseline")
    ap.add_argument("--no-first", dest="first", action="store_false",
                    help="skip the first-call and weight-loading table (batch 1, fresh processes)")
    args = ap.parse_args()
    cases = [c for c in CASES if not args.models or c[0] in args.models.split(",")]
    ensure_torch(args.venv)
    import torch
    torch.set_num_threads(args.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), BURN_DEVICE="cpu")
    # Weights and ONNX exports take gigabytes: removed on exit, an error's included.
    tmp = tempfile.mkdtemp(prefix="featx-compare-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    weights = {}
    models = {}
    for name in dict.fromkeys(["resnet18"] + [model for model, _, _ in cases]):
        models[name] = build_model(name)
        weights[name] = os.path.join(tmp, f"{name}.pth")
        torch.save(models[name].state_dict(), weights[name])

    peers = peers_available([p for p in args.peers.split(",") if p])
    exports = {}

    def exported(model, batch, every):
        key = (model, batch, every)
        if key not in exports:
            plain = os.path.join(tmp, f"{model}_b{batch}.onnx")
            if not os.path.exists(plain):
                export_onnx(models[model], batch, plain)
            if every:
                every_output(plain, os.path.join(tmp, f"{model}_b{batch}_all.onnx"))
            exports[key] = plain if not every else os.path.join(tmp, f"{model}_b{batch}_all.onnx")
        return exports[key]

    def peer_ms(peer, model, nodes, label, batch):
        every = nodes == "all"
        if not every and label != "full forward":
            return None  # an intermediate node has no name the exported graph keeps
        if peer == "tract" and every:
            return None
        try:
            path = exported(model, batch, every)
            time.sleep(SETTLE_S)
            if peer == "onnxruntime":
                return onnxruntime_median(path, batch, args.threads, args.iters, args.warmup)
            return tract_median(path, batch, args.iters, args.warmup)
        except Exception as e:  # a peer that cannot take the model leaves its cell empty
            print(f"({peer} on {model} {label} b{batch}: {type(e).__name__}: {str(e)[:200]})",
                  file=sys.stderr)
            return None

    rows = []
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.iters} after {args.warmup} warm-up")
    peer_head = "".join(f" {p[:11] + ' ms':>14}" for p in peers)
    base_head = f" {'base ms':>9} {'featx/base':>10}" if args.baseline else ""
    print(f"{'model':18} {'case':32} {'batch':>5} {'torch ms':>9}{peer_head} {'featx ms':>9} "
          f"{'featx/torch':>11} {'featx/fastest':>13}" + base_head)
    for batch in [int(b) for b in args.batches.split(",")]:
        for model, label, nodes in cases:
            t = torch_median(models[model], nodes, batch, args.iters, args.warmup)
            others = {p: peer_ms(p, model, nodes, label, batch) for p in peers}
            # torch's OpenMP workers keep spinning for a while after the last parallel region;
            # on a 2-core machine they would take a core from the featx process started next.
            time.sleep(SETTLE_S)
            def featx_ms(binary):
                out = subprocess.run(featx_args(binary, model, weights[model], nodes, batch,
                                                args.iters, args.warmup),
                                     env=env, check=True, capture_output=True, text=True)
                return json.loads(out.stdout)["median_ms"]
            f = featx_ms(args.featx)
            fastest = min([t] + [v for v in others.values() if v is not None])
            row = {"model": model, "case": label, "batch": batch, "torch_ms": t,
                   "featx_ms": f, "ratio": f / t, "vs_fastest": f / fastest}
            row.update({f"{p}_ms": v for p, v in others.items()})
            cells = "".join(f" {v:>14.1f}" if v is not None else f" {'-':>14}"
                            for v in others.values())
            line = (f"{model:18} {label:32} {batch:>5} {t:>9.1f}{cells} {f:>9.1f} {f / t:>11.2f} "
                    f"{f / fastest:>13.2f}")
            if args.baseline:
                b = featx_ms(args.baseline)
                row.update(baseline_ms=b, vs_baseline=f / b)
                line += f" {b:>9.1f} {f / b:>10.2f}"
            rows.append(row)
            print(line, flush=True)

    peaks = {}
    for name in [m for m in PEAK_MODELS if m in weights]:
        snippet = ("import torch,importlib.util as u;"
                   "s=u.spec_from_file_location('c',%r);m=u.module_from_spec(s);s.loader.exec_module(m);"
                   "torch.set_num_threads(%d);m.torch_median(m.build_model(%r),'all',8,3,1);"
                   "print(m.vm_hwm_mb())" % (os.path.abspath(__file__), args.threads, name))
        torch_mb = float(subprocess.run([sys.executable, "-c", snippet], env=env, check=True,
                                        capture_output=True, text=True).stdout.split()[-1])
        out = subprocess.run(featx_args(args.featx, name, weights[name], "all", 8, 3, 1),
                             env=env, check=True, capture_output=True, text=True)
        featx_mb = json.loads(out.stdout)["peak_rss_mb"]
        peaks[name] = {"torch": torch_mb, "featx": featx_mb}
        print(f"peak RSS, {name} all nodes, batch 8: torch {torch_mb:.0f} MB, featx {featx_mb:.0f} MB "
              f"(ratio {featx_mb / torch_mb:.2f})")
    # The first call, what a user extracting one image waits for once the weights are read, and
    # the weight loading itself: each side in a fresh process, batch 1.
    firsts = []
    if args.first:
        print(f"\n{'model':18} {'case':12} {'torch first':>11} {'featx first':>11} "
              f"{'featx/torch':>11} {'featx first/steady':>18} {'torch load':>10} "
              f"{'featx load':>10} {'featx/torch':>11}")
    for model, label, nodes in [c for c in cases if args.first and c[1] in ("full forward", "all nodes")]:
        snippet = ("import json,torch,importlib.util as u;"
                   "s=u.spec_from_file_location('c',%r);m=u.module_from_spec(s);s.loader.exec_module(m);"
                   "torch.set_num_threads(%d);print(json.dumps(m.torch_first(%r,%r,%r,1)))"
                   % (os.path.abspath(__file__), args.threads, model, weights[model], nodes))
        time.sleep(SETTLE_S)
        t = json.loads(subprocess.run([sys.executable, "-c", snippet], env=env, check=True,
                                      capture_output=True, text=True).stdout.split("\n")[-2])
        time.sleep(SETTLE_S)
        out = subprocess.run(featx_args(args.featx, model, weights[model], nodes, 1, 3, 1),
                             env=env, check=True, capture_output=True, text=True)
        f = json.loads(out.stdout)
        row = {"model": model, "case": label, "torch": t,
               "featx": {k: f[k] for k in ("load_ms", "first_ms", "median_ms")}}
        firsts.append(row)
        print(f"{model:18} {label[:12]:12} {t['first_ms']:>11.1f} {f['first_ms']:>11.1f} "
              f"{f['first_ms'] / t['first_ms']:>11.2f} {f['first_ms'] / f['median_ms']:>18.2f} "
              f"{t['load_ms']:>10.1f} {f['load_ms']:>10.1f} {f['load_ms'] / t['load_ms']:>11.2f}",
              flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "peak_rss_mb": peaks, "first_call": firsts}, fh, indent=1)


if __name__ == "__main__":
    main()
