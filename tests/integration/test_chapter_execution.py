"""Executing chapters with papermill: parameters reach the notebook, failures name the cell,
and a failed run never replaces a good notebook."""
from __future__ import annotations

import json
import os
import textwrap

import nbformat
import pytest

from atlaskit import book, cli

pytestmark = pytest.mark.book

GOOD = textwrap.dedent(
    '''\
    # %% tags=["parameters"]
    greeting = "hello"
    times = 2

    # %%
    print(greeting * times)
    '''
)
BAD = GOOD + "\n# %%\nraise ValueError('the third cell broke')\n"


def _stream_text(path):
    notebook = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))


def test_parameters_change_the_executed_notebook(tmp_path):
    (tmp_path / "05_demo.py").write_text(GOOD)
    out = tmp_path / "out.ipynb"
    result = book.execute_chapter("demo", {"greeting": "ab", "times": "3"}, output=out, notebooks=tmp_path)
    assert result.chapter == "05_demo" and result.parameters == {"greeting": "ab", "times": 3}
    assert "ababab" in _stream_text(out)


def test_kernel_gets_the_allocator_settings(tmp_path, monkeypatch):
    """The chapter kernel keeps large freed blocks (no page faults per training step, #24)."""
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    expected = book.allocator_environment().get("GLIBC_TUNABLES", "unset")
    (tmp_path / "05_demo.py").write_text(
        GOOD + '\n# %%\nimport os\nprint("tunables:", os.environ.get("GLIBC_TUNABLES", "unset"))\n')
    book.execute_chapter("05_demo", output=tmp_path / "out.ipynb", notebooks=tmp_path)
    assert f"tunables: {expected}" in _stream_text(tmp_path / "out.ipynb")


def test_kernel_runs_without_warnings_on_the_terminal(tmp_path, capfd):
    """The chapter kernel talks over local IPC sockets, so ipykernel has nothing to warn about."""
    (tmp_path / "05_demo.py").write_text(GOOD)
    book.execute_chapter("05_demo", output=tmp_path / "out.ipynb", notebooks=tmp_path)
    err = capfd.readouterr().err
    assert "WARNING" not in err and "without encryption" not in err, err


def test_failed_chapter_names_the_cell_and_keeps_the_previous_output(tmp_path):
    (tmp_path / "05_demo.py").write_text(GOOD)
    out = tmp_path / "out.ipynb"
    book.execute_chapter("05_demo", output=out, notebooks=tmp_path)
    before = out.read_bytes()
    (tmp_path / "05_demo.py").write_text(BAD)
    with pytest.raises(book.ChapterError, match=r"chapter 05_demo failed in cell \d+ .*ValueError: the third cell broke"):
        book.execute_chapter("05_demo", output=out, notebooks=tmp_path)
    assert out.read_bytes() == before


def test_cli_run_changes_what_chapter_00_shows(tmp_path, capsys):
    """`atlaskit run 00_data -p min_grade 3` counts only prominent annotations."""
    outputs = {}
    for grade in (1, 3):
        out = tmp_path / f"00_data_grade{grade}.ipynb"
        assert cli.main(["run", "00_data", "-p", "min_grade", str(grade), "-o", str(out)]) == 0
        notebook = nbformat.read(out, as_version=4)
        assert json.dumps(notebook.metadata["papermill"]["parameters"]["min_grade"]) == str(grade)
        outputs[grade] = _stream_text(out)
    assert outputs[1] != outputs[3]
    assert "annotations of grade ≥ 3" in outputs[3]


@pytest.mark.parametrize("jobs", [1, 2])
def test_book_build_with_a_failing_chapter_keeps_the_others(tmp_path, monkeypatch, jobs):
    """Real kernels: the good chapter is written, the failing one keeps its previous notebook and
    its partly executed run lands in _build/failed/; the report names chapter, cell and error.
    With two jobs the chapters run side by side, in worker processes."""
    notebooks, out = tmp_path / "notebooks", tmp_path / "chapters"
    notebooks.mkdir()
    (notebooks / "05_good.py").write_text(GOOD)
    (notebooks / "06_bad.py").write_text(BAD)
    monkeypatch.setattr(book, "BUILD", tmp_path / "_build")
    out.mkdir()
    (out / "06_bad.ipynb").write_text("previous good run")
    with pytest.raises(book.ChapterError) as info:
        book.build_book(notebooks=notebooks, out_dir=out, html=False, log=lambda _: None, jobs=jobs)
    message = str(info.value)
    assert message.startswith("1 of 2 chapter(s) failed (succeeded: 05_good)")
    assert "chapter 06_bad failed in cell" in message and "ValueError: the third cell broke" in message
    assert "still holds its previous successful run" in message
    assert "hellohello" in _stream_text(out / "05_good.ipynb")
    assert (out / "06_bad.ipynb").read_text() == "previous good run"
    assert "hellohello" in _stream_text(tmp_path / "_build" / "failed" / "06_bad.ipynb")


