#!/usr/bin/env bash
# The PyTorch CPU peer for `npm run bench -- model`: a virtual environment with torch and
# numpy from PyPI, outside the repository (about 5 GB: PyPI's Linux torch wheel brings its
# CUDA libraries even when only the CPU is used). Not part of npm test or CI.
set -euo pipefail
venv="${FACTORSTREAM_TORCH_VENV:-$HOME/.cache/factorstream/torch-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet torch numpy
"$venv/bin/python" -c 'import torch; print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, in '"$venv"'")'
