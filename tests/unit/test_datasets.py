"""Datasets, grouped splits, augmentations and loaders (atlaskit.data.datasets)."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from atlaskit.data.datasets import (
    Compose,
    CropDataset,
    RandomChannelGain,
    RandomRot90Flip,
    make_loader,
    protein_disjoint_split,
    split_indices,
    within_group_split,
)
from atlaskit.data.store import ArrayStore
from atlaskit.errors import DataError

N = 24


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "store"
    images = np.arange(N * 2 * 8 * 8, dtype=np.float32).reshape(N, 2, 8, 8)  # (N, 2, 8, 8)
    meta = pd.DataFrame(
        {
            "protein": [f"P{i // 3}" for i in range(N)],
            "localization": ["nucleus" if (i // 3) % 2 else "cytoplasm" for i in range(N)],
            "label_idx": [i % 4 for i in range(N)],
            "target": ["0 3", "2", "1 2 3"] * (N // 3),
        }
    )
    with ArrayStore.create(path, (2, 8, 8), "float16") as w:
        w.append(images / images.max(), meta)
    return w.store


def test_dataset_items_and_labels(store):
    ds = CropDataset(store, indices=[3, 5], label_column="localization")
    assert len(ds) == 2 and ds.classes == ["cytoplasm", "nucleus"]
    x, y = ds[0]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (2, 8, 8)
    np.testing.assert_allclose(x.numpy(), store.images[3].astype(np.float32))
    assert y == 1  # P1 -> nucleus
    assert CropDataset(store, label_column="label_idx")[6][1] == 2
    d = CropDataset(store, label_column=["protein", "label_idx"])[4][1]
    assert d == {"protein": "P1", "label_idx": 0}
    assert CropDataset(store)[7][1] == 7  # no label column: the store index
    ml = CropDataset(store, label_column="target", multilabel=5)[2][1]
    assert ml.dtype == torch.float32 and ml.tolist() == [0, 1, 1, 1, 0]
    only_protein = CropDataset(store, channels=[0])[0][0]
    assert only_protein.shape == (1, 8, 8)
    fixed = CropDataset(store, label_column="localization", classes=["nucleus", "cytoplasm"])
    assert fixed[0][1] == 1
    with pytest.raises(DataError):
        CropDataset(store, label_column="nope")
    with pytest.raises(IndexError):
        CropDataset(store, indices=[N])
    with pytest.raises(IndexError):
        CropDataset(store, channels=[2])


def test_dataset_opens_a_path_and_pickles_small(store):
    ds = CropDataset(store.path, label_column="label_idx", transform=RandomRot90Flip())
    blob = pickle.dumps(ds)
    assert len(blob) < 20_000  # the images (N x 256 B) do not travel
    ds2 = pickle.loads(blob)
    assert len(ds2) == N and ds2[1][1] == 1


def test_rot90flip_covers_the_eight_symmetries():
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    rng = np.random.default_rng(0)
    t = RandomRot90Flip()
    seen = {t(x, rng).tobytes() for _ in range(200)}
    assert len(seen) == 8
    out = t(x, rng)
    assert out.shape == x.shape and out.flags.c_contiguous
    assert sorted(out.ravel()) == sorted(x.ravel())
    xt = torch.from_numpy(x)
    assert len({t(xt, rng).numpy().tobytes() for _ in range(200)}) == 8
    # same generator state, same result; picklable (no lambdas)
    a = t(x, np.random.default_rng(5))
    b = pickle.loads(pickle.dumps(Compose([t])))(x, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_channel_gain_scales_each_channel_by_its_drawn_gain():
    x = np.full((2, 3, 3), 0.25, np.float32)
    x[1] = 0.5
    rng_draws = np.random.default_rng(3).normal(0.0, 0.4, size=2)
    out = RandomChannelGain(0.4)(x, np.random.default_rng(3))
    expected = np.clip(x * np.exp(rng_draws)[:, None, None], 0, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32 and out.shape == x.shape
    # the same draw on a tensor; one channel brighter than 1 is clipped
    t = RandomChannelGain(0.4)(torch.from_numpy(x), np.random.default_rng(3))
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-6)
    bright = RandomChannelGain(5.0)(np.ones((2, 2, 2), np.float32), np.random.default_rng(0))
    assert bright.min() >= 0 and bright.max() <= 1
    # sd 0 is the identity; the log gains have the asked spread
    np.testing.assert_array_equal(RandomChannelGain(0)(x, np.random.default_rng(1)), x)
    small = np.full((1, 1, 1), 0.01, np.float32)
    logs = [np.log(RandomChannelGain(0.3)(small, rng)[0, 0, 0] / 0.01) for rng in [np.random.default_rng(7)] * 2000]
    assert abs(np.std(logs) - 0.3) < 0.02 and abs(np.mean(logs)) < 0.03
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sd must be"):
            RandomChannelGain(bad)
    assert pickle.loads(pickle.dumps(RandomChannelGain(0.3))).sd == 0.3


def _meta(n_proteins=40, per=5):
    rows = []
    for p in range(n_proteins):
        for c in range(per + p % 3):
            rows.append({"protein": f"G{p}", "cls": ["a", "b", "c", "d"][p % 4], "fov": f"G{p}-f{c // 2}"})
    return pd.DataFrame(rows)


def test_protein_disjoint_split():
    meta = _meta()
    split = protein_disjoint_split(meta, fractions=(0.8, 0.1, 0.1), seed=3)
    assert split.index.equals(meta.index) and set(split) == {"train", "val", "test"}
    per_protein = meta.assign(split=split).groupby("protein")["split"].nunique()
    assert (per_protein == 1).all()
    counts = meta.assign(split=split).drop_duplicates("protein")["split"].value_counts()
    assert counts.to_dict() == {"train": 32, "val": 4, "test": 4}
    assert split.equals(protein_disjoint_split(meta, seed=3))
    assert not split.equals(protein_disjoint_split(meta, seed=4))
    idx = split_indices(split)
    assert sum(len(v) for v in idx.values()) == len(meta)
    assert set(meta.loc[idx["train"], "protein"]).isdisjoint(meta.loc[idx["test"], "protein"])


def test_stratified_four_to_one_split():
    meta = _meta()
    split = protein_disjoint_split(meta, fractions=(4, 1), stratify="cls", seed=0)
    assert set(split) == {"train", "test"}
    per = meta.assign(split=split).drop_duplicates("protein").groupby("cls")["split"].value_counts()
    for cls in "abcd":  # 10 proteins per class -> 8 train, 2 test
        assert per[(cls, "train")] == 8 and per[(cls, "test")] == 2
    bad = meta.copy()
    bad.loc[0, "cls"] = "z"
    with pytest.raises(DataError, match="not constant"):
        protein_disjoint_split(bad, stratify="cls")
    with pytest.raises(DataError):
        protein_disjoint_split(meta, group="gene")
    items = protein_disjoint_split(meta, fractions=(0.5, 0.5), balance="items")
    share = (items == "train").mean()
    assert 0.4 < share < 0.6


def test_within_group_split_keeps_fovs_apart():
    meta = _meta(n_proteins=6, per=20)
    split = within_group_split(meta, group="protein", unit="fov", fractions=(0.8, 0.1, 0.1))
    assert (meta.assign(s=split).groupby("fov")["s"].nunique() == 1).all()
    assert (meta.assign(s=split).groupby("protein")["s"].nunique() == 3).all()


def _collect(loader):
    xs, ys = [], []
    for x, y in loader:
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def test_loader_with_two_workers_is_deterministic(store):
    ds = CropDataset(store, label_column="label_idx", transform=Compose([RandomRot90Flip()]))
    runs = [_collect(make_loader(ds, 5, shuffle=True, num_workers=2, seed=7)) for _ in range(2)]
    (xa, ya), (xb, yb) = runs
    assert xa.shape == (N, 2, 8, 8) and xa.dtype == torch.float32
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    other = _collect(make_loader(ds, 5, shuffle=True, num_workers=2, seed=8))[0]
    assert not torch.equal(xa, other)
    # every item exactly once per epoch (pixel sums are rotation invariant)
    sums = sorted(xa.sum(dim=(1, 2, 3)).tolist())
    ref = sorted(torch.from_numpy(store.images[:].astype(np.float32)).sum(dim=(1, 2, 3)).tolist())
    np.testing.assert_allclose(sums, ref, rtol=1e-5)


def test_loader_in_main_process_is_deterministic(store):
    ds = CropDataset(store, label_column="label_idx", transform=RandomRot90Flip())
    a = _collect(make_loader(ds, 8, shuffle=True, seed=1))
    b = _collect(make_loader(ds, 8, shuffle=True, seed=1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
