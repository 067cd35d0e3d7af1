#!/usr/bin/env bash
# The inference benchmark's GPU figures, on a machine with an NVIDIA GPU, Python, PyTorch
# and onnxruntime but no Node (the `device` machine of this workplace): the PyTorch
# reference on CUDA (inference and training) and on the machine's CPUs, and onnxruntime
# (the onnx engine's runtime core, same version) on factorstream's exported graphs
# (bench/peers/export-graphs.ts, made beforehand where Node is) and on PyTorch's own.
# Writes JSON files into $OUT (default /tmp/gpu-check); bench/RESULTS.md records them.
#
#     bash bench/peers/gpu-check.sh GRAPHS_DIR
set -uo pipefail
cd "$(dirname "$0")/../.."
graphs="${1:-.device/graphs}"
out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c 'import os, torch, onnxruntime as o; print(f"torch {torch.__version__} cuda {torch.cuda.is_available()} onnxruntime {o.__version__} {o.get_available_providers()} cpus {os.cpu_count()}")' | tee -a "$out/gpu.txt"
echo "== PyTorch on CUDA (inference and training)"
python3 bench/peers/torch_model.py --device cuda --n 5000 --steps 5 | tee "$out/torch-cuda.json"
echo "== PyTorch on the CPU (inference), exporting its graphs"
python3 bench/peers/torch_model.py --device cpu --n 5000 --steps 3 --inference-only --export-dir "$graphs" | tee "$out/torch-cpu.json"
echo "== onnxruntime on factorstream's and PyTorch's graphs"
python3 bench/peers/ort_bench.py --graphs "$graphs" --n 5000 | tee "$out/ort.json"
