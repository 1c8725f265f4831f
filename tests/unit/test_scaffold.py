"""The one study scaffold (atlaskit.studies._scaffold) and the run/store/worker helpers (atlaskit.runs)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from atlaskit import runs
from atlaskit.errors import AtlaskitError, ParameterError
from atlaskit.studies import _scaffold as sc
from atlaskit.train import TrainConfig, classification_step


@dataclasses.dataclass(frozen=True)
class DemoPreset(sc.Preset):
    epochs: int
    width: int = 4


PRESETS = {"tiny": DemoPreset("tiny", epochs=1, cpu_threads=1), "ci": DemoPreset("ci", epochs=3)}


# ------------------------------------------------------------------ presets and threads
def test_preset_base_gives_every_study_the_same_fields_and_verbs():
    p = sc.select_preset(PRESETS, "ci", epochs=5)
    assert (p.scale, p.epochs, p.width, p.cpu_threads) == ("ci", 5, 4, None)
    assert p.to_dict() == {"scale": "ci", "cpu_threads": None, "epochs": 5, "width": 4}
    assert p.replace(width=8).width == 8 and p.width == 4
    assert sc.select_preset(PRESETS, "tiny", epochs=None) is PRESETS["tiny"]


@pytest.mark.parametrize("scale, counts, message", [
    ("huge", {}, r"scale must be one of 'tiny', 'ci', not 'huge'"),
    ("ci", {"epochs": 0}, r"epochs must be a positive integer or None, not 0"),
    ("ci", {"epochs": True}, r"epochs must be a positive integer or None, not True"),
])
def test_select_preset_names_the_bad_value(scale, counts, message):
    with pytest.raises(ParameterError, match=message):
        sc.select_preset(PRESETS, scale, **counts)


def test_cpu_threads_sets_and_restores_torch_threads():
    before = torch.get_num_threads()
    with sc.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with sc.cpu_threads(None):  # None changes nothing
        assert torch.get_num_threads() == before
    with pytest.raises(ParameterError, match="cpu_threads must be a positive integer, not 0"):
        with sc.cpu_threads(0):
            pass
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------ stores
def _batches(n=6):
    def gen():
        rng = np.random.default_rng(0)
        import pandas as pd
        yield rng.random((n, 1, 4, 4)).astype(np.float32), pd.DataFrame({"i": np.arange(n)})
    return gen


def test_study_store_is_reused_and_keyed_by_the_data_code(tmp_path, monkeypatch):
    calls = []

    def batches():
        calls.append(1)
        yield from _batches()()

    kw = dict(root=tmp_path, code=__name__, shape_per_item=(1, 4, 4), dtype="float32")
    a = sc.study_store("99_demo", "sim", {"n": 6}, batches, **kw)
    b = sc.study_store("99_demo", "sim", {"n": 6}, batches, **kw)
    assert a.path == b.path and len(calls) == 1  # the second call reuses the store
    monkeypatch.setattr(runs, "_DATA_CODE_KEY", "another-simulator")
    c = sc.study_store("99_demo", "sim", {"n": 6}, batches, **kw)
    assert c.path != a.path and len(calls) == 2  # a changed simulator never reuses a stale store
    assert np.array_equal(np.asarray(c.images), np.asarray(a.images))
    real_module_hash = sc._module_hash
    monkeypatch.setattr(sc, "_module_hash", lambda module: "another-study-transform")
    d = sc.study_store("99_demo", "sim", {"n": 6}, batches, **kw)
    assert d.path not in (a.path, c.path) and len(calls) == 3  # nor does a changed study transform
    with pytest.raises(ParameterError, match="no source file for module 'no.such.module'"):
        real_module_hash("no.such.module")


def test_store_root_is_per_chapter_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLASKIT_CACHE", str(tmp_path))
    assert runs.store_root("03_cnn_vs_fcn") == tmp_path / "stores" / "03_cnn_vs_fcn"


# ------------------------------------------------------------------ training runs
def _data(seed=0, n=32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = (x[:, 0] > 0).long()
    return TensorDataset(x, y)


def _fit(tmp_path, monkeypatch, **kw):
    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path))
    config = TrainConfig(epochs=3, batch_size=8, lr=0.1, seed=7, device="cpu", progress=False)
    return sc.fit_or_reuse("99_demo", "linear", lambda: torch.nn.Linear(3, 2), config, key={"width": 3},
                           train_data=_data(0), val_data=lambda: _data(1), step_fn=classification_step,
                           threads=1, **kw)


def test_fit_or_reuse_trains_then_reuses_the_finished_run(tmp_path, monkeypatch):
    first = _fit(tmp_path, monkeypatch)
    assert isinstance(first, sc.TrainedRun) and not first.reused and first.best_epoch in (1, 2, 3)
    assert not first.model.training and first.run_dir.parent == tmp_path / "99_demo"
    assert len(first.history.to_frame()) > 0
    again = _fit(tmp_path, monkeypatch)
    assert again.reused and again.run_dir == first.run_dir and again.best_epoch == first.best_epoch
    for a, b in zip(first.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b)
    out = again.predict(_data(1))
    assert out.shape == (32, 2)


def test_fit_or_reuse_is_seeded_and_keeps_last_weights_when_asked(tmp_path, monkeypatch):
    best = _fit(tmp_path / "a", monkeypatch)
    last = _fit(tmp_path / "b", monkeypatch, weights="last")
    assert last.best_epoch is None
    same = _fit(tmp_path / "c", monkeypatch, weights="last")  # same seed, fresh folder: same weights
    for a, b in zip(last.model.parameters(), same.model.parameters()):
        assert torch.equal(a, b)
    assert best.run_dir.name == last.run_dir.name  # keyed by chapter, name and key only


def test_fit_or_reuse_rejects_an_unknown_weights_choice(tmp_path, monkeypatch):
    with pytest.raises(ParameterError, match="weights must be 'best' or 'last', not 'middle'"):
        _fit(tmp_path, monkeypatch, weights="middle")


@dataclasses.dataclass
class LabelledRun(sc.TrainedRun):
    label: str = ""


def test_fit_or_reuse_fills_a_study_subclass(tmp_path, monkeypatch):
    run = _fit(tmp_path, monkeypatch, run_type=LabelledRun, label="variant-a")
    assert isinstance(run, LabelledRun) and run.label == "variant-a" and run.device == "cpu"


# ------------------------------------------------------------------ worker processes
def test_map_in_workers_returns_results_in_job_order():
    jobs = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)]
    assert runs.map_in_workers("operator:add", jobs, 2) == [3, 7, 11, 15, 19]


def test_map_in_workers_reports_the_failing_job():
    with pytest.raises(AtlaskitError, match=r"a worker \(1\) failed with exit code 1:(.|\n)*ZeroDivisionError"):
        runs.map_in_workers("operator:truediv", [(1, 0)], 1)
    with pytest.raises(ParameterError, match="workers must be a positive integer, not 0"):
        runs.map_in_workers("operator:add", [(1, 2)], 0)


def test_two_runs_of_one_folder_do_not_write_at_once(tmp_path, monkeypatch, capsys):
    """While one run holds a run folder, a second waits (saying so), then reuses the finished run."""
    import threading

    from atlaskit._atomic import file_lock
    from atlaskit.runs import run_dir

    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path))
    folder = run_dir("99_demo", "linear", width=3)
    holder = file_lock(folder, "run")
    holder.acquire()  # another run is writing this folder
    result = {}
    waiting = threading.Thread(target=lambda: result.setdefault("run", _fit(tmp_path, monkeypatch)))
    waiting.start()
    waiting.join(timeout=2)
    assert waiting.is_alive() and not (folder / "last.pt").exists()  # it waits, writes nothing
    holder.release()
    waiting.join(timeout=60)
    assert not waiting.is_alive() and not result["run"].reused  # then trains (the holder wrote nothing)
    assert "waiting for another run writing" in capsys.readouterr().err
    assert _fit(tmp_path, monkeypatch).reused
