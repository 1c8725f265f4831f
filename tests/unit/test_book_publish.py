"""What a published book needs besides its chapters: the bibliography and its citations, LICENSE
and CITATION.cff, MathJax and plotly.js served by the book itself, no progress bars in notebook
outputs, and every command the README, the intro and the workshop page print working as written.

The commands are read from the documents' ``bash`` blocks; the cheap ones run (jupytext, ``atlaskit
chapters``), the others are checked as far as they can be without executing a chapter: the
command line parses, chapters and parameters exist, files named exist, the converted notebook
names a kernel that is installed and papermill finds its parameters. A command no rule knows
fails the test, so a new documented command needs a check here.
"""
from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from atlaskit import book, cli

ROOT = book.ROOT
DOCUMENTS = ("README.md", "book/intro.md", "book/workshop.md")
STUDIES = ("kobayashi2022cytoself", "yuan2025deepgps", "cyto2017challenge", "parnamaa2017deepyeast")
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _bibliography():
    from pybtex.database import parse_file

    return parse_file(str(ROOT / "references.bib"), bib_format="bibtex")


# --------------------------------------------------------------------------- bibliography
def test_bibliography_has_the_four_studies_and_well_formed_dois():
    entries = _bibliography().entries
    assert set(STUDIES) <= set(entries)
    for must in ("lin2023esm2", "cho2022opencell", "thul2017hpa", "chong2015yeast", "huh2003yeastgfp",
                 "razavi2019vqvae2", "vandenoord2017vqvae", "mcinnes2018umap", "ouyang2019kaggle"):
        assert must in entries
    for key, entry in entries.items():
        doi = entry.fields.get("doi")
        if doi is not None:
            assert re.fullmatch(r"10\.\d{4,9}/\S+", doi), f"{key}: {doi!r} is not a bare DOI"
        else:  # an entry without a DOI says why
            assert "note" in entry.fields or "url" in entry.fields, f"{key} has no DOI and no note saying why"
    dois = [e.fields["doi"].lower() for e in entries.values() if "doi" in e.fields]
    assert len(dois) == len(set(dois)), "two entries share a DOI"


def test_every_citation_in_the_book_is_in_the_bibliography():
    keys = set(_bibliography().entries)
    sources = [*(ROOT / "book").glob("*.md"), *(ROOT / "notebooks").glob("[0-9][0-9]_*.py")]
    cited = {k.strip() for path in sources for group in CITE.findall(path.read_text()) for k in group.split(",")}
    assert {"kobayashi2022cytoself", "yuan2025deepgps", "parnamaa2017deepyeast", "cyto2017challenge"} <= cited
    assert cited <= keys, f"cited but not in references.bib: {sorted(cited - keys)}"


def test_the_bibliography_is_wired_into_the_book():
    config = _config()
    assert [ROOT / f for f in config["bibtex_bibfiles"]] == [ROOT / "references.bib"]
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert "book/bibliography" in [c["file"] for c in toc["chapters"]]
    assert "{bibliography}" in (ROOT / "book" / "bibliography.md").read_text()


# --------------------------------------------------------------------------- licence and citation
def test_licence_file_matches_the_metadata():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License") and "Neither the name of the copyright holder" in text


def test_citation_cff_has_the_required_structure():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):  # required by CFF 1.2.0
        assert cff.get(key), f"CITATION.cff lacks {key}"
    assert cff["type"] in ("software", "dataset")
    assert cff["license"] == project["license"] and str(cff["version"]) == project["version"]
    people = cff["authors"] + [a for r in cff.get("references", []) for a in r["authors"]]
    assert all(isinstance(a, dict) and (a.get("name") or a.get("family-names")) for a in people)
    bib_dois = {e.fields["doi"] for e in _bibliography().entries.values() if "doi" in e.fields}
    for reference in cff.get("references", []):
        assert reference.get("title") and reference.get("type")
        if "doi" in reference:
            assert reference["doi"] in bib_dois, f"{reference['doi']} differs from references.bib"


