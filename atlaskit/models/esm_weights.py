"""ESM2 weights in the Hugging Face safetensors layout, loaded into fair-esm's ``ESM2`` (no unpickling).

The Hugging Face copies of ESM2 (``facebook/esm2_t6_8M_UR50D`` ...) hold the weights of
transformers' ``EsmForMaskedLM`` in a ``model.safetensors`` file: a little-endian 8-byte header
length, a JSON header (name, dtype, shape and byte range of every tensor) and the raw tensors. It
holds no code, so reading it needs no unpickling (the PyPI ``safetensors`` package reads it and
checks that the header's byte ranges cover the file exactly, so a truncated file is refused).

This module maps those names onto fair-esm's ``esm.model.esm2.ESM2``, the model that
:class:`atlaskit.models.sequence.ESM2Embedder` runs. The mapping follows transformers'
``convert_esm.py`` (which wrote these files from the fair-esm checkpoints) in reverse; for layer
``N``:

============================================================  =====================================
Hugging Face (``EsmForMaskedLM``)                             fair-esm (``ESM2``)
============================================================  =====================================
``esm.embeddings.word_embeddings.weight``                     ``embed_tokens.weight``
``esm.encoder.layer.N.attention.self.query`` / ``key`` /      ``layers.N.self_attn.q_proj`` /
``value`` (``.weight``, ``.bias``)                            ``k_proj`` / ``v_proj``
``esm.encoder.layer.N.attention.self.rotary_embeddings.``     ``layers.N.self_attn.rot_emb.inv_freq``
``inv_freq`` (optional: recomputed when absent)
``esm.encoder.layer.N.attention.output.dense``                ``layers.N.self_attn.out_proj``
``esm.encoder.layer.N.attention.LayerNorm``                   ``layers.N.self_attn_layer_norm``
``esm.encoder.layer.N.intermediate.dense``                    ``layers.N.fc1``
``esm.encoder.layer.N.output.dense``                          ``layers.N.fc2``
``esm.encoder.layer.N.LayerNorm``                             ``layers.N.final_layer_norm``
``esm.encoder.emb_layer_norm_after``                          ``emb_layer_norm_after``
``esm.contact_head.regression``                               ``contact_head.regression``
``lm_head.dense`` / ``lm_head.layer_norm`` / ``lm_head.bias``  the same names
``lm_head.decoder.weight`` (optional)                         tied to ``embed_tokens.weight``
``esm.embeddings.position_ids`` (optional)                    none (an index buffer, ignored)
============================================================  =====================================

Every tensor of the file must be consumed: a key the table does not name, a missing key or a
tensor of the wrong shape is a :class:`~atlaskit.errors.DataError` naming the file and the key.
The saved ``inv_freq`` is copied rather than recomputed: ESM2 was trained in float16, and the
rounded frequencies it saved are the ones its weights expect (transformers' converter does the
same).

The architecture is read from the tensors (layers, width, vocabulary); the number of attention
heads, which no tensor shape shows, comes from the ``attention_heads`` argument, else a
``config.json`` beside the file (the Hugging Face layout), else the table of released models
(:data:`ESM2_ARCHITECTURES`). This module knows tensors only; finding the file (environment,
data registry, torch hub) is :mod:`atlaskit.models.sequence`'s and the caller's business.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from atlaskit.errors import DataError

__all__ = [
    "ESM2_ARCHITECTURES",
    "hf_key_map",
    "safetensors_architecture",
    "load_esm2_safetensors",
]

#: Released ESM2 models: name → (layers, embedding dimension, attention heads).
ESM2_ARCHITECTURES: dict[str, tuple[int, int, int]] = {
    "esm2_t6_8M_UR50D": (6, 320, 20),
    "esm2_t12_35M_UR50D": (12, 480, 20),
    "esm2_t30_150M_UR50D": (30, 640, 20),
    "esm2_t33_650M_UR50D": (33, 1280, 20),
}

_EMBED = "esm.embeddings.word_embeddings.weight"
_DECODER = "lm_head.decoder.weight"  # tied to the word embeddings in both libraries
_OPTIONAL_IGNORED = ("esm.embeddings.position_ids",)
_LAYER_RE = re.compile(r"^esm\.encoder\.layer\.(\d+)\.")
# per layer: Hugging Face suffix → fair-esm suffix (each with .weight and .bias)
_LAYER_LINEAR = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.LayerNorm": "self_attn_layer_norm",
    "intermediate.dense": "fc1",
    "output.dense": "fc2",
    "LayerNorm": "final_layer_norm",
}
_INV_FREQ = ("attention.self.rotary_embeddings.inv_freq", "self_attn.rot_emb.inv_freq")
_TOP = {
    "esm.encoder.emb_layer_norm_after": "emb_layer_norm_after",
    "esm.contact_head.regression": "contact_head.regression",
    "lm_head.dense": "lm_head.dense",
    "lm_head.layer_norm": "lm_head.layer_norm",
}


def hf_key_map(num_layers: int) -> tuple[dict[str, str], dict[str, str]]:
    """The Hugging Face → fair-esm names of an ESM2 with ``num_layers`` layers.

    Returns
    -------
    required, optional : dict
        Names every file must hold, and names it may hold (``inv_freq`` per layer, mapped; the
        tied decoder weight and the ``position_ids`` buffer map to ``""``: checked or ignored).
    """
    required = {_EMBED: "embed_tokens.weight", "lm_head.bias": "lm_head.bias"}
    for hf, fair in _TOP.items():
        for p in ("weight", "bias"):
            required[f"{hf}.{p}"] = f"{fair}.{p}"
    optional = {_DECODER: "", **{k: "" for k in _OPTIONAL_IGNORED}}
    for n in range(num_layers):
        for hf, fair in _LAYER_LINEAR.items():
            for p in ("weight", "bias"):
                required[f"esm.encoder.layer.{n}.{hf}.{p}"] = f"layers.{n}.{fair}.{p}"
        optional[f"esm.encoder.layer.{n}.{_INV_FREQ[0]}"] = f"layers.{n}.{_INV_FREQ[1]}"
    return required, optional


def _open(path: Path):
    """``safetensors.safe_open`` with the library's errors turned into DataError."""
    try:
        from safetensors import safe_open
    except ImportError:  # pragma: no cover - safetensors is a pinned dependency
        raise DataError(f"{path}: reading .safetensors files needs the safetensors package "
                        "(pip install safetensors)") from None
    if not path.is_file():
        raise DataError(f"{path}: no such ESM2 weights file")
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except Exception as exc:  # SafetensorError (truncated, bad header), OSError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable safetensors file ({first})") from None


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    with _open(path) as fh:
        return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}


