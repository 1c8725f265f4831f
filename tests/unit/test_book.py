"""The chapter pipeline's pure parts: finding chapters, reading and checking parameters, the CLI's errors."""
from __future__ import annotations

import json
import textwrap

import pytest

from atlaskit import book, chapter, cli, runs
from atlaskit.errors import ParameterError

CHAPTER = textwrap.dedent(
    '''\
    # %% [markdown]
    # # A chapter

    # %% tags=["parameters"]
    scale = "ci"
    seed = 0
    rate = 0.5
    flag = False
    data_dir = None

    # %%
    print(scale, seed)
    '''
)


@pytest.fixture
def notebooks(tmp_path):
    (tmp_path / "07_demo.py").write_text(CHAPTER)
    (tmp_path / "08_other.py").write_text(CHAPTER)
    return tmp_path


def test_resolve_chapter_by_name_number_and_title(notebooks):
    for key in ("07_demo", "07", "7", "demo"):
        name, path = book.resolve_chapter(key, notebooks)
        assert name == "07_demo" and path == notebooks / "07_demo.py"


def test_unknown_chapter_lists_the_chapters(notebooks):
    with pytest.raises(ParameterError, match=r"unknown chapter 'nope'.*07_demo, 08_other"):
        book.resolve_chapter("nope", notebooks)


def test_chapter_parameters_read_the_parameters_cell(notebooks):
    assert book.chapter_parameters(notebooks / "07_demo.py") == {
        "scale": "ci", "seed": 0, "rate": 0.5, "flag": False, "data_dir": None,
    }


def test_chapter_without_parameters_cell_is_refused(tmp_path):
    (tmp_path / "01_bad.py").write_text("# %%\nx = 1\n")
    with pytest.raises(book.ChapterError, match="exactly one cell tagged 'parameters'"):
        book.chapter_parameters(tmp_path / "01_bad.py")


@pytest.mark.parametrize(
    "text, value",
    [("None", None), ("true", True), ("False", False), ("3", 3), ("-2", -2), ("0.25", 0.25), ("full", "full"), ("1e-3", 1e-3)],
)
def test_parse_value(text, value):
    assert book.parse_value(text) == value and type(book.parse_value(text)) is type(value)


def test_validate_parameters_coerces_to_the_defaults_types(notebooks):
    checked = book.validate_parameters(
        "07_demo", notebooks / "07_demo.py",
        {"seed": "4", "rate": "1", "scale": "full", "flag": "true", "data_dir": "/x"},
    )
    assert checked == {"seed": 4, "rate": 1, "scale": "full", "flag": True, "data_dir": "/x"}


def test_a_number_for_a_string_parameter_stays_a_string(notebooks):
    assert book.validate_parameters("07_demo", notebooks / "07_demo.py", {"scale": 3}) == {"scale": "3"}


@pytest.mark.parametrize(
    "given, message",
    [
        ({"sed": "1"}, r"no parameter 'sed'; its parameters are: scale='ci', seed=0"),
        ({"seed": "one"}, r"seed expects an integer, got 'one'"),
        ({"rate": "fast"}, r"rate expects a number"),
        ({"flag": "3"}, r"flag expects true or false"),
    ],
)
def test_bad_parameters_are_clear_errors(notebooks, given, message):
    with pytest.raises(ParameterError, match=message):
        book.validate_parameters("07_demo", notebooks / "07_demo.py", given)


def test_cli_reports_an_unknown_parameter_without_a_traceback(capsys):
    status = cli.main(["run", "00_data", "-p", "no_such_parameter", "1"])
    err = capsys.readouterr().err
    assert status == 2
    assert "atlaskit: error: chapter 00_data has no parameter 'no_such_parameter'" in err
    assert "Traceback" not in err


def test_cli_reports_an_unknown_chapter(capsys):
    assert cli.main(["run", "99_nothing"]) == 2
    assert "unknown chapter '99_nothing'" in capsys.readouterr().err


