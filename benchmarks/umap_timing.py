"""UMAP wall time on cytoself-sized features: 576-dimensional vectors (the VQ2 global map).

Run from the repository root::

    python -m benchmarks.umap_timing                     # 10k and 50k points
    python -m benchmarks.umap_timing --points 10000

For each size, two fits in the same process through :func:`atlaskit.analysis.atlas.umap_embed`
(the book's call: seeded, hence single-threaded and reproducible; ``--parallel`` gives the
unseeded multi-threaded fit instead): the first includes numba's JIT compilation (or loading it
from numba's cache, if an earlier run left one), the second is the steady-state cost.
The points are Gaussian clusters (a stand-in for localization clusters), seeded. Prints one JSON
line per size, then a short table.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from benchmarks._common import peak_rss_mb


def clustered_points(n: int, dim: int = 576, clusters: int = 20, seed: int = 0) -> np.ndarray:
    """``n`` float32 points in ``clusters`` Gaussian blobs of ``dim`` dimensions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (clusters, dim))
    which = rng.integers(0, clusters, n)
    return (centres[which] + rng.normal(0, 1, (n, dim))).astype(np.float32)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--dim", type=int, default=576)
    ap.add_argument("--neighbors", type=int, default=15)
    ap.add_argument("--parallel", action="store_true", help="seed=None: umap-learn's threaded fit")
    args = ap.parse_args(argv)
    if min(args.points) < 100 or args.dim < 2:
        ap.error("--points must be >= 100 and --dim >= 2")

    import umap

    from atlaskit.analysis.atlas import umap_embed

    seed = None if args.parallel else 0
    results = []
    for n in args.points:
        x = clustered_points(n, args.dim)
        times, cpu = [], []
        for _ in range(2):
            w0, c0 = time.perf_counter(), time.process_time()
            umap_embed(x, n_neighbors=args.neighbors, seed=seed)
            times.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        result = {"benchmark": "umap_timing", "points": n, "dim": args.dim, "neighbors": args.neighbors,
                  "seeded": seed is not None, "first_fit_s": round(times[0], 2), "second_fit_s": round(times[1], 2),
                  "first_cpu_s": round(cpu[0], 2), "second_cpu_s": round(cpu[1], 2),
                  "cpus": os.cpu_count(), "peak_rss_mb": round(peak_rss_mb(), 1),
                  "umap": umap.__version__ if hasattr(umap, "__version__") else "?"}
        print(json.dumps(result), flush=True)
        results.append(result)
    print(f"\nUMAP fit ({'seeded, single-threaded' if seed is not None else 'unseeded, threaded'}), seconds")
    print(f"  {'points':>8}  {'first (JIT)':>11}  {'second':>8}")
    for r in results:
        print(f"  {r['points']:>8}  {r['first_fit_s']:>11.1f}  {r['second_fit_s']:>8.1f}")
    return results


if __name__ == "__main__":
    main()
