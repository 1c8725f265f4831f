"""The deepGPS study (chapter 02): labels, sequence baselines, image data, training, evaluation, predict.

What is real and what is simulated
----------------------------------
- **Labels and sequences are real**: the OpenCell annotations (1310 proteins) give each protein
  its major localization by the paper's rule (:func:`atlaskit.data.catalogs.opencell_proteins`)
  and the OpenCell FASTA its sequence. The sequence-only classifiers (composition + logistic
  regression / random forest, ESM2 + MLP) and the deepGPS classifier head read only sequences,
  so their accuracies are results on real proteins and real labels.
- **Images are simulated** by default: the target protein image of a protein is a simulated
  OpenCell-style crop rendered from that protein's real graded annotation
  (:func:`atlaskit.data.sim.opencell_crops`), resized to the model size; its nucleus (Hoechst)
  channel is the model input. Generation metrics (PSNR, SSIM) therefore test the method, not
  biology. ``data="real"`` reads real crops in the cytoself/OpenCell folder format instead.

Split
-----
One protein-disjoint 4:1 split (train/test) of **all** OpenCell proteins, stratified by a stratum
= the major localization of single-localized proteins (``single:<compartment>``) or the family
of multi-localized ones (``multi:<family>``). Every variant takes its proteins from it, so the
test proteins of single-2 are test proteins of single-4 and of "all" as well, and no model ever
trains on a protein another model is tested on. There is no validation split (the paper had
none either; its code kept the checkpoint with the best *test* PSNR, which we do not do: we use
the weights after the last epoch).

Presets (:data:`PRESETS`)
-------------------------
``full``: the paper (208×208, U-Net 64…1024, 50 epochs, batch 32, AdamW 2e-4, ×0.9 per epoch,
ESM2-650M), 16 images per protein, every protein. ``ci``: a 2-core laptop in minutes: 64×64
images, widths × 1/8 (8…128), 6 epochs of batch 16 at LR 1e-3 (about 1/50 of the paper's
steps, hence the higher rate), 2 images per protein, the "all" variant on at most 12 training
proteins per stratum. ``tiny`` (learner mode, under two minutes): 32×32 images, 1 image per
protein, 3 epochs, at most 6 "all" training proteins per stratum.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from atlaskit.errors import AtlaskitError, DataError, ParameterError
from atlaskit.metrics import classification as cm
from atlaskit.models.deepgps import DeepGPSConfig, DeepGPSModel
from atlaskit.models.sequence import SequenceEmbedder
from atlaskit.studies._presets import select_preset

__all__ = [
    "CHAPTER",
    "VARIANTS",
    "PAPER_TABLE1",
    "PAPER_AUROC_SINGLE2",
    "Preset",
    "PRESETS",
    "get_preset",
    "catalog_sequences",
    "protein_table",
    "variant_table",
    "embed_proteins",
    "BaselineResult",
    "sequence_baselines",
    "logistic_baseline",
    "expected_embedding_dim",
    "blur_calibration",
    "used_proteins",
    "ImageData",
    "build_image_data",
    "DeepGPSDataset",
    "VariantRun",
    "train_variant",
    "classify_proteins",
    "generate",
    "classification_table",
    "generation_quality",
    "cross_assay",
    "Predictor",
    "PredictResult",
    "read_nucleus_image",
    "predict_fasta",
    "latest_export",
]

CHAPTER = "02_deepgps"
VARIANTS = ("single-2", "single-4", "all")
EXPORT_FILE = "deepgps-export.json"
EXPORT_FORMAT = "atlaskit.deepgps/1"

#: The paper's Table 1 (OpenCell, single-2: cytoplasm vs nucleoplasm): accuracy per method.
PAPER_TABLE1: dict[str, float] = {
    "MultiLoc2": 0.746,
    "DeepLoc 1.0": 0.825,
    "BUSCA": 0.667,
    "MULocDeep": 0.794,
    "deepGPS-single-2": 0.744,
}
#: AUROC the paper reports for deepGPS-single-2.
PAPER_AUROC_SINGLE2 = 0.761

#: Readable class names for the OpenCell compartments of the variants.
CLASS_LABELS = {"cytoplasmic": "cytoplasm", "nucleoplasm": "nucleoplasm", "vesicles": "vesicles", "er": "ER"}


# ---------------------------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """Sizes of one chapter scale.

    Attributes
    ----------
    scale : str
    image_size : int
        Model input/output side (multiple of 16).
    width_multiplier : float
        1.0 = the paper's widths (then :meth:`DeepGPSConfig.paper`), else :meth:`DeepGPSConfig.small`.
    epochs, batch_size, lr, gamma, weight_decay
        Optimisation (paper: 50, 32, 2e-4, 0.9, 0).
    images_per_protein : int
        Simulated crops per protein (train and test).
    all_max_train_per_stratum : int or None
        Cap on training proteins per stratum for the "all" variant (None: every protein).
    esm_model : str
        ESM2 model used when its weights are present.
    n_boot : int
        Bootstrap resamples of the AUROC intervals.
    rf_trees : int
        Trees of the random-forest baseline.
    store_dtype : str
        dtype of the image store (float16 halves the disk of the full set).
    cpu_threads : int or None
        Torch threads while training on a CPU (None: torch's default). The ci model's tiny
        convolutions do not parallelise: on a shared 2-core machine one thread trained at
        ~130-180 images/s and two at ~30.
    """

    scale: str
    image_size: int
    width_multiplier: float
    epochs: int
    batch_size: int
    images_per_protein: int
    all_max_train_per_stratum: int | None
    esm_model: str
    n_boot: int
    rf_trees: int
    store_dtype: str = "float32"
    cpu_threads: int | None = None
    lr: float = 2e-4
    gamma: float = 0.9
    weight_decay: float = 0.0
    eval_batch_size: int = 64

    def replace(self, **changes) -> "Preset":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, Preset] = {
    # tiny (learner mode, under two minutes): 32-pixel images, one per protein, 3 epochs; the
    # generated images are blurry sketches, the sequence baselines are unchanged.
    "tiny": Preset("tiny", image_size=32, width_multiplier=0.125, epochs=3, batch_size=16, images_per_protein=1,
                   all_max_train_per_stratum=6, esm_model="esm2_t6_8M_UR50D", n_boot=200, rf_trees=100, lr=1e-3,
                   cpu_threads=1),
    # ci: ~1/50 of the paper's optimisation steps, so the LR is raised to 1e-3 and the batch halved;
    # at 2e-4 the network barely leaves its initial state in a few epochs.
    "ci": Preset("ci", image_size=64, width_multiplier=0.125, epochs=6, batch_size=16, images_per_protein=2,
                 all_max_train_per_stratum=12, esm_model="esm2_t6_8M_UR50D", n_boot=1000, rf_trees=300, lr=1e-3,
                 cpu_threads=1),
    "full": Preset("full", image_size=208, width_multiplier=1.0, epochs=50, batch_size=32, images_per_protein=16,
                   all_max_train_per_stratum=None, esm_model="esm2_t33_650M_UR50D", n_boot=2000, rf_trees=500,
                   store_dtype="float16", eval_batch_size=128),
}


def get_preset(scale: str, *, epochs: int | None = None, **changes) -> Preset:
    """The preset of ``scale`` ("tiny", "ci" or "full"), with ``epochs`` (None: the preset's) and other changes."""
    p = select_preset(PRESETS, scale, epochs=epochs)
    return p.replace(**changes) if changes else p


def model_config(preset: Preset, variant: str, seq_dim: int) -> DeepGPSConfig:
    """The deepGPS configuration of a variant at a preset."""
    if preset.width_multiplier == 1.0 and preset.image_size == 208:
        return DeepGPSConfig.paper(variant, seq_dim=seq_dim)
    return DeepGPSConfig.small(variant, seq_dim, image_size=preset.image_size, width_multiplier=preset.width_multiplier)


# ---------------------------------------------------------------------------------------------
# proteins, labels, split
# ---------------------------------------------------------------------------------------------


def catalog_sequences() -> tuple[dict[str, str], pd.DataFrame]:
    """Sequences of the OpenCell catalog proteins, keyed by the catalog's gene names.

    The FASTA's ids are matched to the annotation table's genes exactly, then ignoring case
    (the FASTA spells e.g. ``DnaJA1`` / ``RuvBL1``), then by UniProt accession (the FASTA's
    ``FAM241A`` is the catalog's ``C4orf32``).

    Returns
    -------
    sequences : dict gene → sequence
    matches : DataFrame
        ``gene``, ``fasta_id``, ``how`` ("exact", "case", "uniprot" or "missing") for every
        protein not matched exactly.
    """
    from atlaskit.data import catalogs, registry
    from atlaskit.data import sequences as seqmod

    records = seqmod.read_fasta(registry.fetch("opencell/protein-sequences.fasta", progress=False))
    by_id = {r.id: r.sequence for r in records}
    by_upper = {r.id.upper(): r for r in records}
    by_acc = {}
    for r in records:
        m = re.search(r"uniprot=(\S+)", r.description)
        if m:
            by_acc.setdefault(m.group(1), r)
    prot = catalogs.opencell_proteins()
    out, rows = {}, []
    for gene, acc in zip(prot["gene"], prot["uniprot"]):
        if gene in by_id:
            out[gene] = by_id[gene]
            continue
        hit, how = by_upper.get(gene.upper()), "case"
        if hit is None and acc in by_acc:
            hit, how = by_acc[acc], "uniprot"
        if hit is None:
            rows.append({"gene": gene, "fasta_id": None, "how": "missing"})
        else:
            out[gene] = hit.sequence
            rows.append({"gene": gene, "fasta_id": hit.id, "how": how})
    return out, pd.DataFrame(rows, columns=["gene", "fasta_id", "how"])


def protein_table(seed: int = 0, *, sequences: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Every OpenCell protein with its deepGPS labels and its split.

    Parameters
    ----------
    seed : int
        Seed of the split.
    sequences : mapping, optional
        Gene → sequence (default :func:`catalog_sequences`); proteins without a sequence are
        dropped (``table.attrs["no_sequence"]`` lists them).

    Returns
    -------
    pandas.DataFrame
        One row per protein, sorted by gene: ``gene``, ``uniprot``, ``single_localized``,
        ``major`` (str or None), ``family``, ``stratum``, ``single-2`` and ``single-4`` (the
        class name, or None when the protein is not in the variant), ``length`` and ``split``
        ("train" / "test"; protein-disjoint 4:1, stratified by ``stratum``).
    """
    from atlaskit.data import catalogs
    from atlaskit.data.datasets import protein_disjoint_split

    prot = catalogs.opencell_proteins()
    seqs = catalog_sequences()[0] if sequences is None else dict(sequences)
    missing = sorted(set(prot["gene"]) - set(seqs))
    prot = prot[prot["gene"].isin(seqs)].reset_index(drop=True)
    out = pd.DataFrame({
        "gene": prot["gene"],
        "uniprot": prot["uniprot"],
        "single_localized": prot["single_localized"].astype(bool),
        "major": prot["major"],
        "family": prot["family"],
    })
    out["stratum"] = np.where(out["single_localized"], "single:" + out["major"].astype(str),
                              "multi:" + out["family"].astype(str))
    for variant, classes in catalogs.DEEPGPS_VARIANTS.items():
        member = out["single_localized"] & out["major"].isin(classes)
        out[variant] = out["major"].where(member, None)
    out["length"] = out["gene"].map(lambda g: len(seqs[g])).astype(int)
    out["split"] = protein_disjoint_split(out.rename(columns={"gene": "protein"}), group="protein",
                                          stratify="stratum", fractions=(0.8, 0.2), names=("train", "test"),
                                          seed=seed).to_numpy()
    out.attrs["no_sequence"] = missing
    out.attrs["seed"] = seed
    return out


def variant_table(table: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The proteins of a variant: ``gene``, ``split``, ``stratum`` and, for single-2/4, ``label``
    (compartment) and ``label_idx`` (its index in the variant's class order)."""
    from atlaskit.data.catalogs import DEEPGPS_VARIANTS

    if variant not in VARIANTS:
        raise ParameterError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if variant == "all":
        return table[["gene", "split", "stratum"]].reset_index(drop=True)
    classes = DEEPGPS_VARIANTS[variant]
    sel = table[table[variant].notna()]
    out = sel[["gene", "split", "stratum"]].copy()
    out["label"] = sel[variant].to_numpy()
    out["label_idx"] = out["label"].map({c: i for i, c in enumerate(classes)}).astype(int)
    return out.reset_index(drop=True)


def variant_classes(variant: str) -> tuple[str, ...]:
    """Class names (OpenCell compartments) of a variant in label-index order; () for "all"."""
    from atlaskit.data.catalogs import DEEPGPS_VARIANTS

    return tuple(DEEPGPS_VARIANTS.get(variant, ()))


def embed_proteins(table: pd.DataFrame, embedder: SequenceEmbedder, *, sequences: Mapping[str, str] | None = None,
                   cache=True) -> pd.DataFrame:
    """Embedding of every protein of ``table`` (rows indexed by gene, float32 columns)."""
    seqs = catalog_sequences()[0] if sequences is None else sequences
    genes = table["gene"].tolist()
    x = embedder.embed([(g, seqs[g]) for g in genes], cache=cache)
    return pd.DataFrame(x, index=pd.Index(genes, name="gene"))


# ---------------------------------------------------------------------------------------------
# sequence-only baselines (real sequences, real labels)
# ---------------------------------------------------------------------------------------------


@dataclass
class BaselineResult:
    """Test-set output of one sequence-only classifier.

    Attributes
    ----------
    name : str
    genes : ndarray (n_test,) of gene names
    y_true : ndarray (n_test,) int
    proba : ndarray (n_test, K)
    n_train : int
    notes : str
    """

    name: str
    genes: np.ndarray
    y_true: np.ndarray
    proba: np.ndarray
    n_train: int
    notes: str = ""


def _fit_predict(estimator, x_train, y_train, x_test) -> tuple[np.ndarray, str]:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(x_train, y_train)
    notes = "did not fully converge" if any(issubclass(w.category, ConvergenceWarning) for w in caught) else ""
    return estimator.predict_proba(x_test), notes


def sequence_baselines(table: pd.DataFrame, variant: str, features: Mapping[str, pd.DataFrame], *, seed: int = 0,
                       rf_trees: int = 300) -> dict[str, BaselineResult]:
    """Train sequence-only classifiers on the variant's training proteins; predict its test proteins.

    Parameters
    ----------
    table : DataFrame
        From :func:`protein_table`.
    variant : {"single-2", "single-4"}
    features : mapping
        ``{"composition": DataFrame, "ESM2": DataFrame}`` (rows indexed by gene); with
        composition features: logistic regression (L2, C chosen by 5-fold cross-validation on the
        training proteins) and a random forest; with ESM2 features: an MLP (one hidden layer of
        256, L2 1e-3).
    seed : int
    rf_trees : int

    Returns
    -------
    dict name → BaselineResult
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if variant not in ("single-2", "single-4"):
        raise ParameterError(f"sequence baselines need a classification variant, not {variant!r}")
    vt = variant_table(table, variant)
    train, test = vt[vt["split"] == "train"], vt[vt["split"] == "test"]
    results: dict[str, BaselineResult] = {}
    for kind, x in features.items():
        missing = set(vt["gene"]) - set(x.index)
        if missing:
            raise DataError(f"{kind} features lack {len(missing)} proteins, e.g. {sorted(missing)[:3]}")
        xtr, xte = x.loc[train["gene"]].to_numpy(), x.loc[test["gene"]].to_numpy()
        ytr = train["label_idx"].to_numpy()
        models = {}
        if kind == "composition":
            models["composition + logistic regression"] = _logistic_pipeline(seed)
            models["composition + random forest"] = RandomForestClassifier(
                n_estimators=rf_trees, random_state=seed, n_jobs=1, min_samples_leaf=2)
        else:
            models[f"{kind} + MLP"] = make_pipeline(
                StandardScaler(), MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=1000, random_state=seed))
        for name, est in models.items():
            proba, notes = _fit_predict(est, xtr, ytr, xte)
            results[name] = BaselineResult(name, test["gene"].to_numpy(), test["label_idx"].to_numpy(), proba,
                                           len(train), notes)
    return results


def _logistic_pipeline(seed: int):
    """Standardisation + L2 logistic regression, C chosen by stratified 5-fold CV (accuracy)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    return make_pipeline(StandardScaler(),
                         LogisticRegressionCV(Cs=np.logspace(-4, 1, 11), cv=cv, max_iter=5000, scoring="accuracy"))


def logistic_baseline(table: pd.DataFrame, variant: str, features: pd.DataFrame, *, name: str,
                      seed: int = 0) -> BaselineResult:
    """The logistic-regression baseline of :func:`sequence_baselines` on any feature table.

    Use it to compare feature sets on the same split, e.g. the 20 amino-acid composition
    columns against all 420 composition features.

    Parameters
    ----------
    table : DataFrame
        From :func:`protein_table`.
    variant : {"single-2", "single-4"}
    features : DataFrame
        Rows indexed by gene (every protein of the variant), one column per feature.
    name : str
        Name of the result (its row in :func:`classification_table`).
    seed : int
        Seed of the cross-validation folds.

    Returns
    -------
    BaselineResult
        Test-protein probabilities; identical to the ``"composition + logistic regression"``
        result of :func:`sequence_baselines` for the same features and seed.

    Raises
    ------
    ParameterError
        For a variant without classes.
    DataError
        When ``features`` lack proteins of the variant.
    """
    if variant not in ("single-2", "single-4"):
        raise ParameterError(f"a logistic baseline needs a classification variant, not {variant!r}")
    vt = variant_table(table, variant)
    missing = set(vt["gene"]) - set(features.index)
    if missing:
        raise DataError(f"{name}: the features lack {len(missing)} proteins, e.g. {sorted(missing)[:3]}")
    train, test = vt[vt["split"] == "train"], vt[vt["split"] == "test"]
    proba, notes = _fit_predict(_logistic_pipeline(seed), features.loc[train["gene"]].to_numpy(),
                                train["label_idx"].to_numpy(), features.loc[test["gene"]].to_numpy())
    return BaselineResult(name, test["gene"].to_numpy(), test["label_idx"].to_numpy(), proba, len(train), notes)


def expected_embedding_dim(spec: Mapping[str, Any]) -> int:
    """The vector length an embedder must produce, from its :meth:`SequenceEmbedder.spec` alone.

    Composition: 420 (amino acids + dipeptides) or 20 (``dipeptides=False``); ESM2: the width
    of the named model in :data:`atlaskit.models.sequence.ESM2_MODELS` (320 for the 8M model,
    1280 for the paper's 650M model). Independent of the embedder's own ``dim``, so it checks it.

    Raises
    ------
    ParameterError
        For an embedder kind or ESM2 model this table does not know.
    """
    from atlaskit.models.sequence import ESM2_MODELS

    kind = spec.get("kind")
    if kind == "composition":
        return 420 if spec.get("dipeptides", True) else 20
    model = spec.get("model") or kind
    if model in ESM2_MODELS:
        return ESM2_MODELS[model][1]
    raise ParameterError(f"unknown embedder {kind!r} (model {model!r}); known: composition, {', '.join(ESM2_MODELS)}")


def blur_calibration(targets: np.ndarray, sigmas: Sequence[float] = (0.5, 1.0, 2.0, 4.0)) -> pd.DataFrame:
    """PSNR and SSIM of Gaussian-blurred copies of images against the images themselves.

    A scale for generation metrics: a generator whose mean PSNR equals that of the blur of
    width ``sigma`` is, on average, as far from the truth as a ``sigma``-pixel blur of it.

    Parameters
    ----------
    targets : array (N, H, W)
        Ground-truth images in [0, 1].
    sigmas : sequence of float
        Gaussian standard deviations in pixels (each > 0; reflecting borders).

    Returns
    -------
    pandas.DataFrame
        One row per sigma, in the given order: ``sigma``, ``psnr`` and ``ssim`` (means over the
        images) and ``images``.
    """
    from scipy.ndimage import gaussian_filter

    t = np.asarray(targets, dtype=np.float32)
    if t.ndim != 3 or t.shape[0] == 0:
        raise DataError(f"expected a non-empty stack of images (N, H, W), got shape {t.shape}")
    sig = [float(s) for s in sigmas]
    if not sig or min(sig) <= 0:
        raise ParameterError(f"sigmas must be positive numbers of pixels, got {list(sigmas)}")
    rows = []
    for s in sig:
        blurred = gaussian_filter(t, sigma=(0, s, s), mode="reflect")
        q = cm.image_quality(blurred, t)
        rows.append({"sigma": s, "psnr": float(q["psnr"].mean()), "ssim": float(q["ssim"].mean()), "images": len(t)})
    return pd.DataFrame(rows)


def majority_baseline(table: pd.DataFrame, variant: str) -> BaselineResult:
    """Always predict the most frequent training class (probability 1): the floor to beat."""
    vt = variant_table(table, variant)
    train, test = vt[vt["split"] == "train"], vt[vt["split"] == "test"]
    k = len(variant_classes(variant))
    top = int(train["label_idx"].value_counts().idxmax())
    proba = np.zeros((len(test), k))
    proba[:, top] = 1.0
    return BaselineResult("majority class", test["gene"].to_numpy(), test["label_idx"].to_numpy(), proba, len(train))


def classification_table(results: Sequence[BaselineResult], *, classes: Sequence[str], n_boot: int = 1000,
                         seed: int = 0) -> pd.DataFrame:
    """Metrics of several classifiers on their test proteins, with 95 % intervals.

    Accuracy gets a Wilson interval (a proportion of proteins), AUROC a percentile bootstrap
    interval (resampling proteins within each class). Binary problems: positive class = index 1.
    """
    rows = []
    for r in results:
        s = cm.summary(r.y_true, r.proba)
        k = int((r.proba.argmax(1) == r.y_true).sum())
        lo, hi = cm.wilson_interval(k, len(r.y_true))
        alo, ahi = cm.bootstrap_interval(lambda y, p: cm.auroc(y, p), r.y_true, r.proba, n_boot=n_boot, seed=seed,
                                         stratify=r.y_true)
        rows.append({"method": r.name, "n_test": s["n"], "accuracy": s["accuracy"], "accuracy_lo": lo,
                     "accuracy_hi": hi, "specificity": s["specificity"], "sensitivity": s["sensitivity"],
                     "f1": s["f1"], "auroc": s["auroc"], "auroc_lo": alo, "auroc_hi": ahi, "auprc": s["auprc"],
                     "notes": r.notes})
    return pd.DataFrame(rows)


def paper_comparison(ours: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 (accuracy; AUROC of deepGPS-single-2) beside our single-2 rows."""
    paper = pd.DataFrame([{"method": m, "source": "paper (OpenCell, their split)", "accuracy": a,
                           "accuracy 95% CI": "", "auroc": PAPER_AUROC_SINGLE2 if m == "deepGPS-single-2" else np.nan}
                          for m, a in PAPER_TABLE1.items()])
    mine = pd.DataFrame({
        "method": ours["method"], "source": "ours (real sequences, our protein-disjoint test split)",
        "accuracy": ours["accuracy"],
        "accuracy 95% CI": [f"{lo:.3f}–{hi:.3f}" for lo, hi in zip(ours["accuracy_lo"], ours["accuracy_hi"])],
        "auroc": ours["auroc"],
    })
    return pd.concat([paper, mine], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------


def _sim_code_key() -> str:
    import atlaskit.data.sim as simpkg

    h = hashlib.sha256()
    for p in sorted(Path(simpkg.__file__).parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def image_proteins(table: pd.DataFrame, variant: str, preset: Preset, seed: int = 0) -> pd.DataFrame:
    """The proteins of a variant that get images at this preset (the variant table, capped).

    Single-2/4 use all their proteins. "all" keeps, per stratum, at most
    ``preset.all_max_train_per_stratum`` training proteins (chosen by a seeded ranking that does
    not depend on the variant), every test protein of single-4 (so that all three variants can
    be scored on the same test images), and up to a quarter of the cap (at least 1) other test
    proteins per stratum. Without a cap (``None``, the full preset) every protein is kept.
    """
    vt = variant_table(table, variant)
    cap = preset.all_max_train_per_stratum
    if variant != "all" or cap is None:
        return vt
    rank = pd.Series(np.random.default_rng(seed).permutation(len(table)), index=table["gene"].to_numpy())
    vt = vt.assign(_rank=vt["gene"].map(rank)).sort_values(["stratum", "split", "_rank"])
    keep_test = set(variant_table(table, "single-4").query("split == 'test'")["gene"])
    test_cap = max(1, cap // 4)
    parts = []
    for (_, split), grp in vt.groupby(["stratum", "split"], sort=True):
        if split == "train":
            parts.append(grp.head(cap))
        else:
            parts.append(pd.concat([grp[grp["gene"].isin(keep_test)], grp[~grp["gene"].isin(keep_test)].head(test_cap)]))
    out = pd.concat(parts).drop(columns="_rank").sort_values("gene").reset_index(drop=True)
    return out


def used_proteins(table: pd.DataFrame, preset: Preset, seed: int = 0) -> list[str]:
    """Every protein the chapter needs a sequence vector for (variants and image proteins), sorted."""
    genes = set(variant_table(table, "single-4")["gene"])
    for v in VARIANTS:
        genes |= set(image_proteins(table, v, preset, seed)["gene"])
    return sorted(genes)


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    """(N, C, H, W) → (N, C, size, size), bilinear with antialiasing when shrinking."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if t.shape[-1] == size and t.shape[-2] == size:
        return t.numpy()
    return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                                           antialias=True).numpy()


def _minmax(x: np.ndarray) -> np.ndarray:
    """Per-image min-max to [0, 1] of (N, H, W)."""
    lo = x.min(axis=(1, 2), keepdims=True)
    hi = x.max(axis=(1, 2), keepdims=True)
    return ((x - lo) / np.maximum(hi - lo, 1e-12)).astype(np.float32)


def _model_images(protein: np.ndarray, nucleus: np.ndarray, size: int) -> np.ndarray:
    """Stack (N, 2, size, size) = (nucleus, protein), each min-max normalised to [0, 1]."""
    both = _resize(np.stack([nucleus, protein], axis=1), size)  # (N, 2, S, S)
    return np.stack([_minmax(both[:, 0]), np.clip(_minmax(both[:, 1]), 0, 1)], axis=1)


@dataclass
class ImageData:
    """The image store of the chapter and where each protein's images are.

    Attributes
    ----------
    store : ArrayStore
        Items (2, S, S): channel 0 = nucleus (input), 1 = protein (target), both in [0, 1].
    meta : DataFrame
        The store's metadata: ``protein``, ``index``, ``split``.
    source : str
        "sim" or "real".
    """

    store: Any
    meta: pd.DataFrame
    source: str

    def items(self, genes: Sequence[str], split: str | None = None) -> np.ndarray:
        """Store indices of the images of ``genes`` (optionally of one split), in store order."""
        sel = self.meta["protein"].isin(set(genes))
        if split is not None:
            sel &= self.meta["split"] == split
        return np.flatnonzero(sel.to_numpy())


def build_image_data(table: pd.DataFrame, preset: Preset, *, seed: int = 0, data: str = "sim",
                     data_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> ImageData:
    """Render (or read) the images of every protein any variant uses, into a cached array store.

    ``data="sim"``: ``preset.images_per_protein`` simulated crops per protein (its real graded
    annotation), resized to ``preset.image_size``. ``data="real"``: the crops of a
    cytoself/OpenCell folder (``<gene>_pro.npy``, ``<gene>_nuc.npy``; at most
    ``images_per_protein`` per protein), proteins without files are left out. The store is
    reused when its parameters (and the simulator's source) are unchanged.
    """
    from atlaskit import book
    from atlaskit.data.store import ArrayStore, store_path

    genes = sorted(set().union(*(set(image_proteins(table, v, preset, seed)["gene"]) for v in VARIANTS)))
    split = dict(zip(table["gene"], table["split"]))
    n = preset.images_per_protein
    size = preset.image_size
    root = Path(root) if root is not None else book.runs_root() / CHAPTER / "stores"
    if data == "sim":
        params = {"data": "sim", "seed": seed, "size": size, "n": n, "genes": hashlib.sha256("\n".join(genes).encode()).hexdigest(),
                  "splits": hashlib.sha256(json.dumps([split[g] for g in genes]).encode()).hexdigest(),
                  "sim": _sim_code_key(), "dtype": preset.store_dtype, "version": 1}

        def batches():
            from atlaskit.data import sim

            for b in sim.iter_opencell_crops(genes, n, seed=seed, batch_size=128):
                images = _model_images(b.images[:, 0], b.images[:, 1], size)
                meta = pd.DataFrame({"protein": b.meta["protein"].to_numpy(), "index": b.meta["index"].to_numpy(),
                                     "split": b.meta["protein"].map(split).to_numpy()})
                yield images, meta
    elif data == "real":
        from atlaskit.data import readers

        if data_dir is None:
            raise ParameterError("data='real' needs data_dir, a cytoself/OpenCell folder of <gene>_pro.npy / _nuc.npy files")
        folder = Path(data_dir)
        available = set(readers.opencell_proteins(folder))
        genes = [g for g in genes if g in available]
        if not genes:
            raise DataError(f"{folder}: none of the OpenCell proteins of this chapter has files there")
        params = {"data": "real", "folder": str(folder.resolve()), "size": size, "n": n,
                  "genes": hashlib.sha256("\n".join(genes).encode()).hexdigest(), "dtype": preset.store_dtype, "version": 1}

        def batches():
            for images, meta in readers.iter_opencell_folder(folder, proteins=genes, channels=("pro", "nuc")):
                images, meta = images[:n], meta.iloc[:n]
                gene = meta["file_name"].iloc[0]
                out = _model_images(images[:, 0], images[:, 1], size)
                yield out, pd.DataFrame({"protein": [gene] * len(out), "index": np.arange(len(out)),
                                         "split": [split[gene]] * len(out)})
    else:
        raise ParameterError(f"data must be 'sim' or 'real', not {data!r}")
    path = store_path(root, f"images-{data}", params)
    store = ArrayStore.build(path, batches, shape_per_item=(2, size, size), dtype=preset.store_dtype, params=params,
                             metadata_columns=["protein", "index", "split"],
                             attrs={"channels": ["nucleus", "protein"]})
    return ImageData(store, store.metadata.copy(), data)


class DeepGPSDataset(Dataset):
    """Items of an image store paired with their protein's sequence vector and label.

    Returns (``__getitem__``) a dict: ``seq`` (D,) float32, ``nucleus`` (1, S, S), ``target``
    (1, S, S) and, when labels are given, ``label`` (int).
    """

    def __init__(self, data: ImageData, indices: np.ndarray, features: pd.DataFrame,
                 labels: Mapping[str, int] | None = None):
        self.store = data.store
        self.indices = np.asarray(indices, dtype=np.int64)
        proteins = data.meta["protein"].to_numpy()[self.indices]
        missing = set(proteins) - set(features.index)
        if missing:
            raise DataError(f"no sequence vector for {len(missing)} proteins, e.g. {sorted(missing)[:3]}")
        self.proteins = proteins
        self.vectors = features.loc[proteins].to_numpy(dtype=np.float32)  # (N, D) one per item
        self.labels = None if labels is None else np.array([labels[p] for p in proteins], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int) -> dict:
        img = np.array(self.store.images[int(self.indices[i])], dtype=np.float32)  # (2, S, S)
        item = {"seq": torch.from_numpy(self.vectors[i]), "nucleus": torch.from_numpy(img[0:1]),
                "target": torch.from_numpy(img[1:2])}
        if self.labels is not None:
            item["label"] = int(self.labels[i])
        return item


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


@dataclass
class VariantRun:
    """A trained deepGPS variant.

    Attributes
    ----------
    variant : str
    model : DeepGPSModel
        Weights after the last epoch, in eval mode.
    trainer : Trainer
    history : History
    classes : tuple of str
    proteins : DataFrame
        The variant's image proteins (gene, split, label...).
    train_items, test_items : ndarray
        Store indices.
    run_dir : Path
    seconds : float
        Wall time of this call (training, or loading a finished run).
    """

    variant: str
    model: DeepGPSModel
    trainer: Any
    history: Any
    classes: tuple
    proteins: pd.DataFrame
    train_items: np.ndarray
    test_items: np.ndarray
    run_dir: Path
    seconds: float


def _feature_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per feature; the std is floored at a tenth of its median so
    that a nearly constant feature (a rare dipeptide) cannot blow up after standardisation."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    floor = 0.1 * float(np.median(std[std > 0])) if (std > 0).any() else 1.0
    return mean, np.maximum(std, floor)


def train_variant(variant: str, table: pd.DataFrame, images: ImageData, features: pd.DataFrame,
                  preset: Preset, *, embedder: SequenceEmbedder, seed: int = 0, device: str = "auto",
                  chapter: str = CHAPTER) -> VariantRun:
    """Train (or reload the finished run of) one deepGPS variant.

    The run folder is :func:`atlaskit.book.run_dir` keyed by every parameter that changes the
    result (variant, preset, seed, embedder, image store) and the atlaskit source, so a re-run
    of the chapter reuses it. The folder also receives the export that ``atlaskit predict`` reads.
    """
    from atlaskit import book
    from atlaskit.train import TrainConfig, Trainer, seed_everything

    t0 = time.perf_counter()
    classes = variant_classes(variant)
    proteins = image_proteins(table, variant, preset, seed)
    proteins = proteins[proteins["gene"].isin(set(images.meta["protein"]))].reset_index(drop=True)
    train_genes = proteins.loc[proteins["split"] == "train", "gene"]
    train_items = images.items(train_genes, "train")
    test_items = images.items(proteins.loc[proteins["split"] == "test", "gene"], "test")
    if train_items.size == 0:
        raise DataError(f"variant {variant}: no training images")
    labels = dict(zip(proteins["gene"], proteins["label_idx"])) if classes else None

    cfg = model_config(preset, variant, features.shape[1])
    seed_everything(seed)
    model = DeepGPSModel(cfg)
    mean, std = _feature_stats(features.loc[train_genes].to_numpy(dtype=np.float64))
    model.set_sequence_normalization(mean, std)
    params = {"variant": variant, "preset": dataclasses.asdict(preset), "seed": seed, "embedder": embedder.key,
              "store": images.store.key, "n_train_items": int(train_items.size)}
    folder = book.run_dir(chapter, f"deepgps-{variant}", **params)
    tcfg = TrainConfig(epochs=preset.epochs, batch_size=preset.batch_size, optimizer="adamw", lr=preset.lr,
                       weight_decay=preset.weight_decay, schedule="exponential", gamma=preset.gamma, seed=seed,
                       device=device, checkpoint_dir=folder, monitor="loss", progress=False,
                       channels_last=True)  # also on CPU: ~1.4x faster convolutions there
    train_ds = DeepGPSDataset(images, train_items, features, labels)
    trainer = Trainer(model, tcfg, train_data=train_ds, model_config={"model": cfg.to_dict(), "data": params})
    threads = torch.get_num_threads()
    if preset.cpu_threads and trainer.device.type == "cpu":
        torch.set_num_threads(preset.cpu_threads)
    try:
        history = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    _write_export(folder, variant=variant, cfg=cfg, classes=classes, embedder=embedder, images=images,
                  test_items=test_items, preset=preset)
    return VariantRun(variant, model, trainer, history, classes, proteins, train_items, test_items, Path(folder),
                      time.perf_counter() - t0)


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


def block_parameters(cfg: DeepGPSConfig) -> pd.DataFrame:
    """Parameters per block of a deepGPS model: ``block``, ``parameters``."""
    model = DeepGPSModel(cfg)
    rows = [{"block": name, "parameters": sum(p.numel() for p in mod.parameters())}
            for name, mod in _blocks(model)]
    return pd.DataFrame(rows)


def _blocks(model: DeepGPSModel) -> list[tuple[str, torch.nn.Module]]:
    out = [("seq_proj", model.seq_proj), ("inc", model.inc)]
    out += [(f"down{i + 1}", m) for i, m in enumerate(model.down)]
    out += [("attention", model.attention)]
    out += [(f"up{i + 1}", m) for i, m in enumerate(model.up)]
    out += [("outc", model.outc)]
    if model.classifier is not None:
        out.append(("classifier", model.classifier))
    return out


def block_gradients(cfg: DeepGPSConfig, *, seed: int = 0, batch: int = 4) -> pd.DataFrame:
    """Largest absolute gradient per block after one backward pass on random inputs.

    Shows which blocks the loss can reach: with ``fusion="replace"`` the last encoder block
    (``down4``) only feeds the attention queries and gets rounding-level gradients.
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DeepGPSModel(cfg)
    s = cfg.image_size
    seq = torch.randn(batch, cfg.seq_dim, generator=g)
    nuc, tgt = torch.rand(batch, 1, s, s, generator=g), torch.rand(batch, 1, s, s, generator=g)
    label = torch.arange(batch) % cfg.num_classes if cfg.num_classes else None
    model.compute_losses(seq, nuc, tgt, label)["loss"].backward()
    rows = []
    for name, mod in _blocks(model):
        grads = [p.grad.abs().max().item() for p in mod.parameters() if p.grad is not None]
        rows.append({"block": name, "parameters": sum(p.numel() for p in mod.parameters()),
                     "max_abs_grad": max(grads) if grads else 0.0})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def classify_proteins(run: VariantRun, features: pd.DataFrame, genes: Sequence[str]) -> np.ndarray:
    """Class probabilities (n, K) of proteins from their sequence vectors (the classifier head)."""
    device = next(run.model.parameters()).device
    x = torch.from_numpy(features.loc[list(genes)].to_numpy(dtype=np.float32)).to(device)
    run.model.eval()
    return run.model.predict_proba(x).cpu().numpy()


def generate(run: VariantRun, images: ImageData, items: np.ndarray, features: pd.DataFrame,
             batch_size: int = 64) -> np.ndarray:
    """Generated protein images (n, S, S) for store items (their own nucleus and protein)."""
    ds = DeepGPSDataset(images, items, features)
    out = run.trainer.predict(ds, lambda m, b: m(b["seq"], b["nucleus"]).image, batch_size=batch_size)
    return out[:, 0].numpy()


def generation_quality(run: VariantRun, images: ImageData, items: np.ndarray, features: pd.DataFrame,
                       batch_size: int = 64) -> pd.DataFrame:
    """PSNR and SSIM per test image: columns ``protein``, ``index``, ``psnr``, ``ssim``."""
    items = np.asarray(items, dtype=np.int64)
    gen = generate(run, images, items, features, batch_size)
    target = np.stack([np.asarray(images.store.images[int(i)][1], dtype=np.float32) for i in items])
    q = cm.image_quality(gen, target)
    meta = images.meta.iloc[items][["protein", "index"]].reset_index(drop=True)
    return pd.concat([meta, q], axis=1)


@torch.no_grad()
def cross_assay(run: VariantRun, nucleus: np.ndarray, genes: Sequence[str], features: pd.DataFrame) -> np.ndarray:
    """One nucleus image with the sequences of several proteins (the paper's Fig. 2e).

    Returns the generated images (len(genes), S, S).
    """
    device = next(run.model.parameters()).device
    nucleus = np.array(nucleus, dtype=np.float32)  # a copy: store images are read-only memory maps
    nuc = torch.from_numpy(nucleus)[None, None].expand(len(genes), 1, *nucleus.shape)
    seq = torch.from_numpy(features.loc[list(genes)].to_numpy(dtype=np.float32))
    run.model.eval()
    return run.model(seq.to(device), nuc.contiguous().to(device)).image[:, 0].float().cpu().numpy()


# ---------------------------------------------------------------------------------------------
# predict (the openGPS "Predict" analogue)
# ---------------------------------------------------------------------------------------------


def latest_export(variant: str = "single-2", runs_root: str | os.PathLike | None = None) -> Path | None:
    """The most recently written chapter run of ``variant`` that can be used for prediction."""
    from atlaskit import book

    root = Path(runs_root) if runs_root is not None else book.runs_root()
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
    img = _resize(img[None, None], size)[0, 0]
    return _minmax(img[None])[0]


def _safe_name(name: str, taken: set) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "protein"
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
        from atlaskit.train import load_checkpoint, resolve_device

        device = str(resolve_device(device))
        if variant not in VARIANTS:
            raise ParameterError(f"--model must be one of {', '.join(VARIANTS)}, not {variant!r}")
        if checkpoint is None:
            folder = latest_export(variant, runs_root)
            if folder is None:
                raise AtlaskitError(
                    f"no trained deepGPS-{variant} model found under the chapter runs; run the chapter first "
                    f"(`atlaskit run 02_deepgps`) or pass --checkpoint PATH (a run folder printed by the chapter)"
                )
            weights = folder / "last.pt"
        else:
            p = Path(checkpoint).expanduser()
            folder, weights = (p, p / "last.pt") if p.is_dir() else (p.parent, p)
        export_path = folder / EXPORT_FILE
        if not export_path.is_file():
            raise DataError(f"{folder}: not a deepGPS chapter run (no {EXPORT_FILE} beside the weights)")
        try:
            export = json.loads(export_path.read_text())
        except ValueError as exc:
            raise DataError(f"{export_path}: unreadable ({exc})") from None
        if export.get("format") != EXPORT_FORMAT:
            raise DataError(f"{export_path}: unknown format {export.get('format')!r}")
        if checkpoint is not None and export["variant"] != variant:
            raise ParameterError(f"{folder} holds a deepGPS-{export['variant']} model, not {variant}; "
                                 f"pass --model {export['variant']}")
        ckpt = load_checkpoint(weights, map_location="cpu")
        model = DeepGPSModel(DeepGPSConfig.from_dict(export["model_config"]))
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise DataError(f"{weights}: weights do not fit the exported configuration ({str(exc).splitlines()[0]})") from None
        model.eval().to(device)
        embedder = embedder_from_spec(export["embedder"], device=device, esm_weights=esm_weights)
        size = int(export["image_size"])
        nfile = folder / export.get("nucleus", "nucleus.npy")
        nucleus = np.load(nfile, allow_pickle=False) if nfile.is_file() else _default_nucleus(size)
        return cls(model, export["variant"], tuple(export["classes"]), tuple(export.get("class_labels", export["classes"])),
                   embedder, nucleus.astype(np.float32), folder)

    @torch.no_grad()
    def predict(self, records: Sequence[tuple[str, str]], nucleus: np.ndarray | None = None,
                batch_size: int = 32) -> tuple[pd.DataFrame, np.ndarray]:
        """Labels, probabilities and generated images for ``(id, sequence)`` records.

        Returns
        -------
        table : DataFrame
            ``id``, ``length`` and, for classifying variants, ``label`` and ``p_<class>`` columns.
        images : ndarray (n, S, S) float32 in [0, 1]
        """
        nuc = self.nucleus if nucleus is None else nucleus
        x = self.embedder.embed(list(records))  # (n, D)
        device = next(self.model.parameters()).device
        imgs, probs = [], []
        for lo in range(0, len(x), batch_size):
            seq = torch.from_numpy(x[lo:lo + batch_size]).to(device)
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
        return table, np.concatenate(imgs) if imgs else np.zeros((0,) + nuc.shape, np.float32)


def _default_nucleus(size: int) -> np.ndarray:
    """A simulated nucleus (the first OpenCell protein's first crop) when a run folder has none."""
    from atlaskit.data import catalogs, sim

    b = sim.opencell_crops(catalogs.opencell_proteins()["gene"].iloc[:1].tolist(), 1, seed=0)
    return _model_images(b.images[:, 0], b.images[:, 1], size)[0, 0]


@dataclass
class PredictResult:
    """What :func:`predict_fasta` wrote: the table, the skipped records, the output folder."""

    table: pd.DataFrame
    skipped: pd.DataFrame
    out_dir: Path
    model_folder: Path


def predict_fasta(fasta: str | os.PathLike, *, out_dir: str | os.PathLike, variant: str = "single-2",
                  checkpoint: str | os.PathLike | None = None, nucleus: str | os.PathLike | None = None,
                  device: str = "cpu", esm_weights: str | os.PathLike | None = None,
                  runs_root: str | os.PathLike | None = None) -> PredictResult:
    """Batch prediction: ``predictions.csv`` + one PNG per protein in ``out_dir``.

    Bad FASTA records (empty, letters that are not amino acids, duplicate ids, headers without
    an id) are skipped and listed by id and line in ``skipped.csv`` and in the result. No good
    record at all is an error.
    """
    from atlaskit.data.sequences import read_fasta_report

    records, problems = read_fasta_report(fasta)
    skipped = pd.DataFrame([{"id": p.id, "line": p.line, "reason": p.message} for p in problems],
                           columns=["id", "line", "reason"])
    if not records:
        raise DataError(f"{fasta}: no valid FASTA record to predict"
                        + (f" ({len(problems)} problem(s): {'; '.join(str(p) for p in problems[:5])})" if problems else ""))
    predictor = Predictor.load(checkpoint, variant=variant, device=device, esm_weights=esm_weights, runs_root=runs_root)
    size = predictor.model.config.image_size
    nuc = read_nucleus_image(nucleus, size) if nucleus is not None else None
    table, images = predictor.predict([(r.id, r.sequence) for r in records], nuc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    import imageio.v3 as iio

    taken: set = set()
    names = []
    for rid, img in zip(table["id"], images):
        name = _safe_name(rid, taken) + ".png"
        iio.imwrite(out / name, np.clip(np.round(img * 255), 0, 255).astype(np.uint8))
        names.append(name)
    table["image"] = names
    table.to_csv(out / "predictions.csv", index=False)
    skipped.to_csv(out / "skipped.csv", index=False)
    return PredictResult(table, skipped, out, predictor.folder)
