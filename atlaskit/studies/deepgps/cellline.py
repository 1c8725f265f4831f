"""deepGPS's cell-line-specific model (the paper's Table 2: a model trained on HPA images of U2OS cells).

The paper trains deepGPS on the OpenCell images (HEK293T) and, beside it, on the Human Protein
Atlas images of one cell line, so that models of different cell lines can be compared. Here the
single-2 variant (cytoplasm vs nucleoplasm) is trained again, unchanged
(:func:`~atlaskit.studies.deepgps.training.train` under its own run name), on HPA-style fields of
one cell line, nucleus channel → protein channel.

Where the images come from
--------------------------
- **Simulated** (default): the chapter's proteins have OpenCell labels, not HPA images. Each
  single-2 protein becomes a simulated HPA protein (:func:`atlaskit.data.sim.make_hpa_protein`)
  whose one Cyto-2017 class is its OpenCell major localization (:data:`HPA_CLASS`: cytoplasmic →
  ``cytosol``, nucleoplasm → ``nucleus``), rendered as HPA fields of that single cell line
  (:func:`atlaskit.data.sim.iter_hpa_fields`, the data layer chapter 03 renders its fields with;
  U-2 OS by default: large, flat cells) and resized like the chapter's crops
  (:func:`~atlaskit.studies.deepgps.data.model_images`). The labels and sequences are real, the
  images are not: the results test the method.
- **Real** (``hpa_dir``): a folder in the Kaggle HPA layout read with
  :func:`atlaskit.data.readers.iter_hpa_folder` (``<id>_green.png`` protein, ``<id>_blue.png``
  nucleus) with a ``train.csv`` (``Id,Target`` as Kaggle's) that also names each image's
  ``gene`` and, optionally, its ``cell_line`` (then only the images of the chosen line are
  read). Genes outside the chapter's single-2 proteins are left out. The data mirror holds no
  such folder: its Kaggle sample has one channel file per image and no gene names, its
  ProtiCelli cells no protein channel, and its three inpainting proteins are not OpenCell targets.

The comparison (:func:`compare_cell_line`) scores the cell-line model and the chapter's OpenCell
single-2 model on the same test images of the cell line (their PSNR and SSIM) and on the same
single-2 test proteins (the paper's classification metrics); :func:`cellline_effect` makes it a
ledger row.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from atlaskit.analysis.effects import Effect, bootstrap_interval
from atlaskit.errors import DataError, ParameterError
from atlaskit.studies._scaffold import study_store
from atlaskit.studies.deepgps import CHAPTER
from atlaskit.studies.deepgps.baselines import BaselineResult
from atlaskit.studies.deepgps.data import ImageData, model_images
from atlaskit.studies.deepgps.evaluation import classifier_result, floor_quality, generation_quality, paper_metrics
from atlaskit.studies.deepgps.presets import Preset
from atlaskit.studies.deepgps.proteins import variant_table

__all__ = ["CELL_LINE", "VARIANT", "HPA_CLASS", "PAPER_TABLE2", "PAPER_CLAIM", "CellLineComparison",
           "hpa_style_specs", "build_cellline_data", "train_cellline", "compare_cell_line", "table2",
           "cellline_effect", "comparison_rows", "run_name"]

#: The default cell line (the paper's: U2OS; the simulator's name for it).
CELL_LINE = "U-2 OS"
#: The variant trained on a cell line's images (the paper's Table 2 is cytoplasm vs nucleus).
VARIANT = "single-2"
#: OpenCell major localization → the Cyto-2017 class its simulated HPA images show.
HPA_CLASS = {"cytoplasmic": "cytosol", "nucleoplasm": "nucleus"}
#: The numbers of the paper's Table 2, metric → value. Empty: the stored copy of the paper
#: reachable while this was written gives its abstract only, so no number is quoted (none is
#: guessed); fill it from the paper to show them in the "paper" column of :func:`table2`.
PAPER_TABLE2: dict[str, float] = {}
#: What the paper says of the cell-line-specific models (abstract).
PAPER_CLAIM = ("'cell-type-specific deepGPS models can be developed by using distinct image datasets from different "
               "cell lines for comparative analyses' (abstract); Table 2: the model trained on HPA U2OS images")
METRICS = ("accuracy", "specificity", "sensitivity", "f1", "auroc", "auprc", "psnr", "ssim")


def _slug(cell_line: str) -> str:
    """'U-2 OS' → 'u2os' (for run and store names, and to match cell-line names in a table)."""
    return re.sub(r"[^a-z0-9]", "", str(cell_line).lower())


def run_name(cell_line: str = CELL_LINE) -> str:
    """The run folder's name of a cell-line model: ``deepgps-cellline-<line>-single-2``."""
    return f"deepgps-cellline-{_slug(cell_line)}-{VARIANT}"


