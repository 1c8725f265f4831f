"""The shared trainer (atlaskit.train): losses, history, schedules, early stopping, exact resume,
checkpoint safety, and 2-process DDP on CPU (gloo)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, TensorDataset

import atlaskit.train as T
from atlaskit.errors import AtlaskitError, ParameterError
from atlaskit.train import (
    CheckpointError,
    History,
    TrainConfig,
    Trainer,
    TrainingError,
    classification_step,
    load_checkpoint,
    seed_everything,
)

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread avoids oversubscribing the 2-core CI machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class MLP(nn.Module):
    """Tiny classifier with dropout and batch norm, so resume must restore RNG-driven and
    buffer state too."""

    def __init__(self, hidden: int = 16, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(8, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 3)
        )

    def forward(self, x):
        return self.net(x)

    def compute_losses(self, x, y):
        logits = self(x)
        ce = F.cross_entropy(logits, y)
        l2 = 1e-4 * sum(p.pow(2).sum() for p in self.parameters())
        acc = (logits.argmax(1) == y).float().mean()
        return {"loss": ce + l2, "ce": ce, "l2": l2, "metric_accuracy": acc}


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class NoisyPairs(Dataset):
    """(x + noise, y) with the noise drawn from the dataset's own generator, reseeded by the
    loader (like CropDataset's augmentation), so exact resume covers augmentation too."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.reseed(0)

    def reseed(self, seed):
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        noise = torch.from_numpy(self.rng.normal(0, 0.1, self.x.shape[1]).astype(np.float32))
        return self.x[i] + noise, self.y[i]


def data(n_train: int = 96, n_val: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(8, 3, generator=g)
    x = torch.randn(n_train + n_val, 8, generator=g)
    y = (x @ w).argmax(1)
    return NoisyPairs(x[:n_train], y[:n_train]), TensorDataset(x[n_train:], y[n_train:])


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=4, batch_size=16, lr=1e-2, seed=1, device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def make(config: TrainConfig, *, model_seed: int = 0, hidden: int = 16, dropout: float = 0.2, **kw) -> Trainer:
    torch.manual_seed(model_seed)
    train, val = data()
    kw.setdefault("model_config", {"hidden": hidden, "dropout": dropout})
    return Trainer(MLP(hidden, dropout), config, train_data=train, val_data=val, **kw)


def const_monitor_step(model, batch):
    """A real loss plus a term that never improves (drives plateau / early stopping)."""
    out = dict(model.compute_losses(*batch))
    out["flat"] = torch.tensor(1.0)
    return out


# --------------------------------------------------------------------------- training


def test_losses_decrease_and_history_has_every_term():
    h = make(cfg(epochs=6)).fit()
    assert len(h) == 6 and h.epochs == [1, 2, 3, 4, 5, 6]
    assert h.train[-1]["loss"] < h.train[0]["loss"]
    assert h.val[-1]["loss"] < h.val[0]["loss"]
    terms = {"loss", "ce", "l2", "metric_accuracy"}
    assert all(set(r) == terms for r in h.train) and all(set(r) == terms for r in h.val)
    assert h.train[0]["loss"] == pytest.approx(h.train[0]["ce"] + h.train[0]["l2"], rel=1e-5)
    assert all(t > 0 for t in h.epoch_time) and all(r > 0 for r in h.images_per_s)
    assert h.lr == [1e-2] * 6

    df = h.to_frame()
    assert list(df.columns) == ["epoch", "split", "term", "value"]
    counts = df.groupby(["split", "term"]).size()
    for split in ("train", "val"):
        for term in terms:
            assert counts[(split, term)] == 6
    assert counts[("train", "lr")] == 6 and counts[("train", "images_per_s")] == 6
    assert h.series("loss", "val").shape == (6,)


def test_seeded_runs_are_identical_and_history_roundtrips():
    a, b = make(cfg(epochs=2)), make(cfg(epochs=2))
    ha, hb = a.fit(), b.fit()
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert ha.train == hb.train and ha.val == hb.val
    assert History.from_dict(ha.to_dict()).to_dict() == ha.to_dict()
    assert seed_everything(5) == 5


def test_plateau_schedule_reduces_lr_after_patience_with_min_lr():
    c = cfg(epochs=6, lr=0.1, schedule="plateau", factor=0.5, patience=2, min_lr=0.04, monitor="flat")
    h = make(c, step_fn=const_monitor_step).fit()
    # Epoch 1 sets the best; epochs 2-3 bring no improvement -> x0.5 from epoch 4; the count
    # restarts, epochs 4-5 -> x0.5 again from epoch 6, but 0.025 is clamped to min_lr.
    assert h.lr == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.04])
    assert h.best_epoch == 1 and not h.stopped_early


