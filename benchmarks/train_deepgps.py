"""deepGPS throughput and memory: ``python -m benchmarks.train_deepgps [--steps 2] [--warmup 1] [--device cpu] [--config paper]``.

Prints one JSON line for :meth:`DeepGPSConfig.paper` (208×208, U-Net 64…1024, ESM2-650M
input of 1280) with

* ``train_images_s``: AdamW training steps at batch 32 (forward, L1 + cross-entropy, backward,
  update), after ``--warmup`` untimed steps;
* ``infer_images_s``: forward passes in eval mode without gradients at batch 128;
* ``peak_rss_mb``: the process's peak resident memory (``ru_maxrss``) after each phase;
* ``wall_s`` / ``cpu_s`` of each phase (user + system CPU time of the process), so that a
  timing on a shared machine can be judged: cpu_s / wall_s well below the thread count means
  the process was waiting for the CPU.

``--config small`` measures the chapter's ``ci`` model (64×64, widths × 1/8) instead.

Cost: a 208×208 image costs about 62 GFLOP forward (about 186 GFLOP for a training step), so
one training step at batch 32 is about 6 TFLOP and one inference step at batch 128 about
8 TFLOP: minutes per step on a laptop CPU. ``--steps 1 --warmup 0`` gives a first number.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from atlaskit.models.deepgps import DeepGPSConfig, DeepGPSModel
from benchmarks._common import peak_rss_mb


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _timed(fn, steps: int, device: torch.device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    w0, c0 = time.perf_counter(), _cpu_s()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - w0, _cpu_s() - c0


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per phase")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before each phase")
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--infer-batch", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--config", choices=["paper", "small"], default="paper")
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    torch.manual_seed(0)
    cfg = DeepGPSConfig.paper("single-2") if args.config == "paper" else DeepGPSConfig.small("single-2", 1280)
    model = DeepGPSModel(cfg).to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    s = cfg.image_size
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.0)

    seq = torch.randn(args.train_batch, cfg.seq_dim, device=device)  # (B, 1280)
    nuc = torch.rand(args.train_batch, 1, s, s, device=device).contiguous(memory_format=fmt)  # (B, 1, S, S)
    tgt = torch.rand(args.train_batch, 1, s, s, device=device)
    lab = torch.randint(0, cfg.num_classes, (args.train_batch,), device=device)

    def train_step():
        losses = model.compute_losses(seq, nuc, tgt, lab)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()

    model.train()
    for _ in range(args.warmup):
        train_step()
    tw, tc = _timed(train_step, args.steps, device)
    rss_train = round(peak_rss_mb(), 1)
    from benchmarks._common import flop_efficiency

    efficiency = flop_efficiency(train_step, args.train_batch, args.steps * args.train_batch / tw, device)

    iseq = torch.randn(args.infer_batch, cfg.seq_dim, device=device)
    inuc = torch.rand(args.infer_batch, 1, s, s, device=device).contiguous(memory_format=fmt)
    model.eval()

    def infer_step():
        with torch.no_grad():
            model(iseq, inuc)

    for _ in range(args.warmup):
        infer_step()
    iw, ic = _timed(infer_step, args.steps, device)
    result = {
        "benchmark": "train_deepgps",
        "config": args.config,
        "image_size": s,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "channels_last": args.channels_last,
        "train": {"batch": args.train_batch, "steps": args.steps, "images_s": round(args.steps * args.train_batch / tw, 2),
                  "wall_s": round(tw, 2), "cpu_s": round(tc, 2), "peak_rss_mb": rss_train, **efficiency},
        "infer": {"batch": args.infer_batch, "steps": args.steps, "images_s": round(args.steps * args.infer_batch / iw, 2),
                  "wall_s": round(iw, 2), "cpu_s": round(ic, 2), "peak_rss_mb": round(peak_rss_mb(), 1)},
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
