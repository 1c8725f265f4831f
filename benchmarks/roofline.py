"""Where each chapter's ``ci`` training step spends its time: compute, memory traffic or overhead.

Run from the repository root::

    python -m benchmarks.roofline                 # every chapter's ci model, 1 thread (as the chapters run)
    python -m benchmarks.roofline --models cytoself,deepyeast --steps 20 --threads 2
    python -m benchmarks.roofline --before        # the step as it was before issue #24
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
        python -m benchmarks.roofline             # with the chapters' kernels' malloc settings

For each model, built as its chapter builds it at ``scale="ci"`` (same configuration, batch size,
optimizer and memory format; random inputs of the chapter's shapes), a training step (forward,
loss, backward, optimizer update) is timed over ``--steps`` steps after ``--warmup``, in CPU
seconds of this process (on a machine shared with other work a wall clock counts the others'
time too; with one thread the two agree on a quiet machine). Then, on one more step each:

* its floating-point work (:func:`atlaskit.profiling.count_flops`) -> achieved GFLOP/s, and that
  as a fraction of this machine's fp32 GEMM throughput measured in the same process;
* its memory traffic (:func:`atlaskit.profiling.count_memory_traffic`: each operator reading its
  inputs and writing its outputs once) -> achieved GB/s, as a fraction of the measured STREAM
  triad bandwidth (:func:`atlaskit.profiling.memory_bandwidth`);
* its operators: how many, the mean time per operator, and the share of the step spent in
  convolutions and matrix products (``torch.profiler``, self CPU time).

Reading the figures: a step near either ceiling is bound by it, and only less work (fewer FLOPs,
fewer bytes: a smaller model, fused operators) makes it faster; a step far below both, with many
operators of a few microseconds, is overhead-bound, and larger batches or fewer, larger operators
help. Prints one JSON line per model, then a table.

``--before`` rebuilds the step as it was before issue #24 (torch's loop over the parameters in
the optimizer instead of its fused kernel; the VQ layers' full distance matrix before the
argmin instead of :meth:`~atlaskit.models.vq.VectorQuantizer.nearest`), for a before/after pair
on one machine. The chapters' kernels also run with glibc malloc settings
(:data:`atlaskit.book.ALLOCATOR_TUNABLES`) that a process must get at its start: run the script
with and without that ``GLIBC_TUNABLES`` to see their part; the figures include the system
time spent in page faults (CPU seconds = user + system).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

MODELS = ("cytoself", "deepyeast", "cnn", "fcn", "deepgps")

_MATMUL_OPS = {"aten::mkldnn_convolution", "aten::convolution_backward", "aten::mm", "aten::addmm", "aten::bmm",
               "aten::_convolution", "aten::thnn_conv2d", "aten::slow_conv2d_forward", "aten::baddbmm"}


def build(name: str, *, before: bool = False):
    """``(model, step, batch)`` of a chapter's ci training: ``step()`` runs one optimisation step.

    The optimizer is fused where torch has a fused kernel (as the chapters' trainer makes it,
    ``TrainConfig.fused_optimizer="auto"``); ``before=True``: torch's loop implementation.
    """
    import torch

    fused = {} if before else {"fused": True}

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    cl = torch.channels_last
    if name == "cytoself":
        from atlaskit.models.cytoself import CytoselfModel
        from atlaskit.studies.cytoself.presets import PRESETS

        p = PRESETS["ci"]
        model = CytoselfModel(p.model_config(24))  # channels-last inside the model
        opt = torch.optim.Adam(model.parameters(), lr=p.lr, **fused)
        x = torch.rand((p.batch_size, *model.config.input_shape), generator=g)  # (B, 2, 100, 100)
        x[:, 1] = x[:, 1] * 2 - 1
        y = torch.randint(0, 24, (p.batch_size,), generator=g)

        def loss():
            return model.compute_losses(x, y)["loss"]
        batch = p.batch_size
    elif name == "deepyeast":
        import torch.nn.functional as F

        from atlaskit.models.deepyeast import DeepYeastNet
        from atlaskit.studies.deepyeast.presets import PRESETS

        p = PRESETS["ci"]
        model = DeepYeastNet(p.model).to(memory_format=cl)
        opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=0.9, weight_decay=5e-4, **fused)
        x = torch.rand((p.batch_size, 2, 64, 64), generator=g).contiguous(memory_format=cl)
        y = torch.randint(0, p.model.n_classes, (p.batch_size,), generator=g)

        def loss():
            return F.cross_entropy(model(x), y)
        batch = p.batch_size
    elif name in ("cnn", "fcn"):
        from atlaskit.models.cnnfcn import CnnFcnConfig, build_model, cnn_step, fcn_step
        from atlaskit.studies.cnnfcn.presets import PRESETS

        p = PRESETS["ci"]
        cfg = CnnFcnConfig.scaled(p.image_size, p.width_multiplier)
        model = build_model(name, cfg).to(memory_format=cl)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, **fused)
        x = torch.rand((p.batch_size, *cfg.input_shape), generator=g).contiguous(memory_format=cl)
        y = (torch.rand((p.batch_size, cfg.num_classes), generator=g) < 0.2).float()
        maps = y[:, :, None, None] * (torch.rand((p.batch_size, 1, cfg.heatmap_size, cfg.heatmap_size), generator=g) < 0.3)
        fn = cnn_step if name == "cnn" else fcn_step

        def loss():
            return fn(model, (x, y, maps))["loss"]
        batch = p.batch_size
    elif name == "deepgps":
        from atlaskit.models.deepgps import DeepGPSConfig, DeepGPSModel
        from atlaskit.studies.deepgps.presets import PRESETS

        p = PRESETS["ci"]
        cfg = DeepGPSConfig.small("single-2", 320, image_size=p.image_size)  # ESM2 t6: 320 features
        model = DeepGPSModel(cfg).to(memory_format=cl)
        opt = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=p.weight_decay, **fused)
        s = cfg.image_size
        seq = torch.randn((p.batch_size, cfg.seq_dim), generator=g)
        nuc = torch.rand((p.batch_size, 1, s, s), generator=g).contiguous(memory_format=cl)
        tgt = torch.rand((p.batch_size, 1, s, s), generator=g)
        lab = torch.randint(0, cfg.num_classes, (p.batch_size,), generator=g)

        def loss():
            return model.compute_losses(seq, nuc, tgt, lab)["loss"]
        batch = p.batch_size
    else:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")

    model.train()

    def step():
        value = loss()
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    return model, step, batch


def matmul_share(step) -> tuple[float, int]:
    """Share of one step's self CPU time in convolutions and matrix products, and its operator count."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    mat = sum(e.self_cpu_time_total for e in events if e.key in _MATMUL_OPS)
    return mat / total, sum(e.count for e in events)