def test_step_and_exponential_schedules():
    h = make(cfg(epochs=5, lr=0.1, schedule="step", step_size=2, gamma=0.5)).fit()
    assert h.lr == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    h = make(cfg(epochs=3, lr=0.1, schedule="exponential", gamma=0.9, optimizer="adamw")).fit()
    assert h.lr == pytest.approx([0.1, 0.09, 0.081])


def test_early_stopping_stops():
    c = cfg(epochs=20, early_stopping_patience=3, monitor="flat", optimizer="sgd", momentum=0.9, nesterov=True)
    t = make(c, step_fn=const_monitor_step)
    h = t.fit()
    assert len(h) == 4 and h.stopped_early and h.best_epoch == 1


def test_monitor_max_mode_and_missing_monitor():
    t = make(cfg(epochs=2, monitor="metric_accuracy", mode="max"))
    assert t.fit().best_epoch in (1, 2)
    with pytest.raises(ParameterError, match="nope"):
        make(cfg(epochs=1, monitor="nope")).fit()


def test_cnn_channels_last_bf16_evaluate_and_predict():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 2, 8, 8, generator=g)
    y = torch.randint(0, 3, (24,), generator=g)
    ds = TensorDataset(x, y)
    torch.manual_seed(0)
    t = Trainer(CNN(), cfg(epochs=2, batch_size=8, amp=True, channels_last=True), step_fn=classification_step,
                train_data=ds, val_data=ds)
    assert t.amp_dtype == torch.bfloat16 and t.channels_last
    assert t.model.conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    h = t.fit()
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in h.train)
    ev = t.evaluate(ds)
    assert set(ev) == {"loss", "metric_accuracy"} and 0 <= ev["metric_accuracy"] <= 1
    pred = t.predict(ds)
    assert pred.shape == (24, 3) and pred.dtype == torch.float32
    both = t.predict(ds, lambda m, b: {"logits": m(b[0]), "y": b[1]})
    assert torch.equal(both["y"], y)
    # "auto" is off on CPU
    t2 = Trainer(CNN(), cfg(epochs=1), step_fn=classification_step, train_data=ds)
    assert t2.amp_dtype is None and not t2.channels_last


def test_progress_bar_and_env_switch(capsys, monkeypatch):
    monkeypatch.delenv("ATLASKIT_NO_PROGRESS", raising=False)
    make(cfg(epochs=1, progress=True, log_every=2)).fit()
    assert "epoch" in capsys.readouterr().err
    monkeypatch.setenv("ATLASKIT_NO_PROGRESS", "1")
    t = make(cfg(epochs=1, progress=True))
    assert not t._progress()
    t.fit()
    assert capsys.readouterr().err == ""


def test_contract_errors():
    train, _ = data()
    with pytest.raises(ParameterError, match="compute_losses"):
        Trainer(nn.Linear(8, 3), cfg(), train_data=train)
    with pytest.raises(TrainingError, match="'loss'"):
        Trainer(nn.Linear(8, 3), cfg(), step_fn=lambda m, b: {"ce": m(b[0]).sum()}, train_data=train).fit()
    with pytest.raises(ParameterError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ParameterError, match="schedule"):
        TrainConfig(schedule="cosine")
    with pytest.raises(ParameterError, match="device"):
        Trainer(MLP(), TrainConfig(device="warp-drive"), train_data=train)
    assert issubclass(CheckpointError, AtlaskitError) and issubclass(TrainingError, AtlaskitError)


