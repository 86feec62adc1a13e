#!/usr/bin/env python3
"""Times `featx cam` against pytorch-grad-cam side by side on the CPU, and checks they agree.

    cargo build --release
    python3 scripts/compare-cam.py [--featx target/release/featx] [--venv /tmp/camenv]

Both sides explain the same ResNet18 (torchvision's, randomly initialised, saved as .pth) on
the same 1x3x224x224 input at `layer4`, for each image's top class, with `--threads` threads
(default 2). The torch side is the `cam(input_tensor=x, targets=None)` call alone, after one
warm-up; the featx side is the same computation in `featx cam --repeat` (one warm-up run, then
the median of `--iters`; loading and drawing excluded), and, for reference, the whole `featx
cam` process once (loading the weights, running, writing the PNG and the raw maps). ScoreCAM is
512 masked forward passes per image (pytorch-grad-cam batches 16, featx 32).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def ensure(venv):
    if venv is None:
        return
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    probe = subprocess.run([python, "-c", "import torch, torchvision, pytorch_grad_cam, safetensors"],
                           capture_output=True)
    if probe.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "torch", "torchvision", "grad-cam",
                        "safetensors", "numpy"], check=True)
    if os.path.realpath(sys.executable) != os.path.realpath(python):
        os.execv(python, [python] + sys.argv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--featx", default="target/release/featx")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--venv", default=None)
    args = ap.parse_args()
    ensure(args.venv)

    import numpy as np
    import pytorch_grad_cam
    import safetensors.numpy
    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tmp = tempfile.mkdtemp()
    model = torchvision.models.resnet18().eval()
    weights = os.path.join(tmp, "resnet18.pth")
    torch.save(model.state_dict(), weights)
    x = torch.randn(1, 3, 224, 224)
    npy = os.path.join(tmp, "x.npy")
    np.save(npy, x.numpy())
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), BURN_DEVICE="cpu")

    print(f"torch {torch.__version__}, {args.threads} threads, resnet18 layer4, 1x3x224x224, "
          f"median of {args.iters}")
    print(f"{'method':10} {'torch s':>9} {'featx s':>9} {'featx/torch':>11} {'process s':>10} {'mean |diff|':>12}")
    for method, cls in (("gradcam", pytorch_grad_cam.GradCAM), ("scorecam", pytorch_grad_cam.ScoreCAM)):
        with cls(model=model, target_layers=[model.layer4]) as cam:
            cam.batch_size = 16
            ref = cam(input_tensor=x, targets=None)  # warm-up
            times = []
            for _ in range(args.iters):
                start = time.perf_counter()
                ref = cam(input_tensor=x, targets=None)
                times.append(time.perf_counter() - start)
        t = statistics.median(times)
        time.sleep(1.0)  # let torch's OpenMP workers stop spinning
        raw = os.path.join(tmp, f"{method}.safetensors")
        cmd = [args.featx, "cam", "--model", "resnet18", "--weights", weights, "--input", npy,
               "--node", "layer4", "--method", method, "--target", "top",
               "--out", os.path.join(tmp, f"{method}.png"), "--raw", raw]
        out = subprocess.run(cmd + ["--repeat", str(args.iters + 1)], env=env, check=True,
                             capture_output=True, text=True)
        line = [l for l in out.stderr.splitlines() if l.startswith("cam: median")][-1]
        # The first of the runs warms up; the median of all is what `--repeat` reports.
        f = float(line.split()[2]) / 1e3
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        process = time.perf_counter() - start
        ours = safetensors.numpy.load_file(raw)["cam"]
        diff = float(np.abs(ours - ref).mean())
        print(f"{method:10} {t:>9.3f} {f:>9.3f} {f / t:>11.2f} {process:>10.2f} {diff:>12.2e}")


if __name__ == "__main__":
    main()
