#!/usr/bin/env bash
# One-command GPU check for a machine with a real GPU and a Vulkan driver: builds featx in
# release with wgpu (or takes prebuilt binaries), runs the wgpu parity tests (every node of both
# models against torchvision's fixtures, CPU/GPU agreement), then a short benchmark, and prints
# one summary table naming the adapter.
#
# Usage: scripts/gpu-check.sh [output-dir]
#   FEATX_BIN=path/to/featx FEATX_WGPU_TEST=path/to/wgpu-test-binary  use prebuilt binaries
#   (built with `cargo build --release --features wgpu` and
#   `cargo test --release --features wgpu --test wgpu --no-run`; the test binary finds the
#   fixtures and the featx binary at the paths it was built with).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check-out}"
mkdir -p "$out"

bin="${FEATX_BIN:-}"
tests="${FEATX_WGPU_TEST:-}"
if [ -z "$bin" ] || [ -z "$tests" ]; then
  echo "== build (release, wgpu)"
  start=$(date +%s)
  cargo build --release --features wgpu 2>&1 | tail -1
  tests=$(cargo test --release --features wgpu --test wgpu --no-run 2>&1 \
    | grep -oE 'target/release/deps/wgpu-[0-9a-f]+' | tail -1)
  bin=target/release/featx
  echo "release build: $(( $(date +%s) - start )) s" | tee "$out/build.txt"
fi

echo "== adapter"
# --device auto names the adapter it picked; a tiny run is enough.
"$bin" bench --model resnet18 --weights random --device auto --batch 1 --nodes conv1 --iters 1 \
  --format json 2>&1 >/dev/null | grep '^device:' | tee "$out/adapter.txt" || true

echo "== wgpu parity tests"
# On a real GPU the 144 MiB fc.0 binding of AlexNet fits, so every node is checked.
start=$(date +%s)
FEATX_REQUIRE_GPU=1 FEATX_GPU_LARGE_BUFFERS=1 "$tests" --nocapture --test-threads 1 2>&1 \
  | tee "$out/parity.log" | grep -E "largest|test result|panicked|^test " || true
echo "parity tests: $(( $(date +%s) - start )) s" | tee -a "$out/parity.log"

echo "== benchmark"
printf "%-8s %-6s %-10s %6s %10s %10s %10s %12s\n" model device nodes batch first_ms median_ms min_ms images_per_s | tee "$out/bench.txt"
run() { # device batch nodes iters; a failed case is reported and the rest still run
  if ! json=$("$bin" bench --model resnet18 --weights random --device "$1" --batch "$2" --nodes "$3" \
      --iters "$4" --format json 2>"$out/bench-stderr.txt"); then
    echo "resnet18 $1 $3 batch $2: FAILED: $(tail -1 "$out/bench-stderr.txt")" | tee -a "$out/bench.txt"
    return 0
  fi
  echo "$json" >>"$out/bench.jsonl"
  echo "$json" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%-8s %-6s %-10s %6d %10.1f %10.2f %10.2f %12.1f" % (r["model"], r["device"], sys.argv[1], r["batch"], r["first_ms"], r["median_ms"], r["min_ms"], r["images_per_s"]))' "$3" \
    | tee -a "$out/bench.txt"
}
for batch in 1 8 64; do
  run wgpu "$batch" fc 10
  run wgpu "$batch" layer3 10
done
# The same shapes again in a new process: first_ms now shows what the driver's on-disk shader
# cache saves (burn's in-process cache is gone).
run wgpu 8 fc 10
for batch in 1 8; do
  run cpu "$batch" fc 5
  run cpu "$batch" layer3 5
done

if python3 -c 'import torch, torchvision; assert torch.cuda.is_available()' 2>/dev/null; then
  echo "== torchvision on CUDA (reference, same machine)"
  python3 - <<'PY' | tee "$out/torch.txt" || true
import time, torch, torchvision
m = torchvision.models.resnet18().cuda().eval()
print(torch.__version__, torch.cuda.get_device_name())
for b in (1, 8, 64):
    x = torch.randn(b, 3, 224, 224, device="cuda")
    with torch.no_grad():
        for _ in range(5): m(x)
        torch.cuda.synchronize(); ts = []
        for _ in range(20):
            t = time.perf_counter(); m(x); torch.cuda.synchronize(); ts.append(time.perf_counter() - t)
    ts.sort(); print("torch cuda fp32 resnet18 fc batch %d: median %.2f ms, %.1f images/s" % (b, ts[10]*1e3, b / ts[10]))
PY
fi
echo "== summary"
cat "$out/adapter.txt" "$out/bench.txt"
grep -E "test result|largest" "$out/parity.log" || true
