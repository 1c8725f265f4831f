"""Sequence embedders: composition (by hand), ESM2 loading from a tiny local checkpoint,
windowing of long proteins, caching, bad letters, empty records, fallback without weights."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from atlaskit.data.embeddings import EmbeddingCache, embedding_cache
from atlaskit.errors import DataError, ParameterError
from atlaskit.models import sequence as S


# ------------------------------------------------------------------ composition


def test_composition_by_hand():
    e = S.CompositionEmbedder()
    v = e.embed({"p": "AAC"}, cache=False)[0]
    assert v.shape == (420,)
    aa = dict(zip(S.STANDARD, v[:20]))
    assert aa["A"] == pytest.approx(2 / 3) and aa["C"] == pytest.approx(1 / 3)
    names = S.CompositionEmbedder.feature_names()
    dp = dict(zip(names[20:], v[20:]))
    assert dp["AA"] == pytest.approx(1 / 2) and dp["AC"] == pytest.approx(1 / 2) and dp["CA"] == 0
    assert v[:20].sum() == pytest.approx(1) and v[20:].sum() == pytest.approx(1)


def test_composition_maps_ambiguity_letters():
    e = S.CompositionEmbedder(dipeptides=False)
    v = dict(zip(S.STANDARD, e.embed([("x", "BU")], cache=False)[0]))
    assert v["D"] == pytest.approx(0.25) and v["N"] == pytest.approx(0.25) and v["C"] == pytest.approx(0.5)
    x = e.embed([("x", "X")], cache=False)[0]
    assert np.allclose(x, 1 / 20)
    single = S.CompositionEmbedder().embed([("m", "m")], cache=False)[0]  # lower case, one residue
    assert single[S.STANDARD.index("M")] == 1 and single[20:].sum() == 0


@pytest.mark.parametrize("seq, what", [("MKT1A", "'1'"), ("MK*TA", "'*'"), ("MKJ", "'J'"), ("MK-A", "'-'")])
def test_bad_letters_name_the_record(seq, what):
    with pytest.raises(DataError, match=f"record 'bad7'.*{what}"):
        S.CompositionEmbedder().embed([("ok", "MKTA"), ("bad7", seq)], cache=False)


@pytest.mark.parametrize("seq", ["", "  \n "])
def test_empty_sequence_is_an_error(seq):
    with pytest.raises(DataError, match="record 'e1': empty sequence"):
        S.CompositionEmbedder().embed({"e1": seq}, cache=False)


def test_cache_is_keyed_by_model_and_sequence(tmp_path):
    e = S.CompositionEmbedder()
    v1 = e.embed({"a": "MKTAYIAK"}, cache=EmbeddingCache(tmp_path))
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 1 and files[0].parent.parent.name == e.key
    np.save(files[0], np.full(420, 7.0, np.float32))  # a cache hit returns the stored vector
    assert np.all(e.embed({"other id": "mktayiak"}, cache=EmbeddingCache(tmp_path)) == 7.0)
    assert np.allclose(e.embed({"a": "MKTAYIAK"}, cache=False), v1)
    S.CompositionEmbedder(dipeptides=False).embed({"a": "MKTAYIAK"}, cache=EmbeddingCache(tmp_path))
    assert len(list(tmp_path.rglob("*.npy"))) == 2  # another embedder, another key


# ------------------------------------------------------------------ ESM2 through fair-esm


def write_tiny_esm2(folder, name="esm2_t2_tiny", regression=True):
    """A randomly initialised 2-layer ESM2 saved the way fair-esm's local loader reads it."""
    from esm.model.esm2 import ESM2

    torch.manual_seed(0)
    model = ESM2(num_layers=2, embed_dim=32, attention_heads=4, alphabet="ESM-1b", token_dropout=True)
    state = model.state_dict()
    reg = {k: v for k, v in state.items() if k.startswith("contact_head.regression")}
    body = {"encoder." + k: v for k, v in state.items() if not k.startswith("contact_head.regression")}
    cfg = argparse.Namespace(encoder_layers=2, encoder_embed_dim=32, encoder_attention_heads=4, token_dropout=True)
    path = folder / f"{name}.pt"
    torch.save({"cfg": {"model": cfg}, "model": body}, path)
    if regression:
        torch.save({"model": reg}, folder / f"{name}-contact-regression.pt")
    return path, model.eval()


