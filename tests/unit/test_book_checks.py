"""Every figure of the book has a numbered caption (issue #22, item 3): the check on executed chapters."""
from __future__ import annotations

import io
from pathlib import Path

from atlaskit._progress import ProgressRelay, cell_announcer, file_tail, report
from atlaskit.book_checks import SOLUTION_PROMPTS, fold_for_readers, uncaptioned_figures


def _cell(source, outputs, figure=None):
    metadata = {"mystnb": {"figure": figure}} if figure is not None else {}
    return {"cell_type": "code", "source": source, "outputs": outputs, "metadata": metadata}


PNG = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}}
PLOTLY = {"output_type": "display_data", "data": {"application/vnd.plotly.v1+json": {}, "text/html": "<div>"}}
TABLE = {"output_type": "execute_result", "data": {"text/html": "<table>", "text/plain": "a b"}}
TEXT = {"output_type": "stream", "name": "stdout", "text": "hello"}
CAPTION = {"name": "fig-a", "caption": "What to look at."}


def test_a_figure_without_a_caption_is_named_by_its_cell():
    notebook = {"cells": [{"cell_type": "markdown", "source": "# t"},
                          _cell("# a comment\nfigures.atlas(x).show()", [PLOTLY])]}
    assert uncaptioned_figures(notebook) == [
        "cell 2 ('figures.atlas(x).show()'): a figure without a caption (mystnb figure name and caption)"
    ]


def test_captioned_figures_and_non_figure_outputs_pass():
    notebook = {"cells": [_cell("plot()", [PNG], CAPTION), _cell("table", [TABLE, TEXT]), _cell("x = 1", [])]}
    assert uncaptioned_figures(notebook) == []


def test_a_caption_needs_both_name_and_text():
    notebook = {"cells": [_cell("plot()", [PNG], {"name": "fig-a"}), _cell("plot()", [PNG], {"caption": "c"})]}
    assert len(uncaptioned_figures(notebook)) == 2


def test_two_figures_in_one_captioned_cell_are_refused():
    # both would carry the cell's one label
    problems = uncaptioned_figures({"cells": [_cell("a.show(); b.show()", [PLOTLY, PNG], CAPTION)]})
    assert problems == ["cell 1 ('a.show(); b.show()'): 2 displayed outputs in one captioned cell "
                        "(2 figures; one figure per cell, tables in the next cell)"]


def test_a_table_shown_after_a_captioned_figure_is_refused():
    # MyST-NB would wrap the table in the figure too, repeating its label
    problems = uncaptioned_figures({"cells": [_cell("fig.show()\ntable", [PLOTLY, TABLE, TEXT], CAPTION)]})
    assert problems == ["cell 1 ('fig.show()'): 2 displayed outputs in one captioned cell "
                        "(1 figures; one figure per cell, tables in the next cell)"]


def test_report_is_silent_without_a_runner(monkeypatch, tmp_path):
    monkeypatch.delenv("ATLASKIT_PROGRESS_FILE", raising=False)
    report("nothing happens")  # no file, no error
    monkeypatch.setenv("ATLASKIT_PROGRESS_FILE", str(tmp_path / "missing-folder" / "p.log"))
    report("an unwritable file is not an error")


def test_relay_copies_complete_lines_with_the_prefix(monkeypatch, tmp_path):
    stream = io.StringIO()
    with ProgressRelay(tmp_path / "p.log", stream, prefix="[ch] ", interval=0.01) as relay:
        monkeypatch.setenv("ATLASKIT_PROGRESS_FILE", str(relay.path))
        report("epoch 1/2 · loss 0.5")
        report("two\nlines become one")
        relay.line("cell 2/9: x = 1")
    lines = stream.getvalue().splitlines()
    assert "[ch]   epoch 1/2 · loss 0.5" in lines and "[ch]   two lines become one" in lines
    assert "[ch] cell 2/9: x = 1" in lines
    assert file_tail(relay.path, 1) == ["two lines become one"]
    assert file_tail(tmp_path / "absent.log", 3) == []


def test_cell_announcer_counts_code_cells_and_shows_the_first_code_line():
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"),
                                               nbformat.v4.new_code_cell("# why\n\nmodel = train(" + "x" * 80 + ")"),
                                               nbformat.v4.new_code_cell("# only a comment")])
    stream = io.StringIO()
    relay = ProgressRelay(Path("unused.log"), stream)
    announce = cell_announcer(relay, notebook, injected=True)
    for cell in notebook.cells[1:]:
        announce(cell=cell, cell_index=0)
    first, second = stream.getvalue().splitlines()
    assert first.startswith("cell 1/3: model = train(xxx") and first.endswith("…") and len(first) < 90
    assert second == "cell 2/3: (comments only)"


