"""The chapter pipeline: jupytext source → notebook → papermill (parameters) → jupyter-book HTML.

Chapters live in ``notebooks/NN_name.py`` (jupytext percent format), each with exactly one cell
tagged ``parameters``. :func:`execute_chapter` runs one with papermill and writes the executed
notebook to ``book/chapters/NN_name.ipynb``; :func:`build_html` renders the book with
jupyter-book 1.x (no execution at build time, warnings are errors). What a chapter calls while
it runs (``setup_chapter``, ``provenance``) is :mod:`atlaskit.chapter`; run folders and stores are
:mod:`atlaskit.runs`. This module is the top of the package: nothing but the CLI imports it.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from atlaskit import _paths
from atlaskit._progress import PROGRESS_FILE_ENV, ProgressRelay, cell_announcer, file_tail
from atlaskit.errors import AtlaskitError, ParameterError

# In a checkout: the checkout, its notebooks/, book/chapters/ and _build/. Installed from a wheel:
# the packaged chapters, and <working folder>/chapters and /_build (atlaskit._paths says why).
ROOT = _paths.project_root()
NOTEBOOKS = _paths.notebooks_dir()
CHAPTERS_OUT = _paths.chapters_out()
BUILD = _paths.build_dir()

class ChapterError(AtlaskitError):
    """A chapter failed to execute; the message names the chapter, the cell and the error."""


# --------------------------------------------------------------------------------------------
# Discovering chapters and their parameters
# --------------------------------------------------------------------------------------------
def chapter_sources(notebooks: Path = NOTEBOOKS) -> dict[str, Path]:
    """Map chapter name (``"00_data"``) to its jupytext source, in book order."""
    return {p.stem: p for p in sorted(notebooks.glob("[0-9][0-9]_*.py"))}


def resolve_chapter(name: str, notebooks: Path = NOTEBOOKS) -> tuple[str, Path]:
    """Find a chapter by full name (``01_cytoself``), number (``01``/``1``) or title (``cytoself``)."""
    sources = chapter_sources(notebooks)
    if name in sources:
        return name, sources[name]
    for stem, path in sources.items():
        number, _, title = stem.partition("_")
        if name in (title, number) or (name.isdigit() and int(name) == int(number)):
            return stem, path
    if not sources:
        raise ParameterError(no_chapters_message(notebooks))
    raise ParameterError(f"unknown chapter {name!r}; the chapters are: {', '.join(sources)}")


def no_chapters_message(notebooks: Path = NOTEBOOKS) -> str:
    """One line for a user whose atlaskit finds no chapter: where it looked and how to get them."""
    return (
        f"no chapters found in {notebooks} (no NN_name.py there); the chapters come with a checkout of "
        "the atlaskit repository (notebooks/, `make install`) or inside a wheel built from it "
        "(`pip install <checkout>` or `pip wheel <checkout>`)"
    )


def read_chapter(source: Path):
    """Read a jupytext chapter into an nbformat notebook with a python3 kernelspec."""
    import jupytext

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata.setdefault("language_info", {"name": "python"})
    tagged = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ChapterError(f"{source.name}: expected exactly one cell tagged 'parameters', found {len(tagged)}")
    return notebook


def chapter_parameters(source: Path) -> dict[str, Any]:
    """The parameters (name → default value) declared in a chapter's ``parameters`` cell."""
    notebook = read_chapter(source)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict[str, Any] = {}
    # The parameters cell holds plain literal assignments by convention; executing it is the
    # simplest exact reading (it is our own source file, not user input).
    exec(compile(cell.source, f"{source.name}:parameters", "exec"), {}, namespace)  # noqa: S102
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


