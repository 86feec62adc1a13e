#!/usr/bin/env bash
# One-command GPU check for a machine with a real GPU and a Vulkan driver:
# builds featx in release with wgpu, runs the wgpu parity tests (every node of both models
# against torchvision's fixtures, CPU/GPU agreement), then a short benchmark, and prints one
# summary table. Usage: scripts/gpu-check.sh [output-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check-out}"
mkdir -p "$out"

echo "== adapter"
(command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName|apiVersion" || true) | tee "$out/adapter.txt"

echo "== build (release, wgpu)"
start=$(date +%s)
cargo build --release --features wgpu 2>&1 | tail -1
echo "release build: $(( $(date +%s) - start )) s" | tee "$out/build.txt"

echo "== wgpu parity tests"
# On a real GPU the 144 MiB fc.0 binding of AlexNet fits, so every node is checked.
FEATX_REQUIRE_GPU=1 FEATX_GPU_LARGE_BUFFERS=1 cargo test --release --features wgpu --test wgpu -- --nocapture 2>&1 \
  | tee "$out/parity.log" | grep -E "largest|test result|panicked" || true

echo "== benchmark"
bin=target/release/featx
printf "%-8s %-6s %-10s %6s %10s %10s %10s %12s\n" model device nodes batch first_ms median_ms min_ms images_per_s | tee "$out/bench.txt"
run() { # device batch nodes iters
  "$bin" bench --model resnet18 --weights random --device "$1" --batch "$2" --nodes "$3" --iters "$4" --format json \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%-8s %-6s %-10s %6d %10.1f %10.2f %10.2f %12.1f" % (r["model"], r["device"], sys.argv[1], r["batch"], r["first_ms"], r["median_ms"], r["min_ms"], r["images_per_s"]))' "$3" \
    | tee -a "$out/bench.txt"
}
for batch in 1 8 64; do
  run wgpu "$batch" fc 10
  run wgpu "$batch" layer3 10
done
for batch in 1 8; do
  run cpu "$batch" fc 5
  run cpu "$batch" layer3 5
done
echo "== summary written to $out/"
