"""Training of the cytoself variants: one run (:func:`train`), every variant × repeat
(:func:`train_variants`, side by side in worker processes on a CPU) and their histories."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from atlaskit.errors import ParameterError
from atlaskit.studies._scaffold import TrainedRun, check_count, fit_or_reuse
from atlaskit.studies.cytoself import CHAPTER
from atlaskit.studies.cytoself.data import CytoselfData
from atlaskit.studies.cytoself.presets import Preset, _variant

__all__ = ["VariantRun", "train", "train_variants", "runs_table", "history_frame", "perplexity_history",
           "final_perplexity"]


@dataclass
class VariantRun(TrainedRun):
    """One trained variant (best-validation weights loaded): a :class:`TrainedRun` named
    ``"<variant>-r<repeat>"``, with what the ablation needs to know about it.

    Attributes
    ----------
    variant : str
        The variant (a key of :data:`VARIANTS`).
    repeat, seed : int
        The repeat and the seed it trained with (``seed + 1000 × repeat`` of :func:`train`).
    config : CytoselfConfig
        The model's configuration (``data_variance`` included).
    """

    variant: str = ""
    repeat: int = 0
    seed: int = 0
    config: Any = None


def _run_name(variant: str, repeat: int) -> str:
    return f"{variant}-r{int(repeat)}"


def _run_key(variant: str, data: CytoselfData, preset: Preset, repeat: int, seed: int) -> dict[str, Any]:
    """Everything a run's result depends on (with the chapter, the name and the code: its folder)."""
    return {"preset": preset.to_dict(), "data": data.key, "variant": variant, "repeat": int(repeat),
            "seed": int(seed)}


def train(
    variant: str,
    data: CytoselfData,
    preset: Preset,
    *,
    repeat: int = 0,
    seed: int = 0,
    device: str = "auto",
    chapter: str = CHAPTER,
) -> VariantRun:
    """Train one variant (or reuse its finished run) and load its best-validation weights.

    The run lives in :func:`atlaskit.runs.run_dir` keyed by the chapter, the variant, the
    repeat, the preset, the seed and the data store's key (:func:`fit_or_reuse`); a second call
    finds the finished run and returns its stored history without training. The reconstruction
    loss is scaled by the variance of the training images of this variant's channels. Repeat
    ``r`` uses seed ``seed + 1000 r`` for the initialisation, the batch order, augmentation and
    dropout.

    Raises
    ------
    ParameterError
        Unknown variant, negative repeat.
    """
    from atlaskit.models.cytoself import CytoselfModel
    from atlaskit.train import TrainConfig

    v = _variant(variant)
    if not isinstance(preset, Preset):
        raise ParameterError(f"preset must be a Preset, not {type(preset).__name__}")
    repeat = check_count("repeat", repeat, minimum=0)
    run_seed = int(seed) + 1000 * repeat
    config = preset.model_config(data.num_classes, **v.overrides)
    config = dataclasses.replace(config, data_variance=data.data_variance(variant))
    recipe = TrainConfig(
        epochs=preset.epochs, batch_size=preset.batch_size, optimizer="adam", lr=preset.lr,
        schedule="plateau", factor=preset.plateau_factor, patience=preset.plateau_patience,
        early_stopping_patience=preset.early_stopping, monitor="loss", mode="min",
        seed=run_seed, device=device,
    )
    return fit_or_reuse(
        chapter, _run_name(variant, repeat), lambda: CytoselfModel(config), recipe,
        key=_run_key(variant, data, preset, repeat, int(seed)),
        # datasets after the model: the order of random-number use of the original pipeline
        train_data=lambda: data.dataset("train", variant), val_data=lambda: data.dataset("val", variant),
        model_config={"model": config.to_dict(), "data": data.key, "variant": variant, "repeat": repeat},
        threads=preset.cpu_threads, run_type=VariantRun,
        variant=variant, repeat=repeat, seed=run_seed, config=config,
    )


def _finished(folder: Path, preset: Preset) -> bool:
    """Whether a run folder holds a run that trained all its epochs or stopped early."""
    from atlaskit.train import CheckpointError, load_checkpoint

    try:
        ckpt = load_checkpoint(folder / "last.pt")
    except CheckpointError:
        return False
    return int(ckpt["epochs_done"]) >= preset.epochs or bool(ckpt["history"].get("stopped_early"))