def parse_value(text: str) -> Any:
    """Read a command-line parameter value: None, booleans, ints and floats, else the string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def validate_parameters(chapter: str, source: Path, given: Mapping[str, Any]) -> dict[str, Any]:
    """Check names against the chapter's parameters cell and coerce values to the defaults' types.

    Raises
    ------
    ParameterError
        For an unknown name (listing the known ones) or a value of the wrong kind.
    """
    declared = chapter_parameters(source)
    checked: dict[str, Any] = {}
    for name, value in given.items():
        if name not in declared:
            raise ParameterError(
                f"chapter {chapter} has no parameter {name!r}; its parameters are: "
                + ", ".join(f"{k}={v!r}" for k, v in declared.items())
            )
        default = declared[name]
        if isinstance(value, str) and not isinstance(default, str):
            value = parse_value(value)
        if default is not None and value is not None:
            if isinstance(default, str) and not isinstance(value, str):
                value = str(value)
            elif isinstance(default, bool) and not isinstance(value, bool):
                raise ParameterError(f"{chapter}: parameter {name} expects true or false, got {value!r}")
            elif isinstance(default, int) and not isinstance(default, bool) and not isinstance(value, int):
                raise ParameterError(f"{chapter}: parameter {name} expects an integer, got {value!r}")
            elif isinstance(default, float) and not isinstance(value, (int, float)):
                raise ParameterError(f"{chapter}: parameter {name} expects a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):  # "inf", "nan", "1e400"
            raise ParameterError(f"{chapter}: parameter {name} expects a finite number, got {value!r}")
        checked[name] = value
    return checked


# --------------------------------------------------------------------------------------------
# Executing chapters
# --------------------------------------------------------------------------------------------
@dataclass
class ChapterResult:
    chapter: str
    output: Path
    seconds: float
    parameters: dict[str, Any] = field(default_factory=dict)


def kernel_environment() -> dict[str, str]:
    """Environment for chapter kernels: no progress bars (they would land as stderr in the HTML)."""
    return {"ATLASKIT_NO_PROGRESS": "1", "TQDM_DISABLE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


@contextlib.contextmanager
def _patched_environ(extra: Mapping[str, str]):
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _local_kernel_manager_class(stderr_path: Path | None = None):
    """A kernel manager that talks to the kernel over local IPC sockets instead of TCP.

    The kernel is on the same machine, so TCP buys nothing; over IPC its sockets are files in the
    user's runtime folder that other users cannot open, and ipykernel has no reason to warn that
    the connection is unencrypted. Where IPC sockets do not exist (Windows), TCP is used.

    With ``stderr_path``, the kernel process's own stderr (its log, not the notebook's output
    streams, which go through the sockets) is written to that file instead of the terminal: a
    kernel shut down by Ctrl-C in the middle of a reply logs a ZMQ traceback there that says
    nothing to the user. :func:`execute_chapter` shows its tail when the kernel dies.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            env = dict(kw.get("env") or os.environ)
            for name, value in allocator_environment().items():
                env.setdefault(name, value)
            kw["env"] = env
            if stderr_path is not None and kw.get("stderr") is None:
                # the child keeps its own descriptor; ours is closed at once
                with open(stderr_path, "ab") as log:
                    kw["stderr"] = log
                    return await super()._async_launch_kernel(kernel_cmd, **kw)
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    if os.name == "nt":
        return QuietKernelManager

    class LocalKernelManager(QuietKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _ip_default(self) -> str:
            # jupyter_client's default socket prefix is "kernel-ipc" in the working folder, the
            # same for every kernel: two chapters executed at once would open each other's
            # sockets. A fresh prefix in the user's runtime folder cannot collide.
            import uuid

            from jupyter_core.paths import jupyter_runtime_dir

            runtime = Path(jupyter_runtime_dir())
            runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
            return str(runtime / f"atlaskit-kernel-{uuid.uuid4().hex[:12]}-ipc")

    return LocalKernelManager


def execute_chapter(
    chapter: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    output: Path | None = None,
    notebooks: Path = NOTEBOOKS,
    kernel_name: str = "python3",
    timeout: int | None = None,
    progress: TextIO | None = None,
) -> ChapterResult:
    """Execute one chapter with papermill and write the executed notebook.

    Parameters
    ----------
    chapter
        Chapter name, number or title (see :func:`resolve_chapter`).
    parameters
        Overrides of the chapter's ``parameters`` cell; names are checked first.
    output
        Where to write the executed ``.ipynb`` (default ``book/chapters/<name>.ipynb``). It is
        replaced only when the run succeeds, so a failed run never destroys a good notebook.
    progress : text stream, optional
        Where to show which cell runs and the kernel's progress lines (one per training epoch,
        :mod:`atlaskit._progress`), e.g. ``sys.stderr``; nothing of it enters the notebook.

    Raises
    ------
    ChapterError
        When a cell fails; the message names the chapter, the cell and the error, and the
        partly executed notebook is kept under ``_build/failed/``.
    """
    import nbformat
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    name, source = resolve_chapter(chapter, notebooks)
    params = validate_parameters(name, source, dict(parameters or {}))
    output = Path(output) if output else CHAPTERS_OUT / f"{name}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    notebook = read_chapter(source)
    from atlaskit.book_checks import fold_for_readers

    fold_for_readers(notebook)  # nbval's check cells folded, solution toggles labelled

    with tempfile.TemporaryDirectory(prefix=f"atlaskit-{name}-") as tmp:
        unexecuted = Path(tmp) / f"{name}.ipynb"
        executed = Path(tmp) / f"{name}.executed.ipynb"
        nbformat.write(notebook, unexecuted)
        kernel_log = Path(tmp) / "kernel-stderr.log"
        environment = kernel_environment()
        relay, hooks = contextlib.nullcontext(), {}
        if progress is not None:
            relay = ProgressRelay(Path(tmp) / "progress.log", progress, prefix=f"[{name}] ")
            environment[PROGRESS_FILE_ENV] = str(relay.path)
            hooks["on_cell_execute"] = cell_announcer(relay, notebook, injected=bool(params))
        start = time.perf_counter()
        try:
            with _patched_environ(environment), relay:
                papermill.execute_notebook(
                    str(unexecuted),
                    str(executed),
                    parameters=params,
                    kernel_name=kernel_name,
                    progress_bar=False,
                    log_output=False,
                    cwd=str(output.parent),
                    execution_timeout=timeout,
                    kernel_manager_class=_local_kernel_manager_class(kernel_log),
                    **hooks,
                )
        except PapermillExecutionError as error:
            failed = BUILD / "failed" / f"{name}.ipynb"
            failed.parent.mkdir(parents=True, exist_ok=True)
            if executed.exists():
                shutil.copyfile(executed, failed)
            evalue = str(error.evalue).strip().splitlines()
            raise ChapterError(
                f"chapter {name} failed in cell {error.exec_count} (cell #{error.cell_index} of the "
                f"notebook): {error.ename}: {evalue[0] if evalue else ''}\n"
                f"  the partly executed notebook is {failed}"
            ) from None
        except (DeadKernelError, CellTimeoutError) as error:
            # The kernel was killed (out of memory, a signal) or a cell ran past the timeout.
            log_tail = file_tail(kernel_log, 8)
            raise ChapterError(
                f"chapter {name} stopped: {type(error).__name__}: {error}".strip()
                + (f"\n  the kernel's last log lines:\n    " + "\n    ".join(log_tail) if log_tail else "")
            ) from None
        seconds = time.perf_counter() - start
        # Copy beside the target, then rename: readers never see a half-written notebook. If the
        # target cannot be written (full disk, read-only, a folder there), the executed notebook is
        # kept under _build/unsaved/ (else a new temporary folder) and the error says where.
        from atlaskit._atomic import publish_file
        from atlaskit._text import display_path

        # papermill records its (temporary) input and output paths; a published notebook names the
        # chapter's source and its own place instead, as a reader sees them
        done = nbformat.read(executed, as_version=4)
        record = done.metadata.setdefault("papermill", {})
        record["input_path"], record["output_path"] = display_path(source), display_path(output)
        nbformat.write(done, executed)
        publish_file(executed, output, keep_in=(BUILD / "unsaved",), what=f"the executed notebook of {name}")
    return ChapterResult(name, output, seconds, params)


_URL = re.compile(r"^https?://[^/\s]+(/[^\s]*)?$")
_REPOSITORY_URL = re.compile(r"^https?://[^/\s]+/[^/\s]+/[^/\s]+?(\.git)?/?$")


@dataclass(frozen=True)
class Launch:
    """Where the book's chapters can be opened and run: repository and launch services.

    The book itself names no repository (its public address is the publisher's choice); a
    hosting workflow passes one to :func:`build_html` (``atlaskit book --repository URL
    --binderhub https://mybinder.org``) and every chapter page then gets a repository link and one
    launch button per service. Building stays offline: the buttons are links.

    The services open ``book/chapters/<chapter>.ipynb`` on ``branch``: executed chapters are build
    products, not kept on ``main``, so name a branch the hosting workflow pushes them to.

    Parameters
    ----------
    repository : str
        ``https://<host>/<owner>/<name>`` (GitHub and GitLab get short Binder links; other hosts
        are cloned by URL).
    branch : str, default "main"
    binderhub, jupyterhub : str, optional
        Base URLs of a BinderHub (e.g. ``https://mybinder.org``) or a JupyterHub with nbgitpuller.
    colab : bool, default False
        A Google Colab button (GitHub repositories only).
    """

    repository: str
    branch: str = "main"
    binderhub: str | None = None
    jupyterhub: str | None = None
    colab: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.repository, str) or not _REPOSITORY_URL.match(self.repository):
            raise ParameterError(
                f"repository {self.repository!r} is not a repository address; expected "
                "https://<host>/<owner>/<name>, e.g. https://github.com/<owner>/<name>"
            )
        if not isinstance(self.branch, str) or not self.branch or re.search(r"\s|\.\.|^[-/]", self.branch):
            raise ParameterError(f"branch {self.branch!r} is not a git branch name")
        for name in ("binderhub", "jupyterhub"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not _URL.match(value)):
                raise ParameterError(f"{name} {value!r} is not an http(s) address, e.g. https://mybinder.org")
        if self.colab and not self.repository.startswith(("https://github.com/", "http://github.com/")):
            raise ParameterError(f"Colab opens notebooks from GitHub only; {self.repository} is not on github.com")

    def apply(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the book configuration (``_config.yml`` as a dict) with these buttons."""
        out = json.loads(json.dumps(dict(config)))  # deep copy of plain YAML data
        repository = self.repository.rstrip("/").removesuffix(".git")
        out["repository"] = {**out.get("repository", {}), "url": repository, "branch": self.branch,
                             "path_to_book": ""}  # the book's root is the repository's root
        out["html"] = {**out.get("html", {}), "use_repository_button": True}
        out["launch_buttons"] = {
            **out.get("launch_buttons", {}),
            "binderhub_url": (self.binderhub or "").rstrip("/"),
            "jupyterhub_url": (self.jupyterhub or "").rstrip("/"),
            "colab_url": "https://colab.research.google.com" if self.colab else "",
        }
        return out


def build_html(root: Path = ROOT, *, warnings_as_errors: bool = True, launch: Launch | None = None) -> Path:
    """Render the book with jupyter-book 1.x into ``<root>/_build/html`` (no execution).

    Parameters
    ----------
    root : Path
        The book's root (``_config.yml``, ``_toc.yml``, ``book/``).
    warnings_as_errors : bool, default True
    launch : Launch, optional
        Repository and launch services for the chapter pages' buttons; the configuration used
        is ``_config.yml`` with those set, written to ``<root>/_build/_config.launch.yml``.
    """
    executable = Path(sys.executable).with_name("jupyter-book")
    command = [str(executable) if executable.exists() else "jupyter-book", "build", str(root), "--builder", "html"]
    if warnings_as_errors:
        command += ["-W", "--keep-going"]
    missing = [p for p in _toc_chapters(root) if not p.exists()]
    write_ledger_table(root / "_build" / LEDGER_TABLE)
    if missing:
        raise ChapterError(
            "the book's table of contents names chapters that have not been executed: "
            + ", ".join(str(p.relative_to(root)) for p in missing)
            + " (run `atlaskit book` or `atlaskit run <chapter>` first)"
        )
    from atlaskit.book_checks import uncaptioned_figures

    uncaptioned = {
        p.relative_to(root): problems
        for p in _toc_chapters(root)
        if (problems := uncaptioned_figures(json.loads(p.read_text(encoding="utf-8"))))
    }
    if uncaptioned:
        raise ChapterError(
            "figures without a numbered caption (every figure of the book has one):\n"
            + "\n".join(f"  {path}: {line}" for path, lines in uncaptioned.items() for line in lines)
        )
    if launch is not None:
        import yaml

        from atlaskit._atomic import atomic_write

        config = launch.apply(yaml.safe_load((root / "_config.yml").read_text()) or {})
        derived = root / "_build" / "_config.launch.yml"
        derived.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(derived, "w") as fh:
            fh.write("# _config.yml with launch buttons (written by atlaskit.book.build_html)\n")
            yaml.safe_dump(config, fh, sort_keys=False)
        command += ["--config", str(derived)]
    completed = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-30:])
        raise ChapterError(f"jupyter-book build failed:\n{tail}")
    return root / "_build" / "html"


#: Where the pages find plotly.js, relative to the HTML ``_static`` folder (see :func:`setup`).
PLOTLY_JS = "plotly.min.js"


def plotly_js_source() -> Path:
    """The plotly.js bundled with the installed ``plotly`` package (the version that wrote the figures)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise ChapterError(f"the installed plotly package has no {path.name} ({path}); reinstall plotly")
    return path


def setup(app) -> dict[str, Any]:
    """Sphinx extension (``_config.yml``: ``sphinx: extra_extensions: [atlaskit.book]``).

    Every page loads one shared plotly.js from ``_static`` (figures are written without it, see
    :mod:`atlaskit.plots`); the file is copied from the installed ``plotly`` package when an
    HTML build finishes, so page and figure always come from the same plotly version, offline.
    With ``html_copy_source = False`` (no ``_sources`` copies of the notebooks) the theme's
    download button, which links into ``_sources``, is turned off too. Downloadable notebooks
    keep each plotly figure once (:func:`slim_plotly_outputs`).
    """

    def no_download_button_without_sources(app, config) -> None:
        if not config.html_copy_source:
            config.html_theme_options = {**config.html_theme_options, "use_download_button": False}

    def copy_plotly_js(app, exception) -> None:
        if exception is None and app.builder.format == "html":
            static = Path(app.outdir) / "_static"
            static.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(plotly_js_source(), static / PLOTLY_JS)
            _drop_build_only_files(static)
            for notebook in (Path(app.outdir) / "_downloads").glob("*/*.ipynb"):
                slim_plotly_outputs(notebook)

    def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
        # sphinx-thebe's inline configuration script reaches the page twice (once registered with
        # the file name None, once with ""); the second copy redeclares a `const` and stops with a
        # SyntaxError in the reader's console
        scripts = context.get("script_files")
        if scripts:
            seen, kept = set(), []
            for script in scripts:
                key = (str(getattr(script, "filename", script) or ""), repr(sorted(getattr(script, "attributes", {}).items())))
                if key not in seen:
                    seen.add(key)
                    kept.append(script)
            scripts[:] = kept

    app.add_js_file(PLOTLY_JS)  # in <head>, not deferred: the figures' inline scripts call Plotly
    app.connect("html-page-context", drop_repeated_scripts)
    app.connect("config-inited", no_download_button_without_sources)
    app.connect("build-finished", copy_plotly_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def slim_plotly_outputs(notebook: Path) -> int:
    """Keep one copy of each plotly figure in a downloadable notebook: the figure itself.

    Chapter outputs carry every plotly figure twice (:mod:`atlaskit.plots`): as the plotly mime
    type, which Jupyter draws offline, and as HTML for the book's pages. A notebook a reader
    downloads is opened in Jupyter, so its HTML copies are dropped (about half its size). The file
    is rewritten in place, atomically; returns the number of outputs slimmed.
    """
    import json

    from atlaskit._atomic import atomic_write
    from atlaskit.plots import PLOTLY_MIMETYPE

    content = json.loads(notebook.read_text(encoding="utf-8"))
    slimmed = 0
    for cell in content.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIMETYPE in data and "text/html" in data:
                del data["text/html"]
                slimmed += 1
    if slimmed:
        with atomic_write(notebook, "w", encoding="utf-8") as fh:
            json.dump(content, fh, ensure_ascii=False, indent=1)
    return slimmed


def _drop_build_only_files(static: Path) -> list[Path]:
    """Remove what the themes copy into ``_static`` but no page loads: source maps (``*.map``,
    3.4 MB of debugging aids; the ``sourceMappingURL`` comments that name them go too) and gettext
    catalogs (``*.mo``/``*.po``, 0.7 MB: Sphinx translates at build time). Returns what was removed."""
    removed = []
    for catalog in sorted([*static.rglob("*.mo"), *static.rglob("*.po")]):
        catalog.unlink()
        removed.append(catalog)
    for folder in sorted((p for p in static.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()
    for source_map in sorted(static.rglob("*.map")):
        target = source_map.with_suffix("")  # bootstrap.js.map → bootstrap.js
        if target.is_file():
            text = target.read_text(encoding="utf-8")
            stripped = re.sub(r"\n?(//# sourceMappingURL=\S+|/\*# sourceMappingURL=[^*\s]+ ?\*/)\s*$", "\n", text)
            if stripped != text:
                target.write_text(stripped, encoding="utf-8")
        source_map.unlink()
        removed.append(source_map)
    return removed


#: The gathered ledger, included by ``book/ledger.md`` (written before every HTML build).
LEDGER_TABLE = "effects-table.md"


def write_ledger_table(path: Path, effects: Path | None = None) -> Path:
    """Gather every chapter's effects ledger (``<effects dir>/*.json``) into one Markdown page part.

    Counts per chapter and verdict first, then every row; chapters that wrote no ledger yet are
    simply absent (the page says so when none has).
    """
    from atlaskit._atomic import atomic_write
    from atlaskit.analysis.effects import ledger_display, read_ledgers, verdict_counts
    from atlaskit.runs import effects_dir

    table = read_ledgers(effects if effects is not None else effects_dir())
    if table.empty:
        text = "*No chapter has written its ledger yet: execute the chapters (`atlaskit book`).*\n"
    else:
        shown = ledger_display(table).map(lambda v: str(v).replace("|", "\\|").replace("\n", " "))
        text = ("## Verdicts by chapter\n\n" + verdict_counts(table).to_markdown() + "\n\n## Every effect\n\n"
                + shown.to_markdown(index=False) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _toc_chapters(root: Path) -> list[Path]:
    toc = (root / "_toc.yml").read_text()
    return [root / f"{m}.ipynb" for m in re.findall(r"file:\s*(book/chapters/\S+)", toc)]


#: Variables that size a process's thread pools (torch/OpenMP, BLAS, numba). With ``jobs``
#: chapters at once, each kernel gets ``cores // jobs`` threads unless the user set them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


#: glibc malloc settings of the chapters' kernels: blocks up to 32 MB come from the heap and freed
#: memory stays there (up to 1 GB). glibc's defaults map each large block afresh and hand it back
#: when freed, so a training step page-faults its activation maps in again every time: 7-23 % of
#: the chapters' training CPU time went to the kernel doing so (benchmarks/README.md, #24).
ALLOCATOR_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"


def allocator_environment() -> dict[str, str]:
    """``GLIBC_TUNABLES`` for a chapter kernel (:data:`ALLOCATOR_TUNABLES`) on Linux with glibc.

    Empty elsewhere, and when the user has set ``GLIBC_TUNABLES`` (theirs is kept).
    """
    if not sys.platform.startswith("linux") or "GLIBC_TUNABLES" in os.environ:
        return {}
    if platform.libc_ver()[0] != "glibc":
        return {}
    return {"GLIBC_TUNABLES": ALLOCATOR_TUNABLES}


def thread_environment(jobs: int, cores: int | None = None) -> dict[str, str]:
    """Thread-count variables for one of ``jobs`` kernels running side by side.

    Oversubscribed OpenMP pools (two kernels each spinning on every core) are far slower than
    splitting the cores, so each kernel gets ``max(1, cores // jobs)`` threads. Variables the
    user has set are left as they are; ``jobs == 1`` changes nothing.
    """
    if jobs <= 1:
        return {}
    cores = cores or os.cpu_count() or 1
    threads = str(max(1, cores // jobs))
    return {name: threads for name in THREAD_VARIABLES if name not in os.environ}


def _execute_with_environment(
    name: str, output: Path, notebooks: Path, environment: Mapping[str, str], build: Path
) -> ChapterResult:
    """Worker-process entry of :func:`build_book` with ``jobs > 1``: a fresh interpreter, so the
    thread variables and the parent's build folder (``_build/failed/``) are set here."""
    global BUILD
    BUILD = build
    os.environ.update(environment)
    return execute_chapter(name, output=output, notebooks=notebooks)


#: Seconds each chapter took at its defaults in a two-at-a-time CI build (benchmarks/README.md):
#: the scheduling order of a first build, before ``_build/chapter-times.json`` exists.
EXPECTED_SECONDS = {"00_data": 60, "01_cytoself": 450, "02_deepgps": 130, "03_cnn_vs_fcn": 420, "04_deepyeast": 330}


def _chapter_order(names: list[str]) -> list[str]:
    """Longest first, so that with several jobs the long chapters do not start last: by the last
    recorded times (``_build/chapter-times.json``), else by :data:`EXPECTED_SECONDS`; chapters
    known to neither keep their book order after the others."""
    path = BUILD / "chapter-times.json"
    try:
        times = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        times = {}
    if not isinstance(times, dict):
        times = {}

    def expected(name: str) -> float:
        value = times.get(name, EXPECTED_SECONDS.get(name))
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else -1.0

    return sorted(names, key=lambda n: -expected(n))  # stable: unknown chapters stay in book order


def build_book(
    chapters: list[str] | None = None,
    *,
    html: bool = True,
    log: Callable[[str], None] = print,
    notebooks: Path | None = None,
    out_dir: Path | None = None,
    launch: Launch | None = None,
    jobs: int = 1,
) -> list[ChapterResult]:
    """Execute chapters at their default parameters, then render HTML.

    Every chapter is attempted even when an earlier one fails, so the others' notebooks are
    written; the failures are then reported together (chapter, cell and error; the CLI exits
    with status 2) and the HTML is not built. A failed chapter's executed notebook is not
    replaced: the report says whether it still holds an earlier successful run.

    Parameters
    ----------
    chapters : list of str, optional
        Names, numbers or titles (default: every chapter, in book order). Unknown names are
        refused before anything runs.
    notebooks, out_dir : Path, optional
        Folder of the jupytext sources (default ``notebooks/``) and of the executed notebooks
        (default ``book/chapters/``).
    launch : Launch, optional
        Repository and launch buttons of the rendered pages (see :class:`Launch`).
    jobs : int, default 1
        Chapters executed at once, each in its own kernel with ``cores // jobs`` threads (see
        :func:`thread_environment`). Chapters share nothing but content-keyed caches, which are
        safe to fill concurrently; the notebooks are the same as one by one (up to the
        floating-point order of a different thread count), and each chapter's reported time is
        then its time beside the others.

    Raises
    ------
    ChapterError
        One or more chapters failed; the message lists each one.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ParameterError(f"jobs must be a positive integer, got {jobs!r}")
    notebooks = Path(notebooks) if notebooks is not None else NOTEBOOKS
    out_dir = Path(out_dir) if out_dir is not None else CHAPTERS_OUT
    # Resolve every name first: a typo must not surface after an hour of other chapters.
    names = [resolve_chapter(c, notebooks)[0] for c in chapters] if chapters else list(chapter_sources(notebooks))
    results: list[ChapterResult] = []
    failures: list[str] = []

    def settle(name: str, outcome: Callable[[], ChapterResult]) -> None:
        """Record one chapter: ``outcome()`` returns its result or raises its failure."""
        output = out_dir / f"{name}.ipynb"
        try:
            result = outcome()
        except Exception as error:  # noqa: BLE001 - one chapter's failure must not stop the others (Ctrl-C still does)
            message = (str(error) if isinstance(error, ChapterError)
                       else f"chapter {name} failed: {type(error).__name__}: {error}")
            kept = (f"{output} still holds its previous successful run (not this one)" if output.exists()
                    else f"{output} was not written")
            failures.append(f"{message}\n  {kept}")
            log(f"✗ {failures[-1]}")
            return
        results.append(result)
        shown = result.output.relative_to(ROOT) if result.output.is_relative_to(ROOT) else result.output
        log(f"✓ {result.chapter} in {result.seconds:.0f} s → {shown}")

    jobs = min(jobs, len(names))
    if jobs == 1:
        for name in names:
            log(f"▶ executing {name} …")
            settle(name, lambda: execute_chapter(name, output=out_dir / f"{name}.ipynb", notebooks=notebooks))
    else:
        import concurrent.futures
        import multiprocessing

        environment = thread_environment(jobs)
        threads = environment.get("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS"))
        each = "the default threads" if threads is None else f"{threads} thread{'' if threads == '1' else 's'}"
        log(f"▶ executing {len(names)} chapters, {jobs} at a time ({each} each) …")
        # spawn: a fresh interpreter per worker, nothing inherited from this process's threads.
        pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
        waiting, running = _chapter_order(names), {}
        try:
            while waiting or running:
                # Submitted only when a worker is free: after Ctrl-C no queued chapter starts.
                while waiting and len(running) < jobs:
                    name = waiting.pop(0)
                    log(f"▶ executing {name} …")
                    future = pool.submit(_execute_with_environment, name, out_dir / f"{name}.ipynb",
                                         notebooks, environment, BUILD)
                    running[future] = name
                done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    settle(running.pop(future), future.result)
        finally:
            # On Ctrl-C the workers' kernels are interrupted too (same process group); wait for
            # them to stop rather than leave orphans.
            pool.shutdown(wait=True, cancel_futures=True)
        order = {name: i for i, name in enumerate(names)}
        results.sort(key=lambda r: order[r.chapter])
    _write_times(results)
    if failures:
        ok = ", ".join(r.chapter for r in results) or "none"
        raise ChapterError(
            f"{len(failures)} of {len(names)} chapter(s) failed (succeeded: {ok}):\n" + "\n".join(failures)
        )
    if html:
        log("▶ rendering HTML with jupyter-book …")
        out = build_html(launch=launch)
        log(f"✓ book at {out / 'index.html'}")
    return results


def _write_times(results: list[ChapterResult]) -> None:
    if not results:
        return
    BUILD.mkdir(exist_ok=True)
    path = BUILD / "chapter-times.json"
    times = json.loads(path.read_text()) if path.exists() else {}
    times.update({r.chapter: round(r.seconds, 1) for r in results})
    path.write_text(json.dumps(times, indent=2) + "\n")


