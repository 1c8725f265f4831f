"""Counting the floating-point work of a training step, and the machine's matrix-multiply peak.

Used by the benchmarks (``benchmarks/``) to report achieved FLOP/s as a fraction of what the same
machine's fp32 GEMM reaches, measured in the same run.

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode`, with one correction:
its built-in formula for ``aten.convolution_backward`` counts the weight gradient with the full
input-channel count, ignoring ``groups``, so a depthwise convolution's backward pass is
over-counted by its channel count (hundreds of times for an MBConv block). :func:`count_flops`
passes a groups-aware formula through ``custom_mapping``: each of the two gradients of a
convolution costs exactly what the forward convolution costs (same multiply-adds, re-associated),
which for the weight gradient is ``2 * N * prod(out_spatial) * C_out * (C_in / groups) * prod(k)``.

Examples
--------
>>> import torch
>>> conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
>>> x = torch.randn(2, 8, 5, 5, requires_grad=True)
>>> count_flops(lambda: conv(x).sum().backward()).total == 3 * 2 * 2 * 8 * 1 * 9 * 25
True
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["FlopCount", "conv_backward_flops", "count_flops", "gemm_throughput"]


def _forward_conv_flops(x_shape, w_shape, out_shape, transposed: bool) -> int:
    """2 x multiply-adds of a convolution: ``w_shape[1]`` is already ``C_in / groups``."""
    batch = x_shape[0]
    spatial = (x_shape if transposed else out_shape)[2:]
    return 2 * batch * math.prod(spatial) * math.prod(w_shape)


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                        transposed, _output_padding, _groups, output_mask, out_shape=None,
                        **kwargs) -> int:
    """Groups-aware FLOPs of ``aten.convolution_backward`` (the input and weight gradients).

    Each requested gradient costs what the forward convolution costs; the forward output shape
    is ``grad_out_shape``.
    """
    per_gradient = _forward_conv_flops(x_shape, w_shape, grad_out_shape, bool(transposed))
    return per_gradient * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


@dataclass
class FlopCount:
    """Result of :func:`count_flops`.

    Attributes
    ----------
    total : int
        FLOPs of the whole call (multiply and add counted separately, as torch does).
    by_operator : dict
        FLOPs per aten operator (e.g. ``convolution``, ``convolution_backward``, ``mm``, ``addmm``).
    by_module : dict
        FLOPs per module path at the top two levels (``Global``, ``Global.decoder1``, ...).
    """

    total: int
    by_operator: dict[str, int] = field(default_factory=dict)
    by_module: dict[str, int] = field(default_factory=dict)


def count_flops(fn: Callable[[], object], *, depth: int = 2) -> FlopCount:
    """Run ``fn()`` once under a FLOP counter with the groups-aware convolution-backward formula.

    Parameters
    ----------
    fn : callable
        A no-argument function, e.g. one training step (forward, loss, backward, optimizer step).
    depth : int
        Module depth of the per-module breakdown.

    Returns
    -------
    FlopCount
    """
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    with FlopCounterMode(display=False, depth=depth,
                         custom_mapping={aten.convolution_backward: conv_backward_flops}) as counter:
        fn()
    counts = counter.get_flop_counts()
    by_operator: dict[str, int] = {}
    for op, n in counts.get("Global", {}).items():
        name = str(op).split(".")[1] if str(op).startswith("aten.") else str(op)
        by_operator[name] = by_operator.get(name, 0) + int(n)
    by_module = {mod: int(sum(ops.values())) for mod, ops in counts.items()}
    return FlopCount(total=int(counter.get_total_flops()), by_operator=by_operator, by_module=by_module)


def gemm_throughput(device: str | torch.device = "cpu", *, size: int = 2048, seconds: float = 2.0,
                    dtype: torch.dtype | None = None, windows: int = 5) -> float:
    """Measured matrix-multiply throughput in GFLOP/s (square ``size`` x ``size`` products).

    On CPU it is fp32 with the current ``torch.get_num_threads()``; on CUDA the default dtype is
    bf16 (the precision training uses there). One untimed product first (thread pool, kernel
    choice); then products for about ``seconds``, split into ``windows`` timed windows of which
    the fastest is reported: on a shared machine another process may take a core for a while,
    and the peak is what the hardware does when it does not.
    """
    device = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    torch.mm(a, b, out=out)
    sync()
    best = 0.0
    for _ in range(max(1, windows)):
        reps, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b, out=out)
            reps += 1
            sync()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / max(1, windows):
                break
        best = max(best, 2.0 * size**3 * reps / elapsed / 1e9)
    return best
