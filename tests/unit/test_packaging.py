"""atlaskit as a user installs it: declared dependencies, metadata, and the wheel.

A wheel must carry the chapters (setup.py copies ``notebooks/NN_name.py`` into
``atlaskit/_chapters/``) and an installed atlaskit must write under the working folder, never
beside itself in site-packages (:mod:`atlaskit._paths`). In a checkout nothing changes: chapters
from ``notebooks/``, outputs in ``book/chapters/`` and ``_build/``.
"""
from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from atlaskit import _paths, book, cli, runs
from atlaskit.errors import ParameterError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "atlaskit"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CHAPTERS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
# Environment variables that move atlaskit's folders; cleared so each test sees the defaults.
PATH_VARIABLES = ("ATLASKIT_RUNS", "ATLASKIT_EFFECTS", _paths.WORKDIR_ENV)


def _normalized(distribution: str) -> str:
    """PEP 503 name: ``PyYAML`` → ``pyyaml``, ``jupyter_client`` → ``jupyter-client``."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _requirement_name(requirement: str) -> str:
    return _normalized(re.match(r"[A-Za-z0-9._-]+", requirement).group())


def _third_party_imports() -> dict[str, list[tuple[str, bool]]]:
    """Top-level module name → [(file:line, imported at module level?)] for every non-stdlib import."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        module_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("atlaskit", "__future__", ""):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.setdefault(top, []).append((where, id(node) in module_level))
    return found


# --------------------------------------------------------------------------------------------
# Declared dependencies and metadata
# --------------------------------------------------------------------------------------------
def test_every_third_party_import_is_declared():
    """Each imported module's distribution is a dependency; imports at module level in the core ones."""
    core = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extras = {_requirement_name(r) for group in PYPROJECT["project"]["optional-dependencies"].values()
              for r in group}
    providers = importlib.metadata.packages_distributions()
    problems = []
    imports = _third_party_imports()
    assert {"numpy", "torch", "anndata", "filelock"} <= set(imports)  # the walk sees the package
    for module, places in sorted(imports.items()):
        distributions = {_normalized(d) for d in providers.get(module, [])}
        if not distributions:
            problems.append(f"{module} (imported at {places[0][0]}) is not installed; cannot tell its distribution")
        elif not distributions & (core | extras):
            problems.append(f"{module} ({sorted(distributions)}, imported at {places[0][0]}) is not declared")
        elif not distributions & core and any(top for _, top in places):
            where = next(w for w, top in places if top)
            problems.append(f"{module} is imported at module level ({where}) but only declared in an extra")
    assert not problems, "pyproject.toml [project] dependencies:\n" + "\n".join(problems)


def test_every_declared_dependency_is_pinned_for_the_book():
    """The loose ranges of pyproject.toml have an exact pin in requirements.txt (torch: the Makefile)."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, _, version = line.strip().partition("==")
            pins[_normalized(name)] = version
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    declared = list(PYPROJECT["project"]["dependencies"])
    declared += [r for group in PYPROJECT["project"]["optional-dependencies"].values() for r in group]
    unpinned = [r for r in declared if _requirement_name(r) not in pins
                and not (_requirement_name(r) == "torch" and "torch==" in makefile)]
    assert not unpinned, f"declared in pyproject.toml, not pinned in requirements.txt: {unpinned}"


def test_metadata_names_authors_classifiers_and_no_invented_address():
    project = PYPROJECT["project"]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert [a["name"] for a in project["authors"]] == [a["name"] for a in citation["authors"]]
    assert project["license"] == citation["license"] == "BSD-3-Clause"
    assert project["version"] == citation["version"]
    classifiers = project["classifiers"]
    for wanted in ("Intended Audience :: Science/Research", "Topic :: Scientific/Engineering :: Bio-Informatics",
                   "Topic :: Scientific/Engineering :: Image Recognition", "Programming Language :: Python :: 3"):
        assert wanted in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # the SPDX expression says it
    assert set(citation["keywords"]) <= set(project["keywords"])
    # no public address is stated anywhere yet: the package must not invent one
    stated = {citation.get(k) for k in ("url", "repository-code", "repository")} - {None}
    assert set(project.get("urls", {}).values()) <= stated


# --------------------------------------------------------------------------------------------
# Paths: a checkout keeps its folders; an installed package writes under the work folder
# --------------------------------------------------------------------------------------------
def test_a_checkout_keeps_its_folders(monkeypatch):
    for name in PATH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert _paths.checkout_root() == ROOT
    assert (book.ROOT, book.NOTEBOOKS, book.CHAPTERS_OUT, book.BUILD) == (
        ROOT, ROOT / "notebooks", ROOT / "book" / "chapters", ROOT / "_build")
    assert (runs.runs_root(), runs.effects_dir()) == (ROOT / "_build" / "runs", ROOT / "_build" / "effects")
    assert list(book.chapter_sources()) == [name[:-3] for name in CHAPTERS]


def test_an_installed_package_writes_under_the_working_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(_paths, "checkout_root", lambda: None)
    for name in PATH_VARIABLES:
        monkeypatch.setenv(name, "unset below")  # recorded, so the test's own setting is undone
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assert _paths.notebooks_dir() == _paths.PACKAGED_CHAPTERS
    assert _paths.chapters_out() == tmp_path / "chapters"
    assert runs.runs_root() == tmp_path / "_build" / "runs"
    # the first answer is kept for the processes this one starts (kernels run in chapters/)
    assert os.environ[_paths.WORKDIR_ENV] == str(tmp_path)
    monkeypatch.chdir(tmp_path / "..")
    assert runs.effects_dir() == tmp_path / "_build" / "effects"
    # the existing overrides still win
    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path / "elsewhere"))
    assert runs.runs_root() == tmp_path / "elsewhere"
    monkeypatch.setenv(_paths.WORKDIR_ENV, str(tmp_path / "work"))
    assert _paths.build_dir() == tmp_path / "work" / "_build"


def test_no_chapter_found_is_one_line_saying_how_to_get_them(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(book, "chapter_sources", lambda notebooks=tmp_path: {})
    assert cli.main(["chapters"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith("atlaskit: error: no chapters found in ")
    assert "checkout" in captured.err and "wheel" in captured.err
    monkeypatch.undo()
    with pytest.raises(ParameterError, match=r"^no chapters found in .*empty"):
        book.resolve_chapter("01", tmp_path / "empty")


@pytest.mark.parametrize("argv, hint", [
    (["book"], "add --no-html to execute the chapters only"),
    (["run", "00_data", "--html"], "drop --html"),
])
def test_html_without_book_pages_is_refused_before_any_chapter_runs(argv, hint, monkeypatch, capsys, tmp_path):
    """An installed wheel has the chapters but not the book's pages: refused at once, not after an hour."""
    monkeypatch.setattr(book, "ROOT", tmp_path)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a chapter ran")

    monkeypatch.setattr(book, "build_book", must_not_run)
    monkeypatch.setattr(book, "execute_chapter", must_not_run)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"atlaskit: error: the HTML book is rendered in a checkout of the atlaskit repository "
                   f"(no _config.yml in {tmp_path}); {hint}\n")


