"""A chapter run killed mid-training resumes from its checkpoint with identical results (issue #10).

For each of the four models the study's own train function runs three epochs uninterrupted in
one runs folder; in a second runs folder the same call is interrupted in the middle of epoch 2
(after one optimizer step, as when papermill's kernel is killed: what is in memory is lost, the
checkpoint of epoch 1 remains), then the same call is made again. It must resume at epoch 2 (not
retrain epoch 1) and end with bit-identical weights and the same history as the uninterrupted run.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from atlaskit import train as train_module
from atlaskit.train import Trainer, load_checkpoint

EPOCHS = 3
_REAL_TRAIN_EPOCH = Trainer._train_epoch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """DeepYeast's train function leaves threads to the chapter; on a busy 2-core machine two
    threads made its case 20x slower. Bit-exactness is compared at one thread count anyway."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Interrupt:
    """Patch ``Trainer._train_epoch``: record the epochs trained, and optionally raise
    KeyboardInterrupt after the first optimizer step of epoch index ``at``."""

    def __init__(self, monkeypatch, at: int | None):
        self.epochs: list[int] = []
        real = _REAL_TRAIN_EPOCH  # not the current attribute: patches must not stack

        def wrapped(trainer, epoch):
            self.epochs.append(epoch)
            if at is not None and epoch == at:
                real_step = trainer.optimizer.step

                def step_then_die(*args, **kwargs):
                    real_step(*args, **kwargs)
                    raise KeyboardInterrupt  # what a killed kernel leaves: the last complete epoch on disk

                trainer.optimizer.step = step_then_die
            return real(trainer, epoch)

        monkeypatch.setattr(Trainer, "_train_epoch", wrapped)


# ------------------------------------------------------------------------------- the four models


def _cytoself(tmp):
    from atlaskit.studies import cytoself as study

    p = dataclasses.replace(study.preset("tiny"), n_proteins=6, crops_per_protein=6, epochs=EPOCHS, batch_size=16)
    data = study.build_data(p, "sim", seed=0, root=tmp / "stores")

    def run():
        r = study.train("full", data, p, seed=0, device="cpu")
        return r.model, r.history, r.run_dir

    return run


def _deepgps(tmp):
    from atlaskit.models.sequence import CompositionEmbedder
    from atlaskit.studies import deepgps

    table = deepgps.protein_table(0)
    keep = []
    for (_, split), grp in table[table["single-2"].notna()].groupby(["single-2", "split"]):
        keep += grp["gene"].head(6 if split == "train" else 1).tolist()
    small = table[table["gene"].isin(keep)].reset_index(drop=True)
    preset = deepgps.preset("tiny", epochs=EPOCHS).replace(image_size=16, width_multiplier=0.0625, batch_size=8)
    embedder = CompositionEmbedder(dipeptides=False)
    feats = deepgps.embed_proteins(small, embedder, cache=False)
    images = deepgps.build_data(small, preset, seed=0, root=tmp / "stores")

    def run():
        r = deepgps.train("single-2", small, images, feats, preset, embedder=embedder, seed=0, device="cpu")
        return r.model, r.history, r.run_dir

    return run


def _cnnfcn(tmp):
    from atlaskit.studies import cnnfcn

    p = dataclasses.replace(cnnfcn.preset("tiny", epochs=EPOCHS), image_size=32, n_train=12, n_val=4, n_test=4,
                            batch_size=8, augment=True)  # augmentation: its generator must resume too
    data = cnnfcn.build_sim_data(p, seed=0, root=tmp / "data")

    def run():
        r = cnnfcn.train("fcn", data, p, seed=0, device="cpu")  # the keyed runs.run_dir, not run_root
        return r.model, r.history, r.run_dir

    return run


def _deepyeast(tmp):
    from atlaskit.data.store import ArrayStore
    from atlaskit.studies import deepyeast as dy

    rng = np.random.default_rng(0)
    n = 32
    split = np.array(["train"] * 24 + ["val"] * 8)
    label_idx = rng.integers(0, len(dy.DEEPYEAST_CLASSES), n)
    meta = pd.DataFrame({"protein": [f"p{i % 8}" for i in range(n)],
                         "label": [dy.DEEPYEAST_CLASSES[k] for k in label_idx],
                         "label_idx": label_idx.astype(np.int64), "split": split})
    images = rng.random((n, 2, 64, 64), dtype=np.float32)
    main = ArrayStore.build(tmp / "store", [(images, meta)], shape_per_item=(2, 64, 64), dtype=np.float32,
                            params={"test": "resume"})
    data = dy.YeastData(main, main, None, "sim")
    p = dy.preset("tiny", epochs=EPOCHS).replace(batch_size=16, step_size=1)  # the LR schedule steps every epoch

    def run():
        r = dy.train(data, p, seed=0, device="cpu")
        return r.model, r.history, r.run_dir

    return run


