"""Where studies keep what they compute: run folders, data stores, and worker processes.

Everything here is keyed by content so that a re-execution finds its earlier work and any
change of parameters or code gets a fresh folder:

- :func:`run_dir` — a training run's checkpoint folder, keyed by the chapter, the run name,
  its parameters and :func:`code_fingerprint` (the atlaskit source);
- :func:`store_root` / :func:`data_code_key` — the one root of the studies' image stores, and
  the hash of the data layer's source (the simulator included) that every store key contains;
- :func:`map_in_workers` — run a function over jobs in fresh Python processes (training
  several variants side by side on a CPU).

This module sits below the studies and above the data layer; it knows nothing of chapters,
the book build or the command line.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from atlaskit import _paths
from atlaskit.errors import AtlaskitError, ParameterError

__all__ = ["runs_root", "effects_dir", "code_fingerprint", "run_dir", "store_root", "data_code_key",
           "source_hash", "map_in_workers"]

PACKAGE = Path(__file__).resolve().parent
PROJECT = PACKAGE.parent  # the folder holding the package (worker processes import it from there)


def runs_root() -> Path:
    """Where chapters keep their training runs (checkpoints): ``$ATLASKIT_RUNS`` or ``_build/runs``
    (of the checkout; of the work folder for an installed atlaskit, see :mod:`atlaskit._paths`)."""
    given = os.environ.get("ATLASKIT_RUNS")
    return Path(given) if given is not None else _paths.build_dir() / "runs"


def effects_dir() -> Path:
    """Where chapters write their effects ledgers (``<chapter>.json``): ``$ATLASKIT_EFFECTS`` or
    ``_build/effects`` (as :func:`runs_root`); the book's ledger page gathers them."""
    given = os.environ.get("ATLASKIT_EFFECTS")
    return Path(given) if given is not None else _paths.build_dir() / "effects"


def source_hash(folder: str | os.PathLike, pattern: str = "*.py") -> str:
    """sha256 (hex) over the relative paths and bytes of every file matching ``pattern`` below ``folder``."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(folder.rglob(pattern)):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


_CODE_FINGERPRINT: str | None = None
_DATA_CODE_KEY: str | None = None


def code_fingerprint() -> str:
    """sha256 over atlaskit's source files: a run trained by other code is never reused."""
    global _CODE_FINGERPRINT
    if _CODE_FINGERPRINT is None:
        _CODE_FINGERPRINT = source_hash(PACKAGE)
    return _CODE_FINGERPRINT


def data_code_key() -> str:
    """Hash (16 hex digits) of the data layer's source, the simulator included.

    Part of every study store's key (:func:`atlaskit.studies._scaffold.study_store`), so a
    change to the simulator, the readers or the segmentation never reuses a stale store.
    """
    global _DATA_CODE_KEY
    if _DATA_CODE_KEY is None:
        _DATA_CODE_KEY = source_hash(PACKAGE / "data")[:16]
    return _DATA_CODE_KEY


def run_dir(chapter: str, name: str, **params: Any) -> Path:
    """A checkpoint folder for one training run of a chapter, keyed by its parameters and the code.

    The same chapter, run name, parameters and atlaskit source give the same folder, so a
    re-execution (nbval, or a reader rerunning a cell) resumes or reuses the finished run instead
    of training again; any other parameter value or code change gets a fresh folder.
    """
    key = json.dumps({"params": params, "code": code_fingerprint()}, sort_keys=True, default=str)
    folder = runs_root() / chapter / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def store_root(chapter: str) -> Path:
    """The folder of a chapter's image stores: ``<atlaskit cache>/stores/<chapter>``.

    Stores are data, not results: they live in the cache (``$ATLASKIT_CACHE``) so that every
    build reuses them, and their keys (parameters + :func:`data_code_key`) keep them honest.
    """
    from atlaskit.data import registry

    return registry.cache_dir() / "stores" / chapter


# ---------------------------------------------------------------------------------------------
# worker processes
# ---------------------------------------------------------------------------------------------
def _worker_main() -> None:
    """Entry of a worker process: ``python -c ... <module:function> <jobs.pkl> <results.pkl>``.

    Reads a pickled list of jobs written by :func:`map_in_workers` (a file in a private
    temporary folder of the parent, never user input), calls the function on each job in turn
    and pickles the list of results.
    """
    import importlib

    target, job_path, result_path = sys.argv[1], sys.argv[2], sys.argv[3]
    module, _, function = target.partition(":")
    fn = getattr(importlib.import_module(module), function)
    with open(job_path, "rb") as fh:
        jobs = pickle.load(fh)  # noqa: S301 (our own file)
    results = [fn(*job) for job in jobs]
    with open(result_path, "wb") as fh:
        pickle.dump(results, fh)


def map_in_workers(target: str, jobs: Sequence[tuple], workers: int, *, threads: int = 1,
                   describe=lambda job: repr(job[0])) -> list[Any]:
    """Call ``target(*job)`` for every job in ``workers`` fresh Python processes; results in job order.

    Parameters
    ----------
    target : str
        ``"package.module:function"``, importable in a fresh interpreter (``subprocess``: no
        re-import of the caller's main module, so this works from notebooks and scripts alike).
    jobs : sequence of tuple
        Positional arguments of each call; they and the results must pickle. Worker ``w`` takes
        every ``workers``-th job, starting at ``w``.
    workers : int
        Processes started at once.
    threads : int
        ``OMP_NUM_THREADS`` of each worker: the workers share the cores.
    describe : callable
        Names a job in the error message when its worker fails.

    Raises
    ------
    AtlaskitError
        A worker failed; the message has the tail of its log. The other workers are stopped.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be a positive integer, not {workers!r}")
    jobs = list(jobs)
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(int(threads))
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    code = "from atlaskit.runs import _worker_main; _worker_main()"
    groups = [(w, list(range(w, len(jobs), workers))) for w in range(workers) if w < len(jobs)]
    results: list[Any] = [None] * len(jobs)
    with tempfile.TemporaryDirectory(prefix="atlaskit-workers-") as tmp:
        running = []
        try:
            for w, positions in groups:
                job_path, result_path, log_path = (Path(tmp) / f"worker{w}.{ext}" for ext in ("pkl", "out", "log"))
                with open(job_path, "wb") as fh:
                    pickle.dump([jobs[i] for i in positions], fh)
                log = open(log_path, "wb")
                proc = subprocess.Popen([sys.executable, "-c", code, target, str(job_path), str(result_path)],
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
                running.append((proc, log, positions, result_path, log_path))
            while running:
                for entry in list(running):
                    proc, log, positions, result_path, log_path = entry
                    if proc.poll() is None:
                        continue
                    running.remove(entry)
                    log.close()
                    if proc.returncode != 0 or not result_path.exists():
                        tail = "\n".join(log_path.read_text(errors="replace").strip().splitlines()[-15:])
                        names = ", ".join(describe(jobs[i]) for i in positions)
                        raise AtlaskitError(f"a worker ({names}) failed with exit code {proc.returncode}:\n{tail}")
                    with open(result_path, "rb") as fh:
                        outcome = pickle.load(fh)  # noqa: S301 (our own file)
                    for i, value in zip(positions, outcome):
                        results[i] = value
                time.sleep(0.2)
        finally:
            for proc, log, *_ in running:  # an error or an interrupt: stop the other workers
                proc.kill()
                proc.wait()
                log.close()
    return results
