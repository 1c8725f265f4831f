"""Training of the deepGPS variants: one run per variant through the scaffold's
:func:`~atlaskit.studies._scaffold.fit_or_reuse`, and the export that ``atlaskit predict`` reads.

The paper's recipe: AdamW (weight decay 0), the learning rate × ``gamma`` after every epoch, no
validation split, and the weights after the last epoch (``weights="last"``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from atlaskit.errors import DataError, ParameterError
from atlaskit.models.deepgps import DeepGPSModel
from atlaskit.models.sequence import SequenceEmbedder
from atlaskit.studies._scaffold import TrainedRun, fit_or_reuse
from atlaskit.studies.deepgps import CHAPTER
from atlaskit.studies.deepgps.data import DeepGPSDataset, ImageData
from atlaskit.studies.deepgps.presets import Preset, model_config
from atlaskit.studies.deepgps.proteins import CLASS_LABELS, equal_count_sample, image_proteins, variant_classes

__all__ = ["EXPORT_FILE", "EXPORT_FORMAT", "VariantRun", "train", "train_config", "EqualCounts", "equal_count_runs",
           "training_proteins", "read_export", "load_network"]

#: The file beside a run's weights that ``atlaskit predict`` reads (config, classes, embedder).
EXPORT_FILE = "deepgps-export.json"
EXPORT_FORMAT = "atlaskit.deepgps/1"


@dataclass(kw_only=True)
class VariantRun(TrainedRun):
    """A trained deepGPS variant (a :class:`~atlaskit.studies._scaffold.TrainedRun`).

    ``model`` holds the weights after the last epoch, in eval mode (``best_epoch`` is None).

    Attributes
    ----------
    variant : str
    classes : tuple of str
    proteins : DataFrame
        The variant's image proteins (gene, split, label...).
    train_items, test_items : ndarray
        Store indices.
    """

    variant: str
    classes: tuple
    proteins: pd.DataFrame
    train_items: np.ndarray
    test_items: np.ndarray


def _feature_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per feature; the std is floored at a tenth of its median so
    that a nearly constant feature (a rare dipeptide) cannot blow up after standardisation."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    floor = 0.1 * float(np.median(std[std > 0])) if (std > 0).any() else 1.0
    return mean, np.maximum(std, floor)


#: Training seeds of a variant's repeats are this far apart (repeat r: ``seed + REPEAT_SEED_STEP × r``).
REPEAT_SEED_STEP = 1009


def train_config(preset: Preset, *, seed: int = 0, device: str = "auto"):
    """The training recipe of a preset (the paper's at ``full``): AdamW, exponential decay, no validation."""
    from atlaskit.train import TrainConfig

    return TrainConfig(epochs=preset.epochs, batch_size=preset.batch_size, optimizer="adamw", lr=preset.lr,
                       weight_decay=preset.weight_decay, schedule="exponential", gamma=preset.gamma, seed=seed,
                       device=device, monitor="loss", progress=False,
                       channels_last=True)  # also on CPU: ~1.4x faster convolutions there


def train(variant: str, table: pd.DataFrame, images: ImageData, features: pd.DataFrame, preset: Preset, *,
          embedder: SequenceEmbedder, seed: int = 0, device: str = "auto",
          n_train_proteins: int | None = None, run_name: str | None = None, repeat: int = 0) -> VariantRun:
    """Train (or reload the finished run of) one deepGPS variant.

    The run folder is :func:`atlaskit.runs.run_dir` keyed by every parameter that changes the
    result (variant, preset, seed, embedder, image store, training proteins) and the atlaskit
    source, so a re-run of the chapter reuses it. The folder also receives the export that
    ``atlaskit predict`` reads.

    ``n_train_proteins`` (None: every training protein of the variant with images) trains on a
    seeded sample of that many training proteins, stratified by class (by localization stratum
    for "all"; :func:`~atlaskit.studies.deepgps.proteins.equal_count_sample`); the test
    proteins are unchanged. It must not exceed the variant's training proteins.

    ``run_name`` (None: ``deepgps-<variant>``) names the run folder; a run on other images (e.g.
    the cell-line model of :mod:`.cellline`) takes its own name, so that ``atlaskit predict``,
    which looks for ``deepgps-<variant>-*``, never picks it up by default.

    ``repeat`` (0: the chapter's run) trains the same variant on the same proteins again from
    another initialisation and batch order (training seed ``seed + REPEAT_SEED_STEP × repeat``),
    in a folder ``deepgps-repeat<r>-<variant>…`` that ``atlaskit predict`` does not pick; the
    spread between repeats is the training's share of an effect's uncertainty.
    """
    repeat = int(repeat)
    if repeat < 0:
        raise ParameterError(f"repeat must be ≥ 0, got {repeat!r}")
    classes = variant_classes(variant)
    proteins = image_proteins(table, variant, preset, seed)
    proteins = proteins[proteins["gene"].isin(set(images.meta["protein"]))].reset_index(drop=True)
    train_genes = proteins.loc[proteins["split"] == "train", "gene"]
    subsampled = n_train_proteins is not None and n_train_proteins != len(train_genes)
    if subsampled:
        if not 1 <= int(n_train_proteins) <= len(train_genes):
            raise ParameterError(f"variant {variant}: n_train_proteins must be 1…{len(train_genes)} (its training "
                                 f"proteins with images), got {n_train_proteins!r}")
        keep = set(equal_count_sample(proteins[proteins["split"] == "train"], int(n_train_proteins),
                                      by="label" if classes else "stratum", seed=seed))
        proteins = proteins[(proteins["split"] == "test") | proteins["gene"].isin(keep)].reset_index(drop=True)
        train_genes = proteins.loc[proteins["split"] == "train", "gene"]
    train_items = images.items(train_genes, "train")
    test_items = images.items(proteins.loc[proteins["split"] == "test", "gene"], "test")
    if train_items.size == 0:
        raise DataError(f"variant {variant}: no training images")
    labels = dict(zip(proteins["gene"], proteins["label_idx"])) if classes else None

    cfg = model_config(preset, variant, features.shape[1])
    mean, std = _feature_stats(features.loc[train_genes].to_numpy(dtype=np.float64))

    def build_model() -> DeepGPSModel:
        model = DeepGPSModel(cfg)
        model.set_sequence_normalization(mean, std)
        return model

    params = {"variant": variant, "preset": preset.to_dict(), "seed": seed, "embedder": embedder.key,
              "store": images.store.key, "n_train_items": int(train_items.size)}
    if subsampled:
        params["train_proteins"] = sorted(train_genes)
    name = run_name or f"deepgps-{variant}" + (f"-n{len(train_genes)}" if subsampled else "")
    if repeat:  # repeat 0 keeps the key and name it had before repeats existed
        params["repeat"] = repeat
        name = name.replace("deepgps-", f"deepgps-repeat{repeat}-", 1)
    train_seed = seed + REPEAT_SEED_STEP * repeat
    run = fit_or_reuse(
        CHAPTER, name, build_model, train_config(preset, seed=train_seed, device=device), key=params,
        train_data=lambda: DeepGPSDataset(images, train_items, features, labels),
        model_config={"model": cfg.to_dict(), "data": params}, threads=preset.cpu_threads, weights="last",
        run_type=VariantRun, variant=variant, classes=classes, proteins=proteins, train_items=train_items,
        test_items=test_items)
    _write_export(run.run_dir, variant=variant, cfg=cfg, classes=classes, embedder=embedder, images=images,
                  test_items=test_items, preset=preset)
    return run


def training_proteins(run: VariantRun) -> int:
    """The number of proteins a run trained on."""
    return int((run.proteins["split"] == "train").sum())


@dataclass
class EqualCounts:
    """The variants trained on equal numbers of proteins (:func:`equal_count_runs`).

    Attributes
    ----------
    n : int
        Training proteins of every run in ``runs``.
    runs : dict variant → VariantRun
        Each variant trained on ``n`` proteins (the chapter's own run where it already had ``n``).
    extra : dict name → VariantRun
        The runs trained here in addition, named ``"<variant> (<n> proteins)"``.
    counts : DataFrame
        One row per variant: ``variant``, ``main run`` (its training proteins in the chapter's
        run), ``equal count`` (``n``), ``trained again`` (bool) and ``sample`` (proteins per
        class, or the number of strata for "all").
    repeats : list of dict variant → VariantRun
        Training repeat r of every variant (same proteins, another training seed); ``repeats[0]``
        is ``runs``. Empty when built without them (then taken as ``[runs]``).
    """

    n: int
    runs: dict
    extra: dict = field(default_factory=dict)
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    repeats: list = field(default_factory=list)

    def __post_init__(self):
        if not self.repeats:
            self.repeats = [self.runs]

    def repeat_runs(self, variant: str) -> list:
        """The runs of ``variant``, one per training repeat."""
        return [r[variant] for r in self.repeats]


def equal_count_runs(runs: dict, table: pd.DataFrame, images: ImageData, features: pd.DataFrame, preset: Preset, *,
                     embedder: SequenceEmbedder, seed: int = 0, device: str = "auto",
                     repeats: int = 1) -> EqualCounts:
    """Every variant of ``runs`` trained on as many proteins as the smallest of them.

    The variants whose run trained on more proteins are trained again (same recipe and seed) on
    a seeded sample of their training proteins stratified by class (by stratum for "all"); the
    run with the fewest proteins is used as it is. Comparing generators only among these runs
    removes the number of training proteins as a confounder.

    ``repeats`` (≥ 1) trains every equal-count run ``repeats − 1`` more times on the same
    proteins with other training seeds (:func:`train`'s ``repeat``), so that the effects between
    variants can carry the training's spread and not only the test proteins'.
    """
    if not runs:
        raise ParameterError("equal_count_runs needs at least one trained run")
    if int(repeats) != repeats or repeats < 1:
        raise ParameterError(f"repeats must be a positive integer, got {repeats!r}")
    sizes = {v: training_proteins(r) for v, r in runs.items()}
    n = min(sizes.values())
    out, extra, rows = {}, {}, []
    for v, r in runs.items():
        if sizes[v] == n:
            out[v] = r
        else:
            out[v] = train(v, table, images, features, preset, embedder=embedder, seed=seed, device=device,
                           n_train_proteins=n)
            extra[f"{v} ({n} proteins)"] = out[v]
        trained = out[v].proteins.query("split == 'train'")
        if "label" in trained.columns and trained["label"].notna().all():
            sample = ", ".join(f"{CLASS_LABELS.get(c, c)} {k}" for c, k in trained["label"].value_counts().sort_index().items())
        else:
            sample = f"{trained['stratum'].nunique()} localization strata"
        rows.append({"variant": v, "main run": sizes[v], "equal count": training_proteins(out[v]),
                     "trained again": sizes[v] != n, "sample": sample})
    by_repeat = [out]
    for r in range(1, int(repeats)):
        by_repeat.append({v: train(v, table, images, features, preset, embedder=embedder, seed=seed, device=device,
                                   n_train_proteins=n, repeat=r) for v in runs})
        extra.update({f"{v} ({n} proteins, repeat {r})": run for v, run in by_repeat[-1].items()})
    return EqualCounts(n, out, extra, pd.DataFrame(rows), by_repeat)


def _write_export(folder: Path, *, variant, cfg, classes, embedder, images, test_items, preset) -> None:
    """What ``atlaskit predict`` needs beside the weights: config, classes, embedder, a nucleus."""
    from atlaskit._atomic import atomic_write

    nucleus_file = folder / "nucleus.npy"
    if test_items.size and not nucleus_file.exists():
        with atomic_write(nucleus_file) as fh:  # never a truncated nucleus.npy after an interruption
            np.save(fh, np.asarray(images.store.images[int(test_items[0])][0], dtype=np.float32), allow_pickle=False)
    export = {"format": EXPORT_FORMAT, "chapter": CHAPTER, "variant": variant, "classes": list(classes),
              "class_labels": [CLASS_LABELS.get(c, c) for c in classes], "model_config": cfg.to_dict(),
              "embedder": embedder.spec(), "weights": "last.pt", "nucleus": "nucleus.npy", "image_size": cfg.image_size,
              "scale": preset.scale, "data": images.source}
    path = folder / EXPORT_FILE
    text = json.dumps(export, indent=1, sort_keys=True)
    if not path.exists() or path.read_text() != text:
        with atomic_write(path, "w", encoding="utf-8") as fh:
            fh.write(text)


def read_export(folder: str | Path) -> dict:
    """The export a chapter run writes beside its weights (:data:`EXPORT_FILE`): variant, classes
    (``classes``, display names in ``class_labels``), ``model_config``, embedder, image size.

    Raises
    ------
    DataError
        No export in ``folder`` (not a deepGPS chapter run), an unreadable one, or another format.
    """
    folder = Path(folder)
    export_path = folder / EXPORT_FILE
    if not export_path.is_file():
        raise DataError(f"{folder}: not a deepGPS chapter run (no {EXPORT_FILE} beside the weights)")
    try:
        export = json.loads(export_path.read_text())
    except ValueError as exc:
        raise DataError(f"{export_path}: unreadable ({exc})") from None
    if not isinstance(export, dict) or export.get("format") != EXPORT_FORMAT:
        raise DataError(f"{export_path}: unknown format {export.get('format') if isinstance(export, dict) else None!r}")
    return export


def load_network(weights: str | Path, export: dict, *, device: str = "cpu") -> DeepGPSModel:
    """The deepGPS network of a chapter run: ``weights`` (its ``last.pt``, verified by
    :func:`atlaskit.train.load_checkpoint`) in the architecture of ``export``
    (:func:`read_export`), in eval mode on ``device``.

    Raises
    ------
    CheckpointError
        Unreadable, changed or non-finite weights.
    DataError
        Weights that do not fit the exported configuration.
    """
    from atlaskit.models.deepgps import DeepGPSConfig
    from atlaskit.train import load_checkpoint

    ckpt = load_checkpoint(weights, map_location="cpu")
    model = DeepGPSModel(DeepGPSConfig.from_dict(export["model_config"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise DataError(f"{weights}: weights do not fit the exported configuration ({str(exc).splitlines()[0]})") from None
    return model.eval().to(device)
