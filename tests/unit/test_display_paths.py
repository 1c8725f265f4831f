"""display_path: how atlaskit shows a path to a reader (relative to the project, ``~`` for home)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlaskit import _text
from atlaskit._text import display_path


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "home" / "reader"
    folder.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(folder))
    return folder


def test_inside_the_project_is_relative(tmp_path, home):
    root = tmp_path / "project"
    assert display_path(root / "_build" / "runs" / "04" / "model.pt", root=root) == os.path.join(
        "_build", "runs", "04", "model.pt")
    assert display_path(str(root / "a.h5ad"), root=str(root)) == "a.h5ad"
    assert display_path(root, root=root) == "."


def test_default_root_is_the_folder_that_holds_the_package(home):
    project = Path(_text.__file__).resolve().parent.parent
    assert display_path(project / "_build" / "runs" / "x.pt") == os.path.join("_build", "runs", "x.pt")
    assert display_path(project / "atlaskit" / "_text.py") == os.path.join("atlaskit", "_text.py")


def test_inside_home_gets_a_tilde(tmp_path, home):
    weights = home / ".cache" / "torch" / "hub" / "checkpoints" / "esm2.pt"
    assert display_path(weights, root=tmp_path / "project") == os.path.join("~", ".cache", "torch", "hub",
                                                                               "checkpoints", "esm2.pt")
    assert display_path(home, root=tmp_path / "project") == "~"


def test_the_project_wins_over_home_when_it_lies_in_home(home):
    root = home / "atlaskit"
    assert display_path(root / "_build" / "x.pt", root=root) == os.path.join("_build", "x.pt")


def test_elsewhere_and_relative_paths_are_unchanged(tmp_path, home):
    root = tmp_path / "project"
    other = tmp_path / "elsewhere" / "x.npz"
    assert display_path(other, root=root) == str(other)
    # a sibling whose name starts with the root's is not inside it
    assert display_path(tmp_path / "project-old" / "x", root=root) == str(tmp_path / "project-old" / "x")
    assert display_path("crops.npz", root=root) == "crops.npz"
    assert display_path(Path("_build") / "runs", root=root) == os.path.join("_build", "runs")


def test_a_link_into_the_project_is_shown_relative(tmp_path, home):
    root = tmp_path / "project"
    (root / "_build").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(root, target_is_directory=True)
    assert display_path(link / "_build", root=root) == "_build"


def test_bad_input_is_refused():
    with pytest.raises(TypeError):
        display_path(None)
    with pytest.raises(TypeError):
        display_path(3.5)


def test_provenance_shows_a_project_folder_relative(tmp_path, home, monkeypatch):
    from atlaskit import chapter

    root = tmp_path / "project"
    folder = root / "real-images"
    folder.mkdir(parents=True)
    (folder / "a.tif").write_bytes(b"12")
    monkeypatch.setattr(_text, "_project_root", lambda: root)
    row = chapter.provenance(folders=[folder]).iloc[-1]
    assert row["kind"] == "data folder" and row["name"] == "real-images" and row["version"] == "1 file"


def test_evaluation_report_names_its_images_relative(tmp_path, home, monkeypatch):
    from atlaskit.commands.evaluate import EvaluationReport

    monkeypatch.setattr(_text, "_project_root", lambda: tmp_path)
    report = EvaluationReport(source=str(tmp_path / "_build" / "crops.npz"), n=2, accuracy=0.5, kappa=0.0,
                              per_class=pd.DataFrame({"n": [1, 1], "recall": [1.0, 0.0], "precision": [0.5, np.nan]},
                                                     index=pd.Index(["a", "b"], name="class")),
                              confusion=pd.DataFrame([[1, 0], [1, 0]]), predictions=np.zeros(2, int))
    text = report.to_text()
    assert f"DeepYeast evaluation on {os.path.join('_build', 'crops.npz')}: 2 crops" in text
    assert str(tmp_path) not in text