def test_cli_lists_chapters_and_parameters(capsys):
    assert cli.main(["chapters"]) == 0
    out = capsys.readouterr().out
    assert "00_data" in out and "-p seed 0" in out


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale": "huge"}, r"scale must be one of 'tiny', 'ci', 'full', not 'huge'"),
        ({"data": "web"}, r"data must be one of 'sim', 'real', not 'web'"),
        ({"data": "real"}, r"data='real' needs data_dir"),
        ({"data_dir": "/no/such/folder"}, r"data_dir '/no/such/folder' does not exist"),
        ({"seed": 1.5}, r"seed must be an integer"),
        ({"device": "tpu"}, r"unknown device 'tpu'; use 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ],
)
def test_setup_chapter_rejects_bad_values(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        chapter.setup_chapter("07_demo", show=False, **kwargs)


def test_setup_chapter_returns_the_run(tmp_path):
    run = chapter.setup_chapter("07_demo", data="real", data_dir=tmp_path, seed=3, device="cpu", show=False)
    assert (run.data, run.data_dir, run.seed, run.device, run.simulated) == ("real", tmp_path, 3, "cpu", False)


def test_run_dir_is_keyed_by_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path))
    a = runs.run_dir("01_cytoself", "full", scale="ci", seed=0)
    assert a == runs.run_dir("01_cytoself", "full", seed=0, scale="ci") and a.is_dir()
    assert a.parent == tmp_path / "01_cytoself"
    assert a != runs.run_dir("01_cytoself", "full", scale="ci", seed=1)
    assert a != runs.run_dir("01_cytoself", "no_split", scale="ci", seed=0)


def test_every_chapter_is_in_the_table_of_contents_in_order():
    import yaml

    toc = yaml.safe_load((book.ROOT / "_toc.yml").read_text())
    files = [entry["file"] for entry in toc["chapters"]]
    listed = [f.rsplit("/", 1)[-1] for f in files if f.startswith("book/chapters/")]
    assert listed == list(book.chapter_sources())
    assert all(f.startswith("book/chapters/") or (book.ROOT / f"{f}.md").is_file() for f in files)


def test_every_study_chapter_has_the_core_parameters():
    for name, source in book.chapter_sources().items():
        params = book.chapter_parameters(source)
        core = {"scale", "seed"} if name == "00_data" else {"scale", "data", "data_dir", "seed", "device"}
        assert core <= set(params), (name, sorted(params))


# ------------------------------------------------------------------ a failed chapter in a book build


@pytest.fixture
def book_folders(notebooks, tmp_path, monkeypatch):
    """Three throw-away chapters; executing 08_other fails in a cell, 09_third fails to start."""
    (notebooks / "09_third.py").write_text(CHAPTER)
    out = tmp_path / "chapters"
    out.mkdir()
    build = tmp_path / "_build"
    monkeypatch.setattr(book, "BUILD", build)  # chapter-times.json and failed/ go here
    monkeypatch.setattr(book, "build_html", lambda *a, **k: pytest.fail("HTML built although a chapter failed"))
    attempted = []

    def fake_execute(name, parameters=None, *, output, notebooks):
        attempted.append(name)
        if name == "08_other":
            raise book.ChapterError(f"chapter {name} failed in cell 2 (cell #3 of the notebook): ValueError: broke")
        if name == "09_third":
            raise RuntimeError("Kernel died before replying to kernel_info")
        output.write_text(f"fresh {name}")
        return book.ChapterResult(name, output, 1.25)

    monkeypatch.setattr(book, "execute_chapter", fake_execute)
    return notebooks, out, build, attempted


def test_build_book_runs_every_chapter_and_names_the_failures(book_folders):
    notebooks, out, build, attempted = book_folders
    (out / "08_other.ipynb").write_text("previous good run")
    log = []
    with pytest.raises(book.ChapterError) as info:
        book.build_book(notebooks=notebooks, out_dir=out, log=log.append)
    message = str(info.value)
    assert attempted == ["07_demo", "08_other", "09_third"]  # a failure does not stop the others
    assert message.startswith("2 of 3 chapter(s) failed (succeeded: 07_demo)")
    assert "chapter 08_other failed in cell 2 (cell #3 of the notebook): ValueError: broke" in message
    assert f"{out / '08_other.ipynb'} still holds its previous successful run" in message
    assert "chapter 09_third failed: RuntimeError: Kernel died" in message
    assert f"{out / '09_third.ipynb'} was not written" in message
    assert (out / "07_demo.ipynb").read_text() == "fresh 07_demo"
    assert (out / "08_other.ipynb").read_text() == "previous good run"
    assert not (out / "09_third.ipynb").exists()
    assert json.loads((build / "chapter-times.json").read_text()) == {"07_demo": 1.2}
    assert any(line.startswith("✗ chapter 08_other") for line in log)


def test_build_book_refuses_an_unknown_chapter_before_running_any(book_folders):
    notebooks, out, _, attempted = book_folders
    with pytest.raises(ParameterError, match="unknown chapter 'nope'"):
        book.build_book(["07", "nope"], notebooks=notebooks, out_dir=out)
    assert attempted == []


