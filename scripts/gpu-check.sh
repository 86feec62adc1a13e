#!/usr/bin/env bash
# One-command GPU check for a machine with a real GPU and a Vulkan driver. Takes the prebuilt
# binaries of scripts/build-gpu-steps.sh (a GPU machine may have no network and no Rust), and
# prints tables naming the adapter:
#   1. parity: the wgpu tests (every node against torchvision's fixtures, CPU/GPU agreement,
#      the f16 tolerance) with the card's large bindings, and featx's GPU convolutions against
#      burn's shape by shape (which f16 kernel ran: cooperative or tiled);
#   2. steps: ResNet18 batch 1/8/64 for each GPU build step (plain, autotune, fusion,
#      autotune+fusion on WGSL, + SPIR-V: the wgpu build), f32, on burn's convolutions (what
#      the steps change);
#   3. kernels x precision: the last build in f32, f16 and mixed, on featx's GPU convolution
#      (the default; at f16 and mixed on cooperative matrices where the adapter has them, which
#      the convolution column names as gpu-cooperative), f16 on featx's register-tiled one
#      (featx-tiled: what the cooperative matrices win) and on burn's (mixed is f32 there);
#   4. warm start: the first call in a fresh process with empty caches, then in a second
#      process (driver shader cache plus persisted autotune results);
#   5. a dataset run on the GPU (a folder of JPEGs, --pool avg): images/s and its limit;
#   6. torchvision on CUDA on the same card, fp32 (TF32 convolutions, cuDNN's default) and
#      fp16, when torch with CUDA is installed;
#   7. benches/ on wgpu (criterion), when the bench binary is there: ResNet18 on both
#      kernel choices, and each of its convolution shapes on featx's kernel and burn's.
#
# Usage: scripts/gpu-check.sh [bins-dir] [output-dir]     (default: gpu-bins gpu-check-out)
#   bins-dir may hold the binaries xz-compressed (NAME.xz, as build-gpu-steps.sh leaves them);
#   they are unpacked into output-dir/bins first.
#   GPU_CHECK_BATCHES="1 8 64" GPU_CHECK_ITERS=20 GPU_CHECK_IMAGES=512   the defaults; smaller
#   values make a quick smoke run (on lavapipe, say) that exercises every section.
#   GPU_CHECK_SECTIONS="1 1b 2 3 4 5 6 7"   the sections to run (all by default): a second run
#   after a partial one repeats only what is missing.
#   GPU_CHECK_BENCH_TIME="0.5 1"   criterion's warm-up and measurement seconds per benchmark in
#   section 7 (criterion's own 3 and 5 would make it the longest section by far).
set -uo pipefail
cd "$(dirname "$0")/.."
bins="${1:-gpu-bins}"
out="${2:-gpu-check-out}"
mkdir -p "$out"
batches="${GPU_CHECK_BATCHES:-1 8 64}"
iters="${GPU_CHECK_ITERS:-20}"
n_images="${GPU_CHECK_IMAGES:-512}"
sections="${GPU_CHECK_SECTIONS:-1 1b 2 3 4 5 6 7}"
read -r warm_up measure <<<"${GPU_CHECK_BENCH_TIME:-0.5 1}"
want() { case " $sections " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# Unpack compressed binaries (an upload to a GPU machine is kept small that way).
if ls "$bins"/*.xz >/dev/null 2>&1; then
  mkdir -p "$out/bins"
  for f in "$bins"/*.xz; do
    name=$(basename "$f" .xz)
    [ -x "$out/bins/$name" ] || { xz -dc "$f" >"$out/bins/$name" && chmod +x "$out/bins/$name"; }
  done
  for f in "$bins"/*; do
    case "$f" in *.xz) ;; *) [ -f "$f" ] && [ ! -e "$out/bins/$(basename "$f")" ] && ln -s "$(realpath "$f")" "$out/bins/" ;; esac
  done
  bins="$out/bins"
fi

steps=()
for step in plain autotune fusion wgsl wgpu; do
  [ -x "$bins/featx-$step" ] && steps+=("$step")
done
if [ ${#steps[@]} -eq 0 ]; then
  echo "no featx-<step> binaries in $bins: run scripts/build-gpu-steps.sh first" >&2
  exit 2
fi
best="${steps[-1]}"
bin="$bins/featx-$best"
# Each step tunes into its own cache, so one step's tuning never warms another's first call.
cache_of() { echo "$out/cache-$1"; }

echo "== adapter"
FEATX_CACHE_DIR=$(cache_of probe) "$bin" bench --model resnet18 --device auto --batch 1 \
  --nodes conv1 --iters 1 --format json 2>&1 >/dev/null | grep '^device:' | tee "$out/adapter.txt"

if want 1 && [ -x "$bins/wgpu-test" ]; then
  echo "== 1. parity (wgpu tests, build $best)"
  start=$(date +%s)
  FEATX_REQUIRE_GPU=1 FEATX_GPU_LARGE_BUFFERS=1 FEATX_CACHE_DIR=$(cache_of tests) \
    "$bins/wgpu-test" wgpu:: --nocapture --test-threads 1 2>&1 \
    | tee "$out/parity.log" | grep -E "largest|closest|test result|panicked|^test " || true
  echo "parity tests: $(( $(date +%s) - start )) s" | tee -a "$out/parity.log"
fi

if want 1b && [ -x "$bins/kernels-test" ]; then
  echo "== 1b. GPU convolutions against burn's (f32, and f16 on cooperative matrices where the adapter has them)"
  FEATX_REQUIRE_GPU=1 "$bins/kernels-test" gpu:: --nocapture --test-threads 1 2>&1 \
    | tee "$out/kernels.log" | grep -E "relative error|test result|panicked" || true
fi

header() {
  printf "%-10s %-11s %-9s %6s %10s %10s %10s %12s  %s\n" build kernels precision batch first_ms \
    median_ms min_ms images_per_s convolution | tee -a "$1"
}
# run TABLE STEP KERNELS PRECISION BATCH ITERS: one featx bench process; a failed case is
# reported and the rest still run.
run() {
  local table=$1 step=$2 kernels=$3 precision=$4 batch=$5 iters=$6 json
  if ! json=$(FEATX_CACHE_DIR=$(cache_of "$step") "$bins/featx-$step" bench --model resnet18 \
      --device wgpu --gpu-kernels "$kernels" --precision "$precision" --batch "$batch" \
      --nodes fc --iters "$iters" --format json 2>"$out/stderr.txt"); then
    echo "$step $kernels $precision batch $batch: FAILED: $(tail -1 "$out/stderr.txt")" \
      | tee -a "$table"
    return 0
  fi
  echo "$json" >>"$out/bench.jsonl"
  echo "$json" | python3 -c 'import json,sys; r=json.load(sys.stdin); conv=",".join(k for k in r.get("kernels", {}) if k.startswith("gpu-") or k == "burn"); print("%-10s %-11s %-9s %6d %10.1f %10.2f %10.2f %12.1f  %s" % (sys.argv[1], r["gpu_kernels"], r["precision"], r["batch"], r["first_ms"], r["median_ms"], r["min_ms"], r["images_per_s"], conv))' "$step" \
    | tee -a "$table"
}

if want 2; then
  echo "== 2. steps (ResNet18 to fc, f32, burn's convolutions)"
  header "$out/steps.txt"
  for step in "${steps[@]}"; do
    for batch in $batches; do run "$out/steps.txt" "$step" burn f32 "$batch" "$iters"; done
  done
fi

if want 3; then
  echo "== 3. kernels x precision (build $best)"
  header "$out/precision.txt"
  for kernels in featx featx-tiled burn; do
    case "$kernels" in
      featx) precisions="f32 f16 mixed" ;;
      # featx's register-tiled kernel at f16, beside its cooperative one: what tensor cores
      # win (its f32 is featx's f32, its mixed multiplies in f32).
      featx-tiled) precisions="f16" ;;
      # burn's convolutions have no mixed mode: it would repeat the f32 rows.
      burn) precisions="f32 f16" ;;
    esac
    for precision in $precisions; do
      for batch in $batches; do
        run "$out/precision.txt" "$best" "$kernels" "$precision" "$batch" "$iters"
      done
    done
  done
fi

if want 4; then
  echo "== 4. warm start (build $best, batch 8; first_ms is the first forward of the process)"
  for step in "$best"; do
    rm -rf "$(cache_of warm)"
    mkdir -p "$(cache_of warm)/shaders"
    # NVIDIA's and Mesa's on-disk shader caches, emptied for the fresh process.
    export __GL_SHADER_DISK_CACHE_PATH="$(cache_of warm)/shaders" MESA_SHADER_CACHE_DIR="$(cache_of warm)/shaders"
    for process in fresh second; do
      printf "%-7s " "$process" | tee -a "$out/warm.txt"
      FEATX_CACHE_DIR=$(cache_of warm) "$bins/featx-$step" bench --model resnet18 --device wgpu \
        --batch 8 --nodes fc --iters "$iters" --format json 2>/dev/null \
        | python3 -c 'import json,sys; r=json.load(sys.stdin); print("first %.0f ms, then median %.2f ms" % (r["first_ms"], r["median_ms"]))' \
        | tee -a "$out/warm.txt"
    done
    unset __GL_SHADER_DISK_CACHE_PATH MESA_SHADER_CACHE_DIR
  done
fi

if want 5; then
  echo "== 5. dataset run on the GPU (build $best, $n_images JPEGs, --pool avg)"
  images="$out/images-$n_images"
  if [ ! -d "$images" ]; then
    mkdir -p "$images"
    for i in $(seq 1 "$n_images"); do
      cp tests/fixtures/images/chelsea.jpg "$images/img$(printf %04d "$i").jpg"
    done
  fi
  rm -rf "$out/dataset"
  FEATX_CACHE_DIR=$(cache_of "$best") "$bin" extract --model resnet18 --weights random \
    --device wgpu --input "$images" --nodes layer4 --pool avg --batch-size 64 \
    --out "$out/dataset" --quiet 2>&1 | tee "$out/dataset.txt" || true
fi

if want 6 && python3 -c 'import torch, torchvision; assert torch.cuda.is_available()' 2>/dev/null; then
  echo "== 6. torchvision on CUDA (reference, same card)"
  python3 - <<'PY' | tee "$out/torch.txt" || true
import time, torch, torchvision
print(torch.__version__, torch.cuda.get_device_name(), "cudnn.allow_tf32 =", torch.backends.cudnn.allow_tf32)
for dtype in (torch.float32, torch.float16):
    m = torchvision.models.resnet18().cuda().eval().to(dtype)
    for b in (1, 8, 64):
        x = torch.randn(b, 3, 224, 224, device="cuda", dtype=dtype)
        with torch.no_grad():
            for _ in range(5): m(x)
            torch.cuda.synchronize(); ts = []
            for _ in range(20):
                t = time.perf_counter(); m(x); torch.cuda.synchronize(); ts.append(time.perf_counter() - t)
        ts.sort(); print("torch cuda %s resnet18 fc batch %d: median %.2f ms, %.1f images/s" % (str(dtype).split(".")[1], b, ts[10]*1e3, b / ts[10]))
PY
fi

if want 7 && [ -x "$bins/extract-bench" ]; then
  echo "== 7. benches/ on wgpu (criterion, resnet18)"
  FEATX_CACHE_DIR=$(cache_of "$best") "$bins/extract-bench" --bench 'wgpu' \
    --warm-up-time "$warm_up" --measurement-time "$measure" 2>&1 \
    | grep -E "^(resnet18|conv)|time:" | tee "$out/criterion.txt" || true
fi

echo "== summary"
cat "$out/adapter.txt" "$out/steps.txt" "$out/precision.txt" "$out/warm.txt" 2>/dev/null
tail -2 "$out/dataset.txt" 2>/dev/null
cat "$out/torch.txt" 2>/dev/null
