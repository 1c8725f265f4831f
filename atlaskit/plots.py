"""Figure set-up shared by the chapters.

Plotly figures in the book must render with no network and without weighing down every page:
:func:`use_offline_plotly` installs a renderer whose output carries no copy of plotly.js and no
MathJax ``<script>`` from a CDN. Each figure is one output with two representations:

- ``application/vnd.plotly.v1+json`` (the figure itself): JupyterLab, Notebook 7 and VS Code draw
  it with the plotly extension installed with the ``plotly`` package, offline;
- ``text/html`` (a ``<div>`` and a ``Plotly.newPlot`` call): what the HTML book shows. The book
  loads plotly.js once, from its own ``_static/plotly.min.js`` (copied from the installed
  ``plotly`` package by the Sphinx extension in :mod:`atlaskit.book`), instead of each page and
  each downloadable notebook embedding its own 4.8 MB copy.
"""
from __future__ import annotations

import json

import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

RENDERER_NAME = "atlaskit_offline"
PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"


class OfflineNotebookRenderer(MimetypeRenderer):
    """Each figure as the plotly mime type plus an HTML fallback that expects ``window.Plotly``.

    Nothing is embedded when the renderer is activated (plotly's ``notebook`` renderer puts the
    whole plotly.js into the first figure's output), and no MathJax script is added.
    """

    def __init__(self, config=None):
        self.config = dict(config) if config else {}

    def to_mimebundle(self, fig_dict):
        figure = json.loads(pio.to_json(fig_dict, validate=False, remove_uids=False))
        if self.config:
            figure["config"] = {**figure.get("config", {}), **self.config}
        html = pio.to_html(
            fig_dict,
            config=self.config,
            include_plotlyjs=False,  # the book serves one plotly.js from _static
            include_mathjax=False,
            full_html=False,
            default_width="100%",
            default_height=525,
            validate=False,
        )
        return {PLOTLY_MIMETYPE: figure, "text/html": html}


def use_offline_plotly() -> None:
    """Make every ``fig.show()`` in this kernel render offline, with no plotly.js in the output."""
    if RENDERER_NAME not in pio.renderers:
        pio.renderers[RENDERER_NAME] = OfflineNotebookRenderer()
    pio.renderers.default = RENDERER_NAME
    pio.templates.default = "plotly_white"


def use_book_matplotlib() -> None:
    """Crisp, consistent static figures (SVG would bloat pages with large heat maps: PNG at 110 dpi)."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10,
        }
    )


#: Characters of a plotly title line that fit the book's page (about 800 px at the default font).
TITLE_CHARS = 75


def wrap_title(text: str, width: int = TITLE_CHARS, *, sep: str = "<br>") -> str:
    """``text`` broken into lines of at most ``width`` characters, at spaces.

    Plotly never wraps a title: one longer than the figure is cut at its edge. The lines are
    joined with ``<br>`` (plotly titles and subplot titles) or, with ``sep="\\n"``, a newline
    (matplotlib). A word longer than ``width`` stays whole on its own line.

    Parameters
    ----------
    text : str
        The title.
    width : int
        Most characters per line (at least 1).
    sep : str
        What joins the lines.

    Returns
    -------
    str
    """
    import textwrap

    if width < 1:
        raise ValueError(f"width must be at least 1, not {width}")
    return sep.join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)) or text


def to_rgb(channels, colors=("green", "blue", "red", "yellow")):
    """Composite (C, H, W) channels in [0, 1] into an (H, W, 3) RGB image, HPA-style colours."""
    import numpy as np

    palette = {"green": (0, 1, 0), "blue": (0, 0, 1), "red": (1, 0, 0), "yellow": (1, 1, 0),
               "magenta": (1, 0, 1), "cyan": (0, 1, 1), "gray": (1, 1, 1)}
    channels = np.asarray(channels, dtype=np.float32)
    rgb = np.zeros(channels.shape[1:] + (3,), np.float32)
    for channel, color in zip(channels, colors):
        rgb += channel[..., None] * np.asarray(palette[color], np.float32)
    return np.clip(rgb, 0, 1)


def image_grid(images, *, titles=None, row_labels=None, ncols=None, size=1.6, cmap="gray", vmax_percentile=99.8):
    """A grid of images (N, H, W) or (N, H, W, 3) with optional titles and row labels.

    Each grey-level image is shown with its own display range (0 to its ``vmax_percentile``),
    like a microscopist's auto-contrast; RGB images are shown as they are.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    images = list(images)
    ncols = ncols or len(images)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * (titles is not None)),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if index >= len(images):
            ax.axis("off")
            continue
        image = np.asarray(images[index])
        if image.ndim == 2:
            ax.imshow(image, cmap=cmap, vmin=0, vmax=max(np.percentile(image, vmax_percentile), 1e-6))
        else:
            ax.imshow(image)
        if titles is not None and titles[index]:
            ax.set_title(titles[index], fontsize=8)
    if row_labels is not None:
        for row, label in enumerate(row_labels):
            axes[row, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig
