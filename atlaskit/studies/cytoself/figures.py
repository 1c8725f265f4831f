"""Figures of chapter 01 (cytoself): every figure the chapter shows is drawn here, one function each.

matplotlib figures are returned (the notebook shows them once, when the cell ends); plotly
figures are returned for the chapter to ``.show()``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from atlaskit.errors import ParameterError

__all__ = ["stored_channels", "loss_terms", "perplexity_curves", "atlas_map", "spectrum_heatmap", "consensus",
           "zeroing_figure", "score_strip", "variant_atlases"]

#: The loss terms drawn by :func:`loss_terms`, in panel order.
LOSS_TERMS = ("loss", "reconstruction", "decoder2", "vq1", "vq2", "classifier1", "classifier2")


def stored_channels(data, genes: Sequence[str]):
    """The three stored channels of the first training crop of each protein of ``genes``
    (the distance shown as (d + 1) / 2)."""
    from atlaskit import plots

    rows = data.indices("train")
    proteins = data.meta["protein"].to_numpy()[rows]
    picked = [int(rows[proteins == g][0]) for g in genes]
    x = data.store.images[picked].astype(np.float32)  # (n, 3, 100, 100)
    tiles = [t for i in range(len(picked)) for t in (x[i, 0], (x[i, 1] + 1) / 2, x[i, 2])]
    fig = plots.image_grid(tiles, ncols=6, size=1.5,
                           titles=[f"{g}: {name}" for g in genes for name in ("protein", "nucleus distance", "raw nucleus")])
    fig.suptitle("Stored channels of one training crop per protein (distance shown as (d + 1) / 2)", fontsize=9, y=1.02)
    return fig


def loss_terms(history: pd.DataFrame, variant: str = "full", repeat: int = 0):
    """Every loss term per epoch of one run (training vs validation), from :func:`history_frame`."""
    import plotly.express as px

    terms = list(LOSS_TERMS)
    curves = history[(history["variant"] == variant) & (history["repeat"] == repeat) & history["term"].isin(terms)]
    fig = px.line(curves, x="epoch", y="value", color="split", facet_col="term", facet_col_wrap=4,
                  category_orders={"term": terms}, markers=True,
                  title="Full model: every loss term per epoch (training vs validation)")
    fig.update_yaxes(matches=None, showticklabels=True)
    fig.update_layout(height=520)
    return fig


def perplexity_curves(ppl: pd.DataFrame):
    """VQ2 perplexity per epoch with (full) and without (no_split) split quantization, from
    :func:`perplexity_history`."""
    import plotly.express as px

    fig = px.line(ppl, x="epoch", y="value", color="variant", line_dash="split", line_group=ppl["run"] + ppl["split"],
                  markers=True, labels={"value": "VQ2 perplexity"},
                  title="VQ2 perplexity per epoch, with (full) and without (no_split) split quantization")
    fig.update_layout(height=380)
    return fig


def atlas_map(umap: np.ndarray, obs: pd.DataFrame, data, *, band: Sequence[str] = ()):
    """The interactive atlas of the test images: UMAP coloured by family, GO-complex members
    highlighted, and the proteins of ``band`` (e.g. those in both nucleus and cytoplasm, the grey
    band of the paper's Fig. 3a) highlighted as one more group."""
    from atlaskit.analysis import atlas

    complexes = {c: sorted(g) for c, g in data.proteins.dropna(subset=["complex"]).groupby("complex")["gene"]}
    if len(band):
        complexes["nucleus + cytoplasm"] = sorted(map(str, band))
    fig = atlas.atlas_figure(umap, obs, color="family", hover=("gene", "family", "complex"),
                             highlight=complexes, marker_size=6,
                             title="cytoself atlas of the test images (full model, repeat 0)")
    fig.update_layout(height=620)
    return fig


def spectrum_heatmap(spectra):
    """Feature spectra of every protein (rows, clustered) over the VQ1 indices (dendrogram order)."""
    from atlaskit.analysis import spectra as sp

    fig = sp.spectrum_heatmap(spectra.histograms, spectra.bicluster, row_labels=spectra.family, figsize=(10, 5))
    fig.suptitle("Feature spectra: proteins (rows, clustered) × VQ1 indices (dendrogram order)", fontsize=10)
    return fig


def consensus(spectra):
    """The consensus spectrum of each localization family."""
    from atlaskit.analysis import spectra as sp

    fig = sp.consensus_figure(spectra.consensus, spectra.bicluster)
    fig.suptitle("Consensus spectrum of each localization family", fontsize=10, y=1.0)
    return fig


def zeroing_figure(examples: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], *, channel: int = 0,
                   size: float = 1.4, width: float = 7.2, max_cols: int = 8,
                   title: str | None = "Feature zeroing: |difference| per index cluster (protein channel; "
                                       "one colour scale per example)"):
    """Grid of feature-zeroing results, one block per example ``(gene, image, reconstruction,
    maps)`` from :func:`zeroing_examples`: input, reconstruction, then one difference map per index
    cluster. The maps of an example share one colour scale (0 to its largest difference), so a
    cluster the image does not use shows as black.

    Sized for the book's page: the figure is at most ``width`` inches wide (about 800 px at the
    book's 110 dpi), so that its labels keep their size on the page; with more than
    ``max_cols - 2`` clusters an example's maps continue on a second (third, …) line.

    Parameters
    ----------
    examples : sequence of (gene, image, reconstruction, maps)
        ``image`` and ``reconstruction`` (C, H, W); ``maps`` (clusters, C, H, W).
    channel : int
        The channel drawn.
    size : float
        Largest panel side, inches.
    width : float
        Largest figure width, inches.
    max_cols : int
        Most panels per line (input and reconstruction included), at least 3.
    title : str or None
        The figure's title (wrapped to the width), or None for none.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from atlaskit.analysis.spectra import roman
    from atlaskit.plots import wrap_title

    if not examples:
        raise ParameterError("zeroing_figure needs at least one example")
    if max_cols < 3:
        raise ParameterError(f"zeroing_figure: max_cols must be at least 3, not {max_cols}")
    n_maps = max(len(e[3]) for e in examples)
    per_line = max(1, min(n_maps, max_cols - 2))
    lines = max(1, -(-n_maps // per_line))
    ncols = 2 + per_line
    side = min(size, width / ncols)
    fig, axes = plt.subplots(len(examples) * lines, ncols, figsize=(side * ncols, (side + 0.25) * len(examples) * lines
                                                                    + 0.5 * bool(title)), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for row, (gene, image, recon, maps) in enumerate(examples):
        vmax = float(np.max(maps[:, channel])) or 1.0
        panels = {(0, 0): (image[channel], "input", None), (0, 1): (recon[channel], "reconstruction", None)}
        panels.update({(k // per_line, 2 + k % per_line): (m[channel], f"− {roman(k + 1)}", vmax)
                       for k, m in enumerate(maps)})
        axes[row * lines, 0].set_ylabel(gene, fontsize=10, fontweight="bold")
        for line in range(lines):
            for col in range(ncols):
                ax = axes[row * lines + line, col]
                if (line, col) not in panels:
                    ax.axis("off")
                    continue
                pic, label, top = panels[line, col]
                top = top if top is not None else max(float(np.percentile(pic, 99.8)), 1e-6)
                ax.imshow(pic, cmap="gray" if col < 2 and line == 0 else "magma", vmin=0, vmax=top)
                ax.set_title(label, fontsize=9, pad=2)
    if title:
        fig.suptitle(wrap_title(title, int(side * ncols * 13), sep="\n"), fontsize=10)
    fig.tight_layout(h_pad=0.4, w_pad=0.3)
    return fig


def score_strip(scores: pd.DataFrame):
    """The clustering score of every run, one point per repeat, variants in :data:`VARIANTS` order."""
    import plotly.express as px

    from atlaskit.studies.cytoself.presets import VARIANTS

    long = scores.assign(description=scores["variant"].map(lambda v: VARIANTS[v].description))
    fig = px.strip(long, x="variant", y="score", color="variant", hover_data=["repeat"],
                   category_orders={"variant": list(VARIANTS)},
                   title="Clustering score of every run (one point per repeat)")
    fig.update_layout(showlegend=False, height=360)
    return fig


def variant_atlases(evaluation, repeat: int = 0):
    """The atlas of every Table 1 variant side by side (Supplementary Figs. 8/11): the test images'
    UMAP of each variant's global representation, coloured by family, its clustering score in the
    panel title, so that what the score measures is seen (the collapse without the pretext task).

    ``evaluation`` is :func:`evaluate`'s result; ``repeat`` chooses the training repeat shown.
    """
    import plotly.express as px

    from atlaskit.studies.cytoself.presets import VARIANTS

    frames = []
    for variant in VARIANTS:
        if (variant, repeat) not in evaluation.umaps:
            continue
        xy = evaluation.umaps[(variant, repeat)]
        title = f"{variant} (score {evaluation.score(variant, repeat):.2f})"
        frames.append(pd.DataFrame({"UMAP 1": xy[:, 0], "UMAP 2": xy[:, 1], "family": evaluation.labels,
                                    "panel": title}))
    if not frames:
        raise ParameterError(f"no variant of repeat {repeat} was evaluated")
    long = pd.concat(frames, ignore_index=True).dropna(subset=["family"])
    fig = px.scatter(long, x="UMAP 1", y="UMAP 2", color="family", facet_col="panel", facet_col_wrap=3,
                     facet_col_spacing=0.04, facet_row_spacing=0.08,
                     title=f"The atlas of each variant (test images, repeat {repeat}); clustering score in the title")
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_xaxes(matches=None, showticklabels=False, title_text="")
    fig.update_yaxes(matches=None, showticklabels=False, title_text="")
    fig.update_traces(marker={"size": 5})
    fig.update_layout(height=640)
    return fig