def test_cli_book_exit_status_names_the_failed_chapter(book_folders, monkeypatch, capsys):
    notebooks, out, _, _ = book_folders
    monkeypatch.setattr(book, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(book, "CHAPTERS_OUT", out)
    assert cli.main(["book", "--no-html", "--chapter", "07", "--chapter", "08"]) == 2
    err = capsys.readouterr().err
    assert "atlaskit: error: 1 of 2 chapter(s) failed (succeeded: 07_demo)" in err
    assert "chapter 08_other failed in cell 2" in err and "Traceback" not in err


# ------------------------------------------------------------------ provenance


def test_provenance_lists_versions_registered_files_and_folders(tmp_path, monkeypatch):
    import platform

    import numpy
    import torch

    import atlaskit
    from atlaskit.data import registry

    name = "hpa/kaggle2018-train-labels.csv"
    table = chapter.provenance([name], folders=[tmp_path])
    software = table[table["kind"] == "software"].set_index("name")["version"]
    assert software["atlaskit"] == atlaskit.__version__ and software["Python"] == platform.python_version()
    assert software["torch"] == torch.__version__ and software["numpy"] == numpy.__version__
    row = table[table["kind"] == "data file"].iloc[0]
    assert row["name"] == name and row["sha256"] == registry.entries()[name].sha256[:16] + "…"
    assert row["version"] == f"{registry.entries()[name].size} bytes"
    empty = table[table["kind"] == "data folder"].iloc[0]
    assert empty["name"] == str(tmp_path) and empty["version"] == "0 files"

    # the folder hash follows the file listing: names and sizes
    (tmp_path / "a.png").write_bytes(b"12")
    first = chapter.provenance(folders=[tmp_path]).iloc[-1]
    assert first["version"] == "1 file" and first["sha256"] != empty["sha256"]
    assert chapter.provenance(folders=[tmp_path]).iloc[-1]["sha256"] == first["sha256"]
    (tmp_path / "a.png").write_bytes(b"123")
    assert chapter.provenance(folders=[tmp_path]).iloc[-1]["sha256"] != first["sha256"]
    assert list(chapter.provenance().columns) == ["kind", "name", "version", "sha256", "found in"]


def test_provenance_refuses_unknown_files_and_missing_folders(tmp_path):
    with pytest.raises(ParameterError, match="'no/such.csv' is not a registered data file"):
        chapter.provenance(["no/such.csv"])
    with pytest.raises(ParameterError, match="does not exist or is not a folder"):
        chapter.provenance(folders=[tmp_path / "missing"])


# ---------------------------------------------------------------- launch buttons
def test_launch_sets_repository_and_services_and_keeps_the_rest():
    config = {"title": "T", "html": {"use_download_button": True}, "launch_buttons": {"notebook_interface": "classic"}}
    out = book.Launch("https://github.com/o/r.git", "built", binderhub="https://mybinder.org/", colab=True).apply(config)
    assert out["repository"] == {"url": "https://github.com/o/r", "branch": "built", "path_to_book": ""}
    assert out["html"] == {"use_download_button": True, "use_repository_button": True}
    assert out["launch_buttons"] == {"notebook_interface": "classic", "binderhub_url": "https://mybinder.org",
                                     "jupyterhub_url": "", "colab_url": "https://colab.research.google.com"}
    assert config["html"] == {"use_download_button": True} and "repository" not in config  # not modified


def test_launch_without_services_only_links_the_repository():
    out = book.Launch("https://gitlab.com/o/r").apply({})
    assert out["repository"]["branch"] == "main"
    assert not any(out["launch_buttons"].values())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(repository="github.com/o/r"), "not a repository address"),
        (dict(repository="https://github.com/o"), "not a repository address"),
        (dict(repository="https://github.com/o/r", branch=""), "not a git branch name"),
        (dict(repository="https://github.com/o/r", branch="a b"), "not a git branch name"),
        (dict(repository="https://github.com/o/r", binderhub="mybinder.org"), "binderhub 'mybinder.org' is not an http"),
        (dict(repository="https://gitlab.com/o/r", colab=True), "GitHub only"),
    ],
)
def test_bad_launch_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        book.Launch(**kwargs)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["book", "--binderhub", "https://mybinder.org"], "--binderhub needs --repository URL"),
        (["book", "--repository", "https://github.com/o/r", "--no-html"], "drop --no-html"),
        (["run", "00", "--repository", "https://github.com/o/r"], "add --html"),
        (["book", "--repository", "nope"], "not a repository address"),
    ],
)
def test_cli_refuses_launch_options_before_running_anything(argv, message, monkeypatch, capsys):
    monkeypatch.setattr(book, "build_book", lambda *a, **k: pytest.fail("chapters ran"))
    monkeypatch.setattr(book, "execute_chapter", lambda *a, **k: pytest.fail("chapter ran"))
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_book_passes_the_launch_settings(monkeypatch):
    seen = {}
    monkeypatch.setattr(book, "build_book", lambda chapters, html, launch, jobs: seen.update(launch=launch, jobs=jobs))
    argv = ["book", "--repository", "https://github.com/o/r", "--branch", "built", "--binderhub", "https://b.org"]
    assert cli.main(argv) == 0
    assert seen["launch"] == book.Launch("https://github.com/o/r", "built", binderhub="https://b.org")
    assert seen["jobs"] == 1


