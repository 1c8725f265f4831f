"""The one scaffold of the four studies: presets, threads, data stores and training runs.

Every study module (``cytoself``, ``deepgps``, ``cnnfcn``, ``deepyeast``) follows the same
pipeline with the same verbs, so a reader who knows one chapter can read the others::

    p = study.preset(scale)                    # a Preset subclass, chosen by select_preset
    data = study.build_data(p, ...)            # image stores through study_store(...)
    run = study.train(..., p, seed=seed)       # a TrainedRun, through fit_or_reuse(...)
    result = study.evaluate(run, data)         # the study's metrics and tables
    study.figures.<name>(result)               # figures live in the study's figures module

What is written here once:

- :class:`Preset` — the base of every study's preset (``scale``, ``cpu_threads``, ``to_dict``,
  ``replace``), and :func:`select_preset` choosing one by scale;
- :func:`cpu_threads` — run a block with a given number of CPU threads (torch and the BLAS /
  OpenMP pools), restoring them afterwards;
- :func:`study_store` — build or reuse an image store, its key always containing the data
  layer's source hash (the simulator included), so a store never goes stale after a code change;
- :class:`TrainedRun` and :func:`fit_or_reuse` — seed, run folder, trainer, fit (or find the
  finished run on disk), best or last weights, in one place.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

import numpy as np
import torch

from atlaskit.errors import ParameterError

__all__ = ["Preset", "select_preset", "cpu_threads", "usable_cpus", "study_store", "TrainedRun", "fit_or_reuse",
           "check_count"]

P = TypeVar("P", bound="Preset")


# ---------------------------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    """Base of the studies' presets: the scale it belongs to and the CPU threads it trains with.

    Subclasses add their fields (model size, epochs, data sizes…). ``cpu_threads`` is
    keyword-only so that subclasses can declare required fields after ``scale``.

    Attributes
    ----------
    scale : str
        ``"tiny"`` (learner mode), ``"ci"`` (the book's default) or ``"full"`` (the paper's).
    cpu_threads : int or None
        torch / BLAS threads while the preset's models train on a CPU; None leaves the
        process's setting alone. Small models use one: a second thread gains them nothing, and
        one thread makes their numbers independent of the machine's core count.
    """

    scale: str
    cpu_threads: int | None = field(default=None, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """The preset as plain data (nested configs too), for run keys and tables."""
        return dataclasses.asdict(self)

    def replace(self: P, **changes: Any) -> P:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


def check_count(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer ≥ ``minimum``; else a :class:`ParameterError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise ParameterError(f"{name} must be {kind}, not {value!r}")
    return int(value)


def select_preset(presets: Mapping[str, P], scale: str, **counts: Any) -> P:
    """The preset of ``scale`` with the positive-integer fields in ``counts`` replaced.

    ``counts`` left at None keep the preset's value (e.g. ``epochs=None``).

    Raises
    ------
    ParameterError
        ``scale`` is not a key of ``presets``, or a count is not a positive integer.
    """
    if scale not in presets:
        raise ParameterError(f"scale must be one of {', '.join(map(repr, presets))}, not {scale!r}")
    changes: dict[str, int] = {}
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name} must be a positive integer or None, not {value!r}")
        changes[name] = int(value)
    preset = presets[scale]
    return dataclasses.replace(preset, **changes) if changes else preset


# ---------------------------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def cpu_threads(n: int | None, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run the block with ``n`` CPU threads (torch's and the BLAS / OpenMP pools) when ``device``
    is the CPU; restore the previous settings afterwards.

    ``n=None`` (or a GPU device) changes nothing.

    Raises
    ------
    ParameterError
        ``n`` is neither None nor a positive integer.
    """
    dev = str(device)
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if n is None or not dev.startswith("cpu"):
        yield
        return
    n = check_count("cpu_threads", n)
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# data stores
# ---------------------------------------------------------------------------------------------
def study_store(chapter: str, name: str, params: Mapping[str, Any], batches, *, code: str,
                root: str | os.PathLike | None = None, **build: Any):
    """Build (or reuse) one image store of a study.

    Parameters
    ----------
    chapter : str
        The study's chapter (``study.CHAPTER``); stores of a chapter share a folder.
    name : str
        The store's name within the chapter (``"sim-ci"``, ``"real-main"``…).
    params : mapping
        Everything the images depend on. The key adds the data layer's source hash
        (:func:`atlaskit.runs.data_code_key`): any change of the simulator, the readers or the
        segmentation gets a fresh store.
    batches : callable
        Returns an iterable of ``(images, metadata)``; called only when the store is built.
    code : str
        The study module that turns simulator or reader output into store items (pass
        ``__name__``); its source is part of the key too, so a change to the study's own image
        transform never reuses a stale store either.
    root : path, optional
        The folder to keep the store in; default :func:`atlaskit.runs.store_root` of ``chapter``.
    **build
        Passed to :meth:`atlaskit.data.store.ArrayStore.build` (``shape_per_item``, ``dtype``…).

    Returns
    -------
    ArrayStore
    """
    from atlaskit.data.store import ArrayStore, store_path
    from atlaskit.runs import data_code_key, store_root

    keyed = {**params, "data_code": data_code_key(), "study_code": _module_hash(code)}
    folder = Path(root) if root is not None else store_root(chapter)
    return ArrayStore.build(store_path(folder, name, keyed), batches, params=keyed, **build)


