"""One loader for the four studies' saved models (:func:`load`, also ``atlaskit.load``), and their
weights as safetensors (:func:`export_weights`, ``atlaskit export-weights``).

What each chapter saves, and which study loader reads it (this module only recognises the file
and dispatches; the loaders stay with their studies)::

    01 cytoself   run folder (best.pt, last.pt)            studies.cytoself.place.load_run
    02 deepGPS    run folder (last.pt + deepgps-export.json) studies.deepgps.training.load_network
    03 CNN / FCN  run folder (best.pt, last.pt)            studies.cnnfcn.training.load_model
    04 DeepYeast  deepyeast-model.pt (in the run folder)   studies.deepyeast.load_model
    any           .safetensors of export_weights           rebuilt from its metadata

A trainer checkpoint (``best.pt``/``last.pt``) is recognised by the model configuration the
chapter stored in it (:func:`atlaskit.studies._scaffold.fit_or_reuse`'s ``model_config``), not
by its folder's name, so a copied or renamed run still loads.

The ``.safetensors`` file holds the model's ``state_dict`` tensors and, in its string metadata,
``format`` (:data:`WEIGHTS_FORMAT`), ``study``, ``spec`` (JSON: the architecture, e.g. the
model config), ``classes`` (JSON list or null), ``source`` (the checkpoint's file name) and the
content checksum of :func:`atlaskit.train.checkpoints.save_safetensors`. It holds no code and
no training state (optimizer, history): it is for using a model, not for resuming training.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from atlaskit.errors import AtlaskitError, DataError, ParameterError

__all__ = ["STUDIES", "WEIGHTS_FORMAT", "ACCEPTED", "load", "export_weights"]

STUDIES = ("cytoself", "deepgps", "cnnfcn", "deepyeast")
#: ``format`` entry of the metadata of a ``.safetensors`` file written by :func:`export_weights`
WEIGHTS_FORMAT = "atlaskit.weights/1"
#: what :func:`load` reads, for error messages
ACCEPTED = ("a chapter run folder or its best.pt / last.pt (cytoself, deepGPS, CNN/FCN, DeepYeast), "
            "a DeepYeast model file (deepyeast-model.pt), or a .safetensors file of `atlaskit export-weights`")
DEEPYEAST_MODEL_FILE = "deepyeast-model.pt"


def _unknown(path: Path, why: str) -> AtlaskitError:
    return AtlaskitError(f"{path}: {why}; atlaskit.load accepts {ACCEPTED}")


def _trainer_study(path: Path, ckpt: dict) -> str:
    """The study of a trainer checkpoint, from the model configuration its chapter stored."""
    import dataclasses

    from atlaskit.models.cytoself_config import CytoselfConfig
    from atlaskit.models.deepgps import DeepGPSConfig
    from atlaskit.models.deepyeast import DeepYeastConfig

    config = (ckpt.get("config") or {}).get("model") or {}
    if not isinstance(config, dict):
        raise _unknown(path, "its checkpoint holds no model configuration")
    if config.get("kind") in ("cnn", "fcn", "inception"):
        return "cnnfcn"
    model = config.get("model")
    if isinstance(model, dict) and model:
        for study, cls in (("cytoself", CytoselfConfig), ("deepyeast", DeepYeastConfig), ("deepgps", DeepGPSConfig)):
            if set(model) <= {f.name for f in dataclasses.fields(cls)}:
                return study
    raise _unknown(path, "a training checkpoint of no model of the four studies")


def _identify(path: Path) -> tuple[str, Path, bool]:
    """``(study, file, trainer)`` of a run folder or checkpoint file: ``study`` is
    ``"safetensors"`` for those files; ``trainer`` says whether the file is a trainer checkpoint."""
    from atlaskit.studies.deepgps import EXPORT_FILE
    from atlaskit.studies.deepyeast.training import CHECKPOINT_FORMAT as DEEPYEAST_FORMAT
    from atlaskit.train.checkpoints import CHECKPOINT_FORMAT, CheckpointError, verify_checkpoint

    if path.is_dir():
        if (path / EXPORT_FILE).is_file():
            return "deepgps", path / "last.pt", True
        if (path / DEEPYEAST_MODEL_FILE).is_file():
            return "deepyeast", path / DEEPYEAST_MODEL_FILE, False
        found = next((path / n for n in ("best.pt", "last.pt") if (path / n).is_file()), None)
        if found is None:
            raise _unknown(path, "a folder without best.pt, last.pt or deepyeast-model.pt")
        path = found
    elif not path.is_file():
        raise _unknown(path, "no such file or folder")
    if path.suffix.lower() == ".safetensors":
        return "safetensors", path, False
    if (path.parent / EXPORT_FILE).is_file():
        return "deepgps", path, True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unverified (older) file: its study loader warns
            ckpt = verify_checkpoint(path)
    except CheckpointError as exc:
        if "integrity check" in str(exc) or "non-finite" in str(exc):
            raise  # one of ours, damaged: that message says what to do
        raise _unknown(path, "not a model checkpoint") from None
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    if fmt == DEEPYEAST_FORMAT:
        return "deepyeast", path, False
    if fmt == CHECKPOINT_FORMAT:
        return _trainer_study(path, ckpt), path, True
    raise _unknown(path, f"a checkpoint of unknown format {fmt!r}")


def _build(study: str, spec: dict) -> torch.nn.Module:
    """A freshly initialised network of ``study`` from its architecture ``spec`` (:func:`_spec`)."""
    if study == "cytoself":
        from atlaskit.models.cytoself import CytoselfModel
        from atlaskit.models.cytoself_config import CytoselfConfig

        return CytoselfModel(CytoselfConfig.from_dict(spec["config"]))
    if study == "deepgps":
        from atlaskit.models.deepgps import DeepGPSConfig, DeepGPSModel

        return DeepGPSModel(DeepGPSConfig.from_dict(spec["config"]))
    if study == "deepyeast":
        from atlaskit.models.deepyeast import DeepYeastConfig, DeepYeastNet

        return DeepYeastNet(DeepYeastConfig.from_dict(spec["config"]))
    if study == "cnnfcn":
        from atlaskit.studies.cnnfcn.training import build_network

        return build_network(spec)
    raise ParameterError(f"unknown study {study!r}; known: {', '.join(STUDIES)}")


def _spec(study: str, model: torch.nn.Module) -> dict:
    """The architecture of a loaded model in plain JSON types, what :func:`_build` rebuilds."""
    if study == "cnnfcn":
        from atlaskit.studies.cnnfcn.training import network_spec

        return network_spec(model)
    return {"config": json.loads(json.dumps(model.config.to_dict()))}


def _load_checkpoint_model(study: str, file: Path, trainer: bool, device: str) -> tuple[torch.nn.Module, list | None]:
    """The model of a checkpoint through its study's own loader, and its class names."""
    if study == "cytoself":
        from atlaskit.studies.cytoself.place import load_run

        return load_run(file), None
    if study == "deepgps":
        from atlaskit.studies.deepgps.training import load_network, read_export

        export = read_export(file.parent)
        return load_network(file, export, device=device), list(export.get("class_labels", export["classes"])) or None
    if study == "cnnfcn":
        from atlaskit.studies.cnnfcn.training import load_model

        return load_model(file, device=device)
    if trainer:  # the trainer's checkpoint of a DeepYeast run: no class names in it
        from atlaskit.train.checkpoints import load_checkpoint

        ckpt = load_checkpoint(file)
        model = _build("deepyeast", {"config": ckpt["config"]["model"]["model"]})
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise DataError(f"{file}: the weights do not fit the stored configuration ({str(exc).splitlines()[0]})") from None
        return model, None
    from atlaskit.studies.deepyeast import load_model

    return load_model(file, device=device)


