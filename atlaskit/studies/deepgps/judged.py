"""Generated images judged by the cytoself atlas (beyond the papers).

deepGPS draws a protein's image from its sequence and a nucleus image; PSNR and SSIM score that
image pixel by pixel. Here it is scored in *localization space* instead: the generated images
and the ground-truth images are embedded with chapter 01's cytoself encoder (its VQ2 global
vector, :func:`atlaskit.studies.cytoself.embed`), and a generated image counts as right when it
lands in its protein's localization family.

The judge
---------
The ``full`` model of chapter 01 at the same scale (:func:`judge_encoder`): reused when chapter
01 already trained it in this build (same parameters and code: the same run folder), else
trained here (at ``ci`` 15-40 s on one core, by the machine's load). Both chapters draw their
crops from the same simulator (:func:`atlaskit.data.sim.opencell_crops`, OpenCell style,
100 × 100); chapter 02 shrinks them to the model size (64 at ``ci``), so for the judge they are brought back to 100 ×
100 (bilinear) and given chapter 01's channels (:func:`judge_inputs`): the protein channel,
clipped to [0, 1] and min-max scaled per image as the simulator scales chapter 01's crops, and
the nucleus channel the model reads — the signed distance transform of our segmentation of the
nucleus image (:data:`atlaskit.studies.cytoself.SEGMENT_KWARGS`; the Otsu mask when it finds no
nucleus) or the raw nucleus. The nucleus channel of a generated image is that of its ground
truth (the generator's own input), so only the protein channel differs between them.
The size round trip does not change the judge's rate measurably (:func:`size_round_trip`): at
``ci`` the ground truth of the 172 judged test proteins lands in its family as often from the
enlarged 64-pixel crops as from the same crops simulated at 100 pixels (37 proteins both times,
though 28 % of the proteins change their nearest family: single calls are noisy, the rate is
not), so chapter 01's encoder is used as it is rather than an encoder trained on chapter 02's
images.

The rate
--------
The reference is the ground truth of chapter 02's **training** proteins: each protein's
centroid (mean embedding of its images), then each family's centroid (mean of its proteins'
centroids). A test protein's generated images are averaged into one vector (the mean
embedding) and given the family of the nearest family centroid (Euclidean); the rate is the
share of test proteins whose nearest family is their own (:func:`family_hits`,
:func:`hit_rates`), with a 95 % percentile-bootstrap interval over proteins, overall and per
family. Test proteins the judge was trained on (chapter 01's proteins) are left out. The same
rule applied to

* the ground-truth images of the test proteins gives the ceiling: how far the judge separates
  the families on real (simulated) images at all;
* the mean training image (one image for every test image, with each image's own nucleus) and
  the nucleus image used as the protein image give the floors: what an image that knows
  nothing of the sequence reaches.

A random family reaches 1/K (K families in the reference); always naming the commonest family
of the judged proteins reaches its share.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from atlaskit.errors import DataError, ParameterError

__all__ = ["JUDGE_SOURCES", "Judge", "judge_encoder", "judge_inputs", "family_centroids", "family_hits",
           "hit_rates", "chance_levels", "Judged", "judge_generation", "judged_effect", "size_round_trip"]

#: The image sources judged per test protein, in table order.
JUDGE_SOURCES = ("generated", "ground truth", "mean training image", "nucleus as protein")


# ---------------------------------------------------------------------------------------------
# the rate, on embeddings
# ---------------------------------------------------------------------------------------------
def family_centroids(embeddings: np.ndarray, proteins: Sequence[str], families: Sequence[str]) -> pd.DataFrame:
    """Family centroids of reference embeddings, each protein weighted once.

    Parameters
    ----------
    embeddings
        (N, D) one row per image.
    proteins, families
        (N,) the protein and its family of every row (a protein has one family).

    Returns
    -------
    DataFrame
        (K, D), index = family (sorted): the mean of the family's protein centroids.

    Raises
    ------
    DataError
        Lengths differ, no rows, or non-finite embeddings.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[0] != len(proteins) or x.shape[0] != len(families):
        raise DataError(f"family_centroids needs (N, D) embeddings with N proteins and families, got {x.shape}, "
                        f"{len(proteins)}, {len(families)}")
    if not np.isfinite(x).all():
        raise DataError("the reference embeddings contain NaN or infinite values")
    by_protein = pd.DataFrame(x).groupby(np.asarray(proteins), sort=True).mean()  # (P, D)
    family_of = pd.Series(np.asarray(families), index=np.asarray(proteins)).groupby(level=0).first()
    return by_protein.groupby(family_of.reindex(by_protein.index).to_numpy(), sort=True).mean()


