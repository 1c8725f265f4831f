"""Array-store throughput and memory: ``python -m benchmarks.store_throughput [--gb 2] [--dir /tmp]``.

Prints one JSON line with

* ``write_mb_s``: streaming write speed of an :class:`~atlaskit.data.store.ArrayStore` (batches
  from a generator, including the final fsync and atomic rename);
* ``rss_mb``: resident memory at the start of the write, its peak while streaming and after
  it, for a store larger than the stated RAM budget (``ram_budget_mb``): RSS stays flat because
  items go to disk with plain writes;
* ``read_pass``: one full sequential pass over the store through a DataLoader (main process),
  with anonymous RSS (real allocations) and file-backed RSS (pages of the memory map, clean and
  evictable; released every 4 batches with ``ArrayStore.release_pages``);
* ``loader_images_s``: DataLoader throughput with 0 and 2 worker processes (cytoself-size
  crops 2 x 100 x 100, 90-degree rotation/flip augmentation, batch 128), worker start-up
  included.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from atlaskit.data.datasets import CropDataset, RandomRot90Flip, make_loader
from atlaskit.data.store import ArrayStore

ITEM = (2, 100, 100)


def _rss() -> dict:
    """Resident memory of this process in MB: total, anonymous and file-backed."""
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(rest.split()[0]) / 1024
    except OSError:
        import resource

        out["VmRSS"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _write(path: Path, n_items: int, batch: int, dtype: str) -> tuple[ArrayStore, dict]:
    rng = np.random.default_rng(0)
    block = rng.random((batch,) + ITEM, dtype=np.float32).astype(dtype)  # (batch, 2, 100, 100)
    samples = []

    def batches():
        done = 0
        while done < n_items:
            b = min(batch, n_items - done)
            samples.append(_rss()["VmRSS"])
            yield block[:b], {"protein": [f"P{(done + j) // 800}" for j in range(b)], "crop": np.arange(done, done + b)}
            done += b

    start_rss = _rss()["VmRSS"]
    t0 = time.perf_counter()
    with ArrayStore.create(path, ITEM, dtype, params={"bench": n_items}) as w:
        w.extend(batches())
    elapsed = time.perf_counter() - t0
    end_rss = _rss()["VmRSS"]
    store = w.store
    stats = {
        "write_mb_s": round(store.nbytes / 2**20 / elapsed, 1),
        "write_s": round(elapsed, 2),
        "rss_mb": {"start": round(start_rss, 1), "peak": round(max(samples + [end_rss]), 1), "end": round(end_rss, 1)},
    }
    return store, stats


def _read_pass(store: ArrayStore, batch: int) -> dict:
    ds = CropDataset(store, label_column="crop")
    loader = make_loader(ds, batch, num_workers=0)
    store.release_pages()
    before = _rss()
    peak_anon = peak_file = 0.0
    t0 = time.perf_counter()
    n = 0
    for i, (x, _) in enumerate(loader):
        n += len(x)
        if i % 4 == 0:
            r = _rss()
            peak_anon = max(peak_anon, r.get("RssAnon", 0.0))
            peak_file = max(peak_file, r.get("RssFile", 0.0))
            store.release_pages()
    elapsed = time.perf_counter() - t0
    return {
        "images": n,
        "images_s": round(n / elapsed, 1),
        "mb_s": round(store.nbytes / 2**20 / elapsed, 1),
        "rss_anon_mb": {"start": round(before.get("RssAnon", 0.0), 1), "peak": round(peak_anon, 1)},
        "rss_file_mb": {"start": round(before.get("RssFile", 0.0), 1), "peak": round(peak_file, 1)},
    }


def _loader_rate(store: ArrayStore, n_items: int, workers: int, batch: int) -> float:
    indices = np.arange(min(n_items, len(store)))
    ds = CropDataset(store, indices=indices, label_column="crop", transform=RandomRot90Flip())
    loader = make_loader(ds, batch, shuffle=True, num_workers=workers, seed=0)
    t0 = time.perf_counter()
    n = sum(len(x) for x, _ in loader)
    return round(n / (time.perf_counter() - t0), 1)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="store size to stream (GiB)")
    parser.add_argument("--ram-budget-mb", type=float, default=512.0, help="stated RAM budget (MB)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "uint16"])
    parser.add_argument("--batch", type=int, default=256, help="items per written batch")
    parser.add_argument("--loader-items", type=int, default=8192, help="items per DataLoader timing")
    parser.add_argument("--dir", default=None, help="where to write the temporary store")
    parser.add_argument("--keep", action="store_true", help="keep the store")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    item_bytes = int(np.prod(ITEM)) * np.dtype(args.dtype).itemsize
    n_items = int(args.gb * 2**30 // item_bytes)
    root = Path(tempfile.mkdtemp(prefix="atlaskit-bench-", dir=args.dir))
    try:
        store, write = _write(root / "store", n_items, args.batch, args.dtype)
        read = _read_pass(store, 256)
        rates = {f"workers_{w}": _loader_rate(store, args.loader_items, w, 128) for w in (0, 2)}
        result = {
            "benchmark": "store_throughput",
            "item_shape": list(ITEM),
            "dtype": args.dtype,
            "n_items": n_items,
            "store_gb": round(store.nbytes / 2**30, 3),
            "ram_budget_mb": args.ram_budget_mb,
            "store_exceeds_budget": store.nbytes / 2**20 > args.ram_budget_mb,
            **write,
            "rss_growth_during_write_mb": round(write["rss_mb"]["peak"] - write["rss_mb"]["start"], 1),
            "read_pass": read,
            "loader_images_s": rates,
            "loader_items": min(args.loader_items, n_items),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        }
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
