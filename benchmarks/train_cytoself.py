"""Training throughput of the cytoself model: images per second and peak memory.

Run from the repository root::

    python -m benchmarks.train_cytoself                         # paper config, batch 32, CPU, 2 threads
    python -m benchmarks.train_cytoself --config small --steps 20
    python -m benchmarks.train_cytoself --device cuda --steps 50   # on a GPU: bf16 autocast + channels-last
    python -m benchmarks.train_cytoself --config port-demo --classes 40 --steps 10   # vs the public code's demo
    python -m benchmarks.train_cytoself --config port --recompute            # half the activation memory
    python -m benchmarks.train_cytoself --config port --recompute residual   # half the public code's peak

Times full optimisation steps (forward, every loss term, backward, Adam update) on random inputs
shaped like cytoself's (protein in [0, 1], nucleus distance in [-1, 1], 2 x 100 x 100; protein
IDs of ``--classes`` classes, 1311 for the paper). The first ``--warmup`` steps (allocator,
oneDNN/cuDNN kernel choice) are not timed. Prints one JSON line (machine-readable), then a short
table.

Configurations: ``paper`` (:meth:`CytoselfConfig.paper`, decoders as the TF code used for the
paper), ``port`` and ``port-demo`` (the public PyTorch port's paper model and README demo, the
ones whose speed the port's users know: :meth:`CytoselfConfig.pytorch_port`,
:meth:`CytoselfConfig.port_demo`), ``small``/``ci``/``tiny`` (the chapter presets).

Also reported: training FLOPs per image (forward + backward, counted with
:func:`atlaskit.profiling.count_flops`, groups-aware), the achieved FLOP/s, and that as a fraction
of this machine's fp32 GEMM throughput measured in the same run (bf16 on CUDA). Peak RSS is the process's maximum resident set size (``resource.getrusage``), so it
includes Python, torch and the data; on CUDA the peak GPU memory allocated by torch is added.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time

from benchmarks._common import peak_rss_mb


def build(config: str, classes: int):
    """The model of a named configuration (paper, small, ci, tiny)."""
    from atlaskit.models.cytoself import CytoselfConfig, CytoselfModel
    from atlaskit.studies.cytoself import PRESETS

    if config == "paper":
        cfg = CytoselfConfig.paper(num_classes=classes)
    elif config == "port":
        cfg = CytoselfConfig.pytorch_port(num_classes=classes)
    elif config == "port-demo":
        cfg = CytoselfConfig.port_demo(classes)
    elif config == "small":
        cfg = CytoselfConfig.small(classes)
    elif config == "ci":
        cfg = PRESETS["ci"].model_config(classes)
    else:
        cfg = CytoselfConfig.tiny(classes)
    return CytoselfModel(cfg)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=("paper", "port", "port-demo", "small", "ci", "tiny"), default="paper")
    ap.add_argument("--batch", type=int, default=32, help="images per step (paper: 32)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (CPU)")
    ap.add_argument("--classes", type=int, default=1311, help="protein IDs of the pretext task")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the loss computation (fuses batch norm + SiLU; first steps compile)")
    ap.add_argument("--recompute", nargs="?", const="elementwise", default=None,
                    choices=("elementwise", "residual"),
                    help="activation recomputation (atlaskit.models.blocks.set_recompute; less memory, same "
                         "results): 'elementwise' (the default level) keeps only convolution outputs and reruns "
                         "batch norm, activations and residual sums; 'residual' also reruns each residual "
                         "unit's convolutions, keeping only its input")
    ap.add_argument("--no-flops", action="store_true", help="skip FLOP counting and the GEMM peak")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also print the N most expensive operators of one step (torch.profiler)")
    args = ap.parse_args(argv)
    if args.compile and args.recompute:
        ap.error("--compile already recomputes element-wise work in the backward pass; use one of the two")
    if args.batch < 1 or args.steps < 1 or args.warmup < 0 or args.threads < 1 or args.classes < 2:
        ap.error("--batch, --steps, --threads must be positive, --warmup >= 0, --classes >= 2")

    import torch

    from atlaskit.train import resolve_device

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    model = build(args.config, args.classes).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    from atlaskit.models.blocks import set_recompute

    if args.recompute:
        set_recompute(model, args.recompute)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.rand((args.batch, *model.config.input_shape), generator=g)  # (B, C, 100, 100)
    if model.config.use_nucleus:
        x[:, 1] = x[:, 1] * 2 - 1  # signed nucleus distance in [-1, 1]
    y = torch.randint(0, args.classes, (args.batch,), generator=g)
    x, y = x.to(device), y.to(device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    bf16 = cuda and torch.cuda.is_bf16_supported()
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    compute_losses = torch.compile(model.compute_losses) if args.compile else model.compute_losses

    def step():
        with autocast():
            losses = compute_losses(x, y)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        return losses["loss"]

    flops_per_image = executed_per_image = gemm_before = bytes_per_image = bandwidth = None
    if not args.no_flops:
        from atlaskit.profiling import count_flops, gemm_throughput

        # Counted on a 2-image step (convolutions and matmuls scale linearly with the batch).
        x2, y2 = x[:2], y[:2]

        def small_step():
            losses = model.compute_losses(x2, y2)
            losses["loss"].backward()
            model.zero_grad(set_to_none=True)

        # The model's FLOPs (what the fraction of peak is computed from) are counted without
        # recomputation; what a recomputing step executes is reported beside them.
        set_recompute(model, "off")
        flops_per_image = count_flops(small_step).total / 2
        set_recompute(model, args.recompute or "off")
        executed_per_image = count_flops(small_step).total / 2 if args.recompute else flops_per_image
        from atlaskit.profiling import count_memory_traffic, memory_bandwidth

        # Traffic is counted on a full step: unlike FLOPs, the weights' and optimizer's bytes do
        # not scale with the batch.
        step()
        bytes_per_image = count_memory_traffic(step).total / args.batch
        gemm_before = gemm_throughput(device)  # GFLOP/s, same process, same threads
        bandwidth = memory_bandwidth(device)  # GB/s, STREAM triad

    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        loss = step()
    float(loss.detach())  # one sync at the end
    if cuda:
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    images = args.steps * args.batch
    gemm = None
    if not args.no_flops:
        # Before and after the timed steps: the higher is the machine's peak (on a shared
        # machine a lower figure means another process took the cores for a while).
        gemm = max(gemm_before, gemm_throughput(device))
    achieved = flops_per_image * images / wall / 1e9 if flops_per_image else None
    achieved_gb = bytes_per_image * images / wall / 1e9 if bytes_per_image else None
    top = _profile(step, args.profile) if args.profile else None
    result = {
        "benchmark": "train_cytoself",
        "config": args.config,
        "params": model.num_parameters(),
        "batch": args.batch,
        "steps": args.steps,
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if cuda else ""),
        "threads": torch.get_num_threads(),
        "amp": "bf16" if bf16 else "off",
        "channels_last": True,
        "compiled": bool(args.compile),
        "recompute": args.recompute or "off",
        "images_per_s": round(images / wall, 3),
        "step_s": round(wall / args.steps, 3),
        "cpu_s_per_image": round(cpu / images, 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if cuda else None,
        "gflop_per_image": round(flops_per_image / 1e9, 3) if flops_per_image else None,
        "executed_gflop_per_image": round(executed_per_image / 1e9, 3) if executed_per_image else None,
        "achieved_gflop_s": round(achieved, 1) if achieved else None,
        "gemm_peak_gflop_s": round(gemm, 1) if gemm else None,
        "fraction_of_gemm_peak": round(achieved / gemm, 3) if achieved and gemm else None,
        "mb_per_image": round(bytes_per_image / 1e6, 2) if bytes_per_image else None,
        "achieved_gb_s": round(achieved_gb, 2) if achieved_gb else None,
        "bandwidth_gb_s": round(bandwidth, 1) if bandwidth else None,
        "fraction_of_bandwidth": round(achieved_gb / bandwidth, 3) if achieved_gb and bandwidth else None,
        "top_operators": top,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    print(json.dumps(result))
    print(f"\ncytoself training throughput ({args.config}, {result['params']:,} parameters)")
    print(f"  device            {result['device']}, {result['threads']} threads, amp {result['amp']}"
          + (", compiled" if args.compile else "") + (f", recompute {args.recompute}" if args.recompute else ""))
    print(f"  batch x steps     {args.batch} x {args.steps} (after {args.warmup} warm-up)")
    print(f"  images / s        {result['images_per_s']:.2f}   ({result['step_s']:.2f} s per step)")
    print(f"  CPU s / image     {result['cpu_s_per_image']:.3f}")
    print(f"  peak RSS          {result['peak_rss_mb']:.0f} MiB"
          + (f";  peak GPU {result['peak_gpu_mb']:.0f} MiB" if cuda else ""))
    if achieved and gemm:
        print(f"  GFLOP / image     {result['gflop_per_image']:.2f}  (forward + backward)"
              + (f"; {result['executed_gflop_per_image']:.2f} executed with recomputation"
                 if args.recompute else ""))
        print(f"  achieved          {achieved:.0f} GFLOP/s = {achieved / gemm:.0%} of the measured "
              f"GEMM peak ({gemm:.0f} GFLOP/s)")
        print(f"  traffic           {bytes_per_image / 1e6:.1f} MB / image: {achieved_gb:.2f} GB/s = "
              f"{achieved_gb / bandwidth:.0%} of the measured bandwidth ({bandwidth:.1f} GB/s, STREAM triad)")
    if top:
        print("  top operators (self CPU time of one step):")
        for row in top:
            print(f"    {row['op']:<44} {row['self_s']:7.3f} s  {row['share']:5.1%}")
    return result


def _profile(step, n: int) -> list[dict]:
    """The ``n`` operators with the most self time in one profiled step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "self_s": round(e.self_cpu_time_total / 1e6, 3),
             "share": round(e.self_cpu_time_total / total, 3), "calls": e.count} for e in events[:n]]


if __name__ == "__main__":
    main()