def field_zoom(size: int) -> float:
    """Rendered pixels per Kaggle pixel: a field of half a Kaggle image's side (a few U-2 OS cells)."""
    return size / 256


def hpa_style_specs(proteins: pd.DataFrame, seed: int = 0) -> list:
    """Simulated HPA proteins for the single-2 ``proteins`` (columns ``gene``, ``label``).

    Each shows the Cyto-2017 class of its OpenCell major localization (:data:`HPA_CLASS`); its
    pattern parameters are drawn from its gene name and ``seed``.
    """
    from atlaskit.data import sim

    unknown = sorted(set(proteins["label"]) - set(HPA_CLASS))
    if unknown:
        raise ParameterError(f"no HPA class for the labels {unknown}; known: {sorted(HPA_CLASS)}")
    return [sim.make_hpa_protein(g, [HPA_CLASS[lab]], seed, info={"gene": g, "opencell_label": lab})
            for g, lab in zip(proteins["gene"], proteins["label"])]


def _real_ids(folder: Path, genes: set, cell_line: str, n: int) -> tuple[Path, pd.DataFrame]:
    """The label table of a real HPA folder and its rows to read: (table path, rows ``Id, gene``)."""
    if not folder.is_dir():
        raise DataError(f"hpa_dir {str(folder)!r} is not a folder")
    labels_csv = folder / "train.csv"
    if not labels_csv.is_file():
        raise DataError(f"{folder}: no train.csv (Id,Target,gene[,cell_line]) naming each image's gene")
    from atlaskit.data import readers

    readers.read_hpa_labels(labels_csv)  # Id,Target checked as Kaggle's
    raw = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    gene_col = next((c for c in ("gene", "Gene", "gene_name") if c in raw.columns), None)
    if gene_col is None:
        raise DataError(f"{labels_csv}: no 'gene' column; the images must name their protein to get its sequence")
    line_col = next((c for c in ("cell_line", "Cell line", "cellline", "CellLine") if c in raw.columns), None)
    rows = raw.rename(columns={gene_col: "gene"})
    if line_col is not None:
        rows = rows[rows[line_col].map(_slug) == _slug(cell_line)]
    present = set(readers.hpa_ids(folder))
    rows = rows[rows["gene"].isin(genes) & rows["Id"].isin(present)]
    if rows.empty:
        raise DataError(f"{folder}: no image of a single-2 protein of this chapter"
                        + (f" in cell line {cell_line!r}" if line_col is not None else ""))
    rows = rows.sort_values(["gene", "Id"]).groupby("gene", sort=True).head(n).reset_index(drop=True)
    rows["index"] = rows.groupby("gene").cumcount()  # image number within its protein
    return labels_csv, rows[["Id", "gene", "index"]]


