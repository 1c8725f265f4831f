"""``atlaskit predict``: deepGPS batch prediction (the openGPS "Predict" analogue).

A FASTA file (and optionally a nucleus image) in; ``predictions.csv`` (label and class
probabilities per protein), one generated PNG per protein and ``skipped.csv`` (bad records, by
id and line) out, with a deepGPS variant trained by chapter 02
(:func:`atlaskit.studies.deepgps.train` writes the export read here beside the weights).

With ``compare`` (``--compare IMAGES``, the openGPS "Submit" analogue) each protein is generated
from its own nucleus image of the folder and ``comparison.csv`` says how close the folder's
protein image is to the generated one (:mod:`atlaskit.studies.deepgps.compare`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from atlaskit.data.embeddings import embedding_cache
from atlaskit.errors import AtlaskitError, DataError, ParameterError
from atlaskit.models.deepgps import DeepGPSModel
from atlaskit.models.sequence import SequenceEmbedder
from atlaskit.studies.deepgps import CHAPTER, EXPORT_FILE, VARIANTS
from atlaskit.studies.deepgps.data import model_images, model_input

__all__ = ["latest_export", "read_nucleus_image", "Predictor", "PredictResult", "predict_fasta"]


def latest_export(variant: str = "single-2", runs_root: str | os.PathLike | None = None) -> Path | None:
    """The most recently written chapter run of ``variant`` that can be used for prediction."""
    from atlaskit.runs import runs_root as default_root

    root = Path(runs_root) if runs_root is not None else default_root()
    found = [p for p in (root / CHAPTER).glob(f"deepgps-{variant}-*/{EXPORT_FILE}") if (p.parent / "last.pt").is_file()]
    return max(found, key=lambda p: (p.parent / "last.pt").stat().st_mtime).parent if found else None


def read_nucleus_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """A nucleus image (PNG/TIFF/JPEG or a 2-D ``.npy``) as (size, size) float32 min-max scaled to [0, 1].

    Colour images are averaged over their channels. Raises DataError for unreadable, non-2-D or
    constant images.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such nucleus image")
    try:
        if p.suffix.lower() == ".npy":
            img = np.load(p, allow_pickle=False)
        elif p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            img = tifffile.imread(p)
        else:
            import imageio.v3 as iio

            img = iio.imread(p)
    except Exception as exc:  # image readers raise many types
        raise DataError(f"{p}: cannot read the nucleus image ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :3].mean(axis=-1)
    if img.ndim != 2:
        raise DataError(f"{p}: expected a single-channel 2-D image, got shape {img.shape}")
    if not np.isfinite(img).all() or img.max() == img.min():
        raise DataError(f"{p}: the nucleus image is constant or holds NaN/inf")
    return model_input(img, size)


def _safe_name(name: str, taken: set) -> str:
    # at most 100 characters: file systems refuse names over 255 bytes (a 300-character FASTA id)
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:100].strip("._") or "protein"
    out, k = base, 2
    while out.lower() in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out.lower())
    return out


