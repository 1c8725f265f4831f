"""``atlaskit evaluate deepyeast``: a saved DeepYeast model measured on real (or any) crops.

The sim-to-real check of chapter 04: the chapter saves its trained network with
:func:`atlaskit.studies.deepyeast.save_model`; :func:`evaluate_checkpoint` loads it, reads crops
from an ``.npz`` or a DeepYeast-format image folder, and reports accuracy, Cohen's kappa,
per-class recall / precision and the confusion matrix.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from atlaskit._text import display_path
from atlaskit.errors import DataError
from atlaskit.metrics import agreement
from atlaskit.studies.deepyeast import load_model, predict

__all__ = ["normalize_label", "read_evaluation_images", "EvaluationReport", "evaluate_checkpoint"]


def normalize_label(name: str) -> str:
    """Compare class names ignoring case, spaces and underscores: ``"Cell_Periphery"`` → ``"cellperiphery"``."""
    return re.sub(r"[\s_]+", "", str(name)).lower()


def _map_labels(labels: Sequence[str], classes: Sequence[str], source: str) -> np.ndarray:
    lookup = {normalize_label(c): i for i, c in enumerate(classes)}
    norm = [normalize_label(v) for v in labels]
    unknown = sorted({v for v, n in zip(labels, norm) if n not in lookup}, key=str)
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise DataError(
            f"{source}: unknown label(s) {shown}; the model's classes are: {', '.join(classes)} "
            "(case, spaces and underscores are ignored)"
        )
    return np.array([lookup[n] for n in norm], dtype=np.int64)


def read_evaluation_images(images: str | Path, classes: Sequence[str], *, list_file: str | Path | None = None
                           ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Real crops for :func:`evaluate_checkpoint`: ``(images (N, 2, 64, 64), labels (N,), metadata)``.

    ``images`` is an ``.npz`` with ``images`` (N, 2, 64, 64) (GFP, RFP) and ``labels`` (class
    names) — floats in [0, 1] are used as they are, 8-bit levels and raw counts are brought to the
    training crops' scale by :func:`atlaskit.data.readers.scale_intensities` (the metadata's
    ``scaling`` says which ran) — or a DeepYeast-format folder of RGB PNG crops with a split list
    (``list_file``, default the folder's ``HOwt_test.txt``) whose label indices follow the
    folder's ``HOwt_doc.txt`` when present, else the model's class order.
    """
    from atlaskit.data.readers import read_deepyeast_classes, read_deepyeast_list, read_npz_crops

    p = Path(images)
    if p.is_dir():
        lst = Path(list_file) if list_file is not None else p / "HOwt_test.txt"
        if list_file is not None and not lst.is_file():
            raise DataError(f"{lst}: no such split list (list_file= / --list)")
        if not lst.is_file():
            raise DataError(f"{p}: a DeepYeast image folder needs a split list: pass list_file= (or --list), "
                            f"or put HOwt_test.txt in the folder")
        names = read_deepyeast_classes(p / "HOwt_doc.txt") if (p / "HOwt_doc.txt").is_file() else list(classes)
        x, meta = read_deepyeast_list(lst, p, classes=names, check_empty=False)
        y = _map_labels(meta["label"].tolist(), classes, str(lst))
        return x, y, meta
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder (expected an .npz of crops or a DeepYeast image folder)")
    if p.suffix.lower() != ".npz":
        raise DataError(f"{p}: expected an .npz file (images, labels) or a DeepYeast image folder")
    try:
        with np.load(p, allow_pickle=False) as z:
            shape = z["images"].shape if "images" in z.files else None
    except Exception as exc:
        raise DataError(f"{p}: unreadable .npz file ({exc})") from None
    if shape is not None and (len(shape) != 4 or tuple(shape[1:]) != (2, 64, 64)):
        raise DataError(f"{p}: images must be shaped (N, 2, 64, 64) — channel 0 GFP, channel 1 RFP — "
                        f"got {tuple(shape)}")
    x, meta = read_npz_crops(p, item_shape=(2, 64, 64), scale=True)
    y = _map_labels(meta["label"].tolist(), classes, str(p))
    return x, y, meta


