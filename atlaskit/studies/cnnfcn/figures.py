"""Every figure of chapter 03: the data, the FCN targets, training, the evaluation and the
heterogeneity test. Plotly figures are returned for the chapter to ``.show()``; matplotlib
figures are drawn into the current notebook cell and returned."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from atlaskit.data import catalogs
from atlaskit.studies.cnnfcn.data import CLASSES, N_CLASSES, HPAData, regenerate_fields
from atlaskit.studies.cnnfcn.evaluation import Evaluation
from atlaskit.studies.cnnfcn.training import CnnFcnRun, heatmaps

__all__ = [
    "fig_class_distribution", "fig_cooccurrence", "fig_target_maps", "fig_loss_curves", "fig_confusions",
    "fig_table1", "fig_cell_lines", "fig_heatmap_overlays", "fig_examples", "fig_heterogeneity",
]


def fig_class_distribution(data: HPAData):
    """Plotly bars: images per class and split."""
    import plotly.express as px

    rows = data.meta[["split", "labels"]].explode("labels")
    counts = rows.groupby(["labels", "split"]).size().rename("images").reset_index()
    order = rows["labels"].value_counts().index.tolist()
    fig = px.bar(counts, x="labels", y="images", color="split", barmode="stack",
                 category_orders={"labels": order, "split": ["train", "val", "test"]},
                 title=f"Images per class and split ({len(data.meta)} images, {data.source})")
    fig.update_layout(xaxis_title=None, xaxis_tickangle=-35, height=420)
    return fig


def fig_cooccurrence(data: HPAData):
    """Plotly heat map of label co-occurrence (diagonal: images with the class)."""
    import plotly.graph_objects as go

    co = catalogs.label_cooccurrence(data.meta, CLASSES, column="labels")
    z = co.to_numpy()
    fig = go.Figure(go.Heatmap(z=np.log10(z + 1), x=list(CLASSES), y=list(CLASSES), customdata=z,
                               colorscale="Viridis", colorbar={"title": "log₁₀(n + 1)"},
                               hovertemplate="%{y} & %{x}: %{customdata} images<extra></extra>"))
    fig.update_layout(title="Label co-occurrence in this data set (diagonal: images with the class)", height=560,
                      yaxis_autorange="reversed", xaxis_tickangle=-40)
    return fig


def fig_target_maps(data: HPAData, n: int = 6):
    """Matplotlib: the first ``n`` training images (composite), their protein channel and their
    FCN target map, one column per image titled with its labels."""
    from atlaskit import plots

    show = data.indices("train")[:n]
    images = data.images(None, show)
    maps = data.target_maps("train")[:n]
    fig = plots.image_grid(
        [plots.to_rgb(im) for im in images] + [im[0] for im in images] + [m.astype(float) for m in maps], ncols=n,
        size=1.8, titles=["\n".join(lab) for lab in data.meta["labels"].iloc[show]] + [""] * (2 * n),
        row_labels=["composite", "protein", "FCN target"],
    )
    fig.suptitle("Training images (composite: protein green, nucleus blue, microtubules red, ER yellow), "
                 "their protein channel and the FCN target map", fontsize=9, y=1.02)
    return fig


def fig_loss_curves(models: Mapping[str, CnnFcnRun]):
    """Plotly: training and validation loss per epoch, one panel per model, LR on hover."""
    import plotly.express as px

    frames = []
    for kind, tm in models.items():
        f = tm.history.to_frame()
        f = f[f["term"] == "loss"].copy()
        f["model"] = kind.upper()
        frames.append(f)
    df = pd.concat(frames, ignore_index=True)
    fig = px.line(df, x="epoch", y="value", color="split", facet_col="model", markers=True,
                  title="Binary cross-entropy per epoch (CNN: 13 outputs; FCN: every heat-map pixel)",
                  labels={"value": "loss"})
    fig.update_yaxes(matches=None, showticklabels=True)
    fig.update_layout(height=380)
    return fig


def _percent_text(rates: np.ndarray) -> np.ndarray:
    """Cell text of a rate matrix: whole percents, blank where the rate is NaN or rounds to 0 %."""
    pct = np.rint(np.nan_to_num(np.asarray(rates, float)) * 100).astype(int)
    return np.where(np.isnan(rates) | (pct == 0), "", pct.astype(str))


def fig_confusions(evals: Mapping[str, Evaluation]):
    """Plotly: the two multi-label confusion matrices side by side (rows normalised).

    Laid out for the book's page (about 800 px): the panels share the true-class axis (labels
    on the first panel only), cells show whole percents of the row's images (blank: 0 %; the
    hover gives the exact rate and the row's number of images), the title is wrapped.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from atlaskit.plots import wrap_title

    kinds = [k for k in ("cnn", "fcn") if k in evals]
    fig = make_subplots(rows=1, cols=len(kinds), shared_yaxes=True, horizontal_spacing=0.025,
                        subplot_titles=[f"{k.upper()}: mean per-class accuracy {evals[k].mean_per_class_accuracy:.3f}"
                                        for k in kinds])
    for j, k in enumerate(kinds):
        cm = evals[k].confusion
        rates = cm.rates
        fig.add_trace(go.Heatmap(z=rates, x=list(CLASSES), y=list(CLASSES), zmin=0, zmax=1, colorscale="Blues",
                                 text=_percent_text(rates), texttemplate="%{text}", textfont={"size": 9},
                                 xgap=1, ygap=1, customdata=np.broadcast_to(cm.support[:, None], rates.shape),
                                 hovertemplate="true %{y}, predicted %{x}: %{z:.2f} (of %{customdata} images)<extra></extra>",
                                 colorbar={"tickformat": ".0%", "thickness": 12, "len": 0.7, "y": 0.55},
                                 showscale=j == len(kinds) - 1), 1, j + 1)
        fig.update_xaxes(tickangle=-45, ticks="", tickfont={"size": 10}, automargin=True, row=1, col=j + 1)
    fig.update_yaxes(autorange="reversed", ticks="", tickfont={"size": 10}, automargin=True)
    fig.update_annotations(font_size=12)
    fig.update_layout(
        height=610, margin={"t": 135, "l": 10, "r": 10},
        title={"text": "Multi-label confusion matrices on the test split",
               "subtitle": {"text": wrap_title("Rows: true class. Diagonal: per-class accuracy; off-diagonal: false "
                                               "positives of missed labels. Cells: % of the row's images (blank: 0 %).",
                                               95)}},
    )
    return fig