@dataclass
class Predictor:
    """A trained deepGPS variant ready to predict from sequences (see :meth:`load`)."""

    model: DeepGPSModel
    variant: str
    classes: tuple
    class_labels: tuple
    embedder: SequenceEmbedder
    nucleus: np.ndarray
    folder: Path

    @classmethod
    def load(cls, checkpoint: str | os.PathLike | None = None, *, variant: str = "single-2", device: str = "cpu",
             esm_weights: str | os.PathLike | None = None, runs_root: str | os.PathLike | None = None) -> "Predictor":
        """Load a chapter run (a run folder, or a ``last.pt``/``best.pt`` inside one).

        Without ``checkpoint`` the most recent chapter run of ``variant`` is used; none is an
        error that says how to make one.
        """
        from atlaskit.models.sequence import embedder_from_spec
        from atlaskit.studies.deepgps.training import load_network, read_export
        from atlaskit.train import resolve_device

        device = str(resolve_device(device))
        if variant not in VARIANTS:
            raise ParameterError(f"--model must be one of {', '.join(VARIANTS)}, not {variant!r}")
        if checkpoint is None:
            folder = latest_export(variant, runs_root)
            if folder is None:
                raise AtlaskitError(
                    f"no trained deepGPS-{variant} model found under the chapter runs; run the chapter first "
                    f"(`atlaskit run {CHAPTER}`) or pass --checkpoint PATH (a run folder printed by the chapter)"
                )
            weights = folder / "last.pt"
        else:
            p = Path(checkpoint).expanduser()
            folder, weights = (p, p / "last.pt") if p.is_dir() else (p.parent, p)
        export = read_export(folder)
        if checkpoint is not None and export["variant"] != variant:
            raise ParameterError(f"{folder} holds a deepGPS-{export['variant']} model, not {variant}; "
                                 f"pass --model {export['variant']}")
        model = load_network(weights, export, device=device)
        from atlaskit.data.model_weights import RegisteredESM2Weights

        embedder = embedder_from_spec(export["embedder"], device=device, esm_weights=esm_weights,
                                      registered=RegisteredESM2Weights())
        size = int(export["image_size"])
        nfile = folder / export.get("nucleus", "nucleus.npy")
        try:
            nucleus = np.load(nfile, allow_pickle=False) if nfile.is_file() else _default_nucleus(size)
        except ValueError as exc:  # a pickled (object) array is refused: loading it could run code
            raise DataError(f"{nfile}: not a plain numeric .npy array ({str(exc).splitlines()[0]}); it is refused "
                            "because unpickling could run code. Replace it with np.save of a 2-D float array") from None
        return cls(model, export["variant"], tuple(export["classes"]), tuple(export.get("class_labels", export["classes"])),
                   embedder, nucleus.astype(np.float32), folder)

    @torch.no_grad()
    def predict(self, records: Sequence[tuple[str, str]], nucleus: np.ndarray | None = None,
                batch_size: int = 32) -> tuple[pd.DataFrame, np.ndarray]:
        """Labels, probabilities and generated images for ``(id, sequence)`` records.

        ``nucleus``: one (S, S) image for every record, or (n, S, S), one per record; default:
        the nucleus saved with the model.

        Returns
        -------
        table : DataFrame
            ``id``, ``length`` and, for classifying variants, ``label`` and ``p_<class>`` columns.
        images : ndarray (n, S, S) float32 in [0, 1]
        """
        nuc = self.nucleus if nucleus is None else np.asarray(nucleus, dtype=np.float32)
        if nuc.ndim == 3 and len(nuc) != len(records):
            raise DataError(f"{len(nuc)} nucleus images for {len(records)} records")
        x = self.embedder.embed(list(records), cache=embedding_cache())  # (n, D)
        device = next(self.model.parameters()).device
        imgs, probs = [], []
        for lo in range(0, len(x), batch_size):
            seq = torch.from_numpy(x[lo:lo + batch_size]).to(device)
            if nuc.ndim == 3:  # one nucleus per record
                nb = torch.from_numpy(np.ascontiguousarray(nuc[lo:lo + batch_size]))[:, None].to(device)  # (b, 1, S, S)
            else:
                nb = torch.from_numpy(nuc)[None, None].expand(len(seq), 1, *nuc.shape).contiguous().to(device)
            out = self.model(seq, nb)
            imgs.append(out.image[:, 0].float().cpu().numpy())
            if out.logits is not None:
                probs.append(torch.softmax(out.logits.float(), 1).cpu().numpy())
        table = pd.DataFrame({"id": [r[0] for r in records], "length": [len(r[1]) for r in records]})
        if probs:
            p = np.concatenate(probs)
            table["label"] = [self.class_labels[i] for i in p.argmax(1)]
            for j, name in enumerate(self.class_labels):
                table[f"p_{name}"] = p[:, j]
        return table, np.concatenate(imgs) if imgs else np.zeros((0,) + nuc.shape[-2:], np.float32)


def _default_nucleus(size: int) -> np.ndarray:
    """A simulated nucleus (the first OpenCell protein's first crop) when a run folder has none."""
    from atlaskit.data import catalogs, sim

    b = sim.opencell_crops(catalogs.opencell_proteins()["gene"].iloc[:1].tolist(), 1, seed=0)
    return model_images(b.images[:, 0], b.images[:, 1], size)[0, 0]


@dataclass
class PredictResult:
    """What :func:`predict_fasta` wrote: the table, the skipped records, the output folder."""

    table: pd.DataFrame
    skipped: pd.DataFrame
    out_dir: Path
    model_folder: Path
    comparison: pd.DataFrame | None = None


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(values: pd.Series) -> pd.Series:
    """Text cells that a spreadsheet would run as a formula (starting with ``= + - @``, tab or CR)
    prefixed with ``'`` (the OWASP advice against CSV injection); other values unchanged."""
    return values.map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)


def _remove_earlier_prediction(out: Path) -> None:
    """Delete what an earlier :func:`predict_fasta` wrote in ``out``: the PNGs its table names,
    ``predictions.csv``, ``skipped.csv`` and ``comparison.csv`` (nothing else)."""
    table = out / "predictions.csv"
    try:
        images = pd.read_csv(table, usecols=["image"])["image"].dropna().astype(str)
    except (ValueError, KeyError, OSError, pd.errors.ParserError):
        images = pd.Series([], dtype=str)
    for name in images:
        if name.endswith(".png") and Path(name).name == name:  # a plain file of this folder only
            (out / name).unlink(missing_ok=True)
    table.unlink(missing_ok=True)
    (out / "skipped.csv").unlink(missing_ok=True)
    (out / "comparison.csv").unlink(missing_ok=True)


