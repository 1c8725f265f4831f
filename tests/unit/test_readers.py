"""Readers of the public image formats (atlaskit.data.readers)."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from atlaskit.data.readers import (
    hpa_ids,
    iter_opencell_folder,
    load_label_npy,
    parse_deepyeast_list,
    read_deepyeast_classes,
    read_deepyeast_list,
    read_hpa_folder,
    read_hpa_labels,
    read_npz_crops,
    read_opencell_folder,
)
from atlaskit.errors import AtlaskitError, DataError, ParameterError


def _fetch_or_skip(name: str, *, group: bool = False) -> Path:
    """A registered file (or, with ``group``, folder) from the cache or mirror; skip without one."""
    from atlaskit.data.registry import fetch, fetch_group

    try:
        return fetch_group(name) if group else fetch(name)
    except AtlaskitError as err:
        pytest.skip(f"{name} unavailable: {err}")


# --------------------------------------------------------------------------- OpenCell


def _write_protein(folder: Path, name: str, n: int, seed: int, extra_label_col: bool = False):
    rng = np.random.default_rng(seed)
    np.save(folder / f"{name}_pro.npy", rng.random((n, 100, 100), dtype=np.float32))
    np.save(folder / f"{name}_nuc.npy", rng.random((n, 100, 100), dtype=np.float32))
    np.save(folder / f"{name}_nucdist.npy", rng.normal(0, 30, (n, 100, 100)).astype(np.float32))
    cols = [f"ENSG{seed:011d}", name, "nucleoplasm;cytoplasm"] + (["fov_3"] if extra_label_col else [])
    labels = np.array([cols] * n, dtype=object)  # the public files are object arrays (pickles)
    np.save(folder / f"{name}_label.npy", labels, allow_pickle=True)


@pytest.fixture()
def opencell(tmp_path):
    _write_protein(tmp_path, "ACTB", 3, 1)
    _write_protein(tmp_path, "LMNB1", 2, 2, extra_label_col=True)
    return tmp_path


def test_read_opencell_folder(opencell):
    images, meta = read_opencell_folder(opencell)
    assert images.shape == (5, 3, 100, 100) and images.dtype == np.float32
    assert meta["protein"].tolist() == ["ACTB"] * 3 + ["LMNB1"] * 2
    assert meta["ensg_id"].iloc[0] == "ENSG00000000001" and meta["localization"].iloc[0] == "nucleoplasm;cytoplasm"
    assert meta["crop"].tolist() == [0, 1, 2, 0, 1] and meta["label_3"].iloc[-1] == "fov_3"
    np.testing.assert_array_equal(images[3, 0], np.load(opencell / "LMNB1_pro.npy")[0])
    # the cytoself model input: protein + scaled distance
    two, _ = read_opencell_folder(
        opencell, proteins=["LMNB1"], channels=("pro", "nucdist"), scale={"nucdist": 0.01}
    )
    assert two.shape == (2, 2, 100, 100)
    np.testing.assert_allclose(two[:, 1], np.load(opencell / "LMNB1_nucdist.npy") * 0.01, rtol=1e-6)
    batches = list(iter_opencell_folder(opencell))
    assert [len(b[0]) for b in batches] == [3, 2]


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda f: (f / "ACTB_nuc.npy").unlink(), "ACTB_nuc.npy: channel file missing"),
        (lambda f: np.save(f / "ACTB_pro.npy", np.ones((3, 64, 64), np.float32)), "ACTB_pro.npy: expected"),
        (lambda f: np.save(f / "ACTB_pro.npy", np.random.rand(4, 100, 100)), "ACTB_pro.npy: 4 crops"),
        (lambda f: np.save(f / "ACTB_nuc.npy", np.full((3, 100, 100), np.nan)), "ACTB_nuc.npy: crop 0 contains NaN"),
        (lambda f: np.save(f / "ACTB_pro.npy", np.zeros((3, 100, 100))), "ACTB_pro.npy: crop 0 is empty"),
        (lambda f: np.save(f / "ACTB_pro.npy", np.ones((3, 100, 100), bool)), "ACTB_pro.npy: unsupported dtype"),
        (lambda f: (f / "ACTB_label.npy").write_bytes(b"garbage"), "ACTB_label.npy"),
    ],
)
def test_opencell_bad_inputs_name_the_file(opencell, damage, match):
    damage(opencell)
    with pytest.raises(DataError, match=match):
        read_opencell_folder(opencell)


def test_opencell_missing_folder_or_protein(tmp_path, opencell):
    with pytest.raises(DataError, match="folder not found"):
        read_opencell_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="no \\*_label.npy"):
        read_opencell_folder(_empty(tmp_path))
    with pytest.raises(DataError, match="TP53_label.npy"):
        read_opencell_folder(opencell, proteins=["TP53"])


def _empty(tmp_path: Path) -> Path:
    p = tmp_path / "empty"
    p.mkdir()
    return p


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_label_files_are_read_without_running_code(tmp_path):
    arr = np.empty((1, 1), dtype=object)
    arr[0, 0] = _Evil()
    np.save(tmp_path / "X_label.npy", arr, allow_pickle=True)
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_label_npy(tmp_path / "X_label.npy")
    plain = np.array([["a", "b", "c"]])
    np.save(tmp_path / "Y_label.npy", plain)
    np.testing.assert_array_equal(load_label_npy(tmp_path / "Y_label.npy"), plain)


# --------------------------------------------------------------------------- HPA


COLORS = ("blue", "green", "red", "yellow")


def _write_hpa(folder: Path, ident: str, size=32, dtype=np.uint8, skip=()):
    rng = np.random.default_rng(sum(map(ord, ident)))
    top = np.iinfo(dtype).max
    for k, color in enumerate(COLORS):
        if color in skip:
            continue
        img = rng.integers(0, top // 4, (size, size)).astype(dtype)
        img[0, 0] = top // (k + 1)  # a per-channel signature: max = top / (k + 1)
        iio.imwrite(folder / f"{ident}_{color}.png", img)


@pytest.fixture()
def hpa(tmp_path):
    folder = tmp_path / "hpa"
    folder.mkdir()
    _write_hpa(folder, "a1")
    _write_hpa(folder, "b2", dtype=np.uint16)
    csv = tmp_path / "train.csv"
    csv.write_text("Id,Target\na1,16 0\nb2,7\nc3,1 2 3\n")
    return folder, csv


def test_read_hpa_folder_order_and_range(hpa):
    folder, csv = hpa
    images, meta = read_hpa_folder(folder, csv, size=16)
    assert images.shape == (2, 4, 16, 16) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert meta["id"].tolist() == ["a1", "b2"] and meta["target"].tolist() == ["16 0", "7"]
    assert meta["n_labels"].tolist() == [2, 1] and (meta["source_height"] == 32).all()
    full, _ = read_hpa_folder(folder, csv, size=32)  # no resize: exact signatures
    # channel order (green, blue, red, yellow): maxima 1/2, 1/1, 1/3, 1/4 of the dtype range
    np.testing.assert_allclose(full[0].max(axis=(1, 2)), [127 / 255, 1.0, 85 / 255, 63 / 255], rtol=1e-6)
    np.testing.assert_allclose(full[1].max(axis=(1, 2)), [32767 / 65535, 1.0, 21845 / 65535, 16383 / 65535], rtol=1e-6)


def test_hpa_missing_channel(hpa):
    folder, csv = hpa
    (folder / "a1_red.png").unlink()
    with pytest.raises(DataError, match="a1_red.png: channel file missing"):
        read_hpa_folder(folder, csv, size=16)
    images, meta = read_hpa_folder(folder, csv, size=16, missing="zeros")
    assert (images[0, 2] == 0).all() and meta["missing_channels"].tolist() == ["red", ""]


@pytest.mark.parametrize(
    "damage, match",
    [
        (
            lambda f: iio.imwrite(f / "a1_green.png", np.zeros((32, 32, 3), np.uint8) + 9),
            "a1_green.png: expected a single-channel",
        ),
        (lambda f: iio.imwrite(f / "a1_green.png", np.full((32, 32), 7, np.uint8)), "a1_green.png: image is empty"),
        (lambda f: iio.imwrite(f / "a1_red.png", np.eye(16, dtype=np.uint8)), "a1_red.png: size"),
        (lambda f: (f / "a1_blue.png").write_bytes(b"not a png"), "a1_blue.png: cannot read"),
        (lambda f: _write_hpa(f, "zz"), "no label row for image id 'zz'"),
    ],
)
def test_hpa_bad_images(hpa, damage, match):
    folder, csv = hpa
    damage(folder)
    with pytest.raises(DataError, match=match):
        read_hpa_folder(folder, csv, size=16)


@pytest.mark.parametrize(
    "text, match",
    [
        ("Id,Label\na1,0\n", "expected columns Id,Target"),
        ("Id,Target\na1,zero\n", "line 2: Target 'zero'"),
        ("Id,Target\na1,0 28\n", "line 2: class index outside"),
        ("Id,Target\na1,0\na1,1\n", "duplicate Id 'a1'"),
        ("Id,Target\na1,\n", "line 2: empty"),
    ],
)
def test_hpa_bad_label_tables(tmp_path, text, match):
    csv = tmp_path / "labels.csv"
    csv.write_text(text)
    with pytest.raises(DataError, match=match):
        read_hpa_labels(csv)


def test_real_hpa_sample_images():
    labels_csv = _fetch_or_skip("hpa/kaggle2018-train-labels.csv")
    # the mirror's sample holds one channel file per image id; one id per channel here
    files = {
        "green": "0fa556f8-bbab-11e8-b2ba-ac1f6b6435d0_green.png",
        "blue": "00822d20-bbc1-11e8-b2bb-ac1f6b6435d0_blue.png",
        "red": "0992f466-bbae-11e8-b2ba-ac1f6b6435d0_red.png",
        "yellow": "02070102-bbb7-11e8-b2ba-ac1f6b6435d0_yellow.png",
    }
    paths = {c: _fetch_or_skip(f"hpa/kaggle2018-sample/{name}") for c, name in files.items()}
    folder = paths["green"].parent
    ids = [name.rsplit("_", 1)[0] for name in files.values()]
    assert set(ids) <= set(hpa_ids(folder))
    images, meta = read_hpa_folder(folder, labels_csv, ids=ids, size=256, missing="zeros")
    assert images.shape == (4, 4, 256, 256) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    table = pd.read_csv(labels_csv).set_index("Id")
    assert meta["target"].tolist() == [table.at[i, "Target"] for i in ids]
    assert (meta["source_height"] == 512).all()
    for k, color in enumerate(files):  # the present channel lands at its documented position
        present = images[k].reshape(4, -1).std(axis=1) > 0
        assert present.tolist() == [j == k for j in range(4)], color
        assert set(meta.loc[k, "missing_channels"].split()) == set(files) - {color}
    with pytest.raises(DataError, match="_green.png: channel file missing"):
        read_hpa_folder(folder, labels_csv, ids=ids[1:2])


# --------------------------------------------------------------------------- DeepYeast


def _yeast_png(path: Path, seed: int, size=64, gfp=True, rfp=True):
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.uint8)
    if gfp:
        img[..., 1] = rng.integers(0, 200, (size, size))
    if rfp:
        img[..., 0] = rng.integers(0, 100, (size, size))
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, img)
    return img


@pytest.fixture()
def yeast(tmp_path):
    root = tmp_path / "main"
    a = _yeast_png(root / "plate01" / "a.png", 1)
    _yeast_png(root / "plate02" / "b.png", 2)
    lst = tmp_path / "HOwt_train.txt"
    lst.write_text("plate01/a.png 3\nplate02/b.png 0\n")
    doc = tmp_path / "HOwt_doc.txt"
    doc.write_text("label;label_idx\ncell periphery;0\ncytoplasm;1\nendosome;2\ner;3\n")
    return root, lst, doc, a


def test_read_deepyeast_list(yeast):
    root, lst, doc, a = yeast
    images, meta = read_deepyeast_list(lst, root, classes=doc)
    assert images.shape == (2, 2, 64, 64) and images.dtype == np.float32
    np.testing.assert_allclose(images[0, 0], a[..., 1] / 255.0)  # channel 0 = GFP = green
    np.testing.assert_allclose(images[0, 1], a[..., 0] / 255.0)  # channel 1 = RFP = red
    assert meta["label_idx"].tolist() == [3, 0] and meta["label"].tolist() == ["er", "cell periphery"]
    assert read_deepyeast_list(lst, root)[1].columns.tolist() == ["path", "label_idx"]


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda r, l: (r / "plate01" / "a.png").unlink(), "a.png: file not found"),
        (lambda r, l: iio.imwrite(r / "plate01" / "a.png", np.zeros((32, 32, 3), np.uint8) + 1), "expected 64x64"),
        (lambda r, l: iio.imwrite(r / "plate01" / "a.png", np.arange(4096, dtype=np.uint16).reshape(64, 64)), "RGB"),
        (lambda r, l: _yeast_png(r / "plate01" / "a.png", 1, rfp=False), "a.png: RFP \\(red\\) channel is empty"),
        (lambda r, l: l.write_text("plate01/a.png\n"), "line 1: expected 'path label_idx'"),
        (lambda r, l: l.write_text("plate01/a.png x\n"), "line 1: label 'x'"),
        (lambda r, l: l.write_text("plate01/a.png 9\n"), "label 9 but only 4 classes"),
        (lambda r, l: l.write_text("\n"), "no entries"),
    ],
)
def test_deepyeast_bad_inputs(yeast, damage, match):
    root, lst, doc, _ = yeast
    damage(root, lst)
    with pytest.raises(DataError, match=match):
        read_deepyeast_list(lst, root, classes=doc)


def test_real_deepyeast_split_files():
    train = _fetch_or_skip("yeast/deepyeast-splits/HOwt_train.txt")
    doc = _fetch_or_skip("yeast/deepyeast-splits/HOwt_doc.txt")
    classes = read_deepyeast_classes(doc)
    assert len(classes) == 12 and classes[0] == "cell periphery" and classes[-1] == "vacuole"
    table = parse_deepyeast_list(train)
    assert len(table) == 65000 and table["label_idx"].between(0, 11).all()
    assert table["path"].str.endswith(".png").all()
    transfer = read_deepyeast_classes(_fetch_or_skip("yeast/deepyeast-splits/HOwt_transfer_doc.txt"))
    assert transfer == ["actin", "bud neck", "lipid particle", "microtubule"]


def test_deepyeast_bad_class_file(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("label;label_idx\na;0\nb;2\n")
    with pytest.raises(DataError, match="0..K-1"):
        read_deepyeast_classes(doc)


# --------------------------------------------------------------------------- .npz


def _npz(tmp_path, **arrays):
    path = tmp_path / "crops.npz"
    np.savez(path, **arrays)
    return path


def test_read_npz_crops(tmp_path):
    images = np.random.default_rng(0).random((3, 2, 64, 64)).astype(np.float32)
    path = _npz(tmp_path, images=images, labels=np.array(["vacuole", "er", "vacuole"]))
    x, meta = read_npz_crops(path)
    np.testing.assert_array_equal(x, images)
    assert meta["label"].tolist() == ["vacuole", "er", "vacuole"] and meta["label_idx"].tolist() == [1, 0, 1]
    path = _npz(tmp_path, images=images, labels=np.array(["b", "a", "b"]), classes=np.array(["b", "a"]))
    assert read_npz_crops(path)[1]["label_idx"].tolist() == [0, 1, 0]


def _bad_npz_cases():
    good = np.random.default_rng(0).random((2, 2, 64, 64))
    nan = good.copy()
    nan[1, 0, 0, 0] = np.nan
    const = good.copy()
    const[1] = 0.5
    labels = np.array(["a", "b"])
    return [
        (dict(images=good), "no 'labels'"),
        (dict(images=good, labels=np.array(["a", "b"], dtype=object)), "pickled"),
        (dict(images=good[:, :1], labels=labels), "must be \\(N, 2, 64, 64\\)"),
        (dict(images=(good * 255).astype(np.uint8), labels=labels), "floating point"),
        (dict(images=nan, labels=labels), "NaN"),
        (dict(images=good * 2, labels=labels), "outside \\[0, 1\\]"),
        (dict(images=const, labels=labels), "image 1 is empty"),
        (dict(images=good, labels=labels[:1]), "labels must be \\(N,\\)"),
        (dict(images=good, labels=labels, classes=np.array(["a"])), "not in the file's classes"),
    ]


@pytest.mark.parametrize("arrays, match", _bad_npz_cases())
def test_npz_bad_inputs(tmp_path, arrays, match):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(DataError, match=match) as info:
        read_npz_crops(path)
    assert "crops.npz" in str(info.value)


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_npz_crops(tmp_path / "nope.npz")


def test_cnnfcn_build_data_reads_the_mirror_sample_with_missing_zeros(tmp_path):
    """Chapter 03 with data=real on the mirror's sample: one channel file per image id, so the
    other three channels must be filled with zeros (``missing="zeros"``); the default refuses."""
    from atlaskit.studies import cnnfcn

    folder = _fetch_or_skip("hpa/kaggle2018-sample", group=True)
    labels_csv = _fetch_or_skip("hpa/kaggle2018-train-labels.csv")
    p = cnnfcn.preset("tiny")
    with pytest.raises(DataError, match="channel file missing"):
        cnnfcn.build_data(p, "real", data_dir=folder, labels_csv=labels_csv, root=tmp_path / "err")
    data = cnnfcn.build_data(p, "real", data_dir=folder, labels_csv=labels_csv, root=tmp_path / "ok", missing="zeros")
    n = len(data.meta)
    assert 3 <= n <= p.n_train + p.n_val + p.n_test
    assert len(data.store) == n and data.source == "real"
    images = np.stack([np.asarray(data.store[i]) for i in range(n)])
    assert images.shape == (n, 4, p.image_size, p.image_size)
    # exactly one channel of each image has signal; the three missing ones are zeros
    present = images.reshape(n, 4, -1).max(axis=2) > 0
    assert (present.sum(axis=1) == 1).all()
    assert set(data.meta["split"]) == {"train", "val", "test"}
    with pytest.raises(ParameterError, match="missing must be"):
        cnnfcn.build_data(p, "real", data_dir=folder, labels_csv=labels_csv, root=tmp_path / "x", missing="skip")