def direct_mean(model, seq):
    _, _, tokens = model.alphabet.get_batch_converter()([("x", seq)])
    with torch.no_grad():
        rep = model(tokens, repr_layers=[model.num_layers])["representations"][model.num_layers]
    return rep[0, 1:1 + len(seq)]  # (L, D) without BOS/EOS


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("esm")
    path, model = write_tiny_esm2(folder)
    return path, model


def test_esm2_loads_from_local_file_and_mean_pools(tiny, tmp_path):
    path, model = tiny
    e = S.ESM2Embedder.from_file(path, window=50, stride=25)
    assert (e.name, e.dim, e.num_layers) == ("esm2_t2_tiny", 32, 2)
    seq = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
    v = e.embed({"p": seq}, cache=False)[0]
    assert np.allclose(v, direct_mean(model, seq).mean(0).numpy(), atol=1e-5)
    # ambiguity letters are ESM2 tokens; bad letters and empty records are refused by id
    assert e.embed({"amb": "MKXBZUO"}, cache=False).shape == (1, 32)
    with pytest.raises(DataError, match="record 'q9'"):
        e.embed({"q9": "MK7"}, cache=False)
    with pytest.raises(DataError, match="record 'z': empty"):
        e.embed({"z": ""}, cache=False)


def test_esm2_windows_long_sequences(tiny):
    path, model = tiny
    e = S.ESM2Embedder.from_file(path, window=40, stride=20)
    seq = ("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWSTPSELGHAGLNGDILVWNPVLEDAFELSSMGIRVDADTLKHQLALTGDEDRLELEWHQALLRGEMPQTIGGGIGQSRLTMLLLQLPHIGQVQAGVWPAACRERVRRLDRD")
    starts = S.window_starts(len(seq), 40, 20)
    assert starts[0] == 0 and starts[-1] == len(seq) - 40 and all(b - a <= 20 for a, b in zip(starts, starts[1:]))
    sums = np.zeros((len(seq), 32))
    counts = np.zeros(len(seq))
    for s0 in starts:  # the expected value, window by window, unbatched
        sums[s0:s0 + 40] += direct_mean(model, seq[s0:s0 + 40]).numpy()
        counts[s0:s0 + 40] += 1
    expected = (sums / counts[:, None]).mean(0)
    got = e.embed({"long": seq, "short": seq[:30]}, cache=False)
    assert np.allclose(got[0], expected, atol=1e-5)
    assert np.allclose(got[1], direct_mean(model, seq[:30]).mean(0).numpy(), atol=1e-5)  # one window = plain mean


def test_cache_argument_is_a_store_built_by_the_data_layer(tmp_path):
    e = S.CompositionEmbedder()
    for bad in (True, tmp_path, str(tmp_path)):  # the model layer never looks up a folder itself
        with pytest.raises(ParameterError, match="embedding_cache"):
            e.embed({"a": "MKTA"}, cache=bad)
    assert embedding_cache(False) is None
    assert embedding_cache(tmp_path).root == tmp_path
    v = e.embed({"a": "MKTA"}, cache=embedding_cache(str(tmp_path)))
    assert np.array_equal(EmbeddingCache(tmp_path).get(e.key, "MKTA", e.dim), v[0])


def test_esm2_embeddings_are_cached(tiny, tmp_path, monkeypatch):
    path, _ = tiny
    e = S.ESM2Embedder.from_file(path, window=50, stride=25)
    first = e.embed({"a": "MKTAYIAKQRQ", "b": "MKTAYIAKQRQ"}, cache=EmbeddingCache(tmp_path))
    assert len(list(tmp_path.rglob("*.npy"))) == 1  # one sequence, one file
    assert next(tmp_path.iterdir()).name.startswith("esm2_t2_tiny-")

    def fail(*a, **k):
        raise AssertionError("the model must not run on a cache hit")

    monkeypatch.setattr(e, "_embed_many", fail)
    assert np.array_equal(e.embed({"c": "MKTAYIAKQRQ"}, cache=EmbeddingCache(tmp_path))[0], first[0])


def test_esm2_without_regression_file_loads_silently(tmp_path, recwarn):
    path, model = write_tiny_esm2(tmp_path, "esm2_t2_noreg", regression=False)
    e = S.ESM2Embedder.from_file(path)
    assert e.dim == 32 and not [w for w in recwarn if "Regression" in str(w.message)]


def test_esm2_refuses_bad_files(tmp_path):
    with pytest.raises(DataError, match="no such"):
        S.ESM2Embedder.from_file(tmp_path / "esm2_t6_8M_UR50D.pt")
    junk = tmp_path / "esm2_t6_8M_UR50D.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot load|safely"):
        S.ESM2Embedder.from_file(junk)
    with pytest.raises(DataError, match="esm2_"):
        S.ESM2Embedder.from_file(junk.rename(tmp_path / "model.pt"))