def predict_fasta(fasta: str | os.PathLike, *, out_dir: str | os.PathLike, variant: str = "single-2",
                  checkpoint: str | os.PathLike | None = None, nucleus: str | os.PathLike | None = None,
                  device: str = "cpu", esm_weights: str | os.PathLike | None = None,
                  runs_root: str | os.PathLike | None = None, overwrite: bool = False,
                  compare: str | os.PathLike | None = None, atlas_run: str | os.PathLike | None = None,
                  progress=None) -> PredictResult:
    """Batch prediction: ``predictions.csv`` + one PNG per protein in ``out_dir``.

    Bad FASTA records (empty, letters that are not amino acids, duplicate ids, headers without
    an id) are skipped and listed by id and line in ``skipped.csv`` and in the result. No good
    record at all is an error. Ids that a spreadsheet would read as a formula are written with a
    leading ``'`` (:func:`csv_safe`).

    ``out_dir`` must not hold an earlier prediction (its images would mix with the new ones)
    unless ``overwrite`` is true, which first deletes the earlier prediction's files.

    ``compare``: a folder with ``<id>_protein`` and ``<id>_nucleus`` images (PNG, TIFF or
    ``.npy``; layout in :mod:`atlaskit.studies.deepgps.compare`) for every good record. Each
    protein is then generated from its own nucleus image, and ``comparison.csv`` (and
    ``result.comparison``) holds per protein ``psnr`` and ``ssim`` of the generated image
    against the folder's protein image and, with ``atlas_run`` (a chapter-01 cytoself run
    folder), ``atlas_distance`` and ``atlas_rank`` in that model's embedding
    (:func:`atlaskit.studies.deepgps.compare.atlas_scores`). Images without a record, records
    without images, unreadable files, wrong channels or sizes are errors (DataError) raised
    before the model runs. ``progress(done, total, stage)`` is called while images are read
    and encoded.
    """
    from atlaskit._atomic import check_writable_file
    from atlaskit.data.sequences import read_fasta_report

    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out} is a file; name a folder for the predictions")
    if (out / "predictions.csv").exists() and not overwrite:
        raise ParameterError(f"--out {out} holds an earlier prediction (predictions.csv) whose images would mix "
                             "with the new ones; choose a new folder, or pass --overwrite to replace it")
    if compare is not None and nucleus is not None:
        raise ParameterError("--nucleus and --compare exclude each other: with --compare every protein is "
                             "generated from its own <id>_nucleus image")
    if atlas_run is not None and compare is None:
        raise ParameterError("--atlas-run needs --compare IMAGES (the images whose distance it measures)")
    check_writable_file(out / "predictions.csv", "the predictions")  # before the model is loaded
    records, problems = read_fasta_report(fasta)
    skipped = pd.DataFrame([{"id": p.id, "line": p.line, "reason": p.message} for p in problems],
                           columns=["id", "line", "reason"])
    if not records:
        raise DataError(f"{fasta}: no valid FASTA record to predict"
                        + (f" ({len(problems)} problem(s): {'; '.join(str(p) for p in problems[:5])})" if problems else ""))
    pairs = atlas_model = None
    if compare is not None:  # every image read and checked before a model is loaded
        from atlaskit.studies.deepgps import compare as cmp

        files = cmp.find_compare_images(compare)
        image_names = cmp.match_names([r.id for r in records], list(files),
                                      {p.id: p.message for p in problems if p.id})
        pairs = cmp.read_pairs(files, [image_names[r.id] for r in records], progress)
        if atlas_run is not None:
            from atlaskit.studies.cytoself.place import load_run

            atlas_model = load_run(atlas_run)
    predictor = Predictor.load(checkpoint, variant=variant, device=device, esm_weights=esm_weights, runs_root=runs_root)
    size = predictor.model.config.image_size
    nuc = read_nucleus_image(nucleus, size) if nucleus is not None else None
    if pairs is not None:
        real, nuc = cmp.model_pairs(pairs, size)  # (n, S, S) each
    table, images = predictor.predict([(r.id, r.sequence) for r in records], nuc)
    comparison = None
    if pairs is not None:  # scored before anything is written: a failure leaves --out as it was
        comparison = pd.concat([table[["id"]], cmp.image_scores(images, real)], axis=1)
        if atlas_model is not None:
            scores = cmp.atlas_scores(atlas_model, real, images, nuc, progress, names=[p.name for p in pairs])
            comparison = pd.concat([comparison, scores], axis=1)
    if overwrite and (out / "predictions.csv").exists():
        _remove_earlier_prediction(out)
    out.mkdir(parents=True, exist_ok=True)
    import imageio.v3 as iio

    taken: set = set()
    names = []
    for rid, img in zip(table["id"], images):
        name = _safe_name(rid, taken) + ".png"
        iio.imwrite(out / name, np.clip(np.round(img * 255), 0, 255).astype(np.uint8))
        names.append(name)
    table["image"] = names
    table.assign(id=csv_safe(table["id"])).to_csv(out / "predictions.csv", index=False)
    skipped.assign(id=csv_safe(skipped["id"])).to_csv(out / "skipped.csv", index=False)
    if comparison is not None:
        comparison["image"] = table["image"].to_numpy()
        comparison["protein_image"] = [p.protein_file.name for p in pairs]
        comparison["nucleus_image"] = [p.nucleus_file.name for p in pairs]
        text_columns = ["id", "image", "protein_image", "nucleus_image"]
        comparison.assign(**{c: csv_safe(comparison[c]) for c in text_columns}).to_csv(out / "comparison.csv",
                                                                                      index=False)
    return PredictResult(table, skipped, out, predictor.folder, comparison)
