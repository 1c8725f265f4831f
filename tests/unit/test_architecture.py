"""The package's architecture, kept honest: layers import downwards only, and no module grows past 800 lines.

Layers, lowest first (DEVELOPERS.md, "How we write code")::

    base (errors, _atomic, _text, _progress, plots, profiling)
    → data → models → train, runs → analysis, metrics → studies, loading → chapter → book, commands → cli

A module may import its own layer and the layers below it. Two rules are stricter: models know
tensors only (no ``atlaskit.data``), and nothing below the studies knows a chapter exists. One
exception is listed (``ALLOWED``): the package's ``__init__`` imports ``atlaskit.loading`` lazily
for ``atlaskit.load``.
Imports are read from the source (``ast``), including those inside functions.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "atlaskit"
MAX_LINES = 800

#: Top-level names under ``atlaskit`` → layer rank (higher may import lower).
LAYERS = {
    "errors": 0, "_atomic": 0, "_paths": 0, "_text": 0, "_progress": 0, "plots": 0, "profiling": 0, "__init__": 0,
    "data": 1,
    "models": 2,
    "train": 3, "runs": 3,
    "analysis": 4, "metrics": 4,
    "studies": 5, "loading": 5,
    "chapter": 6,
    "book": 7, "book_checks": 7, "commands": 7,
    "cli": 8, "__main__": 8,
}
#: (importer's layer, imported layer) pairs forbidden although the rank would allow them.
FORBIDDEN = {("models", "data")}
#: (importer's layer, imported layer) pairs allowed although the rank would forbid them: the
#: package's lazy ``atlaskit.load`` (imported inside ``__getattr__``, on first use only).
ALLOWED = {("__init__", "loading")}


def _layer_of(module: str) -> str:
    """``atlaskit.studies.cytoself.data`` → ``studies``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    return ".".join(rel.parts)


def _imports(path: Path, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """Every ``atlaskit.*`` module that ``path`` imports, with its line (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parent = _module_name(path, package).split(".")[:-1]  # the package holding the file
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("atlaskit")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parent[: len(parent) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "atlaskit":  # from atlaskit import book, runs
                found += [(node.lineno, f"atlaskit.{a.name}") for a in node.names]
            elif module.startswith("atlaskit."):
                found.append((node.lineno, module))
    return found


def violations(package: Path = PACKAGE) -> list[str]:
    """Every import that runs up the layers, as ``file:line imports module (layer a → layer b)``."""
    out = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package.parent)
        importer = _layer_of(_module_name(path, package))
        for line, module in _imports(path, package):
            imported = _layer_of(module)
            if imported not in LAYERS or importer not in LAYERS:
                out.append(f"{where}:{line} imports {module}: layer unknown to this test")
            elif (importer, imported) in ALLOWED:
                continue
            elif LAYERS[imported] > LAYERS[importer] or (importer, imported) in FORBIDDEN:
                out.append(f"{where}:{line} imports {module} ({importer} → {imported})")
    return out


def test_every_top_level_module_has_a_layer():
    names = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").exists())}
    assert names <= set(LAYERS), f"give these a layer in LAYERS: {sorted(names - set(LAYERS))}"


def test_no_import_runs_up_the_layers():
    found = violations()
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_no_module_over_800_lines():
    long = [f"{p.relative_to(PACKAGE.parent)}: {n} lines" for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, "modules over 800 lines:\n" + "\n".join(long)


@pytest.mark.parametrize("source, expected", [
    ("from atlaskit import book\n", ["atlaskit.book"]),
    ("import atlaskit.data.registry\n", ["atlaskit.data.registry"]),
    ("def f():\n    from atlaskit.studies import cytoself\n", ["atlaskit.studies"]),
    ("from .store import ArrayStore\n", ["atlaskit.data.store"]),
    ("from ..errors import DataError\n", ["atlaskit.errors"]),
    ("import numpy\nfrom pathlib import Path\n", []),
])
def test_the_import_reader_sees_every_form(tmp_path, source, expected):
    """The checker itself: absolute, inside-function and relative imports are all read."""
    package = tmp_path / "atlaskit"
    (package / "data").mkdir(parents=True)
    path = package / "data" / "thing.py"
    path.write_text(source)
    assert [m for _, m in _imports(path, package)] == expected


def test_a_layer_violation_is_reported(tmp_path):
    """A models module importing the data layer, and a data module importing the book, are caught;
    a study importing the data layer is not."""
    package = tmp_path / "atlaskit"
    for folder in ("models", "data", "studies"):
        (package / folder).mkdir(parents=True)
    (package / "models" / "net.py").write_text("from atlaskit.data import registry\n")
    (package / "data" / "reader.py").write_text("def f():\n    from atlaskit import book\n")
    (package / "studies" / "fine.py").write_text("from atlaskit.data import registry\n")
    found = violations(package)
    assert found == ["atlaskit/data/reader.py:2 imports atlaskit.book (data → book)",
                     "atlaskit/models/net.py:1 imports atlaskit.data (models → data)"]
