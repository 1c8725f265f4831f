"""The figures of chapter 04, one function per figure.

Image grids (crops, patches) are matplotlib figures (:func:`atlaskit.plots.image_grid`); the
others are plotly figures. Every function returns the figure (None when there is nothing to
draw); the chapter shows it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["crop_gallery", "noncell_gallery", "training_curves", "precision_recall", "confusion",
           "forest_importance", "filtered_crops", "protein_accuracy_curve", "spread_proportions", "transfer_curve",
           "layer_sweep", "layer_maps", "unit_information", "unit_patches", "real_predictions",
           "cell_activations", "forest_vs_network", "unit_feature_heatmap"]

_COLORS = ("green", "magenta")  # GFP (the protein), RFP (the cytosol)


def crop_gallery(data):
    """One cell crop per class of the main set: GFP in green, RFP in magenta."""
    from atlaskit import plots

    meta = data.main.metadata
    classes = list(data.classes)
    gallery = [int(meta.index[(meta["label"] == c) & meta["is_cell"].astype(bool)][0]) for c in classes]
    fig = plots.image_grid([plots.to_rgb(data.main.images[i], colors=_COLORS) for i in gallery],
                           titles=classes, ncols=6, size=1.5)
    fig.suptitle("One crop per class: GFP (protein) in green, RFP (cytosol) in magenta", fontsize=9, y=1.01)
    return fig


def noncell_gallery(data):
    """One simulated non-cell crop of each kind, with the class it carries (None for real data)."""
    from atlaskit import plots

    if data.source != "sim":
        return None
    meta = data.main.metadata
    noncell = meta.index[~meta["is_cell"].astype(bool)]
    kinds = meta.loc[noncell].drop_duplicates("kind")
    return plots.image_grid(
        [plots.to_rgb(data.main.images[i], colors=_COLORS) for i in kinds.index],
        titles=[f"non-cell: {k}\nlabelled {c}" for k, c in zip(kinds["kind"], kinds["label"])], ncols=5, size=1.6,
    )


def training_curves(history):
    """Cross-entropy and accuracy per epoch, training and validation (``history``: a trainer History)."""
    import plotly.express as px

    frame = history.to_frame()
    curves = frame[frame["term"].isin(["loss", "metric_accuracy"])].replace({"metric_accuracy": "accuracy"})
    fig = px.line(curves, x="epoch", y="value", color="split", facet_col="term", markers=True,
                  title="Training curves: cross-entropy and accuracy per epoch")
    fig.update_yaxes(matches=None)
    fig.update_layout(height=360)
    return fig


def precision_recall(cells: dict):
    """Per-class precision and recall with their bootstrap intervals (``cells``: :func:`evaluate`'s result)."""
    import plotly.graph_objects as go

    per_class = cells["table"].drop(index="accuracy").reset_index()
    fig = go.Figure()
    for metric, color in (("precision", "#4e79a7"), ("recall", "#f28e2b")):
        fig.add_bar(x=per_class["class"], y=per_class[metric], name=metric, marker_color=color,
                    error_y={"type": "data", "symmetric": False,
                             "array": per_class[f"{metric}_high"] - per_class[metric],
                             "arrayminus": per_class[metric] - per_class[f"{metric}_low"]})
    fig.update_layout(barmode="group", height=380, yaxis_range=[0, 1.05],
                      title="Per-class precision and recall, 95 % stratified bootstrap intervals (cf. the paper's Table 2)")
    return fig


def confusion(cells: dict):
    """The test confusion matrix, each row as fractions of its true class."""
    import plotly.express as px

    cm = cells["confusion"]
    fig = px.imshow(cm / cm.to_numpy().sum(1, keepdims=True), text_auto=".2f", color_continuous_scale="Blues",
                    labels={"color": "fraction of the true class"},
                    title="Confusion matrix (rows: true class; cf. the paper's Fig. 2)")
    fig.update_layout(height=560)
    return fig


def forest_importance(forest, columns: Sequence[str], top: int = 15):
    """The random forest's ``top`` most important features (mean decrease in impurity)."""
    import plotly.express as px

    importance = pd.Series(forest.feature_importances_, index=columns).sort_values(ascending=False)[:top]
    fig = px.bar(importance[::-1], orientation="h", title=f"The random forest's {top} most important features")
    fig.update_layout(showlegend=False, height=420, xaxis_title="mean decrease in impurity", yaxis_title=None)
    return fig


def filtered_crops(data, test: np.ndarray, quality: dict, n: int = 10):
    """The first ``n`` test crops the cell-quality filter removes, with their P(cell) (None if none)."""
    from atlaskit import plots

    flagged = np.flatnonzero(~quality["keep"])[:n]
    if not flagged.size:
        return None
    fig = plots.image_grid(
        [plots.to_rgb(data.main.images[test[i]], colors=_COLORS) for i in flagged],
        titles=[f"P(cell) {quality['p_cell'][i]:.2f}" for i in flagged], ncols=10, size=1.2,
    )
    fig.suptitle("Test crops the filter removes", fontsize=9, y=1.02)
    return fig


def protein_accuracy_curve(by_k: pd.DataFrame, cell_accuracy: float):
    """Protein-level accuracy against the number of cells that vote, beside the per-cell accuracy."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_scatter(x=by_k["k"], y=by_k["accuracy"], mode="lines+markers", name="protein-level, k cells",
                    error_y={"type": "data", "symmetric": False, "array": by_k["high"] - by_k["accuracy"],
                             "arrayminus": by_k["accuracy"] - by_k["low"]})
    fig.add_hline(y=cell_accuracy, line_dash="dot", annotation_text="per cell")
    fig.update_layout(xaxis_type="log", xaxis_title="cells per protein (k)", yaxis_title="accuracy", height=380,
                      title="Protein-level accuracy grows with the number of cells that vote")
    return fig


def spread_proportions(spread: pd.DataFrame):
    """Posterior nucleus / cytoplasm proportions per protein, with the simulated weight when known
    (None when no protein is spread)."""
    import plotly.graph_objects as go

    if not len(spread):
        return None
    order = spread.sort_values("nucleus_mean")
    fig = go.Figure()
    for c, color in (("nucleus", "#4e79a7"), ("cytoplasm", "#e15759")):
        fig.add_scatter(x=order[f"{c}_mean"], y=order["gene"], mode="markers", name=f"P({c})", marker_color=color,
                        error_x={"type": "data", "symmetric": False, "array": order[f"{c}_high"] - order[f"{c}_mean"],
                                 "arrayminus": order[f"{c}_mean"] - order[f"{c}_low"]})
    if "simulated nucleus weight" in order:
        fig.add_scatter(x=order["simulated nucleus weight"], y=order["gene"], mode="markers",
                        name="simulated nuclear weight", marker={"symbol": "x", "color": "black"})
    fig.update_layout(height=max(300, 28 * len(order)), xaxis_title="posterior proportion of the protein's cells",
                      title="Posterior class proportions of proteins spread between nucleus and cytoplasm")
    return fig


def transfer_curve(transfer: pd.DataFrame, names: Sequence[str] = ("fc1 (network)", "hand-crafted")):
    """Transfer accuracy against training images per class, with intervals (Fig. 4C)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, color in zip(names, ("#4e79a7", "#f28e2b")):
        part = transfer[transfer["features"] == name]
        fig.add_scatter(x=np.r_[part["n_per_class"], part["n_per_class"][::-1]], y=np.r_[part["high"], part["low"][::-1]],
                        fill="toself", fillcolor=color, opacity=0.2, line={"width": 0}, showlegend=False,
                        hoverinfo="skip")
        fig.add_scatter(x=part["n_per_class"], y=part["accuracy"], mode="lines+markers", name=name, line_color=color)
    fig.add_hline(y=0.25, line_dash="dot", annotation_text="chance")
    fig.update_layout(xaxis_type="log", xaxis_title="training images per class", yaxis_title="test accuracy (4 classes)",
                      height=400, title="Transfer to actin, bud neck, lipid particle, microtubule (cf. the paper's Fig. 4C)")
    return fig


def layer_sweep(sweep: pd.DataFrame, size: int):
    """Transfer accuracy from every layer at one training size (Fig. S6)."""
    import plotly.express as px

    fig = px.bar(sweep, x="features", y="accuracy", error_y=sweep["high"] - sweep["accuracy"],
                 error_y_minus=sweep["accuracy"] - sweep["low"],
                 title=f"Transfer accuracy from each layer, {size} training images per class (cf. Fig. S6)")
    fig.update_layout(height=380, xaxis_title=None, yaxis_range=[0, 1])
    return fig


def layer_maps(embedding: dict, labels: Sequence[str], classes: Sequence[str]):
    """t-SNE maps of layer outputs (``embedding``: layer → (N, 2)), coloured by class (Fig. 3B)."""
    import plotly.express as px

    layers = list(embedding)
    frames = [pd.DataFrame({"x": e[:, 0], "y": e[:, 1], "layer": name, "class": np.asarray(labels)})
              for name, e in embedding.items()]
    emb = pd.concat(frames, ignore_index=True)
    fig = px.scatter(emb, x="x", y="y", color="class", facet_col="layer", facet_col_wrap=min(3, len(layers)),
                     category_orders={"class": list(classes), "layer": layers}, opacity=0.75,
                     title="t-SNE of layer outputs of test cells, coloured by class (cf. the paper's Fig. 3B)")
    fig.update_traces(marker_size=4)
    fig.update_xaxes(showticklabels=False, title=None, matches=None)
    fig.update_yaxes(showticklabels=False, title=None, matches=None)
    fig.update_layout(height=330 * int(np.ceil(len(layers) / 3)))
    return fig


def unit_information(information: pd.DataFrame, layers: Sequence[str]):
    """Mutual information between each unit and the class, per layer (Fig. 3D)."""
    import plotly.express as px

    fig = px.box(information, x="layer", y="bits", points=False, category_orders={"layer": list(layers)},
                 title="Mutual information between each unit and the class (cf. the paper's Fig. 3D)")
    fig.update_layout(height=380, xaxis_title=None)
    return fig


def unit_patches(patches: Sequence[tuple[str, int, list]], ncols: int = 12):
    """The patches of :func:`~atlaskit.studies.deepyeast.interpretation.top_unit_patches`, one unit
    after another, each unit's first patch titled ``layer #unit`` (Fig. 3A)."""
    from atlaskit import plots

    tiles, titles, layers = [], [], []
    for name, unit, unit_patches_ in patches:
        layers += [name] if name not in layers else []
        for j, patch in enumerate(unit_patches_):
            tiles.append(plots.to_rgb(patch, colors=_COLORS))
            titles.append(f"{name} #{unit}" if j == 0 else "")
    fig = plots.image_grid(tiles, titles=titles, ncols=ncols, size=0.95)
    units = len(patches) // max(1, len(layers))
    fig.suptitle(f"Top-{len(patches[0][2]) if patches else 0} patches of the {units} most informative units per layer "
                 f"(rows: {', '.join(layers)})", fontsize=9, y=1.01)
    return fig


def real_predictions(on_real, top: int = 6):
    """What the network calls each real protein's cells: stacked shares of the predicted classes.

    ``on_real`` is a :class:`~atlaskit.studies.deepyeast.realcells.SimToReal`; the ``top``
    classes predicted most often are shown by name, the rest pooled as "other".
    """
    import plotly.graph_objects as go

    shares = on_real.shares
    order = on_real.proteins.sort_values(["klass", "protein"])
    shares = shares.loc[order["protein"]]
    keep = shares.sum().sort_values(ascending=False).index[:top].tolist()
    shown = shares[keep].assign(other=shares.drop(columns=keep).sum(1))
    labels = [f"{p} ({k})" for p, k in zip(order["protein"], order["klass"])]
    fig = go.Figure()
    for name in shown.columns:
        fig.add_bar(y=labels, x=shown[name], name=name, orientation="h")
    fig.update_layout(barmode="stack", height=120 + 45 * len(labels), xaxis_title="share of the protein's real cells",
                      xaxis_range=[0, 1], legend_title_text="predicted",
                      title="The simulated-trained network on real cells: what it calls each protein's cells")
    return fig


def cell_activations(images: np.ndarray, maps: dict, labels: Sequence[str], size: float = 1.05):
    """Each example cell (GFP green, RFP magenta) followed by its channel-mean activation map in
    every layer of ``maps`` (:func:`~atlaskit.studies.deepyeast.interpretation.activation_maps`),
    one row per cell (Fig. 3C)."""
    from atlaskit import plots

    layers = list(maps)
    tiles, titles = [], []
    for i, image in enumerate(images):
        tiles.append(plots.to_rgb(image, colors=_COLORS))
        titles.append("input" if i == 0 else "")
        for name in layers:
            tiles.append(maps[name][i])
            h, w = maps[name][i].shape
            titles.append(f"{name}\n{h}×{w}" if i == 0 else "")
    fig = plots.image_grid(tiles, titles=titles, row_labels=list(labels), ncols=len(layers) + 1, size=size)
    fig.suptitle("Mean activation over each layer's channels for test cells of three classes (cf. the paper's Fig. 3C)",
                 fontsize=9, y=1.01)
    return fig


def forest_vs_network(per_protein: pd.DataFrame):
    """Per-protein accuracy of the random forest against the network's, one point per test protein
    (:func:`~atlaskit.studies.deepyeast.evaluation.forest_vs_network`; Fig. S2)."""
    import plotly.graph_objects as go

    from atlaskit import plots

    frame = per_protein.assign(
        calls=np.select([per_protein["network_correct"] & per_protein["forest_correct"],
                         per_protein["network_correct"], per_protein["forest_correct"]],
                        ["both right", "network only", "forest only"], "both wrong"))
    fig = go.Figure()
    for name, color in (("both right", "#59a14f"), ("network only", "#4e79a7"), ("forest only", "#f28e2b"),
                        ("both wrong", "#e15759")):
        part = frame[frame["calls"] == name]
        if not len(part):
            continue
        fig.add_scatter(x=part["forest_cells"], y=part["network_cells"], mode="markers", name=f"protein call: {name}",
                        marker={"color": color, "size": 5 + 2 * np.sqrt(part["n_cells"])},
                        text=[f"{p} ({t}, {n} cells)" for p, t, n in zip(part["protein"], part["true_name"], part["n_cells"])],
                        hovertemplate="%{text}<br>forest %{x:.2f}, network %{y:.2f}<extra></extra>")
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "gray"}, showlegend=False,
                    hoverinfo="skip")
    fig.update_layout(height=480, width=640, xaxis_title="random forest: fraction of the protein's cells right",
                      yaxis_title="network: fraction of the protein's cells right", xaxis_range=[-0.03, 1.03],
                      yaxis_range=[-0.03, 1.03],
                      title=plots.wrap_title("Per-protein accuracy, random forest vs network (marker size: cells; cf. the "
                                             "paper's Fig. S2)"))
    return fig