def fig_reliability(calibration: pd.DataFrame):
    """Plotly reliability diagram: per confidence bin, the fraction of (image, class) pairs that
    are true labels against the mean confidence, one line per model, the diagonal = calibrated;
    marker size grows with the number of pairs in the bin (:func:`calibration_table`)."""
    import plotly.graph_objects as go

    colors = {"CNN": "#1f77b4", "FCN": "#d62728"}
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name="calibrated")
    for model, t in calibration.groupby("model", sort=False):
        t = t[t["n"] > 0]
        size = 6 + 14 * np.sqrt(t["n"] / t["n"].max())
        fig.add_scatter(x=t["confidence"], y=t["observed"], mode="lines+markers", marker={"size": size},
                        line={"color": colors.get(model)}, customdata=t["n"],
                        name=f"{model} (ECE {t['ece'].iloc[0]:.3f})",
                        hovertemplate="confidence %{x:.2f}: %{y:.2f} true (%{customdata} pairs)<extra></extra>")
    fig.update_layout(height=420, xaxis_title="mean confidence in the bin", yaxis_title="fraction that are true labels",
                      xaxis_range=[0, 1], yaxis_range=[0, 1],
                      title="Reliability of the confidences on the test split (every image-class pair)")
    return fig


def fig_table1(t1: pd.DataFrame):
    """Plotly grouped bars: accuracy by number of labels, ours beside the paper's."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colors = {"CNN": "#1f77b4", "FCN": "#d62728"}
    for model in ("CNN", "FCN"):
        if f"{model} ours" not in t1:
            continue
        fig.add_bar(x=[f"{i} label{'s' * (i > 1)}" for i in t1.index], y=t1[f"{model} paper"], name=f"{model} paper",
                    marker_color=colors[model], opacity=0.35)
        fig.add_bar(x=[f"{i} label{'s' * (i > 1)}" for i in t1.index], y=t1[f"{model} ours"], name=f"{model} ours",
                    marker_color=colors[model], customdata=t1["test images"],
                    hovertemplate="%{y:.2f} of %{customdata} test images<extra>" + model + " ours</extra>")
    fig.update_layout(barmode="group", yaxis_title="accuracy (exact match)", yaxis_range=[0, 1], height=400,
                      title="Accuracy by number of labels per image: ours (solid) beside the paper's Table 1 (pale)")
    return fig


def fig_cell_lines(table: pd.DataFrame):
    """Plotly bars: exact-match accuracy and mean per-class accuracy per cell line and model."""
    import plotly.express as px

    table = table.copy()
    if "training images" in table:  # lines ordered from most to fewest training images, counts on the axis
        table = table.sort_values("training images", ascending=False, kind="stable")
        table["cell line"] = [f"{line} ({n} training)" for line, n in zip(table["cell line"], table["training images"])]
    keep = [c for c in ("model", "cell line", "n_images", "training images") if c in table]
    long = table.melt(id_vars=keep, value_vars=["exact_match", "mean_per_class_accuracy"],
                      var_name="measure", value_name="accuracy")
    fig = px.bar(long, x="cell line", y="accuracy", color="model", barmode="group", facet_col="measure",
                 hover_data=["n_images"], range_y=[0, 1], title="Accuracy per cell line (test fields)",
                 color_discrete_map={"CNN": "#1f77b4", "FCN": "#d62728"})
    fig.update_layout(height=380)
    return fig


def _overlay_heatmap(ax, rgb, hm, mask=None, title=""):
    from skimage.segmentation import find_boundaries
    from skimage.transform import resize

    big = resize(hm, rgb.shape[:2], order=1, mode="edge")  # bilinear, for display only
    ax.imshow(rgb * 0.55)
    ax.imshow(big, cmap="magma", alpha=0.55, vmin=0, vmax=1)
    if mask is not None and mask.any():
        edge = find_boundaries(mask, mode="inner")
        over = np.zeros(rgb.shape[:2] + (4,), np.float32)
        over[edge] = (0.3, 1.0, 1.0, 1.0)
        ax.imshow(over)
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def fig_heatmap_overlays(data: HPAData, fcn: CnnFcnRun, ev: Evaluation, positions: Sequence[int], seed: int = 0):
    """Matplotlib: per image, the composite and the FCN heat map of each true class, with the
    outlines (cyan) of the cells that show that class (simulated data: the per-cell ground truth)."""
    import matplotlib.pyplot as plt

    from atlaskit.plots import to_rgb

    test_rows = data.indices("test")[np.asarray(positions)]
    images = np.asarray(data.store.images[test_rows], np.float32) / 255.0  # (n, 4, S, S)
    hms = heatmaps(fcn, images)  # (n, 13, h, w)
    truth = regenerate_fields(data, test_rows, seed=seed) if data.source == "sim" else None
    ncols = 1 + max(int(ev.y_test[p].sum()) for p in positions)
    fig, axes = plt.subplots(len(positions), ncols, figsize=(2.1 * ncols, 2.3 * len(positions)), squeeze=False)
    for r, pos in enumerate(positions):
        rgb = to_rgb(images[r])
        axes[r, 0].imshow(rgb)
        meta = ev.meta.iloc[pos]
        frac = "" if pd.isna(meta["cell_fraction"]) else f", cell fraction {meta['cell_fraction']:.2f}"
        axes[r, 0].set_title(f"{meta['cell_line']}{frac}", fontsize=7)
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        classes = np.flatnonzero(ev.y_test[pos])
        for j in range(1, ncols):
            ax = axes[r, j]
            if j - 1 >= len(classes):
                ax.axis("off")
                continue
            k = classes[j - 1]
            mask = None
            if truth is not None:
                cells = truth.cells[truth.cells["image"] == r]
                ids = [cid for cid, labs in zip(cells["cell_id"], cells["labels"]) if CLASSES[k] in labs]
                mask = np.isin(truth.cell_masks[r], ids) if ids else np.zeros(images.shape[2:], bool)
            hit = "found" if ev.pred[pos, k] else "missed"
            _overlay_heatmap(ax, rgb, hms[r, k], mask,
                             f"{CLASSES[k]}\nmax {hms[r, k].max():.2f} vs thr {ev.thresholds[k]:.2f}: {hit}")
    fig.suptitle("FCN heat maps of each true class (magma) over the image; cyan: cells that show the class", fontsize=9)
    fig.tight_layout()
    return fig


def fig_examples(data: HPAData, evals: Mapping[str, Evaluation], picks: pd.DataFrame):
    """Matplotlib: test images with both models' confidences (bars) and thresholds (ticks)."""
    import matplotlib.pyplot as plt

    from atlaskit.plots import to_rgb

    n = len(picks)
    fig, axes = plt.subplots(n, 2, figsize=(8.2, 1.8 * n), squeeze=False, gridspec_kw={"width_ratios": [1, 2.6]})
    test_rows = data.indices("test")
    ypos = np.arange(N_CLASSES)
    for r, (pos, outcome) in enumerate(zip(picks["position"], picks["outcome"])):
        img = np.asarray(data.store.images[test_rows[pos]], np.float32) / 255.0
        axes[r, 0].imshow(to_rgb(img))
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        axes[r, 0].set_title(outcome, fontsize=8)
        ax = axes[r, 1]
        truth = evals["cnn"].y_test[pos].astype(bool)
        for off, kind, color, dark in ((-0.2, "cnn", "#1f77b4", "#08306b"), (0.2, "fcn", "#d62728", "#67000d")):
            ev = evals[kind]
            ax.barh(ypos + off, ev.scores[pos], height=0.38, color=color, alpha=0.75, label=kind.upper())
            ax.scatter(ev.thresholds, ypos + off, marker="|", s=70, linewidths=2, color=dark, zorder=3,
                       label=f"{kind.upper()} threshold")
        ax.set_yticks(ypos)
        ax.set_yticklabels([("● " if t else "") + c for c, t in zip(CLASSES, truth)], fontsize=6)
        for tick, t in zip(ax.get_yticklabels(), truth):
            tick.set_fontweight("bold" if t else "normal")
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.tick_params(axis="x", labelsize=6)
    handles, labels = axes[0, 1].get_legend_handles_labels()
    axes[-1, 1].set_xlabel("confidence (● bold: true classes; |: the model's threshold, chosen on training data)",
                           fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (1.8 * n)))
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=7, frameon=False)
    return fig


def fig_heterogeneity(summary: pd.DataFrame):
    """Plotly: recall against the fraction of cells showing the class, both models, 95 % intervals."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for model, color in (("CNN", "#1f77b4"), ("FCN", "#d62728")):
        s = summary[summary["model"] == model]
        fig.add_scatter(x=s["mean_fraction"], y=s["recall"], mode="lines+markers", name=model, line_color=color,
                        error_y={"type": "data", "symmetric": False, "array": s["high"] - s["recall"],
                                 "arrayminus": s["recall"] - s["low"]},
                        customdata=np.stack([s["bin"].astype(str), s["n"]], 1),
                        hovertemplate="cells showing the class: %{customdata[0]}<br>recall %{y:.2f} "
                                      "(n = %{customdata[1]})<extra>" + model + "</extra>")
    fig.update_layout(xaxis_title="fraction of the image's cells that show the class (bin mean)",
                      yaxis_title="recall (class found)", yaxis_range=[0, 1.05], xaxis_range=[0, 1.02], height=420,
                      title="Recall against per-cell heterogeneity (fresh simulated fields, thresholds from training)")
    return fig

