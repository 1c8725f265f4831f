"""Shared pieces of the benchmark scripts: peak memory and FLOP efficiency."""
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
    """Training FLOPs per image of ``step`` and the achieved rate as a fraction of the GEMM peak.

    ``step`` is run once more under the FLOP counter (groups-aware convolution backward, see
    :mod:`atlaskit.profiling`); the peak is this machine's matrix-multiply throughput measured now,
    with the same threads (fp32 on CPU, bf16 on CUDA).
    """
    from atlaskit.profiling import count_flops, gemm_throughput

    per_image = count_flops(step).total / images_per_step
    achieved = per_image * images_per_s / 1e9
    gemm = gemm_throughput(device)
    return {"gflop_per_image": round(per_image / 1e9, 4), "achieved_gflop_s": round(achieved, 2),
            "gemm_peak_gflop_s": round(gemm, 1), "fraction_of_gemm_peak": round(achieved / gemm, 4)}


def efficiency_line(result: dict) -> str:
    """One human line for :func:`flop_efficiency`'s figures."""
    return (f"  FLOPs     {result['gflop_per_image']:.3f} GFLOP per training image; achieved "
            f"{result['achieved_gflop_s']:.1f} GFLOP/s = {result['fraction_of_gemm_peak']:.1%} of the "
            f"measured GEMM peak ({result['gemm_peak_gflop_s']:.0f} GFLOP/s)")