def unit_feature_heatmap(block: pd.DataFrame, layer: str = "fc1"):
    """Correlations of units (rows) with hand-crafted features (columns), both in the order of an
    average-linkage clustering of their correlation profiles (Fig. S4). ``block`` is
    :func:`~atlaskit.studies.deepyeast.interpretation.strongest_correlations`' table."""
    import plotly.express as px
    from scipy.cluster.hierarchy import leaves_list, linkage

    r = block.fillna(0.0)

    def order(x: np.ndarray) -> np.ndarray:
        return leaves_list(linkage(x, "average", metric="euclidean")) if len(x) > 2 else np.arange(len(x))

    shown = r.iloc[order(r.to_numpy()), order(r.to_numpy().T)]
    fig = px.imshow(shown, color_continuous_scale="RdBu_r", zmin=-1, zmax=1, aspect="auto",
                    labels={"color": "Pearson r", "x": "hand-crafted feature", "y": f"{layer} unit"},
                    title=f"{layer} units and hand-crafted features with the strongest correlations, clustered "
                          "(cf. the paper's Fig. S4)")
    fig.update_layout(height=720, width=800, margin={"l": 80, "b": 200})
    fig.update_xaxes(tickfont_size=9, tickangle=-60)
    fig.update_yaxes(tickfont_size=9)
    return fig
