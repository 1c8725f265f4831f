"""The rendered book: every chapter page exists, interactive figures are embedded (no CDN), and
no stray stderr (warnings, progress-bar fallbacks) reached the executed chapters."""
from __future__ import annotations

import re
import shutil

import nbformat
import pytest

from atlaskit import book

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def executed_chapters():
    """The executed chapters (`make chapters` writes them; executed here if missing)."""
    paths = {}
    for name in book.chapter_sources():
        path = book.CHAPTERS_OUT / f"{name}.ipynb"
        if not path.exists():
            book.execute_chapter(name)
        paths[name] = path
    return paths


@pytest.fixture(scope="module")
def html(executed_chapters, tmp_path_factory):
    root = tmp_path_factory.mktemp("book")
    for item in ("_config.yml", "_toc.yml"):
        shutil.copy(book.ROOT / item, root / item)
    shutil.copytree(book.ROOT / "book", root / "book")
    shutil.copytree(book.ROOT / "notebooks", root / "notebooks")  # the chapters' download links
    return book.build_html(root)


def test_no_chapter_wrote_to_stderr(executed_chapters):
    for name, path in executed_chapters.items():
        notebook = nbformat.read(path, as_version=4)
        for index, cell in enumerate(notebook.cells):
            for output in cell.get("outputs", []):
                assert not (output.get("output_type") == "stream" and output.get("name") == "stderr"), (
                    f"{name} cell #{index} wrote to stderr: {output.get('text', '')[:300]}"
                )


def test_every_chapter_page_is_rendered_with_offline_plotly(html, executed_chapters):
    for name in executed_chapters:
        page = (html / "book" / "chapters" / f"{name}.html").read_text()
        external = re.findall(r'<script[^>]+src="(https?://[^"]+)"', page)
        assert not external, f"{name} loads scripts from the network: {external}"
        if "Plotly.newPlot" in page:
            assert "plotly.js v" in page, f"{name} has plotly figures but no embedded plotly.js"
    assert "Plotly.newPlot" in (html / "book" / "chapters" / "00_data.html").read_text()


def test_intro_page_explains_rerunning(html):
    text = re.sub(r"<[^>]+>", "", (html / "book" / "intro.html").read_text())
    assert "atlaskit run 01_cytoself -p scale full" in text and "make book" in text


def test_every_chapter_page_offers_its_notebook_and_source(html, executed_chapters):
    for name in executed_chapters:
        page = (html / "book" / "chapters" / f"{name}.html").read_text()
        links = re.findall(r'href="([^"]*_downloads/[^"]+)"', page)
        for suffix in (".ipynb", ".py"):
            target = [link for link in links if link.endswith(f"{name}{suffix}")]
            assert target, f"{name}: no download link to its {suffix} file"
            assert (html / "book" / "chapters" / target[0]).resolve().is_file(), target[0]


def test_solutions_are_hidden_but_present(html, executed_chapters):
    for name, path in executed_chapters.items():
        notebook = nbformat.read(path, as_version=4)
        solutions = [c for c in notebook.cells if "hide-cell" in c.metadata.get("tags", [])]
        assert len(solutions) >= 2, f"{name}: fewer than two exercises"
        assert all(c.get("outputs") is not None and c.source.startswith("# Solution") for c in solutions)
        page = (html / "book" / "chapters" / f"{name}.html").read_text()
        assert page.count("hide-cell") >= len(solutions), f"{name}: solutions not hidden in the HTML"


def test_workshop_page_is_in_the_book(html):
    text = re.sub(r"<[^>]+>", "", (html / "book" / "workshop.html").read_text())
    assert "atlaskit data fetch --all --fill-cache" in text and "-p scale tiny" in text