def _config(path: Path) -> dict:
    """The Hugging Face ``config.json`` beside ``path`` if it is an ESM one, else ``{}``."""
    cfg_path = path.with_name("config.json")
    if not cfg_path.is_file():
        return {}
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{cfg_path}: not a readable config.json ({exc})") from None
    return cfg if isinstance(cfg, dict) and cfg.get("model_type") == "esm" else {}


def safetensors_architecture(path: str | os.PathLike, *, attention_heads: int | None = None) -> dict:
    """Read the architecture of an ESM2 safetensors file from its header (no tensor is loaded).

    Returns
    -------
    dict
        ``layers``, ``dim``, ``vocab``, ``heads`` (None when neither the argument, a
        ``config.json`` nor the table of released models tells), ``token_dropout`` and ``name``
        (the released model's name, else ``esm2_t<layers>_<dim>d``).

    Raises
    ------
    DataError
        Unreadable file, no ``esm.embeddings.word_embeddings.weight``, or a ``config.json`` that
        contradicts the tensors or describes another architecture than ESM2's.
    """
    path = Path(path).expanduser()
    shapes = _shapes(path)
    if _EMBED not in shapes or len(shapes[_EMBED]) != 2:
        raise DataError(f"{path}: no 2-d tensor {_EMBED!r}; not ESM2 weights in the Hugging Face "
                        "EsmForMaskedLM layout")
    vocab, dim = shapes[_EMBED]
    layer_ids = {int(m.group(1)) for k in shapes if (m := _LAYER_RE.match(k))}
    layers = max(layer_ids) + 1 if layer_ids else 0
    cfg = _config(path)
    name = next((n for n, (nl, d, _) in ESM2_ARCHITECTURES.items() if (nl, d) == (layers, dim)),
                f"esm2_t{layers}_{dim}d")
    heads = attention_heads or cfg.get("num_attention_heads") or (
        ESM2_ARCHITECTURES[name][2] if name in ESM2_ARCHITECTURES else None)
    if cfg:
        for key, want in (("num_hidden_layers", layers), ("hidden_size", dim), ("vocab_size", vocab),
                          ("intermediate_size", 4 * dim), ("position_embedding_type", "rotary"),
                          ("emb_layer_norm_before", False)):
            if key in cfg and cfg[key] != want:
                raise DataError(f"{path.with_name('config.json')}: {key} is {cfg[key]!r}, but ESM2 weights "
                                f"of these tensors need {want!r}")
    return {"layers": layers, "dim": dim, "vocab": vocab, "heads": heads, "name": name,
            "token_dropout": bool(cfg.get("token_dropout", True)), "vocab_list": cfg.get("vocab_list")}