def _train_job(variant: str, data: CytoselfData, preset: Preset, repeat: int, seed: int,
               chapter: str) -> tuple[float, bool]:
    """One job of a worker process (:func:`atlaskit.runs.map_in_workers`): train a run on the CPU;
    returns ``(seconds, reused)``."""
    run = train(variant, data, preset, repeat=repeat, seed=seed, device="cpu", chapter=chapter)
    return run.seconds, run.reused


def train_variants(
    variants: Sequence[str],
    data: CytoselfData,
    preset: Preset,
    *,
    repeats: int | None = None,
    seed: int = 0,
    device: str = "auto",
    workers: int | None = None,
    chapter: str = CHAPTER,
) -> dict[tuple[str, int], VariantRun]:
    """Train (or reuse) every variant × repeat with :func:`train`; returns ``{(variant, repeat): VariantRun}``.

    On a CPU with ``workers > 1`` (default ``preset.workers``) the runs that are not finished on
    disk are trained side by side in that many worker processes (one thread each,
    :func:`atlaskit.runs.map_in_workers`), then every run is loaded here with :func:`train`,
    which finds it finished. Each run depends only on its seed, so the result is the same as
    training one by one.
    """
    from atlaskit.runs import map_in_workers, run_dir
    from atlaskit.train import resolve_device

    for variant in variants:
        _variant(variant)
    repeats = check_count("repeats", preset.repeats if repeats is None else repeats)
    workers = check_count("workers", preset.workers if workers is None else workers)
    jobs = [(variant, r) for r in range(repeats) for variant in variants]
    for variant in variants:
        data.data_variance(variant)  # computed once here; the cache travels to the workers
    timing: dict[tuple[str, int], tuple[float, bool]] = {}
    if workers > 1 and resolve_device(device).type == "cpu":
        pending = [(v, r) for v, r in jobs
                   if not _finished(run_dir(chapter, _run_name(v, r), **_run_key(v, data, preset, r, int(seed))), preset)]
        if len(pending) > 1:
            outcome = map_in_workers("atlaskit.studies.cytoself.training:_train_job",
                                     [(v, data, preset, r, int(seed), chapter) for v, r in pending], workers,
                                     threads=1, describe=lambda job: f"{job[0]}/r{job[3]}")
            timing = dict(zip(pending, outcome))
    runs = {}
    for variant, r in jobs:
        run = train(variant, data, preset, repeat=r, seed=seed, device=device, chapter=chapter)
        if (variant, r) in timing:
            run.seconds, run.reused = timing[(variant, r)]
        runs[(variant, r)] = run
    return runs


def runs_table(runs: Mapping[tuple[str, int], VariantRun]) -> pd.DataFrame:
    """One row per run: variant, repeat, epochs trained, best epoch, seconds, reused, device."""
    return pd.DataFrame([
        {"variant": r.variant, "repeat": r.repeat, "epochs": len(r.history), "best epoch": r.history.best_epoch,
         "seconds": round(r.seconds, 1), "reused": r.reused, "device": r.device}
        for r in runs.values()
    ])


def history_frame(runs: Sequence[VariantRun]) -> pd.DataFrame:
    """Tidy per-epoch table of several runs: ``variant, repeat, epoch, split, term, value``."""
    frames = []
    for r in runs:
        f = r.history.to_frame()
        f.insert(0, "repeat", r.repeat)
        f.insert(0, "variant", r.variant)
        frames.append(f)
    if not frames:
        raise ParameterError("history_frame needs at least one run")
    return pd.concat(frames, ignore_index=True)


def perplexity_history(history: pd.DataFrame, variants: Sequence[str] = ("full", "no_split")) -> pd.DataFrame:
    """The VQ2 perplexity per epoch of some variants' runs, from :func:`history_frame`, with a
    ``run`` column (``"<variant> r<repeat>"``)."""
    ppl = history[history["variant"].isin(list(variants)) & (history["term"] == "metric_perplexity2")].copy()
    ppl["run"] = ppl["variant"] + " r" + ppl["repeat"].astype(str)
    return ppl


def final_perplexity(ppl: pd.DataFrame) -> pd.Series:
    """Final validation VQ2 perplexity of every variant in ``ppl`` (:func:`perplexity_history`), mean over repeats."""
    last = ppl[ppl["split"] == "val"].sort_values("epoch").groupby(["variant", "repeat"]).tail(1)
    return last.groupby("variant")["value"].mean()