@dataclass
class EvaluationReport:
    """Result of :func:`evaluate_checkpoint`."""

    source: str
    n: int
    accuracy: float
    kappa: float
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    predictions: np.ndarray = field(repr=False)
    scaling: str = ""  # how the crops' intensities were brought to the training scale

    def to_text(self) -> str:
        """Accuracy, kappa, per-class recall and the confusion matrix as plain text."""
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            per = self.per_class.copy()
            per["recall"] = per["recall"].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}")
            per["precision"] = per["precision"].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}")
            return (
                f"DeepYeast evaluation on {display_path(self.source)}: {self.n} crops\n"
                + (f"intensities: {self.scaling}\n" if self.scaling else "") +
                f"accuracy {self.accuracy:.4f}   Cohen's kappa {self.kappa:.4f}\n\n"
                f"per-class recall and precision:\n{per.to_string()}\n\n"
                f"confusion matrix (rows: true class, columns: predicted):\n{self.confusion.to_string()}\n"
            )


def evaluate_checkpoint(checkpoint: str | Path, images: str | Path, *, list_file: str | Path | None = None,
                        batch_size: int = 256, device: str = "cpu") -> EvaluationReport:
    """Apply a saved DeepYeast model to real (or any) crops and measure it.

    The model normalises the images itself (its checkpoint holds the training mean image), so the
    crops go in as they are: float in [0, 1], channel 0 GFP, channel 1 RFP.

    Parameters
    ----------
    checkpoint : path
        Written by :func:`atlaskit.studies.deepyeast.save_model` (the chapter prints its path).
    images : path
        ``.npz`` with ``images`` (N, 2, 64, 64) and ``labels`` (class names; case, spaces and
        underscores ignored), or a DeepYeast-format image folder (see :func:`read_evaluation_images`).
    list_file : path, optional
        Split list for an image folder.

    Raises
    ------
    CheckpointError
        The checkpoint fails its checksum (changed after it was written) or holds NaN/inf weights.
    DataError
        Unreadable checkpoint or images, wrong shapes, labels that are not the model's classes
        (the message names them and lists the valid ones).
    """
    from atlaskit.errors import ParameterError
    from atlaskit.train import resolve_device
    from atlaskit.train.checkpoints import verify_checkpoint

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch_size must be a positive integer, not {batch_size!r}")
    device = str(resolve_device(device))  # an absent device is the device's fault, not the checkpoint's
    if Path(checkpoint).is_file():  # a missing file: load_model says so
        verify_checkpoint(checkpoint)  # checksum and finite weights, before any number is reported
    model, classes = load_model(checkpoint, device=device)
    n_out = int(model.config.n_classes)
    if len(classes) != n_out:
        raise DataError(f"{checkpoint}: the checkpoint names {len(classes)} classes but its network has {n_out} "
                        "outputs; the checkpoint is inconsistent (write it with atlaskit.studies.deepyeast.save_model)")
    x, y, meta = read_evaluation_images(images, classes, list_file=list_file)
    scaling = str(meta["scaling"].iloc[0]) if "scaling" in meta else "RGB PNG crops of the DeepYeast layout, / 255"
    probs = predict(model, x, batch_size=batch_size)
    if not np.isfinite(probs).all():
        raise DataError(f"{checkpoint}: the model's outputs on {images} are not finite (NaN or inf) for "
                        f"{int((~np.isfinite(probs).all(axis=tuple(range(1, probs.ndim)))).sum())} of {len(probs)} "
                        "crops; no accuracy is reported (are the images finite floats in [0, 1]?)")
    pred = probs.argmax(1)
    k = len(classes)
    cm = agreement.confusion(y, pred, k)
    precision, recall = agreement.precision_recall(cm)
    per = pd.DataFrame({"n": cm.sum(1), "recall": recall, "precision": precision}, index=pd.Index(classes, name="class"))
    return EvaluationReport(
        source=str(images), n=int(len(y)), accuracy=float(np.trace(cm) / cm.sum()),
        kappa=agreement.cohen_kappa(y, pred, k), per_class=per,
        confusion=pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted")),
        predictions=pred, scaling=scaling,
    )