def load_esm2_safetensors(path: str | os.PathLike, *, attention_heads: int | None = None):
    """Build a fair-esm ``ESM2`` from a Hugging Face ESM2 ``.safetensors`` file.

    Parameters
    ----------
    path : path
        The file (e.g. ``model.safetensors`` of ``facebook/esm2_t6_8M_UR50D``).
    attention_heads : int, optional
        Heads per layer, for an architecture that is neither a released model nor described by a
        ``config.json`` beside the file.

    Returns
    -------
    model, alphabet, name
        The model in eval mode (float32, CPU), its alphabet (ESM-1b's 33 tokens) and its name
        (the released model's, else ``esm2_t<layers>_<dim>d``).

    Raises
    ------
    DataError
        Unreadable or truncated file, unknown number of heads, a missing or unexpected key, a
        tensor of the wrong shape, or a decoder weight that differs from the word embeddings; the
        message names the file and the key.
    """
    import esm
    import torch
    from esm.model.esm2 import ESM2

    path = Path(path).expanduser()
    arch = safetensors_architecture(path, attention_heads=attention_heads)
    if arch["heads"] is None:
        raise DataError(f"{path}: {arch['layers']} layers of {arch['dim']} is not a released ESM2 model, and no "
                        "config.json beside the file gives num_attention_heads; pass attention_heads")
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    if arch["vocab"] != len(alphabet):
        raise DataError(f"{path}: {_EMBED} has {arch['vocab']} rows; ESM2's alphabet has {len(alphabet)} tokens")
    if arch["vocab_list"] is not None and list(arch["vocab_list"]) != list(alphabet.all_toks):
        raise DataError(f"{path.with_name('config.json')}: vocab_list is not ESM2's token order {alphabet.all_toks}")
    if arch["layers"] < 1 or arch["dim"] % arch["heads"]:
        raise DataError(f"{path}: {arch['layers']} layers of width {arch['dim']} cannot hold {arch['heads']} heads")
    model = ESM2(num_layers=arch["layers"], embed_dim=arch["dim"], attention_heads=arch["heads"],
                 alphabet=alphabet, token_dropout=arch["token_dropout"])
    target = model.state_dict()
    required, optional = hf_key_map(arch["layers"])
    with _open(path) as fh:
        keys = set(fh.keys())
        unexpected = sorted(keys - set(required) - set(optional))
        if unexpected:
            raise DataError(f"{path}: unexpected key {unexpected[0]!r}"
                            + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
                            + "; not an ESM2 EsmForMaskedLM file of this architecture")
        missing = [k for k in required if k not in keys]
        if missing:
            raise DataError(f"{path}: missing key {missing[0]!r}"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        state = {}
        for hf in sorted(keys):
            fair = required.get(hf) or optional.get(hf)
            if not fair:
                continue  # the tied decoder (checked below) and ignored buffers
            shape = tuple(fh.get_slice(hf).get_shape())
            want = tuple(target[fair].shape)
            if shape != want:
                raise DataError(f"{path}: {hf!r} has shape {list(shape)}, expected {list(want)}")
            state[fair] = fh.get_tensor(hf).to(torch.float32)
        if _DECODER in keys:
            decoder = fh.get_tensor(_DECODER).to(torch.float32)
            if tuple(decoder.shape) != tuple(state["embed_tokens.weight"].shape) or not torch.equal(
                    decoder, state["embed_tokens.weight"]):
                raise DataError(f"{path}: {_DECODER!r} differs from {_EMBED!r}; fair-esm's ESM2 ties them")
    state["lm_head.weight"] = state["embed_tokens.weight"]  # the same parameter in fair-esm
    for fair in optional.values():  # an inv_freq the file lacks: keep the one computed at init
        if fair:
            state.setdefault(fair, target[fair])
    if set(state) != set(target):  # the table above and fair-esm's module disagree: a bug, not a bad file
        raise RuntimeError(f"ESM2 key map incomplete: {sorted(set(target) ^ set(state))[:5]}")
    model.load_state_dict(state, strict=True)
    return model.eval(), alphabet, arch["name"]
