#!/usr/bin/env bash
# Builds the release binaries scripts/gpu-check.sh compares, one per step of the GPU build, so
# that each step's effect is measured on the same card in one run:
#
#   featx-plain     burn's wgpu backend alone (WGSL, no autotune, no fusion)
#   featx-autotune  + autotune (kernels picked per shape, results persisted between processes)
#   featx-fusion    + fusion alone (element-wise ops fused into one launch), no autotune
#   featx-wgsl      autotune + fusion, WGSL on every adapter
#   featx-wgpu      autotune + fusion + the SPIR-V compiler on Vulkan adapters: the `wgpu`
#                   build the tests run and featx ships
#
# plus the integration test binary (gpu-check.sh runs its wgpu:: tests), featx-kernels' unit
# tests (each GPU convolution against burn's, f32, f16 and f32 multiplied in f16) and the
# criterion bench binary of the last of the wgsl and wgpu steps built.
#
# Usage: scripts/build-gpu-steps.sh [out-dir] [step ...]    (default: gpu-bins, every step)
# Each step builds in its own target folder (target/gpu-<step>), so rebuilding one does not
# invalidate the others. Expect 15-25 minutes per step on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-bins}"
shift || true
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(plain autotune fusion wgsl wgpu)
mkdir -p "$out"

features_of() {
  case "$1" in
    plain) echo wgpu-plain ;;
    autotune) echo wgpu-autotune ;;
    fusion) echo wgpu-fusion ;;
    wgsl) echo wgpu-wgsl ;;
    wgpu) echo wgpu ;;
    *) echo "unknown step '$1' (plain, autotune, fusion, wgsl, wgpu)" >&2; exit 2 ;;
  esac
}

last=""
for step in "${steps[@]}"; do
  features=$(features_of "$step")
  target="target/gpu-$step"
  start=$(date +%s)
  echo "== $step (--features $features)"
  CARGO_TARGET_DIR="$target" cargo build --release --features "$features" --bin featx
  cp "$target/release/featx" "$out/featx-$step"
  echo "$step: $(( $(date +%s) - start )) s"
  if [ "$step" = wgsl ] || [ "$step" = wgpu ]; then last="$step"; fi
done

if [ -n "$last" ]; then
  features=$(features_of "$last")
  target="target/gpu-$last"
  echo "== test and bench binaries (--features $features)"
  test_bin=$(CARGO_TARGET_DIR="$target" cargo test --release --features "$features" \
    --test it --no-run 2>&1 \
    | grep -oE "$target/release/deps/it-[0-9a-f]+" | tail -1)
  bench_bin=$(CARGO_TARGET_DIR="$target" cargo bench --features "$features" \
    --bench extract --no-run 2>&1 \
    | grep -oE "$target/release/deps/extract-[0-9a-f]+" | tail -1)
  kernels_bin=$(CARGO_TARGET_DIR="$target" cargo test --release --workspace --features "$features" \
    --lib --no-run 2>&1 \
    | grep -oE "$target/release/deps/featx_kernels-[0-9a-f]+" | tail -1)
  cp "$test_bin" "$out/wgpu-test"
  cp "$kernels_bin" "$out/kernels-test"
  cp "$bench_bin" "$out/extract-bench"
fi
# A GPU machine may take only a small upload: xz-compressed copies beside the binaries
# (scripts/gpu-check.sh unpacks them), with their total size. Upload the fewest steps that
# answer the question at hand (featx-wgpu and featx-wgsl first) if the total is too large.
if command -v xz >/dev/null; then
  for f in "$out"/featx-* "$out"/wgpu-test "$out"/kernels-test "$out"/extract-bench; do
    case "$f" in *.xz) continue ;; esac
    [ -f "$f" ] && xz -T0 -9 -k -f "$f"
  done
  echo "compressed: $(du -ch "$out"/*.xz | tail -1 | cut -f1)"
fi
ls -la "$out"
