"""Interop: ``atlaskit.load`` for the four studies' saved models, their weights as safetensors
(``atlaskit export-weights``), and the atlas ``.h5ad`` that scanpy draws in the book's colours."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

import atlaskit
from atlaskit import cli
from atlaskit.errors import AtlaskitError, ParameterError
from atlaskit.loading import export_weights
from atlaskit.train.checkpoints import CheckpointError


def _tensors(out) -> list[torch.Tensor]:
    """Every tensor of a model output (a tensor, tuple, dict or dataclass of them), in order."""
    if isinstance(out, torch.Tensor):
        return [out]
    if dataclasses.is_dataclass(out):
        out = [getattr(out, f.name) for f in dataclasses.fields(out)]
    elif isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _tensors(item)]
    return []


def _same_outputs(a, b, inputs, *, exact: bool = True) -> None:
    """Equal outputs; ``exact=False`` for a model trained in this process, whose tensors may sit in
    another memory layout (channels_last) and take other kernels: equal weights, outputs within
    float32 rounding."""
    with torch.no_grad():
        ta, tb = _tensors(a(*inputs)), _tensors(b(*inputs))
    assert len(ta) == len(tb) > 0
    for x, y in zip(ta, tb):
        assert torch.equal(x, y) if exact else torch.allclose(x, y, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- one tiny saved model per study


def _cytoself(folder):
    from atlaskit.models.cytoself import CytoselfConfig, CytoselfModel
    from atlaskit.train import CHECKPOINT_FORMAT, save_checkpoint

    torch.manual_seed(0)
    cfg = CytoselfConfig.tiny(num_classes=4)
    model = CytoselfModel(cfg).eval()
    save_checkpoint({"format": CHECKPOINT_FORMAT, "model": model.state_dict(),  # as fit_or_reuse stores it
                     "config": {"model": {"model": cfg.to_dict(), "data": "sim", "variant": "full", "repeat": 0}}},
                    folder / "best.pt")
    x = torch.rand(2, cfg.in_channels, cfg.image_size, cfg.image_size)  # (B, C, 100, 100)
    return folder, model, (x,), None


def _cnnfcn(folder):
    from atlaskit.models.cnnfcn import CnnFcnConfig, build_model
    from atlaskit.studies.cnnfcn.data import CLASSES
    from atlaskit.train import CHECKPOINT_FORMAT, save_checkpoint

    torch.manual_seed(0)
    cfg = CnnFcnConfig(image_size=32, base_width=4, fc_hidden=(8, 8))
    model = build_model("cnn", cfg).eval()
    save_checkpoint({"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                     "config": {"model": {"kind": "cnn", "model": cfg.to_dict(), "data": "sim"}}}, folder / "best.pt")
    return folder, model, (torch.rand(2, 4, 32, 32),), tuple(CLASSES)


def _deepyeast(folder):
    from atlaskit.models.deepyeast import DeepYeastConfig, DeepYeastNet
    from atlaskit.studies import deepyeast as dy

    torch.manual_seed(0)
    model = DeepYeastNet(DeepYeastConfig.small(0.125)).eval()
    dy.save_model(model, folder / "deepyeast-model.pt")  # the chapter's file in its run folder
    return folder, model, (torch.rand(2, 2, 64, 64),), tuple(dy.DEEPYEAST_CLASSES)


def _deepgps(run):
    model = run.model.eval()
    cfg = model.config
    torch.manual_seed(0)
    inputs = (torch.randn(2, cfg.seq_dim), torch.rand(2, 1, cfg.image_size, cfg.image_size))
    from atlaskit.studies.deepgps import CLASS_LABELS

    return run.run_dir, model, inputs, tuple(CLASS_LABELS.get(c, c) for c in run.classes)


STUDIES = ("cytoself", "deepgps", "cnnfcn", "deepyeast")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_deepgps_run):
    """``{study: (run folder, the saved model, an input, its class names)}``."""
    makers = {"cytoself": _cytoself, "cnnfcn": _cnnfcn, "deepyeast": _deepyeast}
    out = {name: make(tmp_path_factory.mktemp(name)) for name, make in makers.items()}
    out["deepgps"] = _deepgps(tiny_deepgps_run[1])
    return out


@pytest.mark.parametrize("study", STUDIES)
def test_load_gives_the_saved_model_ready_in_eval_mode(saved, study):
    folder, original, inputs, classes = saved[study]
    model = atlaskit.load(folder)
    assert type(model) is type(original)
    assert model.training is False and not any(m.training for m in model.modules())
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert model.study == study and model.classes == classes and model.source.parent == folder
    state = original.state_dict()
    assert list(model.state_dict()) == list(state)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    _same_outputs(model, original, inputs, exact=study != "deepgps")


@pytest.mark.parametrize("study", STUDIES)
def test_safetensors_round_trip_gives_the_same_outputs(saved, study, tmp_path):
    from safetensors import safe_open

    folder, _, inputs, classes = saved[study]
    from_pt = atlaskit.load(folder)
    out = export_weights(folder, tmp_path / f"{study}.safetensors")
    with safe_open(str(out), framework="pt") as fh:  # readable by the safetensors package alone
        meta = fh.metadata()
        assert set(fh.keys()) == set(from_pt.state_dict())
    assert meta["format"] == "atlaskit.weights/1" and meta["study"] == study
    assert json.loads(meta["classes"]) == (list(classes) if classes else None)
    from_st = atlaskit.load(out)
    assert type(from_st) is type(from_pt) and from_st.training is False
    assert from_st.study == study and from_st.classes == classes and from_st.source == out
    _same_outputs(from_st, from_pt, inputs)


def test_a_checkpoint_file_inside_a_run_loads_like_its_folder(saved):
    for study in ("deepgps", "deepyeast"):
        folder, original, inputs, _ = saved[study]
        file = folder / ("last.pt" if study == "deepgps" else "deepyeast-model.pt")
        _same_outputs(atlaskit.load(file), atlaskit.load(folder), inputs)


def test_a_deepyeast_training_checkpoint_loads_without_class_names(saved, tmp_path):
    """DeepYeast's trainer checkpoint (``last.pt`` beside ``deepyeast-model.pt``) names no classes."""
    from atlaskit.train import CHECKPOINT_FORMAT, save_checkpoint

    _, original, inputs, _ = saved["deepyeast"]
    save_checkpoint({"format": CHECKPOINT_FORMAT, "model": original.state_dict(),  # as deepyeast.train stores it
                     "config": {"model": {"model": original.config.to_dict(), "data": "sim", "source": "sim"}}},
                    tmp_path / "last.pt")
    model = atlaskit.load(tmp_path / "last.pt")
    assert model.study == "deepyeast" and model.classes is None and not model.training
    _same_outputs(model, original, inputs)


