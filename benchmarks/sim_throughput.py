"""Throughput of the simulator: images per second per style and peak memory.

Run from the repository root::

    python -m benchmarks.sim_throughput            # default sizes (about half a minute on 2 cores)
    python -m benchmarks.sim_throughput --n 2000   # scale the OpenCell/yeast counts

Prints one JSON line (machine-readable) and then a short table. OpenCell crops are rendered for
real OpenCell genes when the data mirror is available (``ATLASKIT_MIRROR``), else for a set of
custom proteins covering all 17 compartments; the first batch (warm-up: catalog loading, FFT
plans) is not timed.
"""
from __future__ import annotations

import argparse
import json
import os
import time

from benchmarks._common import peak_rss_mb


def _opencell_specs(n_proteins: int):
    from atlaskit.data import sim

    try:
        specs = sim.opencell_specs(None, 0)
        step = max(1, len(specs) // n_proteins)
        return specs[::step][:n_proteins], "OpenCell catalog"
    except Exception:  # no mirror: custom proteins, one per compartment (and mixtures)
        comps = list(sim.OPENCELL_RENDERERS)
        specs = [sim.make_protein(f"BENCH{i}", {comps[i % len(comps)]: 3, comps[(i * 7 + 3) % len(comps)]: 1})
                 for i in range(n_proteins)]
        return specs, "custom proteins"


def _time(it, n_items_fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for b in it:
        n += n_items_fn(b)
    return time.perf_counter() - t0, n


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1280, help="OpenCell crops and yeast crops to render (HPA fields: n/20)")
    ap.add_argument("--per-protein", type=int, default=40, help="crops per protein (OpenCell, yeast)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--hpa-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.n <= 0 or args.per_protein <= 0:
        ap.error("--n and --per-protein must be positive")

    from atlaskit.data import sim

    per = min(args.per_protein, args.n)
    n_prot = max(1, args.n // per)
    specs, source = _opencell_specs(n_prot + 1)
    # warm-up (not timed): one batch of the first protein
    next(iter(sim.iter_opencell_crops(specs[:1], min(per, 16), args.seed, batch_size=16)))
    dt, n_oc = _time(sim.iter_opencell_crops(specs[1:n_prot + 1], per, args.seed, batch_size=args.batch_size), len)

    ys = sim.make_yeast_protein("BENCH_Y0", "nucleus")
    next(iter(sim.iter_yeast_crops([ys], 8, args.seed)))
    yspecs = [sim.make_yeast_protein(f"BENCH_Y{i}", k) for i, k in enumerate(sim.YEAST_RENDERERS)]
    y_per = max(1, args.n // len(yspecs))
    dty, n_y = _time(sim.iter_yeast_crops(yspecs, y_per, args.seed, batch_size=args.batch_size), len)

    n_h = max(4, args.n // 20)
    hspecs = [sim.make_hpa_protein(f"BENCH_H{i}", [c]) for i, c in enumerate(sim.CYTO2017)]
    next(iter(sim.iter_hpa_fields(hspecs[:1], 1, args.seed, size=args.hpa_size)))
    h_per = max(1, n_h // len(hspecs))
    dth, n_hh = _time(sim.iter_hpa_fields(hspecs, h_per, args.seed, size=args.hpa_size, batch_size=16), len)

    result = {
        "benchmark": "sim_throughput",
        "opencell_crops_per_s": round(n_oc / dt, 1), "opencell_n": n_oc, "opencell_source": source,
        "hpa_fields_per_s": round(n_hh / dth, 2), "hpa_n": n_hh, "hpa_size": args.hpa_size,
        "yeast_crops_per_s": round(n_y / dty, 1), "yeast_n": n_y,
        "peak_rss_mb": round(peak_rss_mb(), 1), "cpu_count": os.cpu_count(),
        "batch_size": args.batch_size,
    }
    print(json.dumps(result))
    print()
    print(f"{'style':<10} {'images':>7} {'seconds':>8} {'images/s':>9}  image shape")
    print(f"{'OpenCell':<10} {n_oc:>7} {dt:>8.2f} {n_oc / dt:>9.1f}  2x100x100 ({source})")
    print(f"{'HPA':<10} {n_hh:>7} {dth:>8.2f} {n_hh / dth:>9.2f}  4x{args.hpa_size}x{args.hpa_size}")
    print(f"{'yeast':<10} {n_y:>7} {dty:>8.2f} {n_y / dty:>9.1f}  2x64x64")
    print(f"peak RSS {result['peak_rss_mb']:.0f} MB; 1310 proteins x 40 OpenCell crops would take "
          f"{1310 * 40 / (n_oc / dt) / 60:.1f} min")
    return result


if __name__ == "__main__":
    main()
