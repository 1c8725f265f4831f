"""ESM2 weights for users who have them (issue #19, item 4): the Hugging Face safetensors layout and
fair-esm's .pt read into the same fair-esm model, the ``$ATLASKIT_ESM2`` route, and the data
registry's on-request entries (cache, mirror, sha256, download on request only).

A tiny randomly initialised model of the real ESM2 architecture (2 layers, 16 dims, 2 heads, the
real 33-token alphabet) is written in both layouts; no real weights are shipped or downloaded.
The Hugging Face names below are spelled out by hand from transformers' ``modeling_esm.py``
(``EsmForMaskedLM``), independently of the loader's own table.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("esm")
safetensors_torch = pytest.importorskip("safetensors.torch")

from atlaskit.data import registry as reg  # noqa: E402
from atlaskit.data.model_weights import RegisteredESM2Weights, esm2_entry_name  # noqa: E402
from atlaskit.data.registry import Entry, Registry, RegistryWarning  # noqa: E402
from atlaskit.errors import DataError, FetchError  # noqa: E402
from atlaskit.models import esm_weights as W  # noqa: E402
from atlaskit.models import sequence as S  # noqa: E402

LAYERS, DIM, HEADS = 2, 16, 2
TINY = f"esm2_t{LAYERS}_{DIM}d"  # the name the loader gives an architecture that was never released
SEQUENCES = {"a": "MKTAYIAKQRQISFVKSHFSRQ", "b": "MSDNE", "c": "MKVLAAGXIVGLLLAAQPAMAHHHHHH"}


def tiny_model():
    """ESM2 of the real architecture, every tensor random (layer norms and biases too, so that a
    swapped name changes the output); inv_freq rounded through float16 as in the real files."""
    from esm.model.esm2 import ESM2

    torch.manual_seed(0)
    model = ESM2(num_layers=LAYERS, embed_dim=DIM, attention_heads=HEADS, alphabet="ESM-1b", token_dropout=True)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.3 + (1.0 if "layer_norm" in name and name.endswith("weight") else 0.0))
        for layer in model.layers:
            inv = layer.self_attn.rot_emb.inv_freq
            inv.copy_(inv.half().float())
    return model.eval()


def hf_state(model, *, inv_freq=True, decoder=True) -> dict:
    """``model``'s tensors under transformers' EsmForMaskedLM names."""
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    out = {"esm.embeddings.word_embeddings.weight": sd["embed_tokens.weight"],
           "esm.encoder.emb_layer_norm_after.weight": sd["emb_layer_norm_after.weight"],
           "esm.encoder.emb_layer_norm_after.bias": sd["emb_layer_norm_after.bias"],
           "esm.contact_head.regression.weight": sd["contact_head.regression.weight"],
           "esm.contact_head.regression.bias": sd["contact_head.regression.bias"],
           "lm_head.dense.weight": sd["lm_head.dense.weight"], "lm_head.dense.bias": sd["lm_head.dense.bias"],
           "lm_head.layer_norm.weight": sd["lm_head.layer_norm.weight"],
           "lm_head.layer_norm.bias": sd["lm_head.layer_norm.bias"],
           "lm_head.bias": sd["lm_head.bias"]}
    if decoder:
        out["lm_head.decoder.weight"] = sd["lm_head.weight"].clone()
    for n in range(LAYERS):
        hf, fair = f"esm.encoder.layer.{n}.", f"layers.{n}."
        for p in ("weight", "bias"):
            out[hf + f"attention.self.query.{p}"] = sd[fair + f"self_attn.q_proj.{p}"]
            out[hf + f"attention.self.key.{p}"] = sd[fair + f"self_attn.k_proj.{p}"]
            out[hf + f"attention.self.value.{p}"] = sd[fair + f"self_attn.v_proj.{p}"]
            out[hf + f"attention.output.dense.{p}"] = sd[fair + f"self_attn.out_proj.{p}"]
            out[hf + f"attention.LayerNorm.{p}"] = sd[fair + f"self_attn_layer_norm.{p}"]
            out[hf + f"intermediate.dense.{p}"] = sd[fair + f"fc1.{p}"]
            out[hf + f"output.dense.{p}"] = sd[fair + f"fc2.{p}"]
            out[hf + f"LayerNorm.{p}"] = sd[fair + f"final_layer_norm.{p}"]
        if inv_freq:
            out[hf + "attention.self.rotary_embeddings.inv_freq"] = sd[fair + "self_attn.rot_emb.inv_freq"]
    return out


def hf_config(model) -> dict:
    """The fields of a Hugging Face ESM2 config.json that the loader reads."""
    return {"model_type": "esm", "architectures": ["EsmForMaskedLM"], "num_hidden_layers": LAYERS,
            "hidden_size": DIM, "num_attention_heads": HEADS, "intermediate_size": 4 * DIM, "vocab_size": 33,
            "position_embedding_type": "rotary", "emb_layer_norm_before": False, "token_dropout": True,
            "vocab_list": list(model.alphabet.all_toks)}


def write_hf(folder: Path, model, *, state=None, config=True, name="model.safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    safetensors_torch.save_file(state if state is not None else hf_state(model), str(path), metadata={"format": "pt"})
    if config:
        (folder / "config.json").write_text(json.dumps(hf_config(model)))
    return path


def write_pt(folder: Path, model, name=f"esm2_t{LAYERS}_tiny") -> Path:
    """fair-esm's checkpoint layout: {"cfg": {"model": Namespace}, "model": {"encoder." + key: tensor}}."""
    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    body = {"encoder." + k: v for k, v in state.items() if not k.startswith("contact_head.regression")}
    cfg = argparse.Namespace(encoder_layers=LAYERS, encoder_embed_dim=DIM, encoder_attention_heads=HEADS,
                             token_dropout=True)
    path = folder / f"{name}.pt"
    torch.save({"cfg": {"model": cfg}, "model": body}, path)
    torch.save({"model": {k: v for k, v in state.items() if k.startswith("contact_head.regression")}},
               folder / f"{name}-contact-regression.pt")
    return path