def family_hits(embeddings: np.ndarray, proteins: Sequence[str], families: Sequence[str],
                centroids: pd.DataFrame) -> pd.DataFrame:
    """The nearest family centroid of every protein's mean embedding, and whether it is its own.

    Parameters
    ----------
    embeddings
        (N, D) one row per image of the judged proteins.
    proteins, families
        (N,) the protein and its true family of every row.
    centroids
        (K, D) :func:`family_centroids` of the reference.

    Returns
    -------
    DataFrame
        One row per protein (sorted): ``gene``, ``family``, ``nearest`` (the nearest family),
        ``distance_own`` and ``distance_nearest`` (Euclidean, from the protein's mean
        embedding; ``distance_own`` is NaN when the reference lacks its family), ``hit``
        (bool). Ties go to the family first in sorted order.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    c = centroids.to_numpy(dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(proteins) or x.shape[0] != len(families) or x.shape[0] == 0:
        raise DataError(f"family_hits needs (N, D) embeddings with N proteins and families, got {x.shape}, "
                        f"{len(proteins)}, {len(families)}")
    if x.shape[1] != c.shape[1]:
        raise DataError(f"embeddings have {x.shape[1]} values, the centroids {c.shape[1]}: not the same encoder")
    if not np.isfinite(x).all():
        raise DataError("the embeddings contain NaN or infinite values")
    mean = pd.DataFrame(x).groupby(np.asarray(proteins), sort=True).mean()  # (P, D)
    family_of = pd.Series(np.asarray(families), index=np.asarray(proteins)).groupby(level=0).first()
    dist = np.linalg.norm(mean.to_numpy()[:, None, :] - c[None, :, :], axis=2)  # (P, K)
    nearest = dist.argmin(axis=1)
    names = np.asarray(centroids.index)
    own = family_of.reindex(mean.index).to_numpy()
    position = {f: k for k, f in enumerate(names)}
    d_own = np.array([dist[i, position[f]] if f in position else np.nan for i, f in enumerate(own)])
    return pd.DataFrame({"gene": mean.index.to_numpy(), "family": own, "nearest": names[nearest],
                         "distance_own": d_own, "distance_nearest": dist[np.arange(len(mean)), nearest],
                         "hit": names[nearest] == own})


def hit_rates(hits: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Hit rates with percentile-bootstrap intervals over proteins, overall and per family.

    Parameters
    ----------
    hits
        Rows of proteins with ``family`` and ``hit`` and, optionally, ``source`` (several
        image sources in one frame: each gets its rows).

    Returns
    -------
    DataFrame
        ``source`` (when given), ``family`` ("all" first, then the families sorted), ``proteins``,
        ``rate``, ``low``, ``high``. A family's interval resamples its own proteins.
    """
    from atlaskit.analysis.effects import bootstrap_interval

    if len(hits) == 0:
        raise DataError("hit_rates needs at least one protein")
    groups = hits.groupby("source", sort=False) if "source" in hits.columns else [(None, hits)]
    rows = []
    for source, frame in groups:
        parts = [("all", frame)] + [(f, g) for f, g in frame.groupby("family", sort=True)]
        for family, g in parts:
            rate, low, high = bootstrap_interval(np.mean, g["hit"].to_numpy(dtype=float), n_boot=n_boot, seed=seed,
                                                 level=level)
            row = {"family": family, "proteins": len(g), "rate": rate, "low": low, "high": high}
            rows.append(row if source is None else {"source": source, **row})
    return pd.DataFrame(rows)


def chance_levels(hits: pd.DataFrame, n_families: int) -> dict[str, float]:
    """What a judge blind to the images reaches: ``random`` = 1 / ``n_families`` (a family drawn
    at random) and ``commonest`` = the share of the commonest family among the judged proteins
    (always naming it)."""
    if n_families < 1:
        raise ParameterError(f"n_families must be positive, not {n_families!r}")
    per_protein = hits.drop_duplicates("gene") if "gene" in hits.columns else hits
    share = per_protein["family"].value_counts(normalize=True)
    return {"random": 1.0 / n_families, "commonest": float(share.iloc[0]) if len(share) else float("nan")}