def test_inception_network_round_trips_through_safetensors(tmp_path):
    """The fine-tuned Inception-V3 of chapter 03 (its architecture comes from the state dict)."""
    from atlaskit.models.inception import HPAInception, InceptionV3
    from atlaskit.train import CHECKPOINT_FORMAT, save_checkpoint

    torch.manual_seed(0)
    model = HPAInception(InceptionV3(13, aux_logits=False, in_channels=4), input_size=75).eval()
    save_checkpoint({"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                     "config": {"model": {"kind": "inception", "input_size": 75, "data": "sim"}}}, tmp_path / "best.pt")
    x = (torch.rand(1, 4, 75, 75),)
    loaded = atlaskit.load(tmp_path)
    _same_outputs(loaded, model, x)
    _same_outputs(atlaskit.load(export_weights(tmp_path, tmp_path / "inc.safetensors")), model, x)


# --------------------------------------------------------------------------- bad files


def _refused(path) -> str:
    with pytest.raises(AtlaskitError) as info:
        atlaskit.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_unknown_files_are_refused_in_one_line_naming_what_is_accepted(tmp_path, saved):
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    empty = tmp_path / "empty-run"
    empty.mkdir()
    for path in (text, empty, tmp_path / "missing.pt"):
        assert "atlaskit.load accepts" in _refused(path)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)  # a plain torch file, not an atlaskit checkpoint
    assert "unknown format" in _refused(foreign)
    from atlaskit.train import CHECKPOINT_FORMAT, save_checkpoint

    odd = tmp_path / "odd" / "last.pt"  # a trainer checkpoint of a model of none of the studies
    save_checkpoint({"format": CHECKPOINT_FORMAT, "model": {"w": torch.zeros(2)},
                     "config": {"model": {"model": {"width": 3}}}}, odd)
    assert "no model of the four studies" in _refused(odd)
    with pytest.raises(ParameterError, match="device"):
        atlaskit.load(saved["deepyeast"][0], device="tpu")


def test_bad_safetensors_files_are_refused(tmp_path, saved):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"  # tensors without atlaskit's metadata
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.warns(UserWarning, match="no atlaskit checksum"):
        assert "without atlaskit model metadata" in _refused(plain)
    truncated = tmp_path / "cut.safetensors"
    good = export_weights(saved["deepyeast"][0], tmp_path / "good.safetensors")
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="not a readable .safetensors"):
        atlaskit.load(truncated)
    data = bytearray(good.read_bytes())
    data[-5] ^= 0xFF  # a flipped byte in the last tensor
    changed = tmp_path / "changed.safetensors"
    changed.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="failed its integrity check"):
        atlaskit.load(changed)
    with pytest.raises(ParameterError, match="must end in .safetensors"):
        export_weights(saved["deepyeast"][0], tmp_path / "weights.pt")


