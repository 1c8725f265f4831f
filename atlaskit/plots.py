"""Figure set-up shared by the chapters.

Plotly figures in the book must render with no network: :func:`use_offline_plotly` installs a
renderer that embeds plotly.js once per notebook (plotly's ``notebook`` renderer) and, unlike the
stock renderer, does not add a MathJax ``<script>`` from a CDN to every figure.
"""
from __future__ import annotations

import plotly.io as pio
from plotly.io._base_renderers import NotebookRenderer

RENDERER_NAME = "atlaskit_offline"


class OfflineNotebookRenderer(NotebookRenderer):
    """plotly's ``notebook`` renderer without the per-figure MathJax CDN script."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(
            fig_dict,
            config=self.config,
            include_plotlyjs=False,  # embedded once by the renderer's activation
            include_mathjax=False,
            full_html=False,
            default_width="100%",
            default_height=525,
            validate=False,
        )
        return {"text/html": html}


def use_offline_plotly() -> None:
    """Make every ``fig.show()`` in this kernel render offline (plotly.js embedded once)."""
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