# ---------------------------------------------------------------------------------------------
# the judge: chapter 01's encoder and its inputs
# ---------------------------------------------------------------------------------------------
@dataclass
class Judge:
    """Chapter 01's trained cytoself model as the judge of chapter 02's images.

    Attributes
    ----------
    model : CytoselfModel
        In eval mode.
    channels : tuple of int
        The store channels of chapter 01 the model reads (0 protein, 1 nucleus distance, 2 raw nucleus).
    size : int
        Its input side (100).
    proteins : tuple of str
        The proteins it was trained on (judged proteins among them are left out).
    run_dir : Path
    reused : bool
        True when chapter 01's finished run was found (not trained by this call).
    seconds : float
        Wall time of this call's training (near 0 when reused).
    """

    model: torch.nn.Module
    channels: tuple
    size: int
    proteins: tuple = ()
    run_dir: Path | None = None
    reused: bool = True
    seconds: float = 0.0

    def embed(self, inputs: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """(N, D) VQ2 global vectors (flattened) of (N, C, size, size) judge inputs."""
        from atlaskit.studies.cytoself import embed

        x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        return embed(self.model, _Images(x), batch_size=batch_size).global_.astype(np.float64)


class _Images:
    """The minimal dataset :func:`atlaskit.studies.cytoself.embed` reads: ``(image, 0)`` items."""

    def __init__(self, x: torch.Tensor):
        self.x = x
        self.indices = np.arange(len(x))
        self.transform = None

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], 0


def judge_encoder(scale: str, *, seed: int = 0, device: str = "auto") -> Judge:
    """Chapter 01's ``full`` model (repeat 0) at ``scale`` on its simulated data, as the judge.

    :func:`atlaskit.studies.cytoself.train` finds the run chapter 01 trained with the same
    parameters and code (the same run folder) and loads it; otherwise it trains it here (``ci``:
    24 proteins, 4 epochs, 15-40 s on one core, plus the image store when it is not cached).
    """
    from atlaskit.studies import cytoself
    from atlaskit.studies.cytoself.place import model_channels

    p = cytoself.preset(scale)
    data = cytoself.build_data(p, "sim", None, seed)
    run = cytoself.train("full", data, p, seed=seed, device=device)
    model = run.model.eval()
    return Judge(model=model, channels=tuple(model_channels(model)), size=int(model.config.image_size),
                 proteins=tuple(data.classes), run_dir=run.run_dir, reused=run.reused, seconds=run.seconds)


def _nucleus_distance(nucleus: np.ndarray) -> np.ndarray:
    """Chapter 01's nucleus channel of one (S, S) nucleus image: the signed distance of its segmentation."""
    from atlaskit.data import segment
    from atlaskit.studies.cytoself import SEGMENT_KWARGS
    from atlaskit.studies.deepgps.evaluation import nucleus_mask

    mask = segment.segment_nuclei(nucleus, **SEGMENT_KWARGS) != 0
    if not mask.any() or mask.all():  # why: the distance needs both sides; Otsu as the fallback
        mask = nucleus_mask(nucleus) if nucleus.max() > nucleus.min() else np.zeros(nucleus.shape, bool)
    if not mask.any() or mask.all():
        return np.full(nucleus.shape, -1.0 if not mask.any() else 1.0, dtype=np.float32)
    return segment.signed_distance(mask, normalise="max_abs").astype(np.float32)