def test_cli_book_jobs(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(book, "build_book", lambda chapters, html, launch, jobs: seen.update(jobs=jobs))
    assert cli.main(["book", "--no-html", "--jobs", "3"]) == 0
    assert seen["jobs"] == 3
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            cli.main(["book", "--jobs", bad])
        assert f"expected a positive integer, got '{bad}'" in capsys.readouterr().err


@pytest.mark.parametrize("jobs", [0, -1, True, 1.5, "2"])
def test_build_book_refuses_bad_jobs_before_running_any(book_folders, jobs):
    notebooks, out, _, attempted = book_folders
    with pytest.raises(ParameterError, match="jobs must be a positive integer"):
        book.build_book(notebooks=notebooks, out_dir=out, jobs=jobs)
    assert attempted == []


def test_thread_environment_splits_the_cores_and_keeps_what_the_user_set(monkeypatch):
    for name in book.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert book.thread_environment(1, cores=8) == {}
    assert book.thread_environment(2, cores=8) == {name: "4" for name in book.THREAD_VARIABLES}
    assert book.thread_environment(3, cores=2) == {name: "1" for name in book.THREAD_VARIABLES}
    monkeypatch.setenv("OMP_NUM_THREADS", "6")  # the user's choice wins
    assert "OMP_NUM_THREADS" not in book.thread_environment(2, cores=8)


def test_allocator_environment_on_glibc_only_and_never_over_the_users(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.setattr(book.sys, "platform", "linux")
    monkeypatch.setattr(book.platform, "libc_ver", lambda: ("glibc", "2.36"))
    assert book.allocator_environment() == {"GLIBC_TUNABLES": book.ALLOCATOR_TUNABLES}
    assert "mmap_threshold=33554432" in book.ALLOCATOR_TUNABLES  # glibc's largest allowed value
    monkeypatch.setattr(book.platform, "libc_ver", lambda: ("", ""))  # musl
    assert book.allocator_environment() == {}
    monkeypatch.setattr(book.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(book.sys, "platform", "darwin")
    assert book.allocator_environment() == {}
    monkeypatch.setattr(book.sys, "platform", "linux")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")  # the user's choice wins
    assert book.allocator_environment() == {}


def test_chapter_order_puts_the_longest_first_when_times_are_known(book_folders):
    _, _, build, _ = book_folders
    names = ["07_demo", "08_other", "09_third"]
    assert book._chapter_order(names) == names  # no times recorded: book order
    build.mkdir(exist_ok=True)
    (build / "chapter-times.json").write_text(json.dumps({"07_demo": 3, "08_other": 9, "09_third": 5}))
    assert book._chapter_order(names) == ["08_other", "09_third", "07_demo"]
    (build / "chapter-times.json").write_text(json.dumps({"09_third": 3}))  # the unknown keep book order, after
    assert book._chapter_order(names) == ["09_third", "07_demo", "08_other"]
    (build / "chapter-times.json").write_text("{not json")
    assert book._chapter_order(names) == names


def test_a_first_build_schedules_the_book_longest_first_from_the_expected_times(book_folders):
    """No chapter-times.json yet (a fresh clone, CI): the committed estimates order the real chapters,
    so the two longest start on different workers instead of one after the other."""
    names = list(book.chapter_sources())
    order = book._chapter_order(names)
    assert set(order) == set(names)
    assert order == sorted(names, key=lambda n: -book.EXPECTED_SECONDS[n])
    assert order[:2] == ["01_cytoself", "03_cnn_vs_fcn"]  # the two longest chapters at defaults
    assert set(book.EXPECTED_SECONDS) == set(names)  # a new chapter gets its estimate too