# --------------------------------------------------------------------------------------------
# The wheel
# --------------------------------------------------------------------------------------------
# What a copy of the checkout leaves out: environments, caches, build products.
_NOT_COPIED = {".git", ".venv", ".hypothesis", ".gl", ".cache", ".pytest_cache", "_build", "build", "dist"}


def _copy_checkout(target: Path) -> Path:
    """The checkout's sources (tests, book pages included) in ``target``, plus planted build products."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder).resolve() == ROOT
        return {n for n in names if (top and n in _NOT_COPIED) or n == "__pycache__" or n.endswith(".egg-info")
                or (Path(folder).resolve() == ROOT / "book" and n == "chapters")}

    shutil.copytree(ROOT, target, ignore=ignore)
    # what a checkout holds after `make book`: none of it belongs in a wheel
    for planted in ("_build/runs/01_cytoself/run-0/model.pt", "book/chapters/00_data.ipynb"):
        (target / planted).parent.mkdir(parents=True, exist_ok=True)
        (target / planted).write_text("{}")
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = _copy_checkout(tmp / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(tmp / "dist")], check=True, capture_output=True, text=True)
    (built,) = (tmp / "dist").glob("atlaskit-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed into a folder of its own (``pip install --target``)."""
    target = tmp_path_factory.mktemp("site") / "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, text=True)
    return target


def _run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PATH_VARIABLES}
    env["PYTHONPATH"] = str(site)  # before the checkout's editable install on sys.path
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_the_chapters_only(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        packaged = {n.rsplit("/", 1)[1]: archive.read(n) for n in names if n.startswith("atlaskit/_chapters/")}
    assert sorted(packaged) == CHAPTERS and len(CHAPTERS) == 5
    # exactly the sources of the checkout (the lead's uncommitted edits included)
    assert all(packaged[n] == (ROOT / "notebooks" / n).read_bytes() for n in CHAPTERS)
    assert "atlaskit/data/registry.json" in names
    outside = [n for n in names if not n.startswith(("atlaskit/", "atlaskit-"))]
    assert not outside, f"the wheel holds files outside the package: {outside[:5]}"
    products = [n for n in names if n.endswith((".ipynb", ".pt", ".pyc")) or "_build" in n or "tests/" in n]
    assert not products, f"the wheel holds build products or tests: {products[:5]}"


@pytest.mark.slow
def test_an_installed_wheel_lists_its_chapters_and_writes_under_the_working_folder(installed, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    listed = _run_installed(installed, work, "-m", "atlaskit", "chapters")
    assert listed.returncode == 0, listed.stderr
    assert [line for line in listed.stdout.splitlines() if not line.startswith(" ")] == [n[:-3] for n in CHAPTERS]
    assert "    -p scale 'ci'" in listed.stdout.splitlines()
    where = _run_installed(installed, work, "-c", (
        "import atlaskit, atlaskit.book as b, atlaskit.runs as r; "
        "print(atlaskit.__file__, b.NOTEBOOKS, b.CHAPTERS_OUT, b.BUILD, r.runs_root(), r.effects_dir(), sep='\\n')"
    ))
    assert where.returncode == 0, where.stderr
    package, notebooks, chapters_out, build, runs_folder, effects = map(Path, where.stdout.splitlines())
    assert package == installed / "atlaskit" / "__init__.py"  # the wheel, not the checkout
    assert notebooks == installed / "atlaskit" / "_chapters"
    assert (chapters_out, build) == (work / "chapters", work / "_build")
    assert (runs_folder, effects) == (work / "_build" / "runs", work / "_build" / "effects")
    assert sorted(p.name for p in installed.rglob("*") if p.name in ("_build", "chapters")) == []
    assert sorted(work.iterdir()) == []  # listing chapters writes nothing


@pytest.mark.slow
def test_an_installed_package_without_chapters_says_how_to_get_them(installed, tmp_path):
    site = tmp_path / "site-packages"
    shutil.copytree(installed / "atlaskit", site / "atlaskit", ignore=shutil.ignore_patterns("_chapters"))
    result = _run_installed(site, tmp_path, "-m", "atlaskit", "chapters")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"atlaskit: error: no chapters found in {site / 'atlaskit' / '_chapters'} ")
    assert len(result.stderr.splitlines()) == 1
