"""The rendered book: every chapter page exists, interactive figures are embedded (no CDN), and
no stray stderr (warnings, progress-bar fallbacks) reached the executed chapters."""
from __future__ import annotations

import os
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
    for item in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(book.ROOT / item, root / item)
    shutil.copytree(book.ROOT / "_assets", root / "_assets")  # the book's own MathJax
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
        if "Plotly.newPlot" in page:  # one shared plotly.js, not one copy per page
            assert f'src="../../_static/{book.PLOTLY_JS}"' in page, f"{name} does not load _static/{book.PLOTLY_JS}"
            assert "plotly.js v" not in page, f"{name} embeds its own plotly.js"
    assert (html / "_static" / book.PLOTLY_JS).is_file()
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
        # the toggle says what book/workshop.md tells teachers to click
        assert page.count(">Show solution<") >= len(solutions), f"{name}: a solution toggle is not labelled"


def test_the_nbval_checks_are_folded_away_from_the_reader(html, executed_chapters):
    """Cells kept for nbval (first line ``# NBVAL_CHECK_OUTPUT``) show their result, not their code."""
    for name in executed_chapters:
        page = (html / "book" / "chapters" / f"{name}.html").read_text()
        cells = page.split('<div class="cell ')[1:]
        checks = [c for c in cells if "NBVAL_CHECK_OUTPUT" in c.split('<div class="cell_output')[0]]
        assert checks, f"{name}: no nbval check cell on the page (expected folded ones)"
        shown = [c[:80] for c in checks if not re.match(r'[^"]*tag_(hide-input|hide-cell)', c)]
        assert not shown, f"{name}: {len(shown)} check cells show their code: {shown[:2]}"


def test_workshop_page_is_in_the_book(html):
    text = re.sub(r"<[^>]+>", "", (html / "book" / "workshop.html").read_text())
    assert "atlaskit data fetch --all --fill-cache" in text and "-p scale tiny" in text



def test_the_default_book_has_no_launch_buttons(html):
    page = (html / "book" / "chapters" / "00_data.html").read_text()
    assert "mybinder" not in page and "colab.research.google.com" not in page


@pytest.fixture(scope="module")
def html_with_launch(executed_chapters, tmp_path_factory):
    """A one-chapter book (intro, 00_data, the ledger page, workshop) rendered with launch buttons."""
    root = tmp_path_factory.mktemp("launch")
    for item in ("_config.yml", "references.bib"):
        shutil.copy(book.ROOT / item, root / item)
    shutil.copytree(book.ROOT / "_assets", root / "_assets")  # the book's own MathJax
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/chapters/00_data\n  - file: book/ledger\n"
        "  - file: book/workshop\n  - file: book/bibliography\n"
    )
    (root / "book" / "chapters").mkdir(parents=True)
    for item in ("intro.md", "ledger.md", "workshop.md", "bibliography.md"):  # the pages the intro links to and cites
        shutil.copy(book.ROOT / "book" / item, root / "book" / item)
    shutil.copy(executed_chapters["00_data"], root / "book" / "chapters" / "00_data.ipynb")
    shutil.copytree(book.ROOT / "notebooks", root / "notebooks")
    launch = book.Launch("https://github.com/someone/atlas", "built", binderhub="https://binder.example.org/",
                         jupyterhub="https://hub.example.org", colab=True)
    return book.build_html(root, launch=launch)


def test_launch_buttons_open_the_chapter_on_the_named_repository(html_with_launch):
    page = (html_with_launch / "book" / "chapters" / "00_data.html").read_text()
    links = set(re.findall(r'href="(https://[^"]+)"', page))
    notebook = "book/chapters/00_data.ipynb"
    assert f"https://binder.example.org/v2/gh/someone/atlas/built?urlpath=tree/{notebook}" in links
    assert f"https://colab.research.google.com/github/someone/atlas/blob/built/{notebook}" in links
    assert any(link.startswith("https://hub.example.org/hub/user-redirect/git-pull?") and "branch=built" in link
               for link in links)
    assert "https://github.com/someone/atlas" in links  # the repository button


# --------------------------------------------------------------------------- in a real browser

def _browser():
    import headless as browser  # tests/integration/headless.py

    if browser.CHROMIUM is None:
        if os.environ.get("ATLASKIT_REQUIRE_BROWSER"):  # set by .ci/run, which installs chromium
            pytest.fail("chromium is required (ATLASKIT_REQUIRE_BROWSER) but not installed")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")
    return browser


def _figure_outputs(path) -> int:
    from atlaskit.book_checks import FIGURE_MIMETYPES

    notebook = nbformat.read(path, as_version=4)
    return sum(1 for c in notebook.cells for o in c.get("outputs", [])
               if o.get("output_type") in ("display_data", "execute_result")
               and any(m in o.get("data", {}) for m in FIGURE_MIMETYPES))


def test_every_page_works_offline_in_a_browser(html, executed_chapters):
    """Each page of the book in headless Chromium with networking off (issue #22): no console
    errors, no request leaving the machine, every plotly figure drawn (an SVG with data), every
    formula typeset by the book's own MathJax, every figure numbered and captioned, and no path
    of the machine that built the book in the text."""
    browser = _browser()
    machine_paths = {str(book.ROOT), str(html.parent)} | ({os.path.expanduser("~")} - {"/", "~"})
    pages = [html / "book" / "chapters" / f"{name}.html" for name in executed_chapters]
    pages += [html / "book" / f"{name}.html" for name in ("intro", "ledger", "workshop", "bibliography")]
    problems = []
    for page in pages:
        seen = browser.visit(page)
        name = page.relative_to(html)
        problems += [f"{name}: console: {m}" for m in seen.errors]
        problems += [f"{name}: requested {url}" for url in seen.external_requests]
        figures = seen.dom.split('class="plotly-graph-div')[1:]
        undrawn = [i for i, part in enumerate(figures) if not re.search(r'class="(trace|hm|gl-container)|<g class="[a-z]*layer', part[:400000])
                   or "main-svg" not in part[:200000]]
        problems += [f"{name}: plotly figure {i + 1} of {len(figures)} not drawn" for i in undrawn]
        source = page.read_text()
        if 'class="math' in source and "<mjx-container" not in seen.dom:
            problems.append(f"{name}: formulas not typeset (MathJax)")
        text = seen.text()
        problems += [f"{name}: shows the build machine's path {p}" for p in machine_paths if p in text]
        if page.parent.name == "chapters":
            expected = _figure_outputs(executed_chapters[page.stem])
            numbered = len(re.findall(r'<figcaption>\s*<p>\s*<span class="caption-number">Fig\. \d+', source))
            if numbered < expected:
                problems.append(f"{name}: {expected} figures but {numbered} numbered captions")
    assert not problems, "\n".join(problems)