def measure(name: str, steps: int, warmup: int, *, before: bool = False) -> dict:
    from atlaskit.profiling import count_flops, count_memory_traffic

    model, step, batch = build(name, before=before)
    for _ in range(warmup):
        step()
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    cpu = (time.process_time() - c0) / steps
    wall = (time.perf_counter() - w0) / steps
    flops = count_flops(step).total
    traffic = count_memory_traffic(step)
    share, _ = matmul_share(step)
    return {"model": name, "parameters": sum(p.numel() for p in model.parameters()), "batch": batch,
            "step_cpu_s": round(cpu, 4), "step_wall_s": round(wall, 4), "images_per_s": round(batch / cpu, 1),
            "gflop_per_step": round(flops / 1e9, 3), "achieved_gflop_s": round(flops / cpu / 1e9, 2),
            "gb_per_step": round(traffic.total / 1e9, 3), "achieved_gb_s": round(traffic.total / cpu / 1e9, 2),
            "operators_per_step": traffic.operators, "us_per_operator": round(cpu / traffic.operators * 1e6, 1),
            "matmul_share": round(share, 3)}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per model")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the chapters' kernels use 1)")
    ap.add_argument("--before", action="store_true",
                    help="the step as before issue #24: optimizer loop, full VQ distance matrix")
    args = ap.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in names if m not in MODELS]
    if bad or not names:
        ap.error(f"unknown model(s) {bad}; expected some of {', '.join(MODELS)}")
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--steps and --threads must be positive, --warmup >= 0")

    import torch

    from atlaskit.profiling import gemm_throughput, memory_bandwidth

    torch.set_num_threads(args.threads)
    if args.before:
        from atlaskit.models.vq import VectorQuantizer

        VectorQuantizer.nearest = lambda self, flat: self.distances(flat).argmin(dim=1)
    rows = [measure(n, args.steps, args.warmup, before=args.before) for n in names]
    gemm, bandwidth = gemm_throughput(), memory_bandwidth()
    for r in rows:
        r.update(before_issue_24=args.before, glibc_tunables=os.environ.get("GLIBC_TUNABLES"),
                 gemm_peak_gflop_s=round(gemm, 1), bandwidth_gb_s=round(bandwidth, 1),
                 fraction_of_gemm_peak=round(r["achieved_gflop_s"] / gemm, 3),
                 fraction_of_bandwidth=round(r["achieved_gb_s"] / bandwidth, 3),
                 threads=args.threads, torch=torch.__version__, python=platform.python_version())
        print(json.dumps({"benchmark": "roofline", **r}))
    print(f"\nci training steps{' as before #24' if args.before else ''}, {args.threads} thread(s), "
          f"GLIBC_TUNABLES {'set' if os.environ.get('GLIBC_TUNABLES') else 'unset'}: "
          f"GEMM peak {gemm:.0f} GFLOP/s, bandwidth (triad) {bandwidth:.1f} GB/s")
    print(f"{'model':10s} {'img/s':>7s} {'GFLOP/s':>8s} {'of peak':>8s} {'GB/s':>6s} {'of bw':>6s} "
          f"{'ops/step':>8s} {'us/op':>7s} {'conv+mm':>8s}")
    for r in rows:
        print(f"{r['model']:10s} {r['images_per_s']:7.1f} {r['achieved_gflop_s']:8.1f} "
              f"{r['fraction_of_gemm_peak']:8.0%} {r['achieved_gb_s']:6.2f} {r['fraction_of_bandwidth']:6.0%} "
              f"{r['operators_per_step']:8d} {r['us_per_operator']:7.0f} {r['matmul_share']:8.0%}")
    return rows


if __name__ == "__main__":
    main()