def test_cli_export_weights(saved, tmp_path, capsys):
    folder = saved["deepyeast"][0]
    out = tmp_path / "dy.safetensors"
    assert cli.main(["export-weights", str(folder), "-o", str(out)]) == 0
    assert f"deepyeast model (DeepYeastNet, 12 classes) → {out}" in capsys.readouterr().out
    assert cli.main(["export-weights", str(tmp_path / "nothing"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("atlaskit: error: ") and "\n" not in err and "atlaskit.load accepts" in err


def test_import_atlaskit_stays_light():
    import subprocess
    import sys

    code = "import sys, atlaskit; print('torch' in sys.modules); atlaskit.load; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


# --------------------------------------------------------------------------- the atlas for scanpy


def test_atlas_h5ad_carries_the_book_colours_and_the_umap_parameters(tmp_path):
    import anndata as ad
    from umap.umap_ import find_ab_params

    from atlaskit.analysis.atlas import FAMILY_COLORS, OTHERS_COLOR, category_colors, export_atlas_h5ad
    from atlaskit.studies.cytoself import place

    families = ["ER", "nucleolus", None, "others", "Golgi", "ER", "a new family", "nucleolus"]
    obs = pd.DataFrame({"gene": [f"G{i}" for i in range(8)], "family": families, "split": ["test"] * 8})
    path = export_atlas_h5ad(tmp_path / "atlas.h5ad", global_features=np.random.default_rng(0).random((8, 5)),
                             umap=np.zeros((8, 2)), obs=obs, uns={"seed": 9},
                             umap_params={"n_neighbors": 5, "min_dist": 0.2, "seed": 3})
    a = ad.read_h5ad(path)
    family = a.obs["family"]
    assert isinstance(family.dtype, pd.CategoricalDtype)
    categories = list(family.cat.categories)
    assert sorted(categories) == sorted(["ER", "nucleolus", "others", "Golgi", "a new family"])  # None: no category
    assert family.isna().sum() == 1
    colors = list(a.uns["family_colors"])
    book = category_colors(categories)
    assert colors == [book[c] for c in categories]
    assert colors[categories.index("ER")] == FAMILY_COLORS["ER"] == "#2ca02c"
    assert colors[categories.index("others")] == OTHERS_COLOR
    assert "split_colors" not in a.uns and "gene_colors" not in a.uns  # only the columns asked for

    params = a.uns["umap"]["params"]
    a_fit, b_fit = find_ab_params(1.0, 0.2)
    assert params["a"] == pytest.approx(a_fit, rel=1e-12) and params["b"] == pytest.approx(b_fit, rel=1e-12)
    assert (params["n_neighbors"], params["min_dist"], params["metric"], params["random_state"]) == (5, 0.2, "euclidean", 3)
    assert "neighbors" not in a.uns  # scanpy would read it as a stored neighbour graph
    # placement reads the same parameters back (the stored seed wins over uns["seed"])
    assert place.atlas_umap_params(a) == {"n_neighbors": 5, "min_dist": 0.2, "metric": "euclidean", "seed": 3}


def test_atlas_h5ad_colour_and_umap_parameter_errors(tmp_path):
    import anndata as ad

    from atlaskit.analysis.atlas import export_atlas_h5ad
    from atlaskit.errors import DataError

    obs = pd.DataFrame({"gene": list("abcd")})
    with pytest.raises(DataError, match=r"color_keys \['family'\] are not obs columns"):
        export_atlas_h5ad(tmp_path / "a.h5ad", global_features=np.zeros((4, 2)), umap=np.zeros((4, 2)), obs=obs,
                          color_keys=("family",))
    with pytest.raises(ParameterError, match="unknown parameter"):
        export_atlas_h5ad(tmp_path / "a.h5ad", global_features=np.zeros((4, 2)), umap=np.zeros((4, 2)), obs=obs,
                          color_keys=(), umap_params={"neighbours": 5})
    assert not (tmp_path / "a.h5ad").exists()
    # by default only a family column is coloured, and an unseeded map has no random_state
    path = export_atlas_h5ad(tmp_path / "b.h5ad", global_features=np.zeros((4, 2)), umap=np.zeros((4, 2)), obs=obs,
                             umap_params={"seed": None})
    a = ad.read_h5ad(path)
    assert not [k for k in a.uns if k.endswith("_colors")]
    assert "random_state" not in a.uns["umap"]["params"] and a.uns["umap"]["params"]["n_neighbors"] == 15