# --------------------------------------------------------------------------- checkpoints and resume


class InterruptAt:
    """step_fn that raises KeyboardInterrupt on a given global training step (0-based)."""

    def __init__(self, step: int):
        self.step, self.seen = step, 0

    def __call__(self, model, batch):
        if model.training:
            if self.seen == self.step:
                raise KeyboardInterrupt
            self.seen += 1
        return model.compute_losses(*batch)


def test_resume_after_interrupt_is_exact(tmp_path, capsys):
    a = make(cfg(checkpoint_dir=tmp_path / "a"))
    ha = a.fit()
    assert (tmp_path / "a" / "last.pt").is_file() and (tmp_path / "a" / "best.pt").is_file()

    # 96 / 16 = 6 steps per epoch: step 14 is the third step of epoch 3.
    b = make(cfg(checkpoint_dir=tmp_path / "b"), step_fn=InterruptAt(14))
    with pytest.raises(KeyboardInterrupt):
        b.fit()
    err = capsys.readouterr().err
    assert "epoch 3" in err and "resume" in err and "epoch 2" in err
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epochs_done"] == 2
    assert not [p for p in (tmp_path / "b").iterdir() if p.suffix == ".tmp"]

    torch.manual_seed(123)  # the resumed process starts from other weights and RNG state
    b2 = make(cfg(checkpoint_dir=tmp_path / "b"), model_seed=99)
    hb = b2.fit()  # resume="auto"
    sa, sb = a.model.state_dict(), b2.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert hb.epochs == ha.epochs and hb.train == ha.train and hb.val == ha.val
    assert hb.lr == ha.lr and hb.best_epoch == ha.best_epoch
    best = load_checkpoint(tmp_path / "b" / "best.pt")
    assert b2.load_best() == hb.best_epoch == best["epochs_done"]
    assert all(torch.equal(v, best["model"][k]) for k, v in b2.model.state_dict().items())

    # a finished run returns at once; more epochs continue it (epochs is not fingerprinted)
    assert make(cfg(checkpoint_dir=tmp_path / "b")).fit().epochs == [1, 2, 3, 4]
    assert make(cfg(epochs=5, checkpoint_dir=tmp_path / "b")).fit().epochs == [1, 2, 3, 4, 5]