def _module_hash(module: str) -> str:
    """sha256 (16 hex digits) of one module's source file."""
    import hashlib
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise ParameterError(f"study_store: no source file for module {module!r}")
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# training runs
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainedRun:
    """A trained model of a study, with where it lives and how it got there.

    Studies subclass it to add what is theirs (a variant's classes, a repeat number…).

    Attributes
    ----------
    name : str
        The run's name within its chapter (``"full-r0"``, ``"cnn"``, ``"deepyeast"``…).
    model : torch.nn.Module
        In eval mode, with the best-validation (or the last) weights loaded.
    trainer : atlaskit.train.Trainer
        For prediction (``trainer.predict``) and its device.
    history : atlaskit.train.History
    run_dir : Path
        The checkpoint folder (:func:`atlaskit.runs.run_dir`).
    best_epoch : int or None
        Epoch of the loaded ``best.pt``; None when the last weights are kept.
    seconds : float
        Wall time of this call's training (near 0 when the finished run was reused).
    reused : bool
        True when the run was complete on disk before this call.
    cpu_threads : int or None
        The threads it trained with; prediction uses the same.
    """

    name: str
    model: torch.nn.Module
    trainer: Any
    history: Any
    run_dir: Path
    best_epoch: int | None
    seconds: float
    reused: bool
    cpu_threads: int | None = None

    @property
    def device(self) -> str:
        return str(self.trainer.device)

    def predict(self, dataset, fn: Callable | None = None, *, batch_size: int | None = None):
        """``trainer.predict`` with the run's CPU threads (see :meth:`atlaskit.train.Trainer.predict`)."""
        with cpu_threads(self.cpu_threads, self.trainer.device):
            return self.trainer.predict(dataset, fn, batch_size=batch_size)


def _materialise(data):
    """A dataset, or a zero-argument callable that makes one (called after the model is built,
    so that building the dataset sees the random state the original pipelines saw)."""
    if data is None or not callable(data) or hasattr(data, "__getitem__"):
        return data
    return data()


def fit_or_reuse(
    chapter: str,
    name: str,
    build_model: Callable[[], torch.nn.Module],
    train_config,
    *,
    key: Mapping[str, Any],
    train_data,
    val_data=None,
    step_fn: Callable | None = None,
    model_config: Mapping[str, Any] | None = None,
    threads: int | None = None,
    weights: str = "best",
    resume: bool | str = "auto",
    folder: str | os.PathLike | None = None,
    run_type: type[TrainedRun] = TrainedRun,
    **fields: Any,
) -> TrainedRun:
    """Train a model, or find its finished run on disk, and return it ready to use.

    The same steps for every study: seed everything with ``train_config.seed``, build the model,
    choose the run folder (:func:`atlaskit.runs.run_dir` of ``chapter``, ``name`` and ``key``),
    fit with :class:`atlaskit.train.Trainer` (resuming an interrupted run, returning a finished
    one without training), then load the best-validation weights (``weights="best"``) or keep
    the last ones (``"last"``) and put the model in eval mode.

    Parameters
    ----------
    chapter, name : str
        The chapter and the run's name; with ``key`` they name the run folder.
    build_model : callable
        Returns the freshly initialised model; called right after seeding.
    train_config : atlaskit.train.TrainConfig
        The recipe; its ``checkpoint_dir`` is replaced by the run folder.
    key : mapping
        Everything that changes the result (preset, data store key, seed, variant…).
    train_data, val_data : Dataset, or a callable returning one
        A callable is called after the model is built.
    step_fn, model_config
        Passed to the trainer (``model_config`` is stored in the checkpoints).
    threads : int or None
        CPU threads while training (:func:`cpu_threads`).
    weights : {"best", "last"}
    resume : bool or "auto"
        Passed to :meth:`Trainer.fit`.
    folder : path, optional
        Use this run folder instead of the keyed one.
    run_type : TrainedRun subclass
        The result's class; ``fields`` fill its extra attributes.

    Raises
    ------
    ParameterError
        ``weights`` is neither "best" nor "last".
    """
    import filelock

    from atlaskit._atomic import file_lock
    from atlaskit._text import display_path
    from atlaskit.runs import run_dir
    from atlaskit.train import Trainer, seed_everything

    if weights not in ("best", "last"):
        raise ParameterError(f"weights must be 'best' or 'last', not {weights!r}")
    seed_everything(train_config.seed)
    model = build_model()
    run_folder = Path(folder) if folder is not None else run_dir(chapter, name, **key)
    config = dataclasses.replace(train_config, checkpoint_dir=run_folder)
    trainer = Trainer(model, config, step_fn=step_fn, train_data=_materialise(train_data),
                      val_data=_materialise(val_data), model_config=model_config)
    trained: list[int] = []
    # One writer per run folder: a second run of the same chapter waits here, then resumes (or
    # reuses) what the first one wrote, instead of both writing the same checkpoints at once.
    lock = file_lock(run_folder, "run")
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        print(f"waiting for another run writing {display_path(run_folder)} …", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        with cpu_threads(threads, trainer.device):
            start = time.perf_counter()
            history = trainer.fit(resume=resume, callback=lambda _trainer, epoch, _logs: trained.append(epoch))
            seconds = time.perf_counter() - start
            best = trainer.load_best() if weights == "best" else None
    finally:
        lock.release()
    model = trainer.model.eval()
    return run_type(name=name, model=model, trainer=trainer, history=history, run_dir=run_folder, best_epoch=best,
                    seconds=seconds, reused=not trained, cpu_threads=threads, **fields)
