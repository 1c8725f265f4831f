"""deepGPS's cell-line-specific model (chapter 02, the paper's Table 2): fields of one cell line,
the variant's training, the comparison with the OpenCell model and its ledger row, real HPA folders."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlaskit.analysis.effects import VERDICTS
from atlaskit.errors import DataError, ParameterError
from atlaskit.studies import deepgps
from atlaskit.studies.deepgps import cellline
from atlaskit.studies.deepgps.baselines import BaselineResult

PRESET = deepgps.preset("ci", epochs=1).replace(image_size=32, width_multiplier=0.0625, images_per_protein=1,
                                                batch_size=8)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    """3 training and 2 test proteins of each single-2 class (the real catalog's split)."""
    table = deepgps.protein_table(0)
    keep = [g for (_, split), grp in deepgps.variant_table(table, "single-2").groupby(["label", "split"])
            for g in grp["gene"].head(3 if split == "train" else 2)]
    return table[table["gene"].isin(keep)].reset_index(drop=True)


# ------------------------------------------------------------------ simulated fields


def test_simulated_fields_shapes_split_and_localization(small, tmp_path):
    images = cellline.build_cellline_data(small, PRESET, seed=0, root=tmp_path)
    assert images.source == "sim" and images.store.images.shape == (10, 2, 32, 32)  # (items, nucleus/protein, S, S)
    x = np.asarray(images.store.images[:], dtype=np.float32)
    assert x.min() >= 0 and x.max() <= 1 and np.allclose(x.max(axis=(2, 3)), 1)  # min-max per channel
    split = dict(zip(small["gene"], small["split"]))
    assert sorted(images.meta["protein"]) == sorted(deepgps.variant_table(small, "single-2")["gene"])
    assert (images.meta["split"] == images.meta["protein"].map(split)).all()
    label = dict(zip(small["gene"], small["single-2"]))
    ratios = {lab: [deepgps.nuclear_ratio(x[i, 1], x[i, 0]) for i in range(len(x))
                    if label[images.meta["protein"].iloc[i]] == lab] for lab in cellline.HPA_CLASS}
    assert min(ratios["nucleoplasm"]) > 1 > max(ratios["cytoplasmic"])  # the OpenCell class is drawn
    again = cellline.build_cellline_data(small, PRESET, seed=0, root=tmp_path)
    assert again.store.key == images.store.key and np.array_equal(np.asarray(again.store.images[:]), x)


def test_hpa_style_specs_and_bad_cell_line(small, tmp_path):
    proteins = deepgps.variant_table(small, "single-2")
    specs = cellline.hpa_style_specs(proteins, seed=0)
    assert [s.info["labels"] for s in specs] == [(cellline.HPA_CLASS[lab],) for lab in proteins["label"]]
    with pytest.raises(ParameterError, match="cell_line"):
        cellline.build_cellline_data(small, PRESET, cell_line="HEK293T", root=tmp_path)
    with pytest.raises(ParameterError, match="no HPA class"):
        cellline.hpa_style_specs(pd.DataFrame({"gene": ["X"], "label": ["er"]}))


# ------------------------------------------------------------------ the variant trains, and is compared


def test_variant_trains_and_is_compared_with_the_opencell_model(small, tmp_path, monkeypatch):
    from atlaskit.commands.predict import latest_export
    from atlaskit.models.sequence import CompositionEmbedder

    monkeypatch.setenv("ATLASKIT_RUNS", str(tmp_path / "runs"))
    embedder = CompositionEmbedder(dipeptides=False)
    feats = deepgps.embed_proteins(small, embedder, cache=tmp_path / "emb")
    fields = cellline.build_cellline_data(small, PRESET, seed=0, root=tmp_path / "stores")
    run = cellline.train_cellline(small, fields, feats, PRESET, embedder=embedder, seed=0, device="cpu")
    assert run.run_dir.name.startswith("deepgps-cellline-u2os-single-2-") and len(run.history) == 1
    assert len(run.train_items) == 6 and len(run.test_items) == 4 and run.variant == "single-2"
    assert latest_export("single-2", tmp_path / "runs") is None  # `atlaskit predict` never picks it by default
    crops = deepgps.build_data(small, PRESET, seed=0, root=tmp_path / "stores")
    opencell = deepgps.train("single-2", small, crops, feats, PRESET, embedder=embedder, seed=0, device="cpu")
    assert opencell.run_dir != run.run_dir

    comparison = cellline.compare_cell_line(run, opencell, fields, small, feats)
    own, other = comparison.names
    assert comparison.quality[own][["protein", "index"]].equals(comparison.quality[other][["protein", "index"]])
    assert len(comparison.floor) == 4 and comparison.n_train == 6
    table = cellline.table2(comparison)
    assert table["metric"].tolist() == list(cellline.METRICS)
    assert table["paper (Table 2)"].isna().all()  # nothing quoted, nothing guessed
    assert table.set_index("metric").loc[["psnr", "ssim"], "mean training image"].notna().all()
    row = cellline.cellline_effect(comparison, n_boot=50, seed=0)
    assert row.verdict in VERDICTS[:3] and row.data == "sim"
    assert np.isclose(row.ours, (comparison.quality[own]["psnr"] - comparison.quality[other]["psnr"]).mean())
    rows = cellline.comparison_rows(comparison, n_boot=50)
    assert len(rows) == 1 and "U-2 OS" in rows["method"].iloc[0] and rows["source"].iloc[0].startswith("ours")


# ------------------------------------------------------------------ the ledger row on hand-made inputs


def _comparison(gain: np.ndarray, *, per_protein: int = 2) -> cellline.CellLineComparison:
    """Two models on the same images: the cell-line model's PSNR is the other's + ``gain`` (one per protein)."""
    genes = np.repeat([f"P{i}" for i in range(len(gain))], per_protein)
    index = np.tile(np.arange(per_protein), len(gain))
    base = 20 + np.arange(len(genes)) % 3
    quality = {"own": pd.DataFrame({"protein": genes, "index": index, "psnr": base + np.repeat(gain, per_protein),
                                    "ssim": 0.5}),
               "other": pd.DataFrame({"protein": genes, "index": index, "psnr": base, "ssim": 0.4})}
    y = np.arange(len(gain)) % 2
    proba = np.eye(2)[y]
    classification = {name: BaselineResult(name, np.array([f"P{i}" for i in range(len(gain))]), y, proba, 6)
                      for name in quality}
    return cellline.CellLineComparison("U-2 OS", "sim", ("own", "other"), quality, classification, 6,
                                       quality["other"][["psnr", "ssim"]])


@pytest.mark.parametrize("gain, verdict", [
    (np.full(10, 2.0) + np.linspace(-0.5, 0.5, 10), "reproduced"),
    (np.full(10, -2.0) + np.linspace(-0.5, 0.5, 10), "reversed"),
    (np.linspace(-2.0, 2.0, 10), "not significant"),
])
def test_row_verdict_follows_the_interval(gain, verdict):
    row = cellline.cellline_effect(_comparison(gain), n_boot=500, seed=0)
    assert row.verdict == verdict
    assert np.isclose(row.ours, gain.mean()) and row.low <= row.ours <= row.high
    assert "SSIM difference +0.100" in row.measure and "accuracy difference on the 10 test proteins +0.000" in row.measure


def test_row_refuses_unpaired_images():
    comparison = _comparison(np.ones(4))
    comparison.quality["other"] = comparison.quality["other"].iloc[::-1].reset_index(drop=True)
    with pytest.raises(ParameterError, match="same images"):
        cellline.cellline_effect(comparison, n_boot=10)


# ------------------------------------------------------------------ real HPA folders


def _write_field(folder, ident, channels=("green", "blue"), seed=0):
    import imageio.v3 as iio

    rng = np.random.default_rng(seed)
    for ch in channels:
        iio.imwrite(folder / f"{ident}_{ch}.png", rng.integers(0, 256, (40, 40), dtype=np.uint8))


def test_real_folder_is_read_by_gene_and_cell_line(small, tmp_path):
    genes = deepgps.variant_table(small, "single-2")["gene"].tolist()
    folder = tmp_path / "hpa"
    folder.mkdir()
    rows = []
    for k, gene in enumerate(genes):
        for line in ("U2OS", "A-431"):
            ident = f"img{k}{line}"
            _write_field(folder, ident, seed=k)
            rows.append({"Id": ident, "Target": "0", "gene": gene, "cell_line": line})
    _write_field(folder, "other", seed=99)
    rows.append({"Id": "other", "Target": "0", "gene": "NOT_A_TARGET", "cell_line": "U2OS"})
    pd.DataFrame(rows).to_csv(folder / "train.csv", index=False)
    images = cellline.build_cellline_data(small, PRESET, hpa_dir=folder, root=tmp_path / "stores")
    assert images.source == "real" and images.store.images.shape == (len(genes), 2, 32, 32)
    assert sorted(images.meta["protein"]) == sorted(genes)  # one U-2 OS image each; A-431 and others left out


def test_bad_hpa_dir_errors(small, tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        cellline.build_cellline_data(small, PRESET, hpa_dir=tmp_path / "missing", root=tmp_path)
    folder = tmp_path / "hpa"
    folder.mkdir()
    with pytest.raises(DataError, match="no train.csv"):
        cellline.build_cellline_data(small, PRESET, hpa_dir=folder, root=tmp_path)
    gene = deepgps.variant_table(small, "single-2")["gene"].iloc[0]
    _write_field(folder, "a", channels=("green",))
    pd.DataFrame({"Id": ["a"], "Target": ["0"]}).to_csv(folder / "train.csv", index=False)
    with pytest.raises(DataError, match="no 'gene' column"):
        cellline.build_cellline_data(small, PRESET, hpa_dir=folder, root=tmp_path)
    pd.DataFrame({"Id": ["a"], "Target": ["0"], "gene": ["NOT_A_TARGET"]}).to_csv(folder / "train.csv", index=False)
    with pytest.raises(DataError, match="no image of a single-2 protein"):
        cellline.build_cellline_data(small, PRESET, hpa_dir=folder, root=tmp_path)
    pd.DataFrame({"Id": ["a"], "Target": ["0"], "gene": [gene], "cell_line": ["HeLa"]}).to_csv(folder / "train.csv",
                                                                                              index=False)
    with pytest.raises(DataError, match="in cell line 'U-2 OS'"):
        cellline.build_cellline_data(small, PRESET, hpa_dir=folder, root=tmp_path)
    pd.DataFrame({"Id": ["a"], "Target": ["0"], "gene": [gene]}).to_csv(folder / "train.csv", index=False)
    with pytest.raises(DataError, match="no blue channel"):  # the nucleus is missing
        cellline.build_cellline_data(small, PRESET, hpa_dir=folder, root=tmp_path)