def build_cellline_data(table: pd.DataFrame, preset: Preset, *, cell_line: str = CELL_LINE, seed: int = 0,
                        hpa_dir: str | os.PathLike | None = None,
                        root: str | os.PathLike | None = None) -> ImageData:
    """The (nucleus, protein) images of the single-2 proteins in one cell line, in a cached store.

    Parameters
    ----------
    table : DataFrame
        The chapter's protein table (:func:`~atlaskit.studies.deepgps.proteins.protein_table`).
    preset : Preset
        ``images_per_protein`` fields per protein (at most, for real images), resized to
        ``image_size``.
    cell_line : str
        Simulated: one of :data:`atlaskit.data.sim.HPA_CELL_LINES`. Real: the ``cell_line``
        column's value to keep (compared without case, spaces or dashes), when the table has one.
    hpa_dir : path, optional
        A real HPA folder (see the module's docstring); None simulates.

    Returns
    -------
    ImageData
        Items (2, S, S) = (nucleus, protein) in [0, 1], with the chapter's protein split.

    Raises
    ------
    ParameterError
        An unknown simulated cell line.
    DataError
        A real folder that is missing, lacks ``train.csv`` or its ``gene`` column, holds no image
        of a single-2 protein, or an image without its protein or nucleus channel.
    """
    proteins = variant_table(table, VARIANT)
    split = dict(zip(proteins["gene"], proteins["split"]))
    n, size = preset.images_per_protein, preset.image_size
    if hpa_dir is None or str(hpa_dir) == "":
        from atlaskit.data import sim

        if cell_line not in sim.HPA_CELL_LINES:
            raise ParameterError(f"cell_line must be one of {sim.HPA_CELL_LINES} for simulated fields, not {cell_line!r}")
        source, render = "sim", max(32, size)
        genes = list(proteins["gene"])
        params = {"data": "hpa-sim", "cell_line": cell_line, "seed": seed, "size": size, "render": render,
                  "zoom": field_zoom(render), "n": n, "classes": HPA_CLASS, "dtype": preset.store_dtype,
                  "genes": hashlib.sha256(json.dumps([[g, split[g]] for g in genes]).encode()).hexdigest()}

        def batches():
            specs = hpa_style_specs(proteins, seed)
            for b in sim.iter_hpa_fields(specs, n, seed, size=render, zoom=field_zoom(render), cell_lines=(cell_line,),
                                         batch_size=64):
                images = model_images(b.images[:, 0], b.images[:, 1], size)  # (b, 2, S, S) nucleus, protein
                gene = b.meta["protein"].to_numpy()
                yield images, pd.DataFrame({"protein": gene, "index": b.meta["index"].to_numpy(),
                                            "split": [split[g] for g in gene]})
    else:
        from atlaskit.data import readers

        folder = Path(hpa_dir).expanduser()
        labels_csv, rows = _real_ids(folder, set(split), cell_line, n)
        labels_stat = labels_csv.stat()
        source = "real"
        params = {"data": "hpa-real", "folder": str(folder.resolve()), "cell_line": cell_line, "size": size, "n": n,
                  "labels_stat": [labels_stat.st_size, int(labels_stat.st_mtime)],
                  "ids": hashlib.sha256(json.dumps(rows.to_numpy().tolist()).encode()).hexdigest(),
                  "dtype": preset.store_dtype}

        def batches():
            gene_of = dict(zip(rows["Id"], rows["gene"]))
            index_of = dict(zip(rows["Id"], rows["index"]))
            for images, meta in readers.iter_hpa_folder(folder, labels_csv, size=max(size, 32), ids=list(rows["Id"]),
                                                        missing="zeros", batch_size=64):
                for ident, absent in zip(meta["id"], meta["missing_channels"]):
                    lacking = {"green", "blue"} & set(absent.split())
                    if lacking:
                        raise DataError(f"{folder}: image {ident} has no {' / '.join(sorted(lacking))} channel "
                                        "(the protein is green, the nucleus blue)")
                gene = meta["id"].map(gene_of).to_numpy()
                yield (model_images(images[:, 0], images[:, 1], size),  # (b, 2, S, S) nucleus, protein
                       pd.DataFrame({"protein": gene, "index": meta["id"].map(index_of).to_numpy(),
                                     "split": [split[g] for g in gene]}))
    store = study_store(CHAPTER, f"images-hpa-{_slug(cell_line)}-{source}", params, batches, code=__name__, root=root,
                        shape_per_item=(2, size, size), dtype=preset.store_dtype,
                        metadata_columns=["protein", "index", "split"],
                        attrs={"channels": ["nucleus", "protein"], "cell_line": cell_line})
    return ImageData(store, store.metadata.copy(), source)


