"""Where atlaskit finds its chapters and where it writes: a source checkout or an installed package.

In a **checkout** (the folder holding the ``atlaskit`` package also holds ``pyproject.toml`` and
``notebooks/``: ``make install``, any editable install) every path is inside that folder, as the
Makefile, the tests and the book build expect:

- chapters: ``notebooks/NN_name.py``; executed notebooks: ``book/chapters/``;
- build products: ``_build/`` (training runs in ``_build/runs``, effects ledgers in ``_build/effects``).

**Installed** from a wheel (``pip install atlaskit``), the package carries a copy of the chapters
in ``atlaskit/_chapters/`` (copied there when the wheel is built, see ``setup.py``) and never
writes beside itself (site-packages may be read-only or shared). Its outputs go to the *work
folder*: ``$ATLASKIT_WORKDIR``, else the current working folder of the first process that asks.
That process records its choice in ``$ATLASKIT_WORKDIR``, so the chapter kernels and worker
processes it starts (in other folders: a kernel runs in the folder of its notebook) write to the
same place. There:

- executed notebooks: ``<work>/chapters/NN_name.ipynb``;
- build products: ``<work>/_build/`` (runs in ``<work>/_build/runs``, ledgers in ``<work>/_build/effects``).

``$ATLASKIT_RUNS`` and ``$ATLASKIT_EFFECTS`` (:mod:`atlaskit.runs`) override those two folders
in both cases; data files always live in the user cache (:mod:`atlaskit.data.registry`).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PACKAGE", "PACKAGED_CHAPTERS", "WORKDIR_ENV", "is_checkout", "checkout_root", "project_root",
           "notebooks_dir", "chapters_out", "build_dir"]

PACKAGE = Path(__file__).resolve().parent
#: The chapters' copy inside an installed package (absent in a checkout).
PACKAGED_CHAPTERS = PACKAGE / "_chapters"
#: The work folder of an installed atlaskit (ignored in a checkout).
WORKDIR_ENV = "ATLASKIT_WORKDIR"


def is_checkout(folder: Path) -> bool:
    """Whether ``folder`` is the root of an atlaskit source checkout (``pyproject.toml`` and ``notebooks/``)."""
    return (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir()


def checkout_root() -> Path | None:
    """The checkout holding this ``atlaskit`` package, or None for an installed package."""
    return PACKAGE.parent if is_checkout(PACKAGE.parent) else None


def project_root() -> Path:
    """The folder outputs are written under: the checkout, else the work folder.

    For an installed package the work folder is ``$ATLASKIT_WORKDIR`` when set, else the current
    working folder, which is then recorded in ``$ATLASKIT_WORKDIR`` for the processes this one
    starts (see the module docstring).
    """
    checkout = checkout_root()
    if checkout is not None:
        return checkout
    pinned = os.environ.get(WORKDIR_ENV)
    if pinned:
        return Path(pinned).expanduser().absolute()
    here = Path.cwd()
    os.environ[WORKDIR_ENV] = str(here)
    return here


def notebooks_dir() -> Path:
    """Where the chapter sources are: ``notebooks/`` of the checkout, else the packaged copy."""
    checkout = checkout_root()
    return checkout / "notebooks" if checkout is not None else PACKAGED_CHAPTERS


def chapters_out() -> Path:
    """Where executed chapters go: ``book/chapters/`` of the checkout, else ``<work folder>/chapters``."""
    checkout = checkout_root()
    return checkout / "book" / "chapters" if checkout is not None else project_root() / "chapters"


def build_dir() -> Path:
    """Build products (runs, ledgers, failed notebooks, timings): ``<checkout or work folder>/_build``."""
    return project_root() / "_build"