def direct_embeddings(model) -> np.ndarray:
    """The embeddings of ``model`` itself (the original, never written to a file)."""
    return S.ESM2Embedder(model, model.alphabet, name="original", weights_id="none").embed(SEQUENCES)


def embed_registered(path: Path) -> np.ndarray:
    """Embeddings from a registry copy (no config.json beside it: the tiny model's heads are given)."""
    model, alphabet, name = W.load_esm2_safetensors(path, attention_heads=HEADS)
    return S.ESM2Embedder(model, alphabet, name=name, weights_id="test").embed(SEQUENCES)


@pytest.fixture(scope="module")
def tiny():
    model = tiny_model()
    return model, direct_embeddings(model)


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    for var in (S.ESM2_ENV, S.ESM_WEIGHTS_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


# ------------------------------------------------------------------ both layouts, same numbers


def test_both_layouts_load_the_original_weights_and_embeddings(tiny, tmp_path):
    model, expected = tiny
    hf = S.ESM2Embedder.from_file(write_hf(tmp_path / "hf", model))
    pt = S.ESM2Embedder.from_file(write_pt(tmp_path / "pt", model))
    assert (hf.name, hf.num_layers, hf.dim) == (TINY, LAYERS, DIM)
    for e in (hf, pt):
        loaded = e.model.state_dict()
        assert set(loaded) == set(model.state_dict())
        for key, value in model.state_dict().items():  # inv_freq included: copied, not recomputed
            assert torch.equal(loaded[key], value), key
        np.testing.assert_allclose(e.embed(SEQUENCES), expected, rtol=0, atol=0)
    assert hf.key != pt.key  # other files, other cache keys


def test_optional_keys_may_be_absent(tiny, tmp_path):
    """No decoder copy, no inv_freq (recomputed at init), an old position_ids buffer: still loads."""
    model, expected = tiny
    state = hf_state(model, inv_freq=False, decoder=False)
    state["esm.embeddings.position_ids"] = torch.arange(1026).unsqueeze(0)
    e = S.ESM2Embedder.from_file(write_hf(tmp_path, model, state=state))
    assert torch.equal(e.model.embed_tokens.weight, model.embed_tokens.weight)
    fresh = 1.0 / (10000 ** (torch.arange(0, DIM // HEADS, 2).float() / (DIM // HEADS)))
    assert torch.equal(e.model.layers[0].self_attn.rot_emb.inv_freq, fresh)
    assert np.abs(e.embed(SEQUENCES) - expected).max() < 0.05  # only the float16 rounding differs


def test_key_map_covers_the_real_8M_architecture():
    """Hand count for 6 layers: 2 + 4*2 top-level + 6*8*2 per-layer = 106 required names; with the
    6 inv_freq and the tied lm_head.weight they are exactly fair-esm's 113 state-dict keys."""
    from esm.model.esm2 import ESM2

    required, optional = W.hf_key_map(6)
    assert len(required) == 106 and len(optional) == 8
    assert required["esm.encoder.layer.5.attention.self.query.weight"] == "layers.5.self_attn.q_proj.weight"
    assert required["esm.encoder.layer.0.intermediate.dense.bias"] == "layers.0.fc1.bias"
    assert required["esm.encoder.layer.3.LayerNorm.weight"] == "layers.3.final_layer_norm.weight"
    assert required["esm.encoder.layer.3.attention.LayerNorm.bias"] == "layers.3.self_attn_layer_norm.bias"
    state = ESM2(num_layers=6, embed_dim=320, attention_heads=20).state_dict()
    mapped = set(required.values()) | {v for v in optional.values() if v} | {"lm_head.weight"}
    assert len(state) == 113 and mapped == set(state)


def test_architecture_is_read_from_the_header(tmp_path):
    """The released 8M model's shapes (a header with two small tensors suffices) give its name and
    20 heads, without a config.json."""
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file({"esm.embeddings.word_embeddings.weight": torch.zeros(33, 320),
                                 "esm.encoder.layer.5.LayerNorm.weight": torch.zeros(320)}, str(path))
    arch = W.safetensors_architecture(path)
    assert (arch["name"], arch["layers"], arch["dim"], arch["heads"], arch["vocab"]) == (
        "esm2_t6_8M_UR50D", 6, 320, 20, 33)


# ------------------------------------------------------------------ bad files


def _broken(tmp_path, model, change):
    state = hf_state(model)
    change(state)
    return write_hf(tmp_path, model, state=state)


def test_missing_unexpected_and_misshapen_keys_are_named(tiny, tmp_path):
    model, _ = tiny
    cases = [
        (lambda s: s.pop("esm.encoder.layer.1.output.dense.bias"),
         r"missing key 'esm\.encoder\.layer\.1\.output\.dense\.bias'"),
        (lambda s: s.update({"esm.pooler.dense.weight": torch.zeros(DIM, DIM)}),
         r"unexpected key 'esm\.pooler\.dense\.weight'"),
        (lambda s: s.update({"esm.encoder.layer.2.LayerNorm.weight": torch.ones(DIM)}),  # a third layer, in part
         r"config\.json: num_hidden_layers is 2, but ESM2 weights of these tensors need 3"),
        (lambda s: s.update({"esm.encoder.layer.0.intermediate.dense.weight": torch.zeros(DIM, 4 * DIM)}),
         r"'esm\.encoder\.layer\.0\.intermediate\.dense\.weight' has shape \[16, 64\], expected \[64, 16\]"),
        (lambda s: s.update({"lm_head.decoder.weight": torch.zeros(33, DIM)}), r"ties them"),
    ]
    for i, (change, message) in enumerate(cases):
        path = _broken(tmp_path / str(i), model, change)
        with pytest.raises(DataError, match=message) as info:
            S.ESM2Embedder.from_file(path)
        assert str(path.parent) in str(info.value)
    state = hf_state(model)
    state["esm.encoder.layer.2.LayerNorm.weight"] = torch.ones(DIM)
    path = write_hf(tmp_path / "third", model, state=state, config=False)
    with pytest.raises(DataError, match=r"missing key 'esm\.encoder\.layer\.2\.attention\.self\.query\.weight' "
                                        r"\(and 14 more\)"):
        W.load_esm2_safetensors(path, attention_heads=HEADS)


def test_truncated_and_junk_safetensors_are_refused(tiny, tmp_path):
    model, _ = tiny
    path = write_hf(tmp_path, model)
    full = path.read_bytes()
    for i, broken in enumerate((full[:-100], full[:6], b"", b"\xff" * 64)):
        bad = tmp_path / f"bad{i}.safetensors"
        bad.write_bytes(broken)
        with pytest.raises(DataError, match="not a readable safetensors file") as info:
            S.ESM2Embedder.from_file(bad)
        assert str(bad) in str(info.value)


def test_heads_must_be_known_and_config_must_agree(tiny, tmp_path):
    model, _ = tiny
    path = write_hf(tmp_path / "noconf", model, config=False)
    with pytest.raises(DataError, match="attention_heads"):
        S.ESM2Embedder.from_file(path)
    m, _, name = W.load_esm2_safetensors(path, attention_heads=HEADS)
    assert name == TINY and m.attention_heads == HEADS
    path = write_hf(tmp_path / "badconf", model)
    cfg = json.loads((path.parent / "config.json").read_text())
    (path.parent / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 3}))
    with pytest.raises(DataError, match="num_hidden_layers is 3"):
        S.ESM2Embedder.from_file(path)
    (path.parent / "config.json").write_text(json.dumps({**cfg, "vocab_list": cfg["vocab_list"][::-1]}))
    with pytest.raises(DataError, match="vocab_list"):
        S.ESM2Embedder.from_file(path)


class _Touch:
    """Unpickling this runs code (creates a file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pt_with_a_pickled_object_is_refused(tiny, tmp_path, no_env, monkeypatch):
    model, _ = tiny
    path = write_pt(tmp_path, model, name="esm2_t6_8M_UR50D")
    (tmp_path / "esm2_t6_8M_UR50D-contact-regression.pt").unlink()
    marker = tmp_path / "code-ran"
    data = torch.load(path, weights_only=False)
    data["cfg"]["extra"] = _Touch(marker)
    torch.save(data, path)
    monkeypatch.setenv(S.ESM2_ENV, str(path))
    with pytest.raises(DataError, match="read safely"):
        S.select_embedder("esm2", esm_model="esm2_t6_8M_UR50D")
    choice = S.select_embedder("auto", esm_model="esm2_t6_8M_UR50D")
    assert choice.fallback and "found but could not be loaded" in choice.message and "read safely" in choice.message
    assert not marker.exists()


# ------------------------------------------------------------------ $ATLASKIT_ESM2


def test_environment_names_a_safetensors_or_pt_file(tiny, tmp_path, no_env, monkeypatch):
    model, expected = tiny
    hf = write_hf(tmp_path / "hf", model)
    monkeypatch.setenv(S.ESM2_ENV, str(hf))
    assert S.find_esm2_weights(TINY) == hf
    assert S.find_esm2_weights("esm2_t6_8M_UR50D") is None  # another model's file is not taken for it
    choice = S.select_embedder("auto", esm_model="esm2_t6_8M_UR50D")
    assert choice.fallback and str(hf) in choice.message and S.ESM2_ENV in choice.message
    # a folder of <model name>.safetensors / .pt files; ATLASKIT_ESM2 before the older alias
    folder = tmp_path / "folder"
    write_hf(folder, model, name=f"{TINY}.safetensors")
    pt = write_pt(tmp_path / "old", model, name=TINY)
    monkeypatch.setenv(S.ESM2_ENV, str(folder))
    monkeypatch.setenv(S.ESM_WEIGHTS_ENV, str(pt))
    assert S.find_esm2_weights(TINY) == folder / f"{TINY}.safetensors"
    monkeypatch.delenv(S.ESM2_ENV)
    assert S.find_esm2_weights(TINY) == pt  # the alias still works
    np.testing.assert_allclose(S.ESM2Embedder.from_file(pt).embed(SEQUENCES), expected, rtol=0, atol=0)


def test_a_file_holding_another_model_is_refused_by_name(tiny, tmp_path, no_env, monkeypatch):
    model, _ = tiny
    path = write_hf(tmp_path / "x", model, name="esm2_t6_8M_UR50D.safetensors")
    monkeypatch.setenv(S.ESM2_ENV, str(path.parent))
    assert S.find_esm2_weights("esm2_t6_8M_UR50D") is None  # its header says 2 layers of 16
    source = RegisteredESM2Weights(tiny_registry(tmp_path, path, model_name="esm2_t6_8M_UR50D"))
    mirrored = tmp_path / "mirror" / esm2_entry_name("esm2_t6_8M_UR50D")
    (mirrored.parent / "config.json").write_text((path.parent / "config.json").read_text())
    with pytest.raises(DataError, match="holds esm2_t2_16d .*not esm2_t6_8M_UR50D"):
        S.select_embedder("esm2", esm_model="esm2_t6_8M_UR50D", registered=source)


# ------------------------------------------------------------------ the data registry route


def tiny_registry(tmp_path: Path, file: Path, *, model_name=TINY, sha256=None, url="https://example.invalid/x",
                  mirror=True, **kw) -> Registry:
    """A registry with one on-request ESM2 entry for ``file``; ``mirror``: a mirror folder holds it."""
    name = esm2_entry_name(model_name)
    entry = Entry(name=name, url=url, sha256=sha256 or reg.sha256sum(file), size=file.stat().st_size,
                  licence="test", description="tiny ESM2", group="weights/esm2", on_request=True)
    mirrors = []
    if mirror:
        root = tmp_path / "mirror"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(file.read_bytes())
        mirrors = [root]
    return Registry([entry], cache=tmp_path / "cache", mirrors=mirrors, **kw)


def test_registered_copy_in_a_mirror_or_the_cache_is_used(tiny, tmp_path, no_env):
    model, expected = tiny
    file = write_hf(tmp_path / "src", model, config=False, name="w.safetensors")
    registry = tiny_registry(tmp_path, file)
    source = RegisteredESM2Weights(registry)
    assert source.models() == [TINY] and registry.entries() == {}  # on request only
    mirrored = tmp_path / "mirror" / esm2_entry_name(TINY)
    assert S.find_esm2_weights(TINY) is None
    assert S.find_esm2_weights(TINY, registered=source) == mirrored
    np.testing.assert_allclose(embed_registered(mirrored), expected, rtol=0, atol=0)
    registry.fetch(esm2_entry_name(TINY), fill_cache=True)
    cached_only = Registry(registry.entries(on_request=True).values(), cache=tmp_path / "cache", mirrors=[])
    assert S.find_esm2_weights(TINY, registered=RegisteredESM2Weights(cached_only)) == (
        tmp_path / "cache" / esm2_entry_name(TINY))
    assert RegisteredESM2Weights(registry).locate("esm2_t6_8M_UR50D") is None  # no entry for it


def test_registered_copy_with_the_wrong_sha256_is_never_used(tiny, tmp_path, no_env):
    model, _ = tiny
    file = write_hf(tmp_path / "src", model, config=False, name="w.safetensors")
    source = RegisteredESM2Weights(tiny_registry(tmp_path, file, sha256="0" * 64))
    with pytest.warns(RegistryWarning, match="does not match the registry's sha256"):
        assert S.find_esm2_weights(TINY, registered=source) is None
    # asked to download instead: the source is unreachable here, and the error says so at once
    port = _closed_port()
    unreachable = RegisteredESM2Weights(tiny_registry(
        tmp_path / "u", file, url=f"http://127.0.0.1:{port}/model.safetensors", mirror=False,
        allow_http_hosts=["127.0.0.1"]))
    with pytest.raises(FetchError, match=r"cannot download weights/esm2/.*unreachable"):
        unreachable.locate(TINY, download=True)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """A local HTTP server for the files of ``tmp_path / "www"``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_on_request_is_verified(tiny, tmp_path, no_env, served):
    model, expected = tiny
    root, base = served
    file = write_hf(root, model, config=False, name="model.safetensors")
    good = tiny_registry(tmp_path / "good", file, url=f"{base}/model.safetensors", mirror=False,
                         allow_http_hosts=["127.0.0.1"])
    path = RegisteredESM2Weights(good).locate(TINY, download=True)
    assert path == tmp_path / "good" / "cache" / esm2_entry_name(TINY) and reg.sha256sum(path) == reg.sha256sum(file)
    np.testing.assert_allclose(embed_registered(path), expected, rtol=0, atol=0)
    wrong = tiny_registry(tmp_path / "wrong", file, sha256="f" * 64, url=f"{base}/model.safetensors",
                          mirror=False, allow_http_hosts=["127.0.0.1"])
    with pytest.raises(FetchError, match="checksum mismatch"):
        RegisteredESM2Weights(wrong).locate(TINY, download=True)
    assert not (tmp_path / "wrong" / "cache" / esm2_entry_name(TINY)).exists()


def test_data_fetch_all_leaves_on_request_entries_out(tiny, tmp_path, served, monkeypatch, capsys):
    """`atlaskit data fetch --all` fetches the default files only; naming the entry fetches it."""
    from atlaskit.cli import main as cli_main

    model, _ = tiny
    root, base = served
    file = write_hf(root, model, config=False, name="model.safetensors")
    (root / "table.csv").write_bytes(b"a,b\n1,2\n")
    weights = tiny_registry(tmp_path, file, url=f"{base}/model.safetensors", mirror=False)
    table = Entry(name="t/table.csv", url=f"{base}/table.csv", sha256=reg.sha256sum(root / "table.csv"), size=8,
                  licence="test", description="table", group="t")
    registry = Registry([table, *weights.entries(on_request=True).values()], cache=tmp_path / "cache",
                        mirrors=[], allow_http_hosts=["127.0.0.1"])
    monkeypatch.setattr(reg, "default_registry", lambda: registry)
    assert reg.entries() == {"t/table.csv": table} and reg.groups() == ["t"]
    assert list(reg.status()["name"]) == ["t/table.csv"]
    assert set(reg.status(on_request=True)["name"]) == {"t/table.csv", esm2_entry_name(TINY)}
    assert cli_main(["data", "fetch", "--all"]) == 0
    assert not (tmp_path / "cache" / "weights").exists()
    assert cli_main(["data", "fetch", esm2_entry_name(TINY)]) == 0
    assert reg.sha256sum(tmp_path / "cache" / esm2_entry_name(TINY)) == reg.sha256sum(file)
    assert esm2_entry_name(TINY) in capsys.readouterr().out


# ------------------------------------------------------------------ the real manifest


def test_real_manifest_registers_esm2_on_request_only():
    every = reg.load_manifest()
    esm = {e.name: e for e in every if e.group == "weights/esm2"}
    assert set(esm) == {"weights/esm2/esm2_t6_8M_UR50D.safetensors", "weights/esm2/esm2_t12_35M_UR50D.safetensors"}
    small, base = esm["weights/esm2/esm2_t6_8M_UR50D.safetensors"], esm["weights/esm2/esm2_t12_35M_UR50D.safetensors"]
    assert (small.sha256, small.size) == ("c78322372c5f2a2db07ff6df20637701d82eb255aa32e2623c2db18553db28d9", 31_375_984)
    assert (base.sha256, base.size) == ("da93c01fb49062629d1e9040290fda26b7a69bb3daaccf8c2c16adf509f086d8", 136_000_488)
    assert small.url == "https://huggingface.co/facebook/esm2_t6_8M_UR50D/resolve/main/model.safetensors"
    assert base.url == "https://huggingface.co/facebook/esm2_t12_35M_UR50D/resolve/main/model.safetensors"
    assert all(e.on_request and "Git-LFS pointer" in e.description and e.licence.startswith("MIT") for e in esm.values())
    assert not any(e.on_request for e in every if e.group != "weights/esm2")
    default = Registry(every)
    assert not set(esm) & set(default.entries()) and "weights/esm2" not in default.groups()
    assert set(esm) <= set(default.entries(on_request=True))
    assert RegisteredESM2Weights(default).models() == ["esm2_t12_35M_UR50D", "esm2_t6_8M_UR50D"]


def test_manifest_writer_keeps_the_on_request_flag(tmp_path):
    from atlaskit.data import _make_registry as make

    entries = make.on_request_entries()
    text = make.render(entries + [dataclasses.replace(entries[0], name="t/x.bin", group="t", on_request=False)])
    (tmp_path / "m.json").write_text(text)
    back = reg.load_manifest(tmp_path / "m.json")
    assert back == entries + [dataclasses.replace(entries[0], name="t/x.bin", group="t", on_request=False)]
    assert text.count('"on_request": true') == 2 and "false" not in text
    with pytest.raises(DataError, match="on_request"):
        dataclasses.replace(entries[0], on_request="yes")
