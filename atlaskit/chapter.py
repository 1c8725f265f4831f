"""The chapter runtime: what a chapter calls in its first cells.

:func:`setup_chapter` validates a chapter's parameters (scale, data source, seed, device), sets
up offline figures and states which data the run used; :func:`provenance` and
:func:`data_files_table` list the software and the data files a chapter read;
:func:`display_path` (from :mod:`atlaskit._text`) is how a chapter prints a path. The book build
(:mod:`atlaskit.book`) sits above this module and the studies below it: neither the studies nor
anything under ``data``/``models``/``train`` imports it.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlaskit._text import display_path
from atlaskit.errors import ParameterError

__all__ = ["SCALES", "DATA_SOURCES", "ChapterRun", "resolve_device", "setup_chapter", "data_files_table",
           "provenance", "ledger", "display_path"]

#: The chapters' ``scale`` values: learner mode, the book's default (2 CPU cores), the paper's.
SCALES = ("tiny", "ci", "full")
#: Where a chapter's images come from: the simulator, or a folder of real images.
DATA_SOURCES = ("sim", "real")
#: Largest chapter seed: 2**31 - 1, so that a study's ``seed + offset`` still fits numpy's 32-bit seeds.
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class ChapterRun:
    """Validated parameters of one chapter run, returned by :func:`setup_chapter`."""

    chapter: str
    scale: str
    data: str
    data_dir: Path | None
    seed: int
    device: str
    extra: dict[str, Any]

    @property
    def simulated(self) -> bool:
        return self.data == "sim"


def resolve_device(device: str) -> str:
    """The device a chapter runs on, as text: ``"auto"`` → ``"cuda:N"`` when a GPU is visible, else
    ``"cpu"``. The one device rule of atlaskit (:func:`atlaskit.train.resolve_device`), so a chapter
    and its trainers always agree; raises :class:`ParameterError` for an unknown or absent device."""
    from atlaskit.train import resolve_device as _resolve

    if not isinstance(device, str):
        raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {device!r}")
    return str(_resolve(device))


def setup_chapter(
    chapter: str,
    *,
    scale: str = "ci",
    data: str = "sim",
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    device: str = "auto",
    scales: tuple[str, ...] = SCALES,
    data_sources: tuple[str, ...] = DATA_SOURCES,
    describe_data: str | None = None,
    show: bool = True,
    **extra: Any,
) -> ChapterRun:
    """Validate a chapter's parameters, set up figures, and state which data the chapter ran on.

    Call it in the first code cell after the ``parameters`` cell. Unknown values fail here with
    a message that names the parameter and its allowed values.
    """
    if scale not in scales:
        raise ParameterError(f"scale must be one of {', '.join(map(repr, scales))}, not {scale!r}")
    if data not in data_sources:
        raise ParameterError(f"data must be one of {', '.join(map(repr, data_sources))}, not {data!r}")
    folder = Path(data_dir).expanduser() if data_dir else None
    if data == "real" and "real" in data_sources and folder is None and describe_data is None:
        raise ParameterError("data='real' needs data_dir, the folder that holds the real images")
    if folder is not None and not folder.exists():
        raise ParameterError(f"data_dir {str(folder)!r} does not exist")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ParameterError(f"seed must be an integer, not {seed!r}")
    if not 0 <= seed <= MAX_SEED:  # numpy's legacy seeding takes 32 bits; studies add offsets to it
        raise ParameterError(f"seed must be an integer from 0 to {MAX_SEED}, not {seed}")
    run = ChapterRun(chapter, scale, data, folder, seed, resolve_device(device), dict(extra))

    from atlaskit.plots import use_book_matplotlib, use_offline_plotly

    use_offline_plotly()
    use_book_matplotlib()
    if show:
        _show_banner(run, describe_data)
    return run


def _show_banner(run: ChapterRun, describe_data: str | None) -> None:
    from IPython.display import Markdown, display

    import atlaskit

    if describe_data is None:
        describe_data = (
            "**simulated images** from atlaskit's procedural cell simulator, driven by real catalogs. "
            "Results on them test the *methods*; they are not biological findings."
            if run.simulated
            else f"**real images** from `{display_path(run.data_dir)}`"
        )
    torch_version = _version("torch")
    display(
        Markdown(
            f"> **Data this run used:** {describe_data}  \n"
            f"> **Scale:** `{run.scale}` · **seed:** `{run.seed}` · **device:** `{run.device}` · "
            f"atlaskit {atlaskit.__version__}, torch {torch_version}, Python {platform.python_version()}"
        )
    )


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def data_files_table(names) -> "pandas.DataFrame":  # noqa: F821
    """Provenance of the registered files a chapter read: where each was found and its sha256.

    Fetches each file (cache, mirror or download) so that the table describes what was used.
    """
    import pandas as pd

    from atlaskit.data import registry

    rows = []
    for name in names:
        entry = registry.entries()[name] if name in registry.entries() else None
        if entry is None:
            raise ParameterError(f"{name!r} is not a registered data file (see `atlaskit data list`)")
        path = registry.fetch(name, progress=False)
        where = "mirror" if any(Path(path).is_relative_to(m) for m in registry.mirror_dirs()) else "cache"
        rows.append({"file": name, "sha256": entry.sha256[:16] + "…", "bytes": entry.size,
                     "licence": entry.licence, "found in": where})
    return pd.DataFrame(rows)


def _folder_listing_hash(folder: Path) -> tuple[int, str]:
    """Number of files under ``folder`` and the sha256 of their sorted ``path<TAB>size`` listing.

    The listing, not the contents: hashing every image of a real data set would take longer
    than the chapter; a renamed, added, removed or resized file still changes the hash.
    """
    import hashlib

    files = sorted(p for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.relative_to(folder).as_posix()}\t{p.stat().st_size}\n".encode())
    return len(files), digest.hexdigest()


def provenance(data_files=(), *, folders=()) -> "pandas.DataFrame":  # noqa: F821
    """What an executed chapter ran with: software versions and the data it read.

    Parameters
    ----------
    data_files : iterable of str
        Registered data files the chapter read (see ``atlaskit data list``); each is fetched and
        listed with its sha256 and where it was found (as :func:`data_files_table`).
    folders : iterable of path-like
        The user's own data folders (``data="real"``): each is listed with its number of files
        and the sha256 of its sorted file listing (relative path and size of every file).

    Returns
    -------
    DataFrame
        Columns ``kind`` ("software", "data file", "data folder"), ``name``, ``version``
        (version, byte size or file count), ``sha256`` (first 16 hex digits) and ``found in``.

    Raises
    ------
    ParameterError
        A name is not a registered data file, or a folder does not exist.
    """
    import pandas as pd

    import atlaskit

    rows = [
        {"kind": "software", "name": "atlaskit", "version": str(atlaskit.__version__), "sha256": "",
         "found in": ""},
        *({"kind": "software", "name": pkg, "version": _version(pkg), "sha256": "", "found in": ""}
          for pkg in ("torch", "numpy")),
        {"kind": "software", "name": "Python", "version": platform.python_version(), "sha256": "", "found in": ""},
    ]
    names = list(data_files)
    if names:
        for r in data_files_table(names).to_dict("records"):
            rows.append({"kind": "data file", "name": r["file"], "version": f"{r['bytes']} bytes",
                         "sha256": r["sha256"], "found in": r["found in"]})
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise ParameterError(f"data folder {str(folder)!r} does not exist or is not a folder")
        n, digest = _folder_listing_hash(folder)
        rows.append({"kind": "data folder", "name": display_path(folder),
                     "version": f"{n} file{'' if n == 1 else 's'}", "sha256": digest[:16] + "…",
                     "found in": "listing hash (paths and sizes)"})
    return pd.DataFrame(rows, columns=["kind", "name", "version", "sha256", "found in"])


def ledger(run: ChapterRun, effects) -> "pandas.io.formats.style.Styler":  # noqa: F821
    """The chapter's effects ledger: write ``<effects dir>/<chapter>.json`` and return the table to show.

    Parameters
    ----------
    run : ChapterRun
        From :func:`setup_chapter`; its chapter, scale and seed are written with every row.
    effects : iterable of atlaskit.analysis.effects.Effect
        The paper's effects as measured in this run.

    Returns
    -------
    pandas Styler
        Of a table indexed by effect: ours with its 95 % interval (one column), the verdict, the
        paper's statement, what was measured, the reason and the data it ran on (``.data`` is the
        DataFrame).
    """
    from atlaskit.analysis.effects import ledger_display, ledger_table, write_ledger
    from atlaskit.runs import effects_dir

    rows = list(effects)
    context = {"scale": run.scale, "seed": run.seed, "chapter": run.chapter}
    write_ledger(effects_dir() / f"{run.chapter}.json", rows, **context)
    shown = ledger_display(ledger_table(rows)).set_index("effect")
    # A Styler: its HTML shows every statement whole (a DataFrame's cuts text at 50 characters).
    # Seven columns of prose fit the page only with a fixed layout and set widths: without them the
    # browser sizes columns by their longest word and the last ones run off the page.
    widths = {"ours [95 % interval]": "12%", "verdict": "12%", "paper": "19%", "measure": "16%", "reason": "15%",
              "data": "8%"}
    styles = [{"selector": "", "props": "table-layout: fixed; width: 100%; font-size: 0.8em; word-wrap: break-word"},
              {"selector": "th.row_heading, th.index_name", "props": "width: 18%; vertical-align: top"}]
    styles += [{"selector": f"th.col_heading.col{i}", "props": f"width: {widths.get(c, 'auto')}"}
               for i, c in enumerate(shown.columns)]
    return (shown.style.set_properties(**{"text-align": "left", "vertical-align": "top"})
            .set_table_styles(styles))
