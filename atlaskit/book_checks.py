"""What the book requires of a chapter's cells: checks before the book is rendered
(:func:`atlaskit.book.build_html`) and the reader-facing cell options set before a chapter runs
(:func:`fold_for_readers`, called by :func:`atlaskit.book.execute_chapter`)."""
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


#: First line of a cell whose printed output nbval compares on re-execution (see tests/README.md).
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
#: Cell tags that already decide how a cell's code is shown; such a cell is left as it is.
VISIBILITY_TAGS = frozenset({"remove-cell", "remove-input", "hide-cell", "hide-input"})
#: The label of an exercise's solution toggle (``hide-cell`` cells), as book/workshop.md tells teachers.
SOLUTION_PROMPTS = {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}


def fold_for_readers(notebook) -> dict[str, int]:
    """Fold what is there for the tests, and label the solution toggles, in a chapter notebook.

    * A cell that starts with :data:`CHECK_MARKER` and has none of :data:`VISIBILITY_TAGS` gets the
      ``hide-input`` tag: its printed result stays on the page, its code (with the marker) folds
      behind a toggle. nbval still sees the marker.
    * A ``hide-cell`` cell (an exercise's solution) gets :data:`SOLUTION_PROMPTS` as its MyST-NB
      toggle labels, unless it sets its own.

    Parameters
    ----------
    notebook : nbformat.NotebookNode
        Changed in place.

    Returns
    -------
    dict
        ``{"checks_folded": n, "solutions_labelled": m}``.
    """
    folded = labelled = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if cell.source.lstrip().startswith(CHECK_MARKER) and not VISIBILITY_TAGS.intersection(tags):
            tags.append("hide-input")
            folded += 1
        if "hide-cell" in tags:
            options = cell.metadata.setdefault("mystnb", {})
            for key, label in SOLUTION_PROMPTS.items():
                options.setdefault(key, label)
            labelled += 1
        if not tags:
            del cell.metadata["tags"]
    return {"checks_folded": folded, "solutions_labelled": labelled}


#: The first code cell of every chapter (tests/unit/test_book_checks.py holds each chapter to it):
#: on Colab, Binder or any Jupyter whose Python lacks atlaskit it installs atlaskit — from the
#: checkout the notebook sits in (Binder clones the repository), else the pip requirement in
#: ``ATLASKIT_INSTALL`` (e.g. ``git+https://<host>/<owner>/<name>``), else ``atlaskit`` — and does
#: nothing where atlaskit is importable (the book's own runs, nbval). Removed from the HTML pages.
INSTALL_CELL = """\
# Colab, Binder or a Jupyter without atlaskit: install it (this cell does nothing where it is installed)
import importlib.util, os, pathlib, subprocess, sys

if importlib.util.find_spec("atlaskit") is None:
    here = pathlib.Path.cwd()
    checkout = next((p for p in [here, *here.parents] if (p / "atlaskit" / "__init__.py").is_file()), None)
    requirement = ["-e", str(checkout)] if checkout else [os.environ.get("ATLASKIT_INSTALL", "atlaskit")]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *requirement], check=True)"""
