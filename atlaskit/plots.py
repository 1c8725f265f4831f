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
    """Crisp, consistent static figures (SVG would bloat pages with large heat maps: PNG at 110 dpi).

    In a Jupyter kernel, figures are shown as opaque RGB PNGs compressed with ``optimize``
    (:func:`figure_png`): the pages are white, so the alpha channel carried nothing, and the
    book's images (stored in each page and again in its downloadable notebook) shrink by about
    an eighth, losslessly. Grids of micrographs (:func:`is_photographic`) are shown as JPEG at
    quality 90 without chroma subsampling (:func:`figure_jpeg`), about a third of the PNG's size
    and indistinguishable at the page's scale; plots, heat maps and text stay lossless PNG.
    """
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
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    try:  # the inline backend registers its own PNG formatter when first imported: import it first
        import matplotlib_inline.backend_inline  # noqa: F401
    except ImportError:
        return
    from matplotlib.figure import Figure

    shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)
    shell.display_formatter.formatters["image/jpeg"].for_type(Figure, figure_jpeg)


def is_photographic(fig) -> bool:
    """Whether a matplotlib figure is a grid of micrographs: every visible axes that holds an image
    has no ticks (axis off, or empty tick lists: no numbers to blur) and the images are at least
    24 pixels a side. Such figures compress poorly as PNG and well as JPEG."""
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.images]

    def tick_free(ax) -> bool:
        return not ax.axison or (len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0)

    return bool(shown) and all(
        tick_free(ax) and all(min(im.get_array().shape[:2]) >= 24 for im in ax.images) for ax in shown
    )


def _rendered_rgb(fig):
    import io

    from PIL import Image

    drawn = io.BytesIO()
    fig.savefig(drawn, format="png", bbox_inches="tight", facecolor="white")
    drawn.seek(0)
    with Image.open(drawn) as image:
        return image.convert("RGB")


def figure_png(fig) -> bytes | None:
    """A matplotlib figure as an opaque, optimized RGB PNG (cropped to its content, like the inline
    backend); ``None`` for a figure with nothing drawn, which Jupyter then does not show, and for a
    photographic one (:func:`figure_jpeg` shows it)."""
    import io

    if (not fig.axes and not fig.texts and not fig.images) or is_photographic(fig):
        return None
    out = io.BytesIO()
    _rendered_rgb(fig).save(out, format="PNG", optimize=True)
    return out.getvalue()


def figure_jpeg(fig) -> bytes | None:
    """A photographic matplotlib figure (:func:`is_photographic`) as a JPEG of quality 90 with full
    chroma resolution; ``None`` for every other figure (:func:`figure_png` shows those)."""
    import io

    if not is_photographic(fig):
        return None
    out = io.BytesIO()
    _rendered_rgb(fig).save(out, format="JPEG", quality=90, subsampling=0, optimize=True)
    return out.getvalue()


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
