#!/usr/bin/env bash
# Prints the cargo option that builds featx's `wgpu-spirv` feature against a patched copy of
# cubecl-spirv 0.11.3, preparing the copy (under target/) first:
#
#   cargo build --release --features wgpu-spirv $(scripts/cubecl-spirv-patch.sh)
#
# Why: cubecl-spirv 0.11.3 declares shared memory wrongly on Vulkan devices without
# VK_KHR_workgroup_memory_explicit_layout (`lower_shared_implicit` gives the Workgroup variable
# its pointer type, so it becomes a pointer to a pointer, and indexes it as an array). Every
# kernel with shared memory (featx's GPU convolutions, burn's tuned matmuls and convolutions)
# is then invalid SPIR-V there (spirv-val: "OpInBoundsAccessChain reached non-composite type"),
# and Mesa's lavapipe crashes compiling it. Devices with the extension (NVIDIA's, AMD's) take
# the other, correct path; the copy changes nothing for them. cubecl's main branch still has
# the same code (checked 2026-11). The patch swaps the two types back.
#
# cargo records the patch in Cargo.lock: callers restore it afterwards (build-gpu-steps.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.11.3
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
source_dir=$(find "$registry" -maxdepth 2 -type d -name "cubecl-spirv-$version" 2>/dev/null | head -1)
if [ -z "$source_dir" ]; then
  cargo fetch --quiet >&2
  source_dir=$(find "$registry" -maxdepth 2 -type d -name "cubecl-spirv-$version" | head -1)
fi
copy="$PWD/target/patched/cubecl-spirv-$version"
if [ ! -f "$copy/.patched" ]; then
  rm -rf "$copy"
  mkdir -p "$(dirname "$copy")"
  cp -r "$source_dir" "$copy"
  file="$copy/src/ops/memory.rs"
  wrong_var='GlobalVariableOp::new(ctx, value_ty, StorageClass::Workgroup, name.clone(), None)'
  wrong_addr='AddressOfOp::new(ctx, ty, name)'
  if ! grep -qF "$wrong_var" "$file" || ! grep -qF "$wrong_addr" "$file"; then
    echo "cubecl-spirv $version: the lines to patch are not where expected" >&2
    exit 1
  fi
  sed -i \
    -e 's/GlobalVariableOp::new(ctx, value_ty, StorageClass::Workgroup, name.clone(), None)/GlobalVariableOp::new(ctx, ty, StorageClass::Workgroup, name.clone(), None)/' \
    -e 's/AddressOfOp::new(ctx, ty, name)/AddressOfOp::new(ctx, value_ty, name)/' \
    "$file"
  touch "$copy/.patched"
fi
echo "--config=patch.crates-io.cubecl-spirv.path=\"$copy\""