def test_interrupt_while_saving_keeps_previous_checkpoint(tmp_path, monkeypatch):
    make(cfg(epochs=1, checkpoint_dir=tmp_path)).fit()
    before = (tmp_path / "last.pt").read_bytes()
    real_save = torch.save

    def half_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(KeyboardInterrupt):
        make(cfg(epochs=2, checkpoint_dir=tmp_path)).fit()
    monkeypatch.setattr(torch, "save", real_save)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert load_checkpoint(tmp_path / "last.pt")["epochs_done"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_checkpoint_of_other_config_is_refused(tmp_path):
    make(cfg(epochs=1, checkpoint_dir=tmp_path), dropout=0.2).fit()
    other = make(cfg(epochs=2, checkpoint_dir=tmp_path), dropout=0.3)
    with pytest.raises(CheckpointError) as info:
        other.fit()
    msg = str(info.value)
    old = load_checkpoint(tmp_path / "last.pt")["fingerprint"]
    assert "model.dropout: 0.2 in the checkpoint, 0.3 now" in msg
    assert old[:12] in msg and other.fingerprint[:12] in msg
    with pytest.raises(CheckpointError, match="train.lr"):
        make(cfg(epochs=2, lr=0.5, checkpoint_dir=tmp_path), dropout=0.2).fit()
    # resume=False starts over and overwrites
    assert other.fit(resume=False).epochs == [1, 2]
    with pytest.raises(CheckpointError, match="no checkpoint"):
        make(cfg(checkpoint_dir=tmp_path / "empty")).fit(resume=True)


class Evil:
    pass


def test_loading_is_weights_only(tmp_path, monkeypatch):
    make(cfg(epochs=1, checkpoint_dir=tmp_path)).fit()
    calls = []
    real_load = torch.load

    def spy(*a, **k):
        calls.append(k)
        return real_load(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    assert make(cfg(epochs=1, checkpoint_dir=tmp_path)).fit().epochs == [1]
    assert calls and all(k.get("weights_only") is True for k in calls)
    monkeypatch.setattr(torch, "load", real_load)

    # a checkpoint holding an arbitrary Python object is refused, not unpickled
    ckpt = load_checkpoint(tmp_path / "last.pt")
    ckpt["payload"] = Evil()
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="Evil.*arbitrary code"):
        make(cfg(epochs=2, checkpoint_dir=tmp_path)).fit()

    # truncated and empty files give a clear error too
    good = tmp_path / "good.pt"
    T.save_checkpoint({"format": T.CHECKPOINT_FORMAT, "x": torch.ones(1000)}, good)
    blob = good.read_bytes()
    for cut in (len(blob) // 2, 0):
        (tmp_path / "last.pt").write_bytes(blob[:cut])
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            make(cfg(epochs=2, checkpoint_dir=tmp_path)).fit()
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an atlaskit"):
        load_checkpoint(tmp_path / "other.pt")


# --------------------------------------------------------------------------- distributed


def _load_worker():
    spec = importlib.util.spec_from_file_location("_ddp_worker", Path(__file__).with_name("_ddp_worker.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_ddp_two_processes_gloo(tmp_path):
    """Two CPU ranks (gloo) under torchrun, global batch 16 (8 per rank).

    Asserted: (1) both ranks end with bit-identical weights (DDP's contract); (2) weights and
    logged losses match a single-process run with batch 16 to float tolerance — same samples per
    global step because the DistributedSampler permutation depends only on (seed, epoch), and
    averaging two per-rank mean gradients equals the mean over 16; only the summation order
    differs, hence allclose rather than equal.
    """
    env = dict(os.environ, ATLASKIT_NO_PROGRESS="1", OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    worker = Path(__file__).with_name("_ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(worker), str(tmp_path)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"torchrun timed out after 90 s: {exc.stderr}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["distributed"] and r0["world_size"] == 2 and r0["main"] and not r1["main"]
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert r0["history"]["train"] == r1["history"]["train"]
    assert (tmp_path / "ckpt" / "last.pt").is_file()

    worker_mod = _load_worker()
    single, h = worker_mod.run()
    assert not single.distributed
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(r0["state"][k], v, rtol=1e-5, atol=1e-6)
    for split in ("train", "val"):
        for ddp_rec, ref in zip(r0["history"][split], getattr(h, split)):
            assert ddp_rec.keys() == ref.keys()
            for term in ref:
                assert ddp_rec[term] == pytest.approx(ref[term], rel=1e-5, abs=1e-6), (split, term)
    assert h.train[-1]["loss"] < h.train[0]["loss"]


def test_compiled_step_matches_eager_and_shares_the_fingerprint():
    """``compile=True`` changes how the step runs, not what it computes (to rounding)."""
    eager = make(cfg(epochs=2), dropout=0.0)
    compiled = make(cfg(epochs=2, compile=True), dropout=0.0)
    assert compiled.fingerprint == eager.fingerprint  # a compiled run may resume an eager one
    h_eager, h_compiled = eager.fit(), compiled.fit()
    np.testing.assert_allclose([r["loss"] for r in h_compiled.train], [r["loss"] for r in h_eager.train],
                               rtol=1e-4)
    for (name, a), (_, b) in zip(eager.model.state_dict().items(), compiled.model.state_dict().items()):
        # atol: the bias before batch norm gets a ~0 gradient that Adam normalises, so its
        # rounding differences grow to ~5e-5; everything else agrees to ~1e-7.
        torch.testing.assert_close(b, a, rtol=1e-4, atol=2e-4, msg=name)


# --------------------------------------------------------------------------- activation recomputation
class ResidualCNN(nn.Module):
    """Conv-BN-act blocks and a residual unit: what ``recompute_activations`` acts on."""

    def __init__(self):
        super().__init__()
        from atlaskit.models.blocks import ConvBNAct, ResidualBlock

        self.net = nn.Sequential(ConvBNAct(2, 6), ResidualBlock(6), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(6, 3))

    def compute_losses(self, x, y):
        return {"loss": F.cross_entropy(self.net(x), y)}


def test_recompute_activations_trains_bit_identically():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(48, 2, 8, 8, generator=g), torch.randint(0, 3, (48,), generator=g)
    runs = []
    for recompute in (False, True, "residual"):
        torch.manual_seed(0)
        trainer = Trainer(ResidualCNN(), cfg(epochs=2, recompute_activations=recompute),
                          train_data=TensorDataset(x, y))
        runs.append((trainer, trainer.fit()))
    (plain, h_plain), *recomputed = runs
    for rec, h_rec in recomputed:
        assert rec.fingerprint == plain.fingerprint  # a memory setting: either may resume the other
        assert [r["loss"] for r in h_rec.train] == [r["loss"] for r in h_plain.train]
        for (name, a), (_, b) in zip(plain.model.state_dict().items(), rec.model.state_dict().items()):
            assert torch.equal(a, b), name


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_fused_optimizer_trains_like_the_loop(optimizer):
    extra = {"momentum": 0.9, "weight_decay": 1e-3} if optimizer == "sgd" else {"weight_decay": 1e-2}
    runs = {}
    for fused in (False, "auto"):
        trainer = make(cfg(epochs=3, optimizer=optimizer, fused_optimizer=fused, **extra))
        runs[fused] = (trainer, trainer.fit())
    (loop, h_loop), (fast, h_fast) = runs[False], runs["auto"]
    assert fast.optimizer.defaults.get("fused") is True and not loop.optimizer.defaults.get("fused")
    assert fast.fingerprint == loop.fingerprint  # rounding only: either may resume the other
    np.testing.assert_allclose([r["loss"] for r in h_fast.train], [r["loss"] for r in h_loop.train],
                               rtol=1e-5)
    # atol 1e-4: the bias of the linear layer before batch norm has a gradient of rounding noise
    # only (batch norm removes it), which Adam's normalised step turns into 1e-5-sized moves that
    # differ between two operation orders; every other weight agrees to ~1e-7
    for (name, a), (_, b) in zip(loop.model.state_dict().items(), fast.model.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4, msg=name)


def test_fused_optimizer_resumes_a_loop_checkpoint(tmp_path):
    first = make(cfg(epochs=2, fused_optimizer=False, checkpoint_dir=tmp_path))
    first.fit()
    resumed = make(cfg(epochs=3, fused_optimizer="auto", checkpoint_dir=tmp_path))
    history = resumed.fit()
    assert history.epochs == [1, 2, 3] and resumed.optimizer.defaults["fused"] is True


def test_fused_optimizer_errors():
    with pytest.raises(ParameterError, match="fused_optimizer"):
        TrainConfig(fused_optimizer="yes")
    from atlaskit.train.trainer import _optimizer_implementation

    assert _optimizer_implementation(True, list(MLP().parameters())) == {"fused": True}
    assert _optimizer_implementation(False, list(MLP().parameters())) == {}
    assert _optimizer_implementation("auto", [torch.zeros(2, dtype=torch.int64)]) == {}
    with pytest.raises(ParameterError, match="no fused optimizer step"):
        _optimizer_implementation(True, [torch.zeros(2, dtype=torch.int64)])


def test_recompute_activations_errors():
    with pytest.raises(ParameterError, match="use one of the two"):
        TrainConfig(compile=True, recompute_activations=True)
    with pytest.raises(ParameterError, match="use one of the two"):
        TrainConfig(compile=True, recompute_activations="residual")
    with pytest.raises(ParameterError, match="expected True, False, 'elementwise' or 'residual'"):
        TrainConfig(recompute_activations="yes")
    with pytest.raises(ParameterError, match="expected True or False"):
        TrainConfig(compile="yes")
    train, _ = data()
    with pytest.raises(ParameterError, match="no ConvBNAct, ResidualBlock or MBConv"):
        Trainer(MLP(), cfg(recompute_activations=True), train_data=train)