# --------------------------------------------------------------------------- offline assets
def test_mathjax_is_served_from_the_book():
    sphinx = _config()["sphinx"]["config"]
    path = sphinx["mathjax_path"]
    assert not re.match(r"(https?:)?//", path) and "cdn" not in path.lower()
    static = [ROOT / p for p in sphinx["html_static_path"]]
    assert any((s / path).is_file() for s in static), f"{path} is not in {static}"
    folder = next(s for s in static if (s / path).is_file()) / Path(path).parent
    assert (folder / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff").is_file()
    assert "Apache License" in (folder / "LICENSE").read_text()
    # jupyter-book loads every .js of a root _static/ folder on every page: MathJax must not be there
    assert not (ROOT / "_static").exists()


def test_plotly_figures_carry_no_plotly_js_and_no_cdn():
    import plotly.graph_objects as go
    import plotly.io as pio

    from atlaskit import plots

    plots.use_offline_plotly()
    bundle = pio.renderers[plots.RENDERER_NAME].to_mimebundle(go.Figure(go.Bar(x=["a", "b"], y=[1, 2])).to_dict())
    assert set(bundle) == {plots.PLOTLY_MIMETYPE, "text/html"}
    assert bundle[plots.PLOTLY_MIMETYPE]["data"][0]["y"] == [1, 2]
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html and "plotly.js v" not in html and "cdn" not in html.lower()
    assert len(html) < 50_000  # a figure, not a library


class _FakeApp:
    def __init__(self):
        self.js, self.events = [], {}

    def add_js_file(self, name, **kwargs):
        self.js.append(name)

    def connect(self, event, handler):
        self.events[event] = handler


def test_the_book_extension_serves_one_plotly_js_and_drops_source_maps(tmp_path):
    app = _FakeApp()
    book.setup(app)
    assert app.js == [book.PLOTLY_JS]
    static = tmp_path / "_static"
    (static / "scripts").mkdir(parents=True)
    (static / "scripts" / "a.js").write_text("f();\n//# sourceMappingURL=a.js.map\n")
    (static / "scripts" / "a.js.map").write_text("{}")
    (static / "b.css").write_text("p{}\n/*# sourceMappingURL=b.css.map*/")
    (static / "b.css.map").write_text("{}")
    (static / "keep.js").write_text("g();\n")
    (static / "locales" / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (static / "locales" / "fr" / "LC_MESSAGES" / "theme.mo").write_bytes(b"\x00")
    (static / "locales" / "fr" / "LC_MESSAGES" / "theme.po").write_text("msgid")
    app.outdir, app.builder = str(tmp_path), type("B", (), {"format": "html"})()
    app.events["build-finished"](app, None)
    assert (static / book.PLOTLY_JS).read_bytes() == book.plotly_js_source().read_bytes()
    assert sorted(p.name for p in static.rglob("*.map")) == []
    assert (static / "scripts" / "a.js").read_text() == "f();\n"
    assert (static / "b.css").read_text() == "p{}\n"
    assert (static / "keep.js").read_text() == "g();\n"
    assert not (static / "locales").exists()  # only catalogs were there
    assert sorted(p.name for p in static.iterdir()) == sorted(["scripts", "b.css", "keep.js", book.PLOTLY_JS])


def test_the_site_keeps_no_second_copy_of_each_notebook():
    config = _config()
    assert config["sphinx"]["config"]["html_copy_source"] is False
    assert "atlaskit.book" in config["sphinx"]["extra_extensions"]
    # without _sources the theme's download button (links into _sources) is turned off, and only then
    app = _FakeApp()
    book.setup(app)
    for copy_source, shown in ((False, False), (True, True)):
        sphinx_config = type("C", (), {"html_copy_source": copy_source,
                                       "html_theme_options": {"search_bar_text": "Search"}})()
        app.events["config-inited"](app, sphinx_config)
        assert sphinx_config.html_theme_options.get("use_download_button", True) is shown
        assert sphinx_config.html_theme_options["search_bar_text"] == "Search"  # the rest is kept


# --------------------------------------------------------------------------- progress bars
def test_no_progress_bar_when_stderr_is_a_notebook_output(monkeypatch):
    from atlaskit.train import trainer

    OutStream = type("OutStream", (), {"__module__": "ipykernel.iostream", "write": lambda self, s: None})
    monkeypatch.setattr(sys, "stderr", OutStream())
    assert trainer._stderr_is_notebook_output()
    monkeypatch.setattr(sys, "stderr", sys.__stderr__)
    assert not trainer._stderr_is_notebook_output()


# --------------------------------------------------------------------------- documented commands
def _documented_commands() -> list[tuple[str, int, list[str]]]:
    """(document, block number, argv) of every command in the documents' bash blocks."""
    found = []
    for document in DOCUMENTS:
        text = (ROOT / document).read_text()
        for number, block in enumerate(re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, re.S)):
            block = block.replace("\\\n", " ")
            for line in block.splitlines():
                line = line.split(" #")[0].strip()
                if not line or line.startswith("#"):
                    continue
                for command in line.split("&&"):
                    found.append((document, number, shlex.split(command)))
    return found


def _placeholders(argv: list[str]) -> list[str]:
    """Example values for the documents' ``<owner>/<name>`` style placeholders."""
    out = []
    for arg in argv:
        arg = arg.replace("<owner>/<name>", "example/atlas").replace("<branch>", "published")
        out.append(arg)
    return out


def _program(argv: list[str]) -> str:
    return Path(argv[0]).name if argv[0].startswith(".venv/bin/") or "/" not in argv[0] else argv[0]


def test_the_documents_use_the_environment_s_programs():
    """A reader who ran ``make install`` has no activated environment: Python tools are named by
    their path in ``.venv`` (``make`` and ``conda`` are the system's)."""
    for document, _, argv in _documented_commands():
        if argv[0] not in ("make", "conda"):
            assert argv[0].startswith(".venv/bin/"), f"{document}: {' '.join(argv)}"


def test_every_documented_command_works_as_written(tmp_path, capsys):
    commands = _documented_commands()
    assert len(commands) >= 10
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    converted: dict[str, Path] = {}  # notebook path as written → where the test wrote it
    seen = set()
    for document, block, argv in commands:
        where = f"{document} (block {block}): {' '.join(argv)}"
        program, args = _program(argv), argv[1:]
        seen.add(program)
        if program == "make":
            for arg in args:
                name, _, value = arg.partition("=")
                assert (name in targets) if not value else (f"{name} ?=" in makefile), where
        elif program == "conda":
            if args[:2] == ["env", "create"]:
                env = ROOT / args[args.index("-f") + 1]
                assert env.is_file(), where
                name = yaml.safe_load(env.read_text())["name"]
            else:
                assert args == ["activate", name], where
        elif program == "atlaskit":
            parsed = cli.build_parser().parse_args(_placeholders(args))
            if parsed.command == "run":
                chapter, source = book.resolve_chapter(parsed.chapter)
                book.validate_parameters(chapter, source, cli._parameter_pairs(parsed.parameter))
            elif parsed.command == "chapters":
                assert parsed.func(parsed) == 0, where
                assert "01_cytoself" in capsys.readouterr().out
            elif parsed.command == "book" and parsed.repository:
                cli._launch(parsed, html=True, hint="")  # the launch options are valid
        elif program == "jupytext":
            from jupytext.cli import jupytext as jupytext_main

            assert (ROOT / args[args.index("--to") + 2]).is_file(), where
            written = args[args.index("-o") + 1]
            target = tmp_path / Path(written).name
            jupytext_main([str(ROOT / a) if a.startswith("notebooks/") else a for a in args[:-1]] + [str(target)])
            converted[written] = target
        elif program == "papermill":
            import nbformat
            import papermill
            from jupyter_client.kernelspec import KernelSpecManager
            from papermill.utils import nb_kernel_name

            assert args[0] in converted, f"{where}: no earlier command writes {args[0]}"
            notebook = nbformat.read(converted[args[0]], as_version=4)
            kernel = nb_kernel_name(notebook)  # papermill's "No kernel name found in notebook"
            assert KernelSpecManager().get_kernel_spec(kernel), where
            assert papermill.inspect_notebook(str(converted[args[0]])), f"{where}: no parameters cell"
            pairs = [args[i + 1:i + 3] for i, a in enumerate(args) if a == "-p"]
            source = ROOT / "notebooks" / f"{Path(args[0]).stem}.py"
            name, source = book.resolve_chapter(re.sub(r"\D", "", Path(args[0]).stem))
            book.validate_parameters(name, source, dict(pairs))
        elif program == "jupyter":
            assert args[0] == "lab" and importlib.util.find_spec("jupyterlab"), where
            assert (ROOT / "notebooks" / f"{Path(args[1]).stem}.py").is_file(), where
        else:
            pytest.fail(f"no check for {where}")
    assert {"make", "atlaskit", "jupytext", "papermill"} <= seen


def test_chapter_headers_name_the_kernel():
    import jupytext

    for name, source in book.chapter_sources().items():
        kernelspec = jupytext.read(source).metadata.get("kernelspec", {})
        assert kernelspec.get("name") == "python3" and kernelspec.get("language") == "python", name


def test_downloaded_notebooks_keep_each_plotly_figure_once(tmp_path):
    import json

    from atlaskit import book
    from atlaskit.plots import PLOTLY_MIMETYPE

    figure = {"data": [{"type": "bar", "y": [1, 2]}], "layout": {}}
    cells = [{"cell_type": "code", "source": "fig.show()", "metadata": {}, "execution_count": 1, "outputs": [
        {"output_type": "display_data", "metadata": {}, "data": {PLOTLY_MIMETYPE: figure, "text/html": "<div>…</div>"}},
        {"output_type": "display_data", "metadata": {}, "data": {"text/html": "<table></table>", "text/plain": "t"}},
    ]}]
    path = tmp_path / "c.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert book.slim_plotly_outputs(path) == 1
    outputs = json.loads(path.read_text())["cells"][0]["outputs"]
    assert outputs[0]["data"] == {PLOTLY_MIMETYPE: figure}  # the figure itself stays, its HTML copy goes
    assert outputs[1]["data"] == {"text/html": "<table></table>", "text/plain": "t"}  # other HTML untouched
    assert book.slim_plotly_outputs(path) == 0  # nothing left to slim
