"""Writes an external ONNX model the way a research team would hand one over: the PyTorch
reference model of bench/peers/torch_model.py (GRU, H = 16, self-attention with the last
state as query, NN head; PyTorch's own GRU, reset gate after the recurrent product),
exported with torch.onnx, plus the meta.json contract factorstream serves it by, plus the
scores PyTorch itself gives on a fixed set of sequences (reference.json). The test
test/onnx-parity.test.ts serves the folder on the onnx engine and compares.

    ~/.cache/factorstream/torch-venv/bin/python bench/peers/export_external.py test/fixtures/external-torch

The sequences are factorstream's randomSequences(n, T, seed) (src/model/onnx/compare.ts),
reproduced here: xorshift32 uniforms, Box-Muller normals clipped at +-5, float32.
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from torch_model import Model  # noqa: E402

FEATURES = ["ret", "range", "closeLocation", "closeVsVwap", "relVolume", "realizedVol", "realizedSkew", "upVolumeShare",
            "priceVolumeCorr", "buyVolumeShare", "largeNetBuyShare", "avgTradeSize", "orderImbalance", "relSpread"]


def random_sequences(n: int, t: int, f: int, seed: int) -> np.ndarray:
    out = np.zeros(n * t * f, dtype=np.float32)
    s = (seed & 0xFFFFFFFF) or 1

    def uniform() -> float:
        nonlocal s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        return (s + 0.5) / 4294967296

    for i in range(0, out.size, 2):
        r = math.sqrt(-2 * math.log(uniform()))
        a = 2 * math.pi * uniform()
        out[i] = max(-5.0, min(5.0, r * math.cos(a)))
        if i + 1 < out.size:
            out[i + 1] = max(-5.0, min(5.0, r * math.sin(a)))
    return out.reshape(n, t, f)


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/external-torch"
    os.makedirs(out_dir, exist_ok=True)
    t, f, n, seed = 12, len(FEATURES), 200, 5
    torch.manual_seed(3)
    model = Model("gru", "attention", f, 16, dense=8)
    # Non-zero biases everywhere, so that a bias the runtime misplaced would show.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.eval()
    x = torch.from_numpy(random_sequences(n, t, f, seed))
    with torch.inference_mode():
        scores = model(x).numpy()
    torch.onnx.export(model, (x[:4],), os.path.join(out_dir, "model.onnx"), input_names=["features"], output_names=["score"],
                      dynamic_axes={"features": {0: "batch"}, "score": {0: "batch"}}, opset_version=17, dynamo=False)
    meta = {
        "name": "torch-gru-attention",
        "version": "torch-reference-1",
        "featureSet": "baseline-v1",
        "features": FEATURES,
        "freq": "10m",
        "T": t,
        "normalisation": {"method": "robust-z", "clip": 5, "minCoverage": 0.5},
        "orthogonal": False,
        "onnx": {"file": "model.onnx", "input": "features", "output": "score", "source": "external"},
        "trainedWith": f"PyTorch {torch.__version__} (bench/peers/export_external.py)",
    }
    with open(os.path.join(out_dir, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    with open(os.path.join(out_dir, "reference.json"), "w") as fh:
        json.dump({"n": n, "seed": seed, "torch": torch.__version__, "scores": [float(v) for v in scores]}, fh)
        fh.write("\n")
    print(f"wrote {out_dir}: model.onnx, meta.json, reference.json ({n} PyTorch scores)")


if __name__ == "__main__":
    main()
