"""Checks of executed chapters before the book is rendered (:func:`atlaskit.book.build_html`)."""
from __future__ import annotations

from typing import Any, Mapping

#: Output mime types that are figures (each must sit in a captioned cell, see :func:`uncaptioned_figures`).
FIGURE_MIMETYPES = ("image/png", "image/svg+xml", "image/jpeg", "application/vnd.plotly.v1+json")


def uncaptioned_figures(notebook: Mapping[str, Any]) -> list[str]:
    """Figures of an executed chapter that would render without a numbered caption.

    A chapter's figure is a code cell output of one of :data:`FIGURE_MIMETYPES`. MyST-NB wraps it
    in a numbered, referable figure when its cell carries ``mystnb: {figure: {name, caption}}``
    metadata (in the jupytext source: ``# %% mystnb={"figure": {"name": "fig-…", "caption": "…"}}``).
    A captioned cell may hold one rich output only (the figure): MyST-NB wraps every display
    output of the cell in the figure, so a second one (another figure, or a table shown after it)
    would repeat the cell's label. Print tables from the next cell.

    Parameters
    ----------
    notebook : mapping
        The notebook's JSON content (``nbformat`` node or plain dict).

    Returns
    -------
    list of str
        One line per problem, naming the cell (its number and first code line); empty when every
        figure has its caption.
    """
    problems = []
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        rich = [o for o in cell.get("outputs", []) if o.get("output_type") in ("display_data", "execute_result")]
        figures = sum(1 for o in rich if any(m in o.get("data", {}) for m in FIGURE_MIMETYPES))
        if not figures:
            continue
        source = "".join(cell.get("source", ""))
        first = next((line for line in source.splitlines() if line.strip() and not line.startswith("#")), "")
        where = f"cell {number} ({first.strip()[:60]!r})"
        options = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        if not options.get("caption") or not options.get("name"):
            problems.append(f"{where}: a figure without a caption (mystnb figure name and caption)")
        elif len(rich) > 1:
            problems.append(f"{where}: {len(rich)} displayed outputs in one captioned cell "
                            f"({figures} figures; one figure per cell, tables in the next cell)")
    return problems
