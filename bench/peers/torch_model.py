"""PyTorch CPU reference of factorstream's model (src/model/architecture.ts), for the
model benchmark: the same GRU/LSTM (H units, one layer), the same heads (last state;
scaled dot-product self-attention with the last state as the only query; residual
attention: LayerNorm(last state + attention)), Dense(relu) -> Dropout -> Dense(1), and the
same training step (one date's cross-section, negative Pearson IC, Adam).

Prints one JSON object: inference seconds for N sequences at each T, and training
samples/s at batch B, per head, with the thread count torch used. Run by
`npm run bench -- model` when the venv exists (bench/peers/setup.sh), or by hand:

    ~/.cache/factorstream/torch-venv/bin/python bench/peers/torch_model.py --n 5000 --batch 1024
"""
import argparse
import json
import math
import time
import warnings

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, h: int, residual: bool):
        super().__init__()
        self.wq = nn.Linear(h, h, bias=False)
        self.wk = nn.Linear(h, h, bias=False)
        self.wv = nn.Linear(h, h, bias=False)
        self.residual = residual
        self.norm = nn.LayerNorm(h, eps=1e-5) if residual else None
        self.scale = 1.0 / math.sqrt(h)

    def forward(self, states: torch.Tensor) -> torch.Tensor:  # [B, T, H] -> [B, H]
        last = states[:, -1:, :]
        scores = torch.matmul(self.wq(last), self.wk(states).transpose(1, 2)) * self.scale
        out = torch.matmul(torch.softmax(scores, dim=-1), self.wv(states))
        if self.residual:
            out = self.norm(last + out)
        return out.squeeze(1)


class Model(nn.Module):
    def __init__(self, arch: str, head: str, f: int, h: int, dense: int = 32, dropout: float = 0.1):
        super().__init__()
        self.rnn = (nn.GRU if arch == "gru" else nn.LSTM)(f, h, batch_first=True)
        self.head = head
        self.attention = None if head == "last" else Attention(h, head == "residual")
        self.nn = nn.Sequential(nn.Linear(h, dense), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dense, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(x)
        pooled = states[:, -1, :] if self.attention is None else self.attention(states)
        return self.nn(pooled).squeeze(-1)


def ic_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = pred - pred.mean()
    q = y - y.mean()
    return -(p * q).sum() / (p.norm() * q.norm() + 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--features", type=int, default=14)
    ap.add_argument("--arch", default="gru")
    ap.add_argument("--threads", type=int, default=0, help="0: torch's default (one per core)")
    ap.add_argument("--inference-only", action="store_true", help="skip the training steps")
    ap.add_argument("--export-dir", default="", help="also write each timed model as ONNX (torch-T<T>-<head>.onnx), same weights")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(dev), "n": a.n, "batch": a.batch, "results": []}
    for t in (40, 120):
        for head in ("last", "attention", "residual"):
            model = Model(a.arch, head, a.features, a.hidden).to(dev)
            x = torch.randn(a.n, t, a.features, device=dev)
            model.eval()
            with torch.inference_mode():
                model(x[:64])  # warm-up
                model(x)
                sync()
                times = []
                for _ in range(a.steps):
                    t0 = time.perf_counter()
                    model(x)
                    sync()
                    times.append(time.perf_counter() - t0)
            if a.export_dir:
                warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
                torch.onnx.export(model.cpu(), (x[:4].cpu(),), f"{a.export_dir}/torch-T{t}-{head}.onnx", input_names=["features"], output_names=["score"],
                                  dynamic_axes={"features": {0: "batch"}, "score": {0: "batch"}}, opset_version=17, dynamo=False)
                model.to(dev)
            if a.inference_only:
                out["results"].append({"T": t, "head": head, "inferenceSeconds": sorted(times)[len(times) // 2]})
                continue
            model.train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            xb = torch.randn(a.batch, t, a.features, device=dev)
            yb = torch.randn(a.batch, device=dev)
            loss = ic_loss(model(xb), yb)  # warm-up step
            loss.backward()
            opt.step()
            t0 = time.perf_counter()
            for _ in range(a.steps):
                opt.zero_grad()
                loss = ic_loss(model(xb), yb)
                loss.backward()
                opt.step()
            sync()
            train_s = (time.perf_counter() - t0) / a.steps
            out["results"].append({"T": t, "head": head, "inferenceSeconds": sorted(times)[len(times) // 2], "trainSamplesPerSecond": a.batch / train_s})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
