"""Progress lines for the terminal of `atlaskit run`, never for a notebook's outputs.

A chapter's kernel cannot write to the terminal that started it: ipykernel captures the
process's file descriptors 1 and 2 and stores whatever reaches them in the notebook. So the
runner gives the kernel a file (:data:`PROGRESS_FILE_ENV`), code in the kernel appends one line
per event to it with :func:`report` (a no-op everywhere else), and :class:`ProgressRelay`, in the
runner's process, copies new lines to the runner's stderr as they arrive.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, TextIO

#: Environment variable naming the file a kernel appends its progress lines to.
PROGRESS_FILE_ENV = "ATLASKIT_PROGRESS_FILE"


def report(line: str) -> None:
    """Append one progress line for the runner's terminal (nothing when no runner asked for it).

    Never raises: progress is a courtesy, a full disk must not stop a training run.
    """
    path = os.environ.get(PROGRESS_FILE_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line.replace("\n", " ").rstrip() + "\n")
    except OSError:
        pass


class ProgressRelay:
    """Copy the lines a kernel appends to ``path`` onto ``stream``, each with ``prefix``.

    Use as a context manager around the execution; the last lines are copied on exit.

    Parameters
    ----------
    path : Path
        The progress file (created empty; give its path to the kernel in :data:`PROGRESS_FILE_ENV`).
    stream : text stream
        Where the lines go (the runner's ``sys.stderr``).
    prefix : str
        Put before every line, e.g. the chapter's name.
    interval : float
        Seconds between looks at the file.
    """

    def __init__(self, path: Path, stream: TextIO, prefix: str = "", interval: float = 0.5) -> None:
        self.path, self.stream, self.prefix, self.interval = Path(path), stream, prefix, interval
        self._offset = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="atlaskit-progress", daemon=True)
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        """Write one line of the runner's own (e.g. which cell runs) in the same place."""
        with self._lock:
            try:
                self.stream.write(f"{self.prefix}{text}\n")
                self.stream.flush()
            except (OSError, ValueError):  # a closed or broken terminal must not stop the run
                pass

    def _copy_new_lines(self) -> None:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return
        complete, _, _ = chunk.rpartition("\n")  # a line still being written waits for the next look
        if complete:
            self._offset += len((complete + "\n").encode("utf-8"))
            for text in complete.split("\n"):
                self.line("  " + text)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._copy_new_lines()

    def __enter__(self) -> "ProgressRelay":
        self.path.write_text("", encoding="utf-8")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._copy_new_lines()


def file_tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (none when it cannot be read)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return []


def cell_announcer(relay: ProgressRelay, notebook, *, injected: bool) -> Callable[..., None]:
    """nbclient's ``on_cell_execute`` hook: one line per code cell, ``cell k/n: <first code line>``."""
    total = sum(cell.cell_type == "code" for cell in notebook.cells) + int(injected)
    count = 0

    def announce(cell, cell_index: int) -> None:
        nonlocal count
        count += 1
        code = [line.strip() for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        first = code[0] if code else "(comments only)"
        relay.line(f"cell {count}/{total}: {first[:70] + ('…' if len(first) > 70 else '')}")

    return announce
