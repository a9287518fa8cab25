#!/usr/bin/env bash
# The gpu target on a CUDA machine: the shipped models through ONNX Runtime's CUDA provider and Keras at batch 1 and
# 256, and the same machine's CPU for comparison. Needs `pip install '.[gpu]'` (onnxruntime-gpu with CUDA 13 and
# cuDNN 9), a Keras backend with GPU support (TensorFlow's, or JAX's/PyTorch's with KERAS_BACKEND set) and the test
# split: --data-dir / EDGECNN_DATA_DIR, or a test_split.npz beside each manifest.
#
#   KERAS_BACKEND=jax bash benchmarks/gpu.sh benchmarks/results models/mnist models/fashion_mnist
#
# Writes OUT/gpu.{json,md,png} (batch 1), OUT/gpu_batch256.{json,md} and OUT/gpu_host_cpu.json.
# EDGECNN sets the command (default: edgecnn), e.g. EDGECNN="python3 -m edgecnn" on a machine without an install.
set -euo pipefail
out=${1:?usage: gpu.sh OUT_DIR RUN_DIR...}
shift
read -r -a edgecnn <<< "${EDGECNN:-edgecnn}"
"${edgecnn[@]}" bench "$@" --target gpu --runs 500 --warmup 50 \
  --json "$out/gpu.json" --md "$out/gpu.md" --plot "$out/gpu.png"
"${edgecnn[@]}" bench "$@" --target gpu --batch 256 --runs 200 --warmup 20 \
  --json "$out/gpu_batch256.json" --md "$out/gpu_batch256.md"
"${edgecnn[@]}" bench "$@" --target cpu --runs 500 --warmup 50 --json "$out/gpu_host_cpu.json"
