"""Counting the work of a training step (floating-point operations and memory traffic), and the
machine's two ceilings: its matrix-multiply peak and its memory bandwidth.

Used by the benchmarks (``benchmarks/``) to report achieved FLOP/s as a fraction of what the same
machine's fp32 GEMM reaches, and achieved bytes/s as a fraction of what its memory copies reach,
both measured in the same run: a step near the first ceiling is compute-bound, one near the second
is bandwidth-bound, and one far below both spends its time on overhead (Python, dispatch, small
kernels) -- which tells a reader where a faster step has to come from.

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

__all__ = ["FlopCount", "MemoryTraffic", "conv_backward_flops", "count_flops", "count_memory_traffic",
           "gemm_throughput", "memory_bandwidth"]


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

    return _fastest_rate(lambda: torch.mm(a, b, out=out), 2.0 * size**3, device, seconds, windows)


def _fastest_rate(run: Callable[[], object], work: float, device: torch.device, seconds: float,
                  windows: int) -> float:
    """``work`` units per call of ``run``, in 10^9 per second, in the fastest of ``windows`` timed
    windows of about ``seconds / windows`` each, after one untimed call (thread pool, first touch)."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    run()
    sync()
    best = 0.0
    for _ in range(max(1, windows)):
        reps, start = 0, time.perf_counter()
        while True:
            run()
            reps += 1
            sync()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / max(1, windows):
                break
        best = max(best, work * reps / elapsed / 1e9)
    return best


@dataclass
class MemoryTraffic:
    """Result of :func:`count_memory_traffic`.

    Attributes
    ----------
    total : int
        Bytes read and written by the operators of the call.
    by_operator : dict
        Bytes per aten operator.
    operators : int
        Operators counted (views and other metadata-only operators excluded): with the step's
        time, the mean time per operator, a measure of dispatch overhead.
    """

    total: int
    by_operator: dict[str, int] = field(default_factory=dict)
    operators: int = 0


def _tensor_bytes(tree) -> int:
    from torch.utils._pytree import tree_leaves

    seen: set[int] = set()
    total = 0
    for t in tree_leaves(tree):
        if isinstance(t, torch.Tensor) and id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def count_memory_traffic(fn: Callable[[], object]) -> MemoryTraffic:
    """Run ``fn()`` once and add up the bytes its operators read and write.

    Each aten operator is taken to read every tensor argument once and write every tensor it
    returns once (the eager-mode, unfused traffic; caches and an operator's internal passes are
    not seen, so this is a lower bound of what reaches memory when the maps are larger than the
    caches). Views, reshapes and other operators that only change metadata move no data and are
    skipped. Divided by a step's time, it gives the bandwidth the step achieves, to compare with
    :func:`memory_bandwidth`.

    Examples
    --------
    >>> import torch
    >>> a, b = torch.ones(1000), torch.ones(1000)
    >>> count_memory_traffic(lambda: a + b).total == 3 * 4000
    True
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    by_operator: dict[str, int] = {}
    counter = {"ops": 0}

    class _Traffic(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if torch.Tag.view_copy not in func.tags and not _is_view(func):
                moved = _tensor_bytes((args, kwargs or {})) + _tensor_bytes(out)
                name = func.overloadpacket.__name__
                by_operator[name] = by_operator.get(name, 0) + moved
                counter["ops"] += 1
            return out

    with _Traffic():
        fn()
    return MemoryTraffic(total=int(sum(by_operator.values())), by_operator=by_operator, operators=counter["ops"])


def _is_view(func) -> bool:
    """Operators that return a view or only touch metadata (no data moves)."""
    schema = func._schema
    if any(r.alias_info is not None and not r.alias_info.is_write for r in schema.returns):
        return True  # a view of an input
    return func.overloadpacket.__name__ in {"detach", "empty", "empty_like", "empty_strided", "set_",
                                             "resize_", "lift_fresh", "_unsafe_view"}


def memory_bandwidth(device: str | torch.device = "cpu", *, megabytes: int = 256, seconds: float = 2.0,
                     windows: int = 5) -> float:
    """Measured memory bandwidth in GB/s (10^9 bytes per second): STREAM's "triad".

    ``a = b + s * c`` on fp32 vectors of ``megabytes`` each (far larger than any cache), counting
    two reads and one write per element, with the current ``torch.get_num_threads()``. As in
    :func:`gemm_throughput`, the run is split into ``windows`` timed windows and the fastest is
    reported (another process may take the memory bus for a while).
    """
    device = torch.device(device)
    n = megabytes * 2**20 // 4
    b = torch.rand(n, device=device)
    c = torch.rand(n, device=device)
    a = torch.empty(n, device=device)
    # triad: two reads and one write of n floats per call
    return _fastest_rate(lambda: torch.add(b, c, alpha=3.0, out=a), 3.0 * 4 * n, device, seconds, windows)
