#!/usr/bin/env python3
"""Checks featx's values for an ONNX model against onnxruntime's, node by node.

    python scripts/compare-onnx.py --featx target/release/featx \\
        --model DIR/resnet18_tv_ts17.onnx --reference DIR/resnet18_tv_ts17.safetensors

The reference is what `scripts/make_onnx_fixtures.py` writes beside each model (`--big DIR`
makes torchvision's resnet18 and mobilenet_v2): the input under `input` and every float node
output under its ONNX value name. featx extracts the same values from the same input (saved as
a .npy batch) and the script prints, per value, the largest difference and the tolerance the
tests use (1e-4, or 2e-5 of the value's largest magnitude), then a summary. Needs numpy and
safetensors; exits 1 when a value is out of tolerance.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--featx", default="target/release/featx")
    ap.add_argument("--model", required=True)
    ap.add_argument("--reference", required=True)
    args = ap.parse_args()

    ref = load_file(args.reference)
    x = ref.pop("input")
    with tempfile.TemporaryDirectory() as tmp:
        npy = os.path.join(tmp, "input.npy")
        np.save(npy, x.astype(np.float32))
        # The value names featx has nodes for (values folded at load have none).
        listing = subprocess.run(
            [args.featx, "nodes", "--model", args.model, "--format", "json"],
            check=True, capture_output=True, text=True,
        )
        nodes = json.loads(listing.stdout)["nodes"]
        known = {n["name"] for n in nodes} | {n.get("output") for n in nodes}
        wanted = [k for k in ref if k in known]
        out = os.path.join(tmp, "f.safetensors")
        subprocess.run(
            [args.featx, "extract", "--model", args.model, "--input", npy,
             "--nodes", ",".join(wanted), "--out", out],
            check=True,
        )
        got = load_file(out)

    worst = 0.0
    bad = 0
    for key in wanted:
        a, b = got[key].reshape(-1), ref[key].reshape(-1)
        tol = max(1e-4, 2e-5 * float(np.abs(b).max(initial=0.0)))
        err = float(np.abs(a - b).max(initial=0.0))
        worst = max(worst, err / tol)
        if err > tol:
            bad += 1
            print(f"OUT {key}: max |diff| {err:.3g} > {tol:.3g}")
    print(f"{len(wanted)} of {len(ref)} values compared ({len(ref) - len(wanted)} folded at load); "
          f"{bad} out of tolerance; worst error {worst:.3f} of its tolerance")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