THREADS = textwrap.dedent(
    """\
    # %% tags=["parameters"]
    tag = "a"

    # %%
    import os
    print(tag, "threads", os.environ.get("OMP_NUM_THREADS"), os.environ.get("NUMBA_NUM_THREADS"))
    """
)


def test_chapters_side_by_side_share_the_cores(tmp_path, monkeypatch):
    """`jobs=2`: both chapters are written and each kernel gets half the cores' threads."""
    for name in book.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(book, "BUILD", tmp_path / "_build")
    notebooks, out = tmp_path / "notebooks", tmp_path / "chapters"
    notebooks.mkdir()
    out.mkdir()
    for name in ("05_one", "06_two"):
        (notebooks / f"{name}.py").write_text(THREADS)
    log = []
    results = book.build_book(notebooks=notebooks, out_dir=out, html=False, log=log.append, jobs=2)
    assert [r.chapter for r in results] == ["05_one", "06_two"]  # book order, whatever finished first
    expected = str(max(1, (os.cpu_count() or 1) // 2))
    for name in ("05_one", "06_two"):
        assert f"a threads {expected} {expected}" in _stream_text(out / f"{name}.ipynb")
    assert log[0].startswith("▶ executing 2 chapters, 2 at a time")
    assert json.loads((tmp_path / "_build" / "chapter-times.json").read_text()).keys() == {"05_one", "06_two"}


GOOD_WRITE = '# %% tags=["parameters"]\ngreeting = "hello"\n\n# %%\nprint(greeting * 2)\n'

def test_a_failed_final_write_keeps_the_executed_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "BUILD", tmp_path / "_build")
    (tmp_path / "05_demo.py").write_text(GOOD_WRITE)
    out = tmp_path / "out.ipynb"
    out.mkdir()  # a folder where the notebook should go: found only after executing
    with pytest.raises(book.AtlaskitError, match=r"cannot write the executed notebook of 05_demo to .*out\.ipynb: it is a folder.*; it is kept at (.*)$") as err:
        book.execute_chapter("05_demo", output=out, notebooks=tmp_path)
    kept = tmp_path / "_build" / "unsaved" / "out.ipynb"
    assert str(kept) in str(err.value)
    nb = nbformat.read(kept, as_version=4)
    assert "hellohello" in "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


PROGRESS = textwrap.dedent(
    '''\
    # %% tags=["parameters"]
    epochs = 2

    # %%
    from atlaskit._progress import report
    for epoch in range(epochs):
        report(f"epoch {epoch + 1}/{epochs}")
    print("trained")
    '''
)


def test_run_progress_goes_to_the_terminal_and_not_into_the_notebook(tmp_path):
    """`atlaskit run` shows which cell runs and the kernel's progress lines (issue #22, item 7)."""
    import io

    (tmp_path / "05_demo.py").write_text(PROGRESS)
    out, terminal = tmp_path / "out.ipynb", io.StringIO()
    book.execute_chapter("05_demo", output=out, notebooks=tmp_path, progress=terminal)
    lines = terminal.getvalue().splitlines()
    assert "[05_demo] cell 2/2: from atlaskit._progress import report" in lines, lines
    assert "[05_demo]   epoch 2/2" in lines, lines
    stored = _stream_text(out)
    assert "trained" in stored and "epoch" not in stored and "cell 2/2" not in stored


SLOW = textwrap.dedent(
    '''\
    # %% tags=["parameters"]
    seconds = 60

    # %%
    import time
    time.sleep(seconds)
    '''
)


def test_ctrl_c_during_a_cell_prints_no_kernel_traceback(tmp_path):
    """Ctrl-C in the terminal (SIGINT to the runner's process group) stops the run with the runner's
    one line; the kernel's own log (a ZMQ traceback when it is shut down mid-reply) stays off the
    terminal (issue #23, item 6)."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "05_demo.py").write_text(SLOW)
    script = (
        "import sys; from pathlib import Path; from atlaskit import book\n"
        "try:\n"
        f"    book.execute_chapter('05_demo', output=Path({str(tmp_path / 'out.ipynb')!r}), "
        f"notebooks=Path({str(tmp_path)!r}), progress=sys.stderr)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', file=sys.stderr); sys.exit(130)\n"
    )
    runner = subprocess.Popen(
        [sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the slow cell runs
        line = runner.stderr.readline()
        seen.append(line)
        if "cell 2/2: import time" in line or not line:
            break
    time.sleep(1.0)
    os.killpg(runner.pid, signal.SIGINT)
    rest = runner.communicate(timeout=60)[1]
    err = "".join(seen) + rest
    assert runner.returncode == 130, err
    assert "ZMQError" not in err and "IPKernelApp" not in err and "Traceback" not in err, err
    assert not (tmp_path / "out.ipynb").exists()
