#!/usr/bin/env python3
"""Reads a `featx extract` dataset folder the way a downstream tool would (numpy + safetensors,
the csv module for the index), checks it against its summary.json, and prints what it read as
one JSON object.

Usage: read-features.py OUT_DIR [FILE_PREFIX]   (FILE_PREFIX: e.g. shard-0-of-4. for a shard)

It is also the example of how to load featx output in Python:
    rows of output KEY for image at index.csv row r  ->  load_file(OUT/r.file)[KEY][int(r.row)]
"""
import csv
import json
import os
import re
import sys

import numpy as np
from safetensors.numpy import load_file


def npy_name(key):
    return re.sub(r"[^A-Za-z0-9._-]", "_", key) + ".npy"


def main():
    out = sys.argv[1]
    prefix = sys.argv[2] if len(sys.argv) > 2 else ""
    with open(os.path.join(out, prefix + "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, summary["index"]), newline="") as f:
        index = list(csv.DictReader(f))
    keys = [o["key"] for o in summary["outputs"]]

    parts = {}

    def part(name):
        if name not in parts:
            path = os.path.join(out, name)
            if summary["format"] == "safetensors":
                parts[name] = load_file(path)
            else:
                parts[name] = {k: np.load(os.path.join(path, npy_name(k))) for k in keys}
        return parts[name]

    rows = {k: [] for k in keys}
    ok = [r for r in index if r["status"] == "ok"]
    for r in ok:
        tensors = part(r["file"])
        for k in keys:
            rows[k].append(tensors[k][int(r["row"])])
    stored = sum(next(iter(t.values())).shape[0] for t in parts.values()) if parts else 0
    assert stored == len(ok), f"parts hold {stored} rows, the index lists {len(ok)}"
    assert len(ok) == summary["ok"], (len(ok), summary["ok"])

    result = {
        "ok": len(ok),
        "failed": sum(r["status"] == "failed" for r in index),
        "first_ok_path": ok[0]["path"] if ok else None,
        "outputs": {},
    }
    for o in summary["outputs"]:
        a = np.stack(rows[o["key"]]).astype(np.float64)
        assert list(a.shape) == o["shape"], (o["key"], a.shape, o["shape"])
        assert a.dtype == np.float64 and rows[o["key"]][0].dtype == np.float32
        mean = float(a.mean())
        assert abs(mean - o["mean"]) <= 1e-6 * max(1.0, abs(o["mean"])), (o["key"], mean, o["mean"])
        assert float(a.min()) == o["min"] and float(a.max()) == o["max"], o["key"]
        result["outputs"][o["key"]] = {
            "shape": list(a.shape),
            "mean": mean,
            "first_row_head": a[0].ravel()[:8].tolist(),
            "last_row_head": a[-1].ravel()[:8].tolist(),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
