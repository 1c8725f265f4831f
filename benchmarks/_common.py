"""Shared pieces of the benchmark scripts: peak memory, FLOP efficiency and memory traffic."""
from __future__ import annotations

import resource
import sys
from collections.abc import Callable


def peak_rss_mb() -> float:
    """The process's maximum resident set size so far, in MiB."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def flop_efficiency(step: Callable[[], object], images_per_step: int, images_per_s: float,
                    device="cpu") -> dict:
    """Training FLOPs and bytes per image of ``step``, and the achieved rates as fractions of the
    machine's two ceilings.

    ``step`` is run once more under the FLOP counter (groups-aware convolution backward, see
    :mod:`atlaskit.profiling`) and once under the memory-traffic counter (each operator reading
    its inputs and writing its outputs once); the ceilings are this machine's matrix-multiply
    throughput and STREAM-triad bandwidth measured now, with the same threads (fp32 on CPU, bf16
    GEMM on CUDA). A figure near the first means compute-bound, near the second bandwidth-bound.
    """
    from atlaskit.profiling import count_flops, count_memory_traffic, gemm_throughput, memory_bandwidth

    per_image = count_flops(step).total / images_per_step
    bytes_per_image = count_memory_traffic(step).total / images_per_step
    achieved = per_image * images_per_s / 1e9
    achieved_gb = bytes_per_image * images_per_s / 1e9
    gemm = gemm_throughput(device)
    bandwidth = memory_bandwidth(device)
    return {"gflop_per_image": round(per_image / 1e9, 4), "achieved_gflop_s": round(achieved, 2),
            "gemm_peak_gflop_s": round(gemm, 1), "fraction_of_gemm_peak": round(achieved / gemm, 4),
            "mb_per_image": round(bytes_per_image / 1e6, 2), "achieved_gb_s": round(achieved_gb, 2),
            "bandwidth_gb_s": round(bandwidth, 1), "fraction_of_bandwidth": round(achieved_gb / bandwidth, 4)}


def efficiency_line(result: dict) -> str:
    """One human line for :func:`flop_efficiency`'s figures."""
    return (f"  FLOPs     {result['gflop_per_image']:.3f} GFLOP per training image; achieved "
            f"{result['achieved_gflop_s']:.1f} GFLOP/s = {result['fraction_of_gemm_peak']:.1%} of the "
            f"measured GEMM peak ({result['gemm_peak_gflop_s']:.0f} GFLOP/s)\n"
            f"  traffic   {result['mb_per_image']:.1f} MB per training image; achieved "
            f"{result['achieved_gb_s']:.2f} GB/s = {result['fraction_of_bandwidth']:.1%} of the "
            f"measured bandwidth ({result['bandwidth_gb_s']:.1f} GB/s, STREAM triad)")