def judge_inputs(protein: np.ndarray, nucleus: np.ndarray | None, channels: Sequence[int], *, size: int = 100,
                 nucleus_channels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Chapter 02's (protein, nucleus) images in the judge's input: ``size`` × ``size``, its channels.

    Parameters
    ----------
    protein
        (N, S, S) protein images (generated or ground truth).
    nucleus
        (N, S, S) their nucleus images (ignored when ``nucleus_channels`` is given).
    channels
        Chapter 01's store channels the judge reads (0 protein, 1 nucleus distance, 2 raw nucleus).
    size
        The judge's input side.
    nucleus_channels
        (N, C - 1, size, size) the nucleus part of an earlier call's result, to reuse (the
        segmentation is the slow part and is the same for every protein image of a nucleus).

    Returns
    -------
    inputs : ndarray
        (N, len(channels), size, size) float32.
    nucleus_channels : ndarray
        (N, len(channels) - 1, size, size), to pass again for other protein images of the same nuclei.
    """
    from atlaskit.data.segment import rescale_unit
    from atlaskit.studies.deepgps.data import _minmax, _resize

    channels = tuple(int(c) for c in channels)
    if not channels or channels[0] != 0 or any(c not in (1, 2) for c in channels[1:]):
        raise ParameterError(f"channels must be (0,) or 0 followed by 1 and/or 2, not {channels}")
    prot = np.asarray(protein, dtype=np.float32)
    if prot.ndim != 3 or prot.shape[0] == 0:
        raise DataError(f"protein images must be shaped (N, S, S) with N >= 1, got {prot.shape}")
    if not np.isfinite(prot).all():
        raise DataError("the protein images contain NaN or infinite values")
    p = _minmax(np.clip(_resize(prot[:, None], size)[:, 0], 0.0, 1.0))  # (N, size, size)
    if nucleus_channels is None:
        nuc_channels = np.zeros((len(p), len(channels) - 1, size, size), dtype=np.float32)
        if len(channels) > 1:
            nuc = np.asarray(nucleus, dtype=np.float32)
            if nuc.shape != prot.shape:
                raise DataError(f"nucleus images {nuc.shape} and protein images {prot.shape} differ in shape")
            big = _minmax(_resize(nuc[:, None], size)[:, 0])  # (N, size, size) in [0, 1]
            for j, c in enumerate(channels[1:]):
                for i in range(len(big)):
                    nuc_channels[i, j] = _nucleus_distance(big[i]) if c == 1 else rescale_unit(big[i])
    else:
        nuc_channels = np.asarray(nucleus_channels, dtype=np.float32)
        if nuc_channels.shape != (len(p), len(channels) - 1, size, size):
            raise DataError(f"nucleus_channels must be shaped {(len(p), len(channels) - 1, size, size)}, "
                            f"got {nuc_channels.shape}")
    return np.concatenate([p[:, None], nuc_channels], axis=1), nuc_channels


# ---------------------------------------------------------------------------------------------
# the chapter's call
# ---------------------------------------------------------------------------------------------
@dataclass
class Judged:
    """Generated images judged by the atlas.

    Attributes
    ----------
    hits : DataFrame
        One row per judged test protein and source (:data:`JUDGE_SOURCES`): ``source``,
        ``gene``, ``family``, ``nearest``, ``distance_own``, ``distance_nearest``, ``hit``.
    rates : DataFrame
        :func:`hit_rates` of ``hits`` (per source, overall and per family).
    chance : dict
        :func:`chance_levels` (``random``, ``commonest``).
    families : list of str
        The reference's families (K = ``len(families)``).
    n_reference : int
        Training proteins in the reference.
    excluded : list of str
        Test proteins left out because the judge trained on them.
    variant : str
        The deepGPS variant judged.
    judge : Judge
    """

    hits: pd.DataFrame
    rates: pd.DataFrame
    chance: dict
    families: list
    n_reference: int
    excluded: list
    variant: str
    judge: Judge = field(repr=False)

    def rate(self, source: str = "generated", family: str = "all") -> pd.Series:
        """The row of ``rates`` of one source and family (``rate``, ``low``, ``high``, ``proteins``)."""
        r = self.rates[(self.rates["source"] == source) & (self.rates["family"] == family)]
        if r.empty:
            raise DataError(f"no rate for source {source!r}, family {family!r}")
        return r.iloc[0]

    def summary(self) -> pd.DataFrame:
        """The overall rate of every source, with the proteins judged."""
        out = self.rates[self.rates["family"] == "all"].drop(columns="family")
        return out.reset_index(drop=True)


def _store_images(images, items: np.ndarray, channel: int) -> np.ndarray:
    """(N, S, S) float32 of one channel (0 nucleus, 1 protein) of store items."""
    return np.stack([np.asarray(images.store.images[int(i)][channel], dtype=np.float32) for i in items])


def judge_generation(run, images, features: pd.DataFrame, judge: Judge, *, families: pd.Series,
                     n_boot: int = 1000, seed: int = 0) -> Judged:
    """Judge a deepGPS variant's generated images of its test proteins in the cytoself embedding.

    Parameters
    ----------
    run
        A trained :class:`~atlaskit.studies.deepgps.training.VariantRun` (its ``train_items``
        give the reference, its ``test_items`` the judged images).
    images
        The chapter's :class:`~atlaskit.studies.deepgps.data.ImageData`.
    features
        Sequence vectors (the run's).
    judge
        :func:`judge_encoder`.
    families
        gene → localization family (e.g. the chapter's ``table.set_index("gene")["family"]``);
        proteins without one are left out.
    n_boot, seed
        Bootstrap of the intervals.

    Raises
    ------
    DataError
        No test protein left to judge, or no reference.
    """
    from atlaskit.studies.deepgps.evaluation import generate

    fam = families.dropna()
    meta = images.meta
    trained_on = set(judge.proteins)

    def keep(items):
        genes = meta["protein"].to_numpy()[np.asarray(items, dtype=np.int64)]
        return np.asarray(items, dtype=np.int64)[np.isin(genes, fam.index)]

    ref_items = keep(run.train_items)
    test_items = keep(run.test_items)
    test_genes = meta["protein"].to_numpy()[test_items]
    excluded = sorted(set(test_genes) & trained_on)
    test_items = test_items[~np.isin(test_genes, list(trained_on))]
    if ref_items.size == 0 or test_items.size == 0:
        raise DataError(f"deepGPS-{run.variant}: no {'reference' if ref_items.size == 0 else 'test'} images "
                        "with a family to judge")
    ref_genes = meta["protein"].to_numpy()[ref_items]
    x_ref, _ = judge_inputs(_store_images(images, ref_items, 1), _store_images(images, ref_items, 0),
                            judge.channels, size=judge.size)
    centroids = family_centroids(judge.embed(x_ref), ref_genes, fam.reindex(ref_genes).to_numpy())

    genes = meta["protein"].to_numpy()[test_items]
    truth = _store_images(images, test_items, 1)  # (N, S, S)
    nucleus = _store_images(images, test_items, 0)
    mean_train = _store_images(images, run.train_items, 1).mean(axis=0)  # (S, S) every training target
    protein_images = {
        "generated": generate(run, images, test_items, features),
        "ground truth": truth,
        "mean training image": np.repeat(mean_train[None], len(test_items), axis=0),
        "nucleus as protein": nucleus,
    }
    nuc_channels = None
    parts = []
    for source in JUDGE_SOURCES:
        x, nuc_channels = judge_inputs(protein_images[source], nucleus, judge.channels, size=judge.size,
                                       nucleus_channels=nuc_channels)
        h = family_hits(judge.embed(x), genes, fam.reindex(genes).to_numpy(), centroids)
        parts.append(h.assign(source=source))
    hits = pd.concat(parts, ignore_index=True)[["source", "gene", "family", "nearest", "distance_own",
                                                "distance_nearest", "hit"]]
    rates = hit_rates(hits, n_boot=n_boot, seed=seed)
    return Judged(hits=hits, rates=rates, chance=chance_levels(hits, len(centroids)), families=list(centroids.index),
                  n_reference=int(len(set(ref_genes))), excluded=excluded, variant=run.variant, judge=judge)


def judged_effect(judged: Judged, *, n_boot: int = 1000, seed: int = 0, data: str = "sim"):
    """The ledger row (ours, beyond the papers): the generated images' family rate minus that of
    the better of the two floors (mean training image, nucleus as protein), paired bootstrap over
    the judged proteins; chance levels and the ground-truth ceiling in the measure's text."""
    from atlaskit.analysis.effects import Effect, bootstrap_interval

    wide = judged.hits.pivot(index="gene", columns="source", values="hit").astype(float)
    floors = ["mean training image", "nucleus as protein"]
    floor = max(floors, key=lambda s: (wide[s].mean(), s == floors[0]))
    est, low, high = bootstrap_interval(lambda a, b: float(a.mean() - b.mean()), wide["generated"].to_numpy(),
                                        wide[floor].to_numpy(), n_boot=n_boot, seed=seed)
    g, t = judged.rate("generated"), judged.rate("ground truth")
    return Effect.measured(
        f"generated images land in their own protein's localization family in the cytoself embedding more often "
        f"than an image blind to the sequence (deepGPS-{judged.variant}; ours, beyond the papers)",
        "no paper number: none of the four papers judges generated images in a learned localization space",
        f"family hit rate(generated) − rate({floor}), nearest family centroid of chapter 01's cytoself embedding "
        f"(reference: ground truth of {judged.n_reference} training proteins), {int(g['proteins'])} test proteins; "
        f"generated {g['rate']:.3f} [{g['low']:.3f}, {g['high']:.3f}], ground truth {t['rate']:.3f}, "
        f"{floor} {wide[floor].mean():.3f}, random family {judged.chance['random']:.3f}",
        est, low, high, reason="paired bootstrap over test proteins; one generator and one judge run", data=data)


def size_round_trip(judge: Judge, table: pd.DataFrame, preset, *, variant: str = "all", seed: int = 0,
                    n_boot: int = 1000) -> pd.DataFrame:
    """Does chapter 02's image size change the judge's verdicts? The ground-truth family rate of
    the same simulated crops at chapter 01's size and after chapter 02's round trip.

    The crops of ``variant``'s image proteins (:func:`~atlaskit.studies.deepgps.image_proteins`;
    ``preset.images_per_protein`` each, simulated with ``seed``) are judged twice by the rule of
    :func:`judge_generation` (reference: the training proteins, judged: the test proteins the
    judge did not train on): as simulated (``judge.size`` pixels, chapter 01's crops) and shrunk
    to ``preset.image_size`` as chapter 02's store does (:func:`~atlaskit.studies.deepgps.data.model_images`),
    then enlarged back by :func:`judge_inputs`. Simulating the crops takes most of the time
    (about a minute at ``ci`` on one core).

    Returns
    -------
    DataFrame
        Two rows: ``images`` (``"<size> px"``, ``"<image_size> px → <size> px"``), ``proteins``,
        ``hits``, ``rate``, ``low``, ``high`` (bootstrap over proteins) and ``same_call``: the
        share of proteins given the same nearest family as in the first row (1 there).
    """
    from atlaskit.data import sim
    from atlaskit.studies.deepgps.data import model_images
    from atlaskit.studies.deepgps.proteins import image_proteins

    proteins = image_proteins(table, variant, preset, seed)
    family = table.set_index("gene")["family"].dropna()
    proteins = proteins[proteins["gene"].isin(family.index)]
    ref = sorted(proteins.loc[proteins["split"] == "train", "gene"])
    test = sorted(set(proteins.loc[proteins["split"] == "test", "gene"]) - set(judge.proteins))
    if not ref or not test:
        raise DataError(f"{variant}: no {'training' if not ref else 'test'} proteins with a family to judge")

    def crops(genes):
        parts = list(sim.iter_opencell_crops(genes, preset.images_per_protein, seed=seed, batch_size=128))
        images = np.concatenate([b.images for b in parts])  # (N, 2, 100, 100): protein, nucleus
        return images[:, 0], images[:, 1], np.concatenate([b.meta["protein"].to_numpy() for b in parts])

    simulated = {"ref": crops(ref), "test": crops(test)}
    rows = []
    for label, shrink in ((f"{judge.size} px", None), (f"{preset.image_size} px → {judge.size} px", preset.image_size)):
        vectors = {}
        for part, (protein, nucleus, genes) in simulated.items():
            if shrink is not None:
                pair = model_images(protein, nucleus, shrink)  # (N, 2, S, S): nucleus, protein
                nucleus, protein = pair[:, 0], pair[:, 1]
            x, _ = judge_inputs(protein, nucleus, judge.channels, size=judge.size)
            vectors[part] = (judge.embed(x), genes)
        centroids = family_centroids(vectors["ref"][0], vectors["ref"][1], family.reindex(vectors["ref"][1]).to_numpy())
        hits = family_hits(vectors["test"][0], vectors["test"][1], family.reindex(vectors["test"][1]).to_numpy(),
                           centroids)
        rate = hit_rates(hits, n_boot=n_boot, seed=seed).iloc[0]
        first = hits if not rows else first
        rows.append({"images": label, "proteins": len(hits), "hits": int(hits["hit"].sum()), "rate": rate["rate"],
                     "low": rate["low"], "high": rate["high"],
                     "same_call": float((hits["nearest"].to_numpy() == first["nearest"].to_numpy()).mean())})
    return pd.DataFrame(rows)