def test_known_model_with_wrong_shape_is_refused(tmp_path):
    path, _ = write_tiny_esm2(tmp_path, "esm2_t6_8M_UR50D")  # 2 layers of 32, not 6 of 320
    with pytest.raises(DataError, match="should have 6 layers of 320"):
        S.ESM2Embedder.from_file(path)


def test_weights_are_found_through_the_environment(tmp_path, monkeypatch):
    write_tiny_esm2(tmp_path, "esm2_t6_8M_UR50D")
    monkeypatch.setenv(S.ESM_WEIGHTS_ENV, str(tmp_path))
    assert S.find_esm2_weights("esm2_t6_8M_UR50D") == tmp_path / "esm2_t6_8M_UR50D.pt"
    assert S.find_esm2_weights("esm2_t12_35M_UR50D") is None


def test_select_embedder_falls_back_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv(S.ESM_WEIGHTS_ENV, str(tmp_path / "nothing-here"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    choice = S.select_embedder("auto", esm_model="esm2_t33_650M_UR50D")
    assert choice.fallback and isinstance(choice.embedder, S.SignalEmbedder)
    assert "not found" in choice.message and "never used" in choice.message and "targeting-signal" in choice.message
    with pytest.raises(DataError, match="no weights for esm2_t33_650M_UR50D"):
        S.select_embedder("esm2", esm_model="esm2_t33_650M_UR50D")
    with pytest.raises(ParameterError):
        S.select_embedder("protbert")
    assert not S.select_embedder("composition").fallback
    assert isinstance(S.select_embedder("composition").embedder, S.CompositionEmbedder)
    signals = S.select_embedder("signals")
    assert not signals.fallback and isinstance(signals.embedder, S.SignalEmbedder)


def test_embedder_spec_round_trip(tiny, monkeypatch):
    path, _ = tiny
    assert isinstance(S.embedder_from_spec(S.CompositionEmbedder().spec()), S.CompositionEmbedder)
    e = S.ESM2Embedder.from_file(path, window=50, stride=25)
    again = S.embedder_from_spec(e.spec(), esm_weights=path)
    assert again.key == e.key
    monkeypatch.setenv(S.ESM_WEIGHTS_ENV, str(path.parent / "missing"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(path.parent / "hub"))
    with pytest.raises(DataError, match="trained on esm2_t2_tiny"):
        S.embedder_from_spec(e.spec())


# ------------------------------------------------------------------ untrusted files (issue #10)


def test_cache_files_cut_short_are_misses_and_are_rewritten(tmp_path):
    e = S.CompositionEmbedder()
    v = e.embed({"a": "MKTAYIAK"}, cache=EmbeddingCache(tmp_path))[0]
    cache = EmbeddingCache(tmp_path)
    path = cache.path(e.key, "MKTAYIAK")
    full = path.read_bytes()
    for broken in (b"", full[:60], full[:-8]):  # empty (full disk), header only, data cut short
        path.write_bytes(broken)
        assert cache.get(e.key, "MKTAYIAK", e.dim) is None
        assert np.array_equal(e.embed({"a": "MKTAYIAK"}, cache=EmbeddingCache(tmp_path))[0], v)
        assert path.read_bytes() == full
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_cache_put_interrupted_keeps_the_previous_file(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    cache.put("k", "MKV", np.ones(4, np.float32))

    def interrupted(fh, arr, allow_pickle):
        fh.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(S.np, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.put("k", "MKV", np.zeros(4, np.float32))
    monkeypatch.undo()
    assert np.array_equal(cache.get("k", "MKV", 4), np.ones(4, np.float32))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [cache.path("k", "MKV")]  # no temporary


class _Touch:
    """Unpickling this runs code (creates a file): the loaders must refuse it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("regression", [True, False])
def test_esm2_file_with_pickled_code_is_refused(tmp_path, regression):
    path, _ = write_tiny_esm2(tmp_path, "esm2_t2_evil", regression=regression)
    marker = tmp_path / "code-ran"
    data = torch.load(path, weights_only=False)
    data["cfg"]["extra"] = _Touch(marker)
    torch.save(data, path)
    with pytest.raises(DataError, match="read safely"):
        S.ESM2Embedder.from_file(path)
    assert not marker.exists()
