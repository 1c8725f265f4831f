"""DeepYeast network throughput: training and inference images per second, and peak memory.

Run from the repository root::

    python -m benchmarks.train_deepyeast                    # the paper's network on the CPU
    python -m benchmarks.train_deepyeast --preset small     # the chapter's ci network
    python -m benchmarks.train_deepyeast --device cuda      # on a GPU (bf16 autocast, channels-last)

Training steps use the paper's optimiser (SGD, momentum 0.9, weight decay 5e-4) on random
2 × 64 × 64 inputs at ``--batch-size`` (default 32); inference runs in eval mode without
gradients at ``--infer-batch-size`` (default 128). The first ``--warmup`` steps are not timed.
Prints one JSON line, then a short table; wall time and process CPU time are both reported
(timings on a shared machine are noisy).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time

from benchmarks._common import efficiency_line, flop_efficiency, peak_rss_mb


def main(argv=None) -> dict:
    import torch

    from atlaskit.models.deepyeast import DeepYeastConfig, DeepYeastNet, deepyeast_step
    from atlaskit.train import resolve_device

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=["paper", "small"], default="paper")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--infer-batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5, help="timed training steps (and inference batches)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if min(args.batch_size, args.infer_batch_size, args.steps) < 1 or args.warmup < 0:
        ap.error("sizes and --steps must be positive, --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    cfg = DeepYeastConfig.paper() if args.preset == "paper" else DeepYeastConfig.small(0.125, dropout=0.0)
    torch.manual_seed(0)
    model = DeepYeastNet(cfg).to(device)
    fmt = torch.channels_last
    model = model.to(memory_format=fmt)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    x = torch.rand(args.batch_size, 2, 64, 64, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, cfg.n_classes, (args.batch_size,), device=device)
    model.train()
    def train_step():
        with amp:
            loss = deepyeast_step(model, (x, y))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
        train_step()
    sync()
    train_wall, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    efficiency = flop_efficiency(train_step, args.batch_size, args.steps * args.batch_size / train_wall, device)

    xi = torch.rand(args.infer_batch_size, 2, 64, 64, device=device).contiguous(memory_format=fmt)
    model.eval()
    with torch.no_grad():
        for step in range(args.warmup + args.steps):
            if step == args.warmup:
                sync()
                t1, c1 = time.perf_counter(), time.process_time()
            with amp:
                model(xi)
        sync()
    infer_wall, infer_cpu = time.perf_counter() - t1, time.process_time() - c1

    n_train, n_infer = args.steps * args.batch_size, args.steps * args.infer_batch_size
    result = {
        "benchmark": "train_deepyeast",
        "preset": args.preset,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_batch": args.batch_size,
        "train_images_per_s": n_train / train_wall,
        "train_wall_s": train_wall,
        "train_cpu_s": train_cpu,
        "infer_batch": args.infer_batch_size,
        "infer_images_per_s": n_infer / infer_wall,
        "infer_wall_s": infer_wall,
        "infer_cpu_s": infer_cpu,
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
        **efficiency,
    }
    print(json.dumps(result))
    print(f"DeepYeast {args.preset} ({result['parameters']:,} parameters) on {device}, {result['threads']} threads")
    print(f"  training  batch {args.batch_size:4d}: {result['train_images_per_s']:8.1f} images/s "
          f"(wall {train_wall:.2f} s, CPU {train_cpu:.2f} s for {n_train} images)")
    print(f"  inference batch {args.infer_batch_size:4d}: {result['infer_images_per_s']:8.1f} images/s "
          f"(wall {infer_wall:.2f} s, CPU {infer_cpu:.2f} s for {n_infer} images)")
    print(efficiency_line(result))
    print(f"  peak RSS {result['peak_rss_mb']:.0f} MB" + (f", peak GPU {result['peak_gpu_mb']:.0f} MB" if cuda else ""))
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
