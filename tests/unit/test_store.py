"""On-disk memory-mapped array store (atlaskit.data.store)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlaskit.data.store import ArrayStore, content_key, store_path
from atlaskit.errors import DataError

SHAPE = (2, 6, 6)


def _batches(n_batches=3, b=4, dtype=np.float32):
    for i in range(n_batches):
        images = np.stack([np.full(SHAPE, i * b + j, dtype) for j in range(b)])  # (b, 2, 6, 6)
        meta = pd.DataFrame(
            {
                "protein": [f"P{i}"] * b,
                "label": np.arange(b) + i,
                "weight": np.linspace(0, 1, b),
                "ok": [True, False] * (b // 2),
                "target": ["0 5", "7", "", "1 2 3"][:b],
            }
        )
        yield images, meta


def test_roundtrip_growable_from_generator(tmp_path):
    path = tmp_path / "crops"
    with ArrayStore.create(path, SHAPE, "float16", params={"seed": 1}, attrs={"channels": ["pro", "nuc"]}) as w:
        w.extend(_batches())
    store = w.store
    assert isinstance(store.images, np.memmap) and not store.images.flags.writeable
    assert store.images.shape == (12,) + SHAPE and store.dtype == np.float16
    assert len(store) == 12 and store.nbytes == 12 * 72 * 2
    assert store[5].dtype == np.float16 and float(store[5][0, 0, 0]) == 5.0
    meta = store.metadata
    assert list(meta.columns) == ["protein", "label", "weight", "ok", "target"]
    assert meta["label"].dtype == np.int64 and meta["weight"].dtype == np.float64
    assert meta["ok"].dtype == bool and meta["protein"].iloc[4] == "P1"
    assert meta["target"].tolist()[:4] == ["0 5", "7", "", "1 2 3"]
    assert store.attrs == {"channels": ["pro", "nuc"]} and store.params == {"seed": 1}
    assert store.key == content_key({"seed": 1})
    # a plain .npy: readable without atlaskit and without pickle
    plain = np.load(path / "images.npy", allow_pickle=False)
    np.testing.assert_array_equal(plain, store.images)
    assert (path / "COMPLETE").read_text().strip() == store.key
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_fixed_size_store_and_wrong_counts(tmp_path):
    w = ArrayStore.create(tmp_path / "fixed", SHAPE, np.uint16, n_items=8)
    w.append(np.ones((8,) + SHAPE, np.uint16))
    store = w.finalize()
    assert store.images.shape == (8,) + SHAPE and store.metadata.shape == (8, 0)

    short = ArrayStore.create(tmp_path / "short", SHAPE, np.uint16, n_items=8)
    short.append(np.ones((3,) + SHAPE, np.uint16))
    with pytest.raises(DataError, match="3 items written, 8 declared"):
        short.finalize()
    assert not (tmp_path / "short").exists()

    over = ArrayStore.create(tmp_path / "over", SHAPE, np.uint16, n_items=2)
    with pytest.raises(DataError, match="more than the declared"):
        over.append(np.ones((3,) + SHAPE, np.uint16))
    over.abort()
    assert not (tmp_path / "over").exists()


def test_interrupted_build_leaves_nothing_valid(tmp_path):
    path = tmp_path / "broken"

    def failing():
        yield from _batches(1)
        raise RuntimeError("generator died")

    with pytest.raises(RuntimeError):
        with ArrayStore.create(path, SHAPE, "float32") as w:
            w.extend(failing())
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    assert not ArrayStore.is_complete(path)


def test_killed_build_is_not_opened_and_is_cleaned(tmp_path):
    path = tmp_path / "killed"
    code = (
        "import os, numpy as np\n"
        "from atlaskit.data.store import ArrayStore\n"
        f"w = ArrayStore.create({str(path)!r}, (2, 6, 6), 'float32')\n"
        "w.append(np.ones((4, 2, 6, 6), np.float32))\n"
        "os._exit(0)\n"  # dies without finalising
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
    leftovers = [p for p in tmp_path.iterdir()]
    assert not path.exists() and len(leftovers) == 1 and leftovers[0].name.startswith(".killed.tmp-")
    # the next build of the same store removes the dead process's temporary folder
    ArrayStore.create(path, SHAPE, "float32").finalize()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed"]


def test_open_rejects_incomplete_or_inconsistent(tmp_path):
    path = tmp_path / "s"
    with ArrayStore.create(path, SHAPE, "float32") as w:
        w.extend(_batches(1))
    (path / "COMPLETE").unlink()
    with pytest.raises(DataError, match="incomplete"):
        ArrayStore.open(path)
    (path / "COMPLETE").write_text("x")
    header = json.loads((path / "store.json").read_text())
    header["n_items"] = 99
    (path / "store.json").write_text(json.dumps(header))
    with pytest.raises(DataError, match="does not match the header"):
        ArrayStore.open(path)
    with pytest.raises(DataError, match="no array store"):
        ArrayStore.open(tmp_path / "nowhere")


def test_content_key_is_canonical():
    assert content_key({"a": 1, "b": (1, 2)}) == content_key({"b": [1, 2], "a": np.int64(1)})
    assert content_key({"a": 1}) != content_key({"a": 2})
    assert content_key({"dtype": np.float32, "p": Path("/x")}) == content_key({"p": "/x", "dtype": "<f4"})
    with pytest.raises(TypeError):
        content_key({"f": object()})
    assert store_path("/root", "crops", {"a": 1}).name == "crops-" + content_key({"a": 1})[:12]


def test_build_reuses_only_identical_parameters(tmp_path):
    path = tmp_path / "cached"
    calls = []

    def make():
        calls.append(1)
        return _batches(2)

    kw = dict(shape_per_item=SHAPE, dtype="float32")
    a = ArrayStore.build(path, make, params={"seed": 0, "n": 8}, **kw)
    b = ArrayStore.build(path, make, params={"n": 8, "seed": 0}, **kw)
    assert len(calls) == 1 and a.key == b.key and len(b) == 8
    c = ArrayStore.build(path, make, params={"seed": 1, "n": 8}, **kw)
    assert len(calls) == 2 and c.key != a.key
    with pytest.raises(DataError, match="other parameters"):
        ArrayStore.open(path, key=a.key)
    ArrayStore.build(path, make, params={"seed": 1, "n": 8}, rebuild=True, **kw)
    assert len(calls) == 3


def test_overwrite_rules(tmp_path):
    path = tmp_path / "s"
    ArrayStore.create(path, SHAPE, "float32").finalize()
    with pytest.raises(DataError, match="already exists"):
        ArrayStore.create(path, SHAPE, "float32")
    ArrayStore.create(path, SHAPE, "float32", overwrite=True).finalize()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not an array store"):
        ArrayStore.create(precious, SHAPE, "float32", overwrite=True)
    assert (precious / "notes.txt").exists()


def test_append_validation(tmp_path):
    w = ArrayStore.create(tmp_path / "v", SHAPE, np.uint16, metadata_columns=["protein"])
    with pytest.raises(DataError, match="does not match items"):
        w.append(np.zeros((2, 3, 6, 6), np.uint16), {"protein": ["a", "b"]})
    with pytest.raises(DataError, match="floating"):
        w.append(np.zeros((2,) + SHAPE, np.float32), {"protein": ["a", "b"]})
    with pytest.raises(DataError, match="required"):
        w.append(np.zeros((2,) + SHAPE, np.uint16))
    with pytest.raises(DataError, match="2 rows for a batch of 3"):
        w.append(np.zeros((3,) + SHAPE, np.uint16), {"protein": ["a", "b"]})
    with pytest.raises(DataError, match="columns"):
        w.append(np.zeros((2,) + SHAPE, np.uint16), {"gene": ["a", "b"]})
    w.append(np.zeros(SHAPE, np.uint16), {"protein": ["single"]})  # one item without batch axis
    store = w.finalize()
    assert len(store) == 1 and store.metadata["protein"].tolist() == ["single"]

    f = ArrayStore.create(tmp_path / "nan", SHAPE, np.float32)
    bad = np.zeros((1,) + SHAPE, np.float32)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        f.append(bad)
    f.abort()


def test_pickle_carries_only_the_path(tmp_path):
    with ArrayStore.create(tmp_path / "p", SHAPE, "float32") as w:
        w.extend(_batches(2))
    blob = pickle.dumps(w.store)
    assert len(blob) < 1000
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.images, w.store.images)
    pd.testing.assert_frame_equal(again.metadata, w.store.metadata)


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_streaming_write_keeps_memory_flat(tmp_path):
    block = np.random.default_rng(0).random((64,) + (2, 100, 100), dtype=np.float32)  # 5 MB

    def gen(n):
        for i in range(n):
            yield block + np.float32(i), {"i": np.full(64, i)}

    before = _rss_mb()
    with ArrayStore.create(tmp_path / "big", (2, 100, 100), "float32") as w:
        w.extend(gen(40))  # 200 MB streamed
    grown = _rss_mb() - before
    assert w.store.nbytes == 40 * 64 * 80000
    assert grown < 60, f"RSS grew by {grown:.0f} MB while writing 205 MB"


# --------------------------------------------------------------------------- Ctrl-C (issue #10)


def test_ctrl_c_mid_build_leaves_nothing_valid_and_the_next_build_succeeds(tmp_path):
    path = tmp_path / "stores" / "crops"
    kw = dict(shape_per_item=SHAPE, dtype="float32", params={"seed": 3})

    def interrupted():
        yield from _batches(2)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ArrayStore.build(path, interrupted, **kw)
    assert not path.exists() and not ArrayStore.is_complete(path)
    with pytest.raises(DataError, match="no array store"):
        ArrayStore.open(path)
    assert [p.name for p in path.parent.iterdir()] == [".locks"]  # no temporary folder left
    # the lock was released (a leaked one would block here) and the build starts over
    store = ArrayStore.build(path, lambda: _batches(3), **kw)
    assert len(store) == 12 and ArrayStore.is_complete(path, content_key({"seed": 3}))


def test_ctrl_c_while_replacing_a_store_keeps_the_previous_one(tmp_path, monkeypatch):
    import atlaskit.data.store as store_module

    path = tmp_path / "crops"
    kw = dict(shape_per_item=SHAPE, dtype="float32")
    old = ArrayStore.build(path, lambda: _batches(1), params={"v": 1}, **kw)
    real_rename, calls = os.rename, []

    def rename(src, dst):  # the first rename moves the old store aside; interrupt the second
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_rename(src, dst)

    monkeypatch.setattr(store_module.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        ArrayStore.build(path, lambda: _batches(2), params={"v": 2}, **kw)
    monkeypatch.undo()
    assert len(calls) == 3 and calls[2] == path  # aside, (interrupted) into place, put back
    kept = ArrayStore.open(path, key=old.key)  # the old store is back in place, intact
    assert len(kept) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks", "crops"]