def train_cellline(table: pd.DataFrame, images: ImageData, features: pd.DataFrame, preset: Preset, *, embedder,
                   cell_line: str = CELL_LINE, seed: int = 0, device: str = "auto"):
    """deepGPS-single-2 trained on a cell line's images: the chapter's recipe and preset, its own run name.

    With the chapter's preset it takes as many optimisation steps as the chapter's OpenCell
    single-2 model (the same proteins, as many images per protein, the same epochs): at ci about
    5 s of rendering and 16 s of training on one CPU thread.
    """
    from atlaskit.studies.deepgps.training import train

    return train(VARIANT, table, images, features, preset, embedder=embedder, seed=seed, device=device,
                 run_name=run_name(cell_line))


@dataclass
class CellLineComparison:
    """The cell-line model and another model (the OpenCell one) on the same cell-line test data.

    Attributes
    ----------
    cell_line, source : str
        The cell line, and ``"sim"`` or ``"real"`` (its images).
    names : tuple of str
        (the cell-line model, the other model).
    quality : dict name → DataFrame
        Per test image of the cell line (the same images, in the same order): ``protein``,
        ``index``, ``psnr``, ``ssim``.
    classification : dict name → BaselineResult
        The classifier head on the same single-2 test proteins.
    n_train : int
        Training proteins of the cell-line model.
    floor : DataFrame
        The mean training image of the cell line scored on the same test images (the floor a
        generator must beat).
    """

    cell_line: str
    source: str
    names: tuple
    quality: dict
    classification: dict
    n_train: int
    floor: pd.DataFrame


def compare_cell_line(cell_run, other_run, images: ImageData, table: pd.DataFrame, features: pd.DataFrame, *,
                      cell_line: str = CELL_LINE, other_name: str = "OpenCell (HEK293T) model") -> CellLineComparison:
    """Score the cell-line model and ``other_run`` on the cell line's test images and test proteins."""
    items = np.asarray(cell_run.test_items)
    if items.size == 0:
        raise DataError(f"no test images of {cell_line}: nothing to compare")
    names = (f"{cell_line} model", other_name)
    quality = {name: generation_quality(r, images, items, features) for name, r in zip(names, (cell_run, other_run))}
    classification = {name: classifier_result(r, table, features, name=name) for name, r in zip(names, (cell_run, other_run))}
    n_train = int((cell_run.proteins["split"] == "train").sum())
    floor = floor_quality(images, items, cell_run.train_items)
    return CellLineComparison(cell_line, images.source, names, quality, classification, n_train, floor)


def table2(comparison: CellLineComparison) -> pd.DataFrame:
    """The paper's Table 2 metrics (cytoplasm positive; PSNR and SSIM on the cell line's test
    images) for both models, beside the mean training image (PSNR and SSIM only) and the paper's
    (:data:`PAPER_TABLE2`; empty cells: not quoted).

    Returns
    -------
    DataFrame
        One row per metric: ``metric``, one column per model (ours), ``mean training image``
        and ``paper (Table 2)``.
    """
    rows = []
    scores = {}
    for name in comparison.names:
        res: BaselineResult = comparison.classification[name]
        m = paper_metrics(res.y_true, res.proba)
        q = comparison.quality[name]
        scores[name] = {**m, "psnr": float(q["psnr"].mean()), "ssim": float(q["ssim"].mean())}
    for metric in METRICS:
        floor = float(comparison.floor[metric].mean()) if metric in ("psnr", "ssim") else np.nan
        rows.append({"metric": metric, **{f"{name} (ours)": scores[name][metric] for name in comparison.names},
                     "mean training image": floor, "paper (Table 2)": PAPER_TABLE2.get(metric, np.nan)})
    return pd.DataFrame(rows)


