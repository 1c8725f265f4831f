"""The structure variant of deepGPS (the paper's Fig. 3): a protein's AlphaFold model as a point
cloud, read by a PointNet, in place of or beside the sequence vector.

The paper's code encodes a point cloud of each protein's structure with a PointNet beside the
ESM2 sequence embedding; the paper found that the structure adds no accuracy over the sequence
alone. Here the claim is tested on the single-2 task (cytoplasm vs nucleoplasm) with three arms
trained alike in the same protein-disjoint folds (:func:`~atlaskit.studies.deepgps.crossval.cv_folds`,
as the sequence classifiers of :mod:`.crossval`): **sequence** (an MLP on the chapter's sequence
vector), **structure** (PointNet + MLP on the residue point cloud of
:func:`atlaskit.data.structures.point_cloud`) and **sequence + structure** (both, concatenated).

Structures come from a folder (``structures_dir``, files named by UniProt accession) or from the
AlphaFold DB through :class:`atlaskit.data.alphafold.AlphaFoldDB` (cache, mirrors; download on
request). The experiment runs when at least :data:`MIN_PROTEINS` proteins of the variant (and
:data:`MIN_PER_CLASS` of each class) have one; otherwise :func:`structure_effect` gives the
ledger row as not testable, with the reason.

The ledger row is a non-inferiority test fixed before any result: the paper's "no gain" holds
(**reproduced**) when the 95 % interval of accuracy(sequence) − accuracy(sequence + structure)
lies above −:data:`MARGIN`, i.e. a gain of the structure larger than 5 points is ruled out; it is
**reversed** when the interval lies below −MARGIN (the structure adds more than 5 points).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from atlaskit.analysis.effects import Effect, bootstrap_interval
from atlaskit.errors import DataError, ParameterError
from atlaskit.metrics import classification as cm
from atlaskit.studies.deepgps.crossval import CrossValResult, cv_folds
from atlaskit.studies.deepgps.proteins import variant_classes, variant_table

__all__ = ["EFFECT", "MARGIN", "MIN_PROTEINS", "MIN_PER_CLASS", "ARMS", "StructureExperiment", "sample_structures",
           "find_structures", "structure_experiment", "structure_crossval", "arm_table", "structure_effect",
           "pointnet_probe", "point_cloud_figure"]

#: Non-inferiority margin of the ledger row (accuracy), fixed before any result.
MARGIN = 0.05
#: Proteins with a structure needed for the experiment, and per class (5 folds need 5 per class).
MIN_PROTEINS = 20
MIN_PER_CLASS = 5
#: The three arms, in table order.
ARMS = ("sequence", "structure", "sequence + structure")
EFFECT = "a protein's structure adds no accuracy over its sequence (single-2, Fig. 3)"
_PAPER = ("deepGPS with the structure (a PointNet on a point cloud of the protein) beside the ESM2 sequence "
          "vector was no more accurate than the sequence alone (Fig. 3)")


@dataclass
class StructureExperiment:
    """What the structure experiment found and ran.

    Attributes
    ----------
    found : DataFrame
        One row per protein of the variant: ``gene``, ``uniprot``, ``label``, ``label_idx`` and
        ``path`` (empty when no structure was found).
    source : str
        Where structures were looked for.
    results : dict of str to CrossValResult
        The arms (:data:`ARMS`) when the experiment ran; empty otherwise.
    reason : str
        Why it did not run (empty when it ran).
    """

    found: pd.DataFrame
    source: str
    results: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def n_found(self) -> int:
        return int((self.found["path"] != "").sum())

    @property
    def ran(self) -> bool:
        return bool(self.results)

    def message(self) -> str:
        """One paragraph: which proteins have structures and whether the experiment ran."""
        have = self.found[self.found["path"] != ""]
        head = (f"structures ({self.source}): {len(have)} of {len(self.found)} single-2 proteins"
                + (f" ({', '.join(have['gene'].head(8))}{', …' if len(have) > 8 else ''})" if len(have) else ""))
        if self.ran:
            return head + f"; the experiment ran on {len(next(iter(self.results.values())).y_true)} proteins"
        return f"structures looked for in {self.source}; the experiment did not run: {self.reason}"


def sample_structures(registry=None) -> dict:
    """The registered real AlphaFold models (the mirror's ``structures/alphafold-human-samples/``), read.

    Returns
    -------
    dict of str to atlaskit.data.structures.Structure
        By UniProt accession, sorted.
    """
    from atlaskit.data.alphafold import AlphaFoldDB
    from atlaskit.data.structures import read_structure

    db = AlphaFoldDB(registry)
    return {u: read_structure(db.locate(u)) for u in sorted(db.registered())}


def find_structures(table: pd.DataFrame, *, variant: str = "single-2", structures_dir=None,
                    download: bool = False, registry=None) -> tuple[pd.DataFrame, str]:
    """The structure file of every protein of ``variant`` (by UniProt accession), where one is found.

    ``structures_dir`` first (:func:`atlaskit.data.structures.structure_files`), then the AlphaFold
    DB's models in the registry (cache and mirrors; downloaded when ``download``).

    Returns
    -------
    (DataFrame, str)
        ``gene``, ``uniprot``, ``label``, ``label_idx``, ``path`` ("" when none), and a description
        of where structures were looked for.
    """
    from atlaskit.data.alphafold import AlphaFoldDB
    from atlaskit.data.structures import structure_files

    vt = variant_table(table, variant)
    if "uniprot" not in vt.columns:
        vt = vt.merge(table[["gene", "uniprot"]], on="gene", how="left")
    folder = structure_files(structures_dir) if structures_dir else {}
    db = AlphaFoldDB(registry)
    paths = []
    for uniprot in vt["uniprot"].fillna(""):
        path = folder.get(uniprot)
        if path is None and uniprot:
            try:
                path = db.locate(uniprot, download=download)
            except ParameterError:  # not an accession: no AlphaFold DB model to look up
                path = None
        paths.append("" if path is None else str(path))
    found = vt[["gene", "uniprot", "label", "label_idx"]].reset_index(drop=True).assign(path=paths)
    where = (f"`{structures_dir}`, then " if structures_dir else "") + "the AlphaFold DB models in the atlaskit cache " \
        "and mirrors" + (" (downloading missing ones)" if download else "")
    return found, where


def _fit_predict(arm: str, data: dict, train: np.ndarray, test: np.ndarray, n_classes: int, *, epochs: int,
                 seed: int, widths: tuple[int, ...], lr: float = 3e-3, batch_size: int = 32) -> np.ndarray:
    """Train one arm on the ``train`` rows, return the class probabilities of the ``test`` rows ``(n_test, K)``."""
    import torch

    from atlaskit.data.structures import N_POINT_FEATURES
    from atlaskit.models.pointnet import PointNetConfig, StructureSequenceClassifier

    torch.manual_seed(seed)
    seq = data["sequence"]  # (n, S), standardised on the training rows only
    mu, sd = seq[train].mean(0), seq[train].std(0)
    seq = torch.as_tensor((seq - mu) / np.where(sd > 1e-6, sd, 1.0), dtype=torch.float32)
    points = torch.as_tensor(data["points"])  # (n, N, F)
    mask = torch.as_tensor(data["mask"])  # (n, N)
    y = torch.as_tensor(data["y"], dtype=torch.long)
    model = StructureSequenceClassifier(
        n_classes, pointnet=PointNetConfig(N_POINT_FEATURES, widths) if "structure" in arm else None,
        seq_dim=seq.shape[1] if "sequence" in arm else 0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    rows = torch.as_tensor(train)

    def forward(idx):
        return model(points[idx], mask[idx], seq[idx])

    model.train()
    for _ in range(epochs):
        for idx in rows[torch.randperm(len(rows), generator=generator)].split(batch_size):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(forward(idx), y[idx]).backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        return torch.softmax(forward(torch.as_tensor(test)), dim=1).numpy().astype(np.float64)


def structure_crossval(found: pd.DataFrame, features: pd.DataFrame, *, n_folds: int = 5, seed: int = 0,
                       epochs: int = 40, max_points: int = 256, widths: tuple[int, ...] = (32, 64, 128),
                       arms=ARMS) -> dict:
    """Out-of-fold probabilities of the three arms over the proteins of ``found`` that have a structure.

    Every arm is trained alike (AdamW, ``epochs`` epochs, batches of 32, fixed settings) in the same
    stratified, protein-disjoint folds; the sequence vector is standardised on the training folds.

    Returns
    -------
    dict of str to CrossValResult
        By arm name.

    Raises
    ------
    DataError
        Fewer than :data:`MIN_PER_CLASS` proteins of a class, a protein without sequence
        features, or an unreadable structure file (its message names the file).
    """
    from atlaskit.data.structures import pad_clouds, point_cloud, read_structure

    have = found[found["path"] != ""].reset_index(drop=True)
    missing = set(have["gene"]) - set(features.index)
    if missing:
        raise DataError(f"the sequence features lack {len(missing)} proteins with structures, e.g. {sorted(missing)[:3]}")
    y = have["label_idx"].to_numpy()
    folds = cv_folds(y, n_folds, seed)
    clouds = [point_cloud(read_structure(p), max_points=max_points) for p in have["path"]]
    points, mask = pad_clouds(clouds)  # (n, N, F), (n, N)
    data = {"sequence": features.loc[have["gene"]].to_numpy(np.float64), "points": points, "mask": mask, "y": y}
    k = int(found["label_idx"].max()) + 1
    results = {}
    for arm in arms:
        proba = np.full((len(y), k), np.nan)
        for f in range(n_folds):
            train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
            proba[test] = _fit_predict(arm, data, train, test, k, epochs=epochs, seed=seed + f, widths=widths)
        results[arm] = CrossValResult(arm, have["gene"].to_numpy(), y, proba,
                                      int(round(len(y) * (n_folds - 1) / n_folds)), "", folds=folds, n_folds=n_folds)
    return results


def structure_experiment(table: pd.DataFrame, features: pd.DataFrame, *, structures_dir=None, download: bool = False,
                         seed: int = 0, registry=None, **crossval) -> StructureExperiment:
    """Find the single-2 proteins' structures and, when enough are found, run :func:`structure_crossval`.

    ``crossval`` goes to :func:`structure_crossval` (``epochs``, ``max_points``, ``widths``…).
    """
    found, source = find_structures(table, structures_dir=structures_dir, download=download, registry=registry)
    have = found[found["path"] != ""]
    counts = have["label"].value_counts()
    classes = variant_classes("single-2")
    short = [c for c in classes if counts.get(c, 0) < MIN_PER_CLASS]
    if len(have) < MIN_PROTEINS or short:
        reason = (f"{len(have)} of {len(found)} single-2 proteins have a structure here "
                  f"({', '.join(f'{c} {counts.get(c, 0)}' for c in classes)}), at least {MIN_PROTEINS} "
                  f"({MIN_PER_CLASS} per class) are needed: run the chapter with `-p structures_dir FOLDER` "
                  "(AlphaFold models named by UniProt id) or `-p structures_download True` where the AlphaFold DB "
                  "is reachable")
        return StructureExperiment(found, source, reason=reason)
    results = structure_crossval(found, features, seed=seed, **crossval)
    return StructureExperiment(found, source, results=results)


def arm_table(experiment: StructureExperiment, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Accuracy (bootstrap 95 % interval over proteins) and AUROC of each arm; empty when it did not run."""
    rows = []
    for arm, r in experiment.results.items():
        hits = (r.proba.argmax(1) == r.y_true).astype(float)
        acc, lo, hi = bootstrap_interval(np.mean, hits, n_boot=n_boot, seed=seed)
        rows.append({"arm": arm, "proteins": len(hits), "accuracy": acc, "accuracy_lo": lo, "accuracy_hi": hi,
                     "auroc": cm.auroc(r.y_true, r.proba),
                     "paper": "no gain over sequence (Fig. 3)" if arm == "sequence + structure" else ""})
    return pd.DataFrame(rows, columns=["arm", "proteins", "accuracy", "accuracy_lo", "accuracy_hi", "auroc", "paper"])


def structure_effect(experiment: StructureExperiment, *, n_boot: int, seed: int = 0) -> Effect:
    """The ledger row: accuracy(sequence) − accuracy(sequence + structure), non-inferiority at −:data:`MARGIN`."""
    if not experiment.ran:
        return Effect.not_testable(EFFECT, _PAPER, experiment.reason, data="real",
                                   measure=f"accuracy(sequence) − accuracy(sequence + structure), null −{MARGIN}")
    seq, both = experiment.results["sequence"], experiment.results["sequence + structure"]
    hit_seq = (seq.proba.argmax(1) == seq.y_true).astype(float)
    hit_both = (both.proba.argmax(1) == both.y_true).astype(float)
    est, low, high = bootstrap_interval(lambda a, b: float(a.mean() - b.mean()), hit_seq, hit_both,
                                        n_boot=n_boot, seed=seed)
    return Effect.measured(
        EFFECT, _PAPER,
        f"accuracy(sequence) − accuracy(sequence + structure), {len(hit_seq)} single-2 proteins with an AlphaFold "
        f"model, out-of-fold ({seq.n_folds}-fold protein-disjoint); accuracies {hit_seq.mean():.3f} and "
        f"{hit_both.mean():.3f}; reproduced = a structure gain above {MARGIN:.2f} is ruled out",
        est, low, high, null=-MARGIN, reason="paired bootstrap over proteins; one training run per fold", data="real")


def pointnet_probe(structures: dict, *, max_points: int = 256, widths: tuple[int, ...] = (32, 64, 128),
                   seed: int = 0) -> dict:
    """An untrained PointNet on ``structures`` (by name): the padded input, the mask and the embedding.

    Returns a dict with ``points`` ``(B, N, F)``, ``mask`` ``(B, N)``, ``embedding`` ``(B, D)`` (numpy)
    and ``permutation_gap``: the largest change of the embedding when every cloud's real points
    are shuffled (0 up to rounding: the max-pooling is symmetric).
    """
    import torch

    from atlaskit.data.structures import N_POINT_FEATURES, pad_clouds, point_cloud
    from atlaskit.models.pointnet import PointNetConfig, PointNetEncoder

    torch.manual_seed(seed)
    encoder = PointNetEncoder(PointNetConfig(N_POINT_FEATURES, widths)).eval()
    clouds = [point_cloud(s, max_points=max_points) for s in structures.values()]
    points, mask = pad_clouds(clouds)  # (B, N, F), (B, N)
    rng = np.random.default_rng(seed)
    shuffled = np.zeros_like(points)
    for i, c in enumerate(clouds):
        shuffled[i, : len(c)] = c[rng.permutation(len(c))]
    with torch.no_grad():
        emb = encoder(torch.as_tensor(points), torch.as_tensor(mask)).numpy()  # (B, D)
        emb_shuffled = encoder(torch.as_tensor(shuffled), torch.as_tensor(mask)).numpy()
    return {"points": points, "mask": mask, "embedding": emb,
            "permutation_gap": float(np.abs(emb - emb_shuffled).max())}


def point_cloud_figure(structure, *, title: str | None = None):
    """The Cα trace of ``structure`` as a plotly 3-D scatter coloured by pLDDT (AlphaFold's confidence bands)."""
    import plotly.graph_objects as go

    xyz = structure.coords - structure.coords.mean(axis=0)
    hover = [f"{r} {i + 1}<br>pLDDT {p:.1f}" for i, (r, p) in enumerate(zip(structure.residues, structure.plddt))]
    fig = go.Figure([
        go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="lines", line=dict(color="lightgrey", width=2),
                     hoverinfo="skip", showlegend=False),
        go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers", text=hover, hoverinfo="text",
                     showlegend=False,
                     marker=dict(size=3, color=structure.plddt, cmin=0, cmax=100, colorscale=[
                         [0, "#FF7D45"], [0.5, "#FF7D45"], [0.5, "#FFDB13"], [0.7, "#FFDB13"], [0.7, "#65CBF3"],
                         [0.9, "#65CBF3"], [0.9, "#0053D6"], [1, "#0053D6"]],
                                 colorbar=dict(title="pLDDT", thickness=12))),
    ])
    name = structure.uniprot or Path(structure.path).name
    # two short lines on the left: a 3-D figure's mode bar fills the top right
    fig.update_layout(title=dict(text=title or f"AlphaFold model of {name}<br>{len(structure)} residues (Cα), "
                                 "coloured by pLDDT", x=0.01, xanchor="left"),
                      height=460, margin=dict(l=0, r=0, t=70, b=0),
                      scene=dict(xaxis_title="x (Å)", yaxis_title="y (Å)", zaxis_title="z (Å)", aspectmode="data"))
    return fig
