"""Training throughput of every model the chapters trained: images/s as the chapters ran them.

Run from the repository root, after ``make chapters`` (or ``make book``)::

    python -m benchmarks.chapter_training                      # the runs under _build/runs
    python -m benchmarks.chapter_training --save before.json   # keep the figures
    python -m benchmarks.chapter_training --compare before.json   # this build against a kept one

The other training benchmarks time one model's step on random inputs; this one reads what the
chapters' own trainings recorded (:class:`atlaskit.train.History`: samples per second of each
training epoch, data loading included, measured by the trainer; seconds of training plus
validation per epoch) from every run's ``last.pt``. Runs are grouped by chapter and model (a run's
name without its repeat and hash: ``full-r1-e79c…`` → ``full``), so a chapter's ``ci`` model is
one row however many variants and repeats it trains. Figures are medians over a group's epochs,
the first epoch of each run left out (thread pool, allocator and oneDNN's kernel choice warm up
there). Chapters run two at a time in ``make``, one thread each, so these are one core's figures
beside a second busy core -- compare builds made the same way on the same machine.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_RUN_SUFFIX = re.compile(r"(-r\d+)?-[0-9a-f]{16}$")


def model_group(run_name: str) -> str:
    """A run folder's model group: its name without the repeat and the key hash.

    >>> model_group("no_split-r2-18783d0d31453b31")
    'no_split'
    >>> model_group("network-3f2a9c0d11e2b4a5")
    'network'
    """
    return _RUN_SUFFIX.sub("", run_name)


def collect(runs_root: Path) -> list[dict]:
    """One row per (chapter, model group): runs, epochs, median images/s, training seconds."""
    from atlaskit.train.checkpoints import load_checkpoint

    groups: dict[tuple[str, str], dict] = {}
    for last in sorted(runs_root.glob("*/**/last.pt")):
        chapter = last.relative_to(runs_root).parts[0]
        hist = load_checkpoint(last).get("history") or {}
        rates = [float(r) for r in hist.get("images_per_s", [])]
        times = [float(t) for t in hist.get("epoch_time", [])]
        g = groups.setdefault((chapter, model_group(last.parent.name)),
                              {"runs": 0, "epochs": 0, "rates": [], "seconds": 0.0})
        g["runs"] += 1
        g["epochs"] += len(rates)
        g["rates"] += rates[1:] if len(rates) > 1 else rates
        g["seconds"] += sum(times)
    rows = []
    for (chapter, group), g in sorted(groups.items()):
        rates = [r for r in g["rates"] if r == r and r > 0]
        rows.append({"chapter": chapter, "model": group, "runs": g["runs"], "epochs": g["epochs"],
                     "images_per_s": round(statistics.median(rates), 1) if rates else None,
                     "train_seconds": round(g["seconds"], 1)})
    return rows


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=ROOT / "_build" / "runs", help="the runs folder (default _build/runs)")
    ap.add_argument("--save", type=Path, help="write the rows as JSON to this file")
    ap.add_argument("--compare", type=Path, help="a file written by --save: print the ratio of images/s")
    args = ap.parse_args(argv)
    if not args.runs.is_dir():
        ap.error(f"{args.runs} is not a folder: run `make chapters` first")
    rows = collect(args.runs)
    if not rows:
        ap.error(f"no run under {args.runs} has a last.pt")
    before = {}
    if args.compare:
        before = {(r["chapter"], r["model"]): r for r in json.loads(args.compare.read_text())}
    print(json.dumps({"benchmark": "chapter_training", "rows": rows}))
    print(f"\n{'chapter':16s} {'model':22s} {'runs':>4s} {'epochs':>6s} {'images/s':>9s} {'train s':>8s}"
          + ("   before  ratio" if before else ""))
    for r in rows:
        line = (f"{r['chapter']:16s} {r['model']:22s} {r['runs']:4d} {r['epochs']:6d} "
                f"{r['images_per_s'] or float('nan'):9.1f} {r['train_seconds']:8.1f}")
        old = before.get((r["chapter"], r["model"]))
        if old and old.get("images_per_s") and r["images_per_s"]:
            line += f"   {old['images_per_s']:6.1f}  {r['images_per_s'] / old['images_per_s']:5.2f}x"
        print(line)
    if args.save:
        args.save.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
