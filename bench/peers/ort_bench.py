"""onnxruntime (Python) on factorstream's exported graphs: the same runtime core as the
onnx engine's onnxruntime-node of the same version, for machines without Node (the GPU
machine of bench/peers/gpu-check.sh). Times each graph in a folder at N sequences,
median of --runs after a warm-up, on each execution provider present (CUDA where the
onnxruntime-gpu package is installed; the CPU provider always). Prints one JSON object.

    python3 bench/peers/ort_bench.py --graphs DIR --n 5000
"""
import argparse
import glob
import json
import os
import time

import numpy as np
import onnxruntime as ort


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--graphs", required=True)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    out = {"onnxruntime": ort.__version__, "available": ort.get_available_providers(), "cpus": os.cpu_count(), "n": a.n, "results": []}
    rng = np.random.default_rng(1)
    for path in sorted(glob.glob(os.path.join(a.graphs, "*.onnx"))):
        for provider in providers:
            sess = ort.InferenceSession(path, providers=[provider])
            inp = sess.get_inputs()[0]
            t, f = inp.shape[1], inp.shape[2]
            x = rng.standard_normal((a.n, t, f), dtype=np.float32)
            sess.run(None, {inp.name: x})
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                sess.run(None, {inp.name: x})
                times.append(time.perf_counter() - t0)
            out["results"].append({"graph": os.path.basename(path), "provider": provider, "T": t, "seconds": sorted(times)[len(times) // 2]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
