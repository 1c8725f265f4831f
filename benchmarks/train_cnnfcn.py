"""CNN / FCN throughput and memory on CPU: ``python -m benchmarks.train_cnnfcn [--steps 2] [--config paper]``.

For each model of the CNN-vs-FCN chapter (:mod:`atlaskit.models.cnnfcn`), in its own process (so
that peak memory is its own), prints one JSON line with

* ``train_images_s``: training throughput (forward, binary cross-entropy, backward, Adam step) at
  batch 32, the paper's optimiser, after one warm-up step;
* ``infer_images_s``: inference throughput (eval mode, no gradients, sigmoid confidences; for
  the FCN the max of each heat map) at batch 128;
* ``peak_rss_mb``: peak resident memory of the process (``ru_maxrss``), which includes the
  ~0.3 GB of the Python + torch runtime;
* wall and CPU seconds per step, torch threads, parameters.

``--config paper`` (default) is the paper's configuration (4 × 256 × 256 input, kernels 32 … 512,
FC 1024-1024, 16 × 16 heat maps); ``--config ci`` the chapter's ``ci`` preset (128 × 128, width ×¼).
Inputs are random tensors: the numbers measure the networks, not the data pipeline.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor

from benchmarks._common import peak_rss_mb


def _measure(kind: str, config: str, steps: int, train_batch: int, infer_batch: int, threads: int | None) -> dict:
    import torch

    from atlaskit.models.cnnfcn import CnnFcnConfig, build_model, cnn_step, fcn_step

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = CnnFcnConfig.paper() if config == "paper" else CnnFcnConfig.scaled(128, 0.25)
    model = build_model(kind, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = cnn_step if kind == "cnn" else fcn_step
    g = torch.Generator().manual_seed(0)
    x = torch.rand((train_batch, *cfg.input_shape), generator=g)  # (B, 4, S, S)
    y = (torch.rand((train_batch, cfg.num_classes), generator=g) < 0.2).float()  # (B, 13)
    maps = y[:, :, None, None] * (torch.rand((train_batch, 1, cfg.heatmap_size, cfg.heatmap_size), generator=g) < 0.3)

    def train_step():
        loss = step(model, (x, y, maps))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    train_step()  # warm-up (allocations, kernel selection)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        train_step()
    tw, tc = (time.perf_counter() - w0) / steps, (time.process_time() - c0) / steps
    from benchmarks._common import flop_efficiency

    efficiency = flop_efficiency(train_step, train_batch, train_batch / tw)

    model.eval()
    xi = torch.rand((infer_batch, *cfg.input_shape), generator=g)
    with torch.no_grad():
        model.predict_proba(xi)  # warm-up
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            model.predict_proba(xi)
    iw, ic = (time.perf_counter() - w0) / steps, (time.process_time() - c0) / steps
    return {
        "model": kind.upper(), "config": config, "input": list(cfg.input_shape),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_batch": train_batch, "train_images_s": round(train_batch / tw, 2),
        "train_step_wall_s": round(tw, 3), "train_step_cpu_s": round(tc, 3),
        "infer_batch": infer_batch, "infer_images_s": round(infer_batch / iw, 2),
        "infer_batch_wall_s": round(iw, 3), "infer_batch_cpu_s": round(ic, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "cpus": os.cpu_count(), "machine": platform.machine(), **efficiency,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=("paper", "ci"), default="paper")
    ap.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--infer-batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--models", default="cnn,fcn")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error("--steps must be >= 1")
    ctx = mp.get_context("spawn")
    for kind in args.models.split(","):
        # a fresh process per model, so that its peak RSS is its own; errors propagate here
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
            result = ex.submit(_measure, kind.strip(), args.config, args.steps, args.train_batch,
                               args.infer_batch, args.threads).result()
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
