"""Every figure of chapter 02 (deepGPS), one function per figure.

Plotly figures are returned for the chapter to ``.show()``; image grids are matplotlib figures
(:func:`atlaskit.plots.image_grid`), shown by the notebook when the cell ends.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit.studies.deepgps.baselines import BaselineResult
from atlaskit.studies.deepgps.data import ImageData
from atlaskit.studies.deepgps.evaluation import CrossAssay, generate, generation_quality
from atlaskit.studies.deepgps.proteins import CLASS_LABELS, variant_classes, variant_table
from atlaskit.studies.deepgps.training import VariantRun

__all__ = ["absolute", "split_histogram", "example_images", "training_curves", "roc_curves", "confusion_matrices",
           "generated_images", "cross_assay_images", "predicted_images", "judged_rates"]


def absolute(img) -> np.ndarray:
    """Grey image in [0, 1] as RGB, so that image_grid shows it without auto-contrast."""
    return np.repeat(np.clip(np.asarray(img, np.float32), 0, 1)[..., None], 3, axis=-1)


def split_histogram(table: pd.DataFrame, variant: str = "single-4"):
    """Proteins per class and split of a variant (plotly)."""
    import plotly.express as px

    vt = variant_table(table, variant)
    fig = px.histogram(vt, x="label", color="split", barmode="group",
                       category_orders={"label": list(variant_classes(variant)), "split": ["train", "test"]},
                       title=f"{variant} proteins per class and split (real OpenCell labels)")
    fig.update_layout(height=340, xaxis_title=None, yaxis_title="proteins")
    return fig


def example_images(images: ImageData, table: pd.DataFrame, variant: str = "single-4"):
    """The nucleus (input) and protein (target) image of the first protein of every class of a variant."""
    from atlaskit import plots

    vt = variant_table(table, variant)
    examples = [vt[vt["label"] == c]["gene"].iloc[0] for c in variant_classes(variant)]
    items = [images.items([g])[0] for g in examples]
    return plots.image_grid(
        [images.store.images[i][0] for i in items] + [images.store.images[i][1] for i in items],
        titles=[f"{g}: nucleus (input)" for g in examples] + [f"{g}: protein (target)" for g in examples],
        ncols=4, size=2.0,
    )


def training_curves(runs: Mapping[str, VariantRun]):
    """Training loss per term (L1 image loss, cross-entropy) of every variant (plotly)."""
    import plotly.express as px

    curves = pd.concat([r.history.to_frame().assign(variant=v) for v, r in runs.items()])
    curves = curves[curves["term"].isin(["image_l1", "classification"]) & (curves["split"] == "train")]
    fig = px.line(curves, x="epoch", y="value", color="variant", facet_col="term", markers=True,
                  title="Training loss per term (L1 image loss; cross-entropy of the classifier)")
    fig.update_yaxes(matches=None, showticklabels=True)
    fig.update_layout(height=360)
    return fig


def roc_curves(results: Sequence[BaselineResult], *, positive: int = 0, proteins: str = "test"):
    """ROC curves of binary single-2 classifiers (plotly).

    ``positive``: the positive class index (0, cytoplasm, as in the paper's Table 1; the AUROC
    is the same either way, the curve is mirrored). ``proteins`` names the proteins in the title
    (``"test"``, ``"out-of-fold"``).
    """
    import plotly.express as px
    from sklearn.metrics import roc_curve

    from atlaskit.metrics import classification as cm

    rows = []
    for r in results:
        fpr, tpr, _ = roc_curve(r.y_true == positive, r.proba[:, positive])
        auc = cm.auroc(r.y_true, r.proba)
        rows.append(pd.DataFrame({"false positive rate": fpr, "true positive rate": tpr,
                                  "method": f"{r.name} (AUROC {auc:.3f})"}))
    n_test = len(results[0].y_true) if results else 0
    name = CLASS_LABELS[variant_classes("single-2")[positive]]
    fig = px.line(pd.concat(rows), x="false positive rate", y="true positive rate", color="method",
                  title=f"ROC curves on the {n_test} single-2 {proteins} proteins (positive class: {name})")
    fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dot", "color": "grey"})
    fig.update_layout(height=450, legend={"orientation": "h", "y": -0.25})
    return fig


def confusion_matrices(matrices: Mapping[str, np.ndarray], classes: Sequence[str]):
    """Confusion matrices side by side (rows: true class, columns: predicted; plotly).

    Laid out for the book's page (about 800 px): the panels share the true-class axis (its
    labels on the first panel only), panel titles are wrapped onto short lines, and each
    cell shows its count.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from atlaskit.plots import wrap_title

    labels = [CLASS_LABELS.get(c, c) for c in classes]
    n = len(matrices)
    fig = make_subplots(rows=1, cols=n, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[wrap_title(name, max(12, 84 // max(n, 1))) for name in matrices])
    for k, m in enumerate(matrices.values()):
        heatmap = go.Heatmap(z=m, x=labels, y=labels, colorscale="Blues", showscale=False, text=m,
                             texttemplate="%{text}", textfont={"size": 12}, xgap=1, ygap=1,
                             hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>")
        fig.add_trace(heatmap, row=1, col=k + 1)
    fig.update_yaxes(autorange="reversed", ticks="", automargin=True)
    fig.update_xaxes(title_text="predicted", tickangle=-40, ticks="", automargin=True)
    fig.update_yaxes(title_text="true", col=1)
    fig.update_annotations(font_size=13, yanchor="bottom")
    fig.update_layout(height=440, margin={"t": 110, "l": 10, "r": 10},
                      title=wrap_title("single-4 confusion matrices on test proteins / test images"))
    return fig


def generated_images(run: VariantRun, images: ImageData, table: pd.DataFrame, features: pd.DataFrame,
                     n_per_class: int = 2, n_show: int = 6):
    """Test proteins of a variant (one per class, then the next ones), each with its own nucleus:
    the nucleus, the ground truth and the generated image with its PSNR and SSIM, on the
    absolute scale 0 to 1."""
    from atlaskit import plots

    classes = variant_classes(run.variant)
    test = variant_table(table, run.variant).query("split == 'test'")
    quality = generation_quality(run, images, run.test_items, features)
    show_genes = [test[test["label"] == c]["gene"].iloc[k] for k in range(n_per_class) for c in classes][:n_show]
    show_items = np.array([images.items([g], "test")[0] for g in show_genes])
    gen = generate(run, images, show_items, features)
    q_show = quality.set_index(["protein", "index"])
    rows_nuc = [absolute(images.store.images[i][0]) for i in show_items]
    rows_gt = [absolute(images.store.images[i][1]) for i in show_items]
    label = table.set_index("gene")[run.variant]
    titles = []
    for g, i in zip(show_genes, show_items):
        q = q_show.loc[(g, int(images.meta["index"].iloc[i]))]
        titles.append(f"{g} ({CLASS_LABELS[label[g]]})\n"
                      f"PSNR {q['psnr']:.1f} dB, SSIM {q['ssim']:.2f}")
    return plots.image_grid(rows_nuc + rows_gt + [absolute(g) for g in gen], ncols=len(show_genes), size=1.7,
                            titles=titles + [""] * (2 * len(show_genes)),
                            row_labels=["nucleus (input)", "ground truth", "generated"])


def cross_assay_images(cross: CrossAssay, table: pd.DataFrame):
    """One nucleus and the images generated for it from several sequences, with P(nucleoplasm)."""
    from atlaskit import plots

    label = table.set_index("gene")["single-2"]
    titles = [f"{g} ({CLASS_LABELS[label[g]]})\nP(nucleoplasm) {p:.2f}"
              for g, p in zip(cross.genes, cross.p_nucleoplasm)]
    return plots.image_grid([absolute(im) for im in (cross.nucleus, *cross.images)],
                            titles=["the nucleus (input)", *titles], ncols=5, size=2.0)


def predicted_images(table: pd.DataFrame, images: np.ndarray):
    """The images ``atlaskit predict`` drew, titled by record id, on the absolute scale."""
    from atlaskit import plots

    return plots.image_grid([absolute(im) for im in images], titles=list(table["id"]), ncols=3, size=2.0)


def judged_rates(judged, sources: Sequence[str] = ("generated", "ground truth", "nucleus as protein",
                                                    "mean training image")):
    """Family hit rates in the cytoself embedding (:func:`~atlaskit.studies.deepgps.judged.judge_generation`)
    per family and overall, one bar per image source, 95 % bootstrap intervals over proteins, the
    random-family chance as a dashed line (plotly)."""
    import plotly.graph_objects as go

    rates = judged.rates
    order = ["all"] + [f for f in rates.loc[rates["family"] != "all", "family"].drop_duplicates()]
    n = rates[rates["source"] == sources[0]].set_index("family")["proteins"]
    labels = [f"{f} ({int(n.get(f, 0))})" for f in order]
    fig = go.Figure()
    for source in sources:
        r = rates[rates["source"] == source].set_index("family").reindex(order)
        fig.add_trace(go.Bar(x=labels, y=r["rate"], name=source,
                             error_y={"type": "data", "symmetric": False, "array": r["high"] - r["rate"],
                                      "arrayminus": r["rate"] - r["low"]}))
    fig.add_hline(y=judged.chance["random"], line_dash="dash", line_color="grey",
                  annotation_text=f"random family 1/{len(judged.families)}", annotation_position="top right")
    fig.update_layout(barmode="group", height=420, yaxis_title="share of test proteins in their own family",
                      yaxis_range=[0, 1.05], xaxis_title="family (judged test proteins)",
                      title=f"deepGPS-{judged.variant}: generated images judged by chapter 01's cytoself embedding")
    return fig