def cellline_effect(comparison: CellLineComparison, *, n_boot: int, seed: int = 0) -> Effect:
    """The cell-line model's PSNR minus the other model's, per test image of the cell line
    (paired bootstrap over test proteins); the classification accuracy difference on the same
    test proteins, with its interval, is given in the measure's text."""
    own, other = comparison.names
    q_own, q_other = comparison.quality[own], comparison.quality[other]
    if list(zip(q_own["protein"], q_own["index"])) != list(zip(q_other["protein"], q_other["index"])):
        raise ParameterError("the two models must be scored on the same images, in the same order")
    groups = q_own["protein"].to_numpy()
    d_psnr = q_own["psnr"].to_numpy() - q_other["psnr"].to_numpy()
    d_ssim = q_own["ssim"].to_numpy() - q_other["ssim"].to_numpy()
    est, low, high = bootstrap_interval(np.mean, d_psnr, groups=groups, n_boot=n_boot, seed=seed)
    s_est, s_low, s_high = bootstrap_interval(np.mean, d_ssim, groups=groups, n_boot=n_boot, seed=seed)
    c_own, c_other = comparison.classification[own], comparison.classification[other]
    if list(c_own.genes) != list(c_other.genes):
        raise ParameterError("the two classifiers must be scored on the same proteins, in the same order")
    hits = [(c.proba.argmax(1) == c.y_true).astype(float) for c in (c_own, c_other)]
    a_est, a_low, a_high = bootstrap_interval(lambda a, b: float(a.mean() - b.mean()), *hits, n_boot=n_boot, seed=seed)
    return Effect.measured(
        f"a deepGPS model trained on one cell line's images ({comparison.cell_line}) generates that cell line "
        f"better than the model trained on OpenCell (HEK293T) images",
        PAPER_CLAIM + (": " + ", ".join(f"{k} {v:.3f}" for k, v in PAPER_TABLE2.items()) if PAPER_TABLE2 else
                       "; no number of it is quoted here"),
        f"PSNR({own}) − PSNR({other}), dB, on the {len(d_psnr)} {comparison.cell_line} test images of "
        f"{len(set(groups))} single-2 test proteins ({comparison.n_train} training proteins of {comparison.cell_line}); SSIM "
        f"difference {s_est:+.3f} [{s_low:+.3f}, {s_high:+.3f}]; classification accuracy difference on the "
        f"{len(hits[0])} test proteins {a_est:+.3f} [{a_low:+.3f}, {a_high:+.3f}] (the classifier reads the "
        "sequence only)", est, low, high,
        reason="paired bootstrap over test proteins; one training run per model", data=comparison.source)


def comparison_rows(comparison: CellLineComparison, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The cell-line model's classifier as a row of the chapter's comparison with the paper
    (:func:`~atlaskit.studies.deepgps.evaluation.paper_comparison`'s columns: accuracy with its
    Wilson interval, AUROC), on the single-2 test proteins."""
    from dataclasses import replace

    from atlaskit.studies.deepgps.evaluation import classification_table, paper_comparison
    from atlaskit.studies.deepgps.proteins import variant_classes

    own = comparison.classification[comparison.names[0]]
    named = replace(own, name=f"deepGPS-single-2 trained on {comparison.cell_line} images (ours)")
    scored = classification_table([named], classes=variant_classes(VARIANT), n_boot=n_boot, seed=seed)
    rows = paper_comparison(scored).iloc[-1:].reset_index(drop=True)  # the paper's rows come first
    rows["source"] = (f"ours (real sequences, our protein-disjoint test split; "
                      f"{'simulated' if comparison.source == 'sim' else 'real'} HPA-style {comparison.cell_line} images)")
    return rows