def _load_safetensors_model(file: Path) -> tuple[str, torch.nn.Module, list | None]:
    from atlaskit.train.checkpoints import load_safetensors

    tensors, meta = load_safetensors(file)
    if meta.get("format") != WEIGHTS_FORMAT or meta.get("study") not in STUDIES:
        raise _unknown(file, f"a .safetensors file without atlaskit model metadata (format {meta.get('format')!r})")
    study = meta["study"]
    try:
        spec = json.loads(meta["spec"])
        classes = json.loads(meta.get("classes", "null"))
        model = _build(study, spec)
        model.load_state_dict(tensors)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:  # ParameterError is a ValueError
        raise DataError(f"{file}: its weights do not fit its stored {study} architecture "
                        f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return study, model, classes


def load(path: str | os.PathLike, device: str = "cpu") -> torch.nn.Module:
    """A saved model of any of the four studies, ready to use: in eval mode, on ``device``.

    Parameters
    ----------
    path : path
        A chapter's run folder (``_build/runs/<chapter>/<run>``) or a checkpoint in one
        (``best.pt``, ``last.pt``, DeepYeast's ``deepyeast-model.pt``), or a ``.safetensors``
        file written by :func:`export_weights`. A run folder gives its best-validation weights
        where the chapter kept them (``best.pt``; deepGPS trains without validation: ``last.pt``).
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

    Returns
    -------
    torch.nn.Module
        The study's network (``CytoselfModel``, ``DeepGPSModel``, ``CNN``/``FCN``/``HPAInception``
        or ``DeepYeastNet``) with ``training == False``, its parameters on ``device``, and three
        more attributes: ``study`` (``"cytoself"``, ``"deepgps"``, ``"cnnfcn"`` or
        ``"deepyeast"``), ``classes`` (the output classes' names as a tuple, or None where the
        file does not say: cytoself, a DeepYeast trainer checkpoint) and ``source`` (the file
        read, a Path). Inputs are as in the chapter (e.g. DeepYeast: (N, 2, 64, 64) in [0, 1]).

    Raises
    ------
    AtlaskitError
        Not a model file of the four studies (the message names the file and what is accepted).
    CheckpointError
        A file of ours that changed after it was written (checksum) or holds NaN/inf weights.
    DataError
        Weights that do not fit the configuration stored with them.
    ParameterError
        An unknown or unavailable ``device``.
    """
    from atlaskit.train import resolve_device

    device = str(resolve_device(device))  # a bad device is the device's fault, not the file's
    study, file, trainer = _identify(Path(path).expanduser())
    if study == "safetensors":
        study, model, classes = _load_safetensors_model(file)
    else:
        model, classes = _load_checkpoint_model(study, file, trainer, device)
    model = model.to(device).eval()
    model.study = study
    model.classes = tuple(str(c) for c in classes) if classes else None
    model.source = file
    return model


def export_weights(path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write a saved model (anything :func:`load` reads) as a ``.safetensors`` file that
    :func:`load` reads back into the same model: its ``state_dict`` tensors plus the metadata
    described in this module's docstring. Returns ``out``.

    Raises
    ------
    ParameterError
        ``out`` does not end in ``.safetensors``, or is the file being read.
    AtlaskitError, CheckpointError, DataError
        As :func:`load`.
    """
    import atlaskit
    from atlaskit.train.checkpoints import save_safetensors

    out = Path(out).expanduser()
    if out.suffix.lower() != ".safetensors":
        raise ParameterError(f"{out}: the weights file must end in .safetensors")
    model = load(path)
    if out.exists() and out.resolve() == Path(model.source).resolve():
        raise ParameterError(f"{out}: would overwrite the file being exported; choose another name")
    meta: dict[str, Any] = {
        "format": WEIGHTS_FORMAT, "study": model.study, "spec": json.dumps(_spec(model.study, model), sort_keys=True),
        "classes": json.dumps(list(model.classes) if model.classes else None), "source": Path(model.source).name,
        "atlaskit": atlaskit.__version__,
    }
    return save_safetensors(model.state_dict(), out, meta)