def test_check_cells_fold_and_solution_toggles_are_labelled():
    import nbformat

    cells = [
        nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)"),                       # folded
        nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(2)", metadata={"tags": ["remove-cell"]}),
        nbformat.v4.new_code_cell("print(3)  # NBVAL_CHECK_OUTPUT later is not the marker"),
        nbformat.v4.new_code_cell("# Solution\nx = 1", metadata={"tags": ["hide-cell"]}),
        nbformat.v4.new_code_cell("# Solution\nfig", metadata={"tags": ["hide-cell"], "mystnb": {
            "figure": {"name": "fig-x", "caption": "c"}, "code_prompt_show": "Own label"}}),
        nbformat.v4.new_markdown_cell("# NBVAL_CHECK_OUTPUT in prose"),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    assert fold_for_readers(notebook) == {"checks_folded": 1, "solutions_labelled": 2}
    assert cells[0].metadata.tags == ["hide-input"]
    assert cells[1].metadata.tags == ["remove-cell"]
    assert "tags" not in cells[2].metadata
    assert cells[3].metadata.mystnb == SOLUTION_PROMPTS
    assert cells[4].metadata.mystnb["code_prompt_show"] == "Own label"  # a cell's own label is kept
    assert cells[4].metadata.mystnb["code_prompt_hide"] == "Hide solution"
    assert cells[4].metadata.mystnb["figure"]["name"] == "fig-x"
    assert fold_for_readers(notebook) == {"checks_folded": 0, "solutions_labelled": 2}  # idempotent
    assert cells[0].metadata.tags == ["hide-input"]


# --------------------------------------------------------------------------- the install cell (Colab, Binder)

def test_every_chapter_starts_with_the_install_cell():
    from atlaskit.book import chapter_sources, read_chapter
    from atlaskit.book_checks import INSTALL_CELL

    for name, source in chapter_sources().items():
        code = [c for c in read_chapter(source).cells if c.cell_type == "code"]
        assert code[0].source == INSTALL_CELL, f"{name}: its first code cell is not atlaskit.book_checks.INSTALL_CELL"
        assert code[0].metadata.get("tags") == ["remove-cell"], f"{name}: the install cell shows on the page"
        assert "parameters" in code[1].metadata.get("tags", []), f"{name}: the parameters cell is not second"


def _run_install_cell(monkeypatch, tmp_path, importable: bool):
    import importlib.util
    import subprocess

    from atlaskit.book_checks import INSTALL_CELL

    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real_find_spec(name, *a) if importable or name != "atlaskit" else None))
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append((args, kw)))
    monkeypatch.chdir(tmp_path)
    exec(compile(INSTALL_CELL, "<install cell>", "exec"), {})
    return calls


def test_the_install_cell_does_nothing_where_atlaskit_is_installed(monkeypatch, tmp_path):
    assert _run_install_cell(monkeypatch, tmp_path, importable=True) == []


def test_the_install_cell_installs_the_checkout_it_sits_in(monkeypatch, tmp_path):
    # Binder: the repository is cloned, the notebook runs in <checkout>/book/chapters
    (tmp_path / "atlaskit").mkdir()
    (tmp_path / "atlaskit" / "__init__.py").write_text("")
    chapters = tmp_path / "book" / "chapters"
    chapters.mkdir(parents=True)
    [(args, kw)] = _run_install_cell(monkeypatch, chapters, importable=False)
    assert args[1:] == ["-m", "pip", "install", "--quiet", "-e", str(tmp_path)] and kw == {"check": True}


def test_the_install_cell_installs_the_named_requirement_elsewhere(monkeypatch, tmp_path):
    # Colab: only the notebook; ATLASKIT_INSTALL names where atlaskit comes from
    monkeypatch.delenv("ATLASKIT_INSTALL", raising=False)
    [(args, _)] = _run_install_cell(monkeypatch, tmp_path, importable=False)
    assert args[-1] == "atlaskit"
    monkeypatch.setenv("ATLASKIT_INSTALL", "git+https://example.org/me/atlaskit")
    [(args, _)] = _run_install_cell(monkeypatch, tmp_path, importable=False)
    assert args[-1] == "git+https://example.org/me/atlaskit"
