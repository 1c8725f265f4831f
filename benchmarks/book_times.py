"""Wall time of each chapter at its default parameters, and of the whole build.

Run from the repository root::

    python -m benchmarks.book_times            # report the times of the last `make chapters` / `make book`
    python -m benchmarks.book_times --run      # execute every chapter now (fresh runs), then report
    python -m benchmarks.book_times --run --jobs 2   # two at a time, as `make test` does

``atlaskit book`` records each chapter's seconds in ``_build/chapter-times.json``; this script
prints them as one JSON line and a table. With ``--run`` the training runs under ``_build/runs``
are removed first, so the figures include training from scratch, as on CI. With ``--jobs N``
chapters run N at a time (``atlaskit book --jobs``): each chapter's seconds are then its time
beside the others, and the build's wall time is less than their sum.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMES = ROOT / "_build" / "chapter-times.json"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="execute every chapter first (no HTML)")
    ap.add_argument("--jobs", type=int, default=1, help="with --run: chapters executed at once (make uses 2)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error("--jobs must be a positive integer")
    total_wall = None
    if args.run:
        from atlaskit.book import build_book

        shutil.rmtree(ROOT / "_build" / "runs", ignore_errors=True)
        start = time.perf_counter()
        build_book(html=False, jobs=args.jobs)
        total_wall = time.perf_counter() - start
    if not TIMES.is_file():
        raise SystemExit(f"{TIMES} does not exist: run `make chapters` first, or pass --run")
    times = json.loads(TIMES.read_text())
    result = {"benchmark": "book_times", "chapters": times, "chapters_total_s": round(sum(times.values()), 1),
              "build_wall_s": round(total_wall, 1) if total_wall else None,
              "jobs": args.jobs if args.run else None}
    print(json.dumps(result))
    print("\nchapter                 seconds")
    for name, seconds in times.items():
        print(f"  {name:<22}{seconds:>7.0f}")
    print(f"  {'all chapters (sum)':<22}{result['chapters_total_s']:>7.0f}")
    if total_wall:
        print(f"  {'build (wall)':<22}{total_wall:>7.0f}   ({args.jobs} at a time)")
    return result


if __name__ == "__main__":
    main()