MODELS = {"cytoself": _cytoself, "deepgps": _deepgps, "cnnfcn": _cnnfcn, "deepyeast": _deepyeast}


@pytest.mark.parametrize("name", list(MODELS))
def test_interrupted_study_run_resumes_exactly(name, tmp_path, monkeypatch):
    monkeypatch.setenv("ATLASKIT_NO_PROGRESS", "1")
    run = MODELS[name](tmp_path)

    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path / "runs-a"))
    whole = Interrupt(monkeypatch, at=None)
    model_a, hist_a, dir_a = run()
    assert whole.epochs == list(range(EPOCHS))
    state_a = {k: v.clone() for k, v in model_a.state_dict().items()}

    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path / "runs-b"))
    Interrupt(monkeypatch, at=1)
    with pytest.raises(KeyboardInterrupt):
        run()
    killed = next((tmp_path / "runs-b").rglob("last.pt"))
    assert load_checkpoint(killed)["epochs_done"] == 1

    torch.manual_seed(12345)  # the new kernel starts from another global RNG state
    np.random.seed(54321)
    resumed = Interrupt(monkeypatch, at=None)
    model_b, hist_b, dir_b = run()
    assert dir_b == killed.parent and dir_b.name == dir_a.name  # the same key finds the checkpoint
    assert resumed.epochs == list(range(1, EPOCHS)), "the resumed run restarted instead of continuing"

    state_b = model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for k in state_a:
        assert torch.equal(state_a[k], state_b[k]), f"{name}: {k} differs after resume"
    last_a, last_b = load_checkpoint(Path(dir_a) / "last.pt"), load_checkpoint(dir_b / "last.pt")
    for k in last_a["model"]:
        assert torch.equal(last_a["model"][k], last_b["model"][k]), f"{name}: last.pt {k} differs after resume"
    assert hist_a.epochs == hist_b.epochs == list(range(1, EPOCHS + 1))
    assert hist_a.train == hist_b.train and hist_a.val == hist_b.val and hist_a.lr == hist_b.lr
    assert hist_a.best_epoch == hist_b.best_epoch and hist_a.stopped_early == hist_b.stopped_early


def test_interrupt_helper_really_interrupts(tmp_path, monkeypatch):
    """Guard of the guard: without the patch the toy run would finish; with it, it stops in epoch 2."""
    from torch import nn
    from torch.utils.data import TensorDataset

    data = TensorDataset(torch.randn(8, 3), torch.randint(0, 2, (8,)))
    cfg = train_module.TrainConfig(epochs=3, batch_size=4, device="cpu", checkpoint_dir=tmp_path, progress=False)
    Interrupt(monkeypatch, at=1)
    trainer = Trainer(nn.Linear(3, 2), cfg, step_fn=train_module.classification_step, train_data=data)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert trainer.epochs_done == 1 and load_checkpoint(tmp_path / "last.pt")["epochs_done"] == 1


# ------------------------------------------------------------------------------- reproducibility


def test_evaluation_of_one_checkpoint_gives_identical_tables(tmp_path, monkeypatch):
    """The chapter's tables are a function of the checkpoint: two loads, two evaluations, equal tables
    (what NBVAL_CHECK_OUTPUT relies on when nbval re-executes a chapter on the stored runs)."""
    from atlaskit.studies import cnnfcn

    monkeypatch.setenv("ATLASKIT_NO_PROGRESS", "1")
    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path / "runs"))
    p = dataclasses.replace(cnnfcn.preset("tiny", epochs=1), image_size=32, n_train=12, n_val=4, n_test=8,
                            batch_size=8)
    data = cnnfcn.build_sim_data(p, seed=0, root=tmp_path / "data")
    tables = []
    for _ in range(2):
        counted = Interrupt(monkeypatch, at=None)
        models = {k: cnnfcn.train(k, data, p, seed=0, device="cpu") for k in ("cnn", "fcn")}
        evals = {k: cnnfcn.evaluate(m, data) for k, m in models.items()}
        tables.append((evals, cnnfcn.summary_table(evals), cnnfcn.table1(evals), cnnfcn.cell_line_table(evals),
                       cnnfcn.compare_with_paper(evals)))
    assert counted.epochs == []  # the second pass trained nothing: it evaluated the stored checkpoints
    (ev_a, *first), (ev_b, *second) = tables
    for kind in ev_a:
        np.testing.assert_array_equal(ev_a[kind].scores, ev_b[kind].scores)
        np.testing.assert_array_equal(ev_a[kind].thresholds, ev_b[kind].thresholds)
    for a, b in zip(first[:3], second[:3]):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert first[3] == second[3]
    assert first[0].notna().any().any()  # the tables hold numbers, not only NaN
