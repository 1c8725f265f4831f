"""Model weights kept by the data registry: ESM2 safetensors files under ``weights/esm2/``.

The registry holds on-request entries ``weights/esm2/<model name>.safetensors`` (the Hugging Face
copies of ESM2, see ``_make_registry.ON_REQUEST``): ``atlaskit data fetch
weights/esm2/esm2_t6_8M_UR50D.safetensors`` downloads one into the cache where huggingface.co is
reachable, and a mirror folder may hold them. No default run downloads them.

:class:`RegisteredESM2Weights` is how the sequence embedders see those entries. The models layer
knows tensors only (it never imports :mod:`atlaskit.data`), so an instance is handed to
:func:`atlaskit.models.sequence.select_embedder` (``registered=``) by the caller::

    from atlaskit.data.model_weights import RegisteredESM2Weights
    from atlaskit.models import sequence

    choice = sequence.select_embedder("auto", esm_model="esm2_t6_8M_UR50D",
                                      registered=RegisteredESM2Weights())
"""
from __future__ import annotations

from pathlib import Path

from atlaskit.data.registry import Registry, default_registry

__all__ = ["ESM2_GROUP", "esm2_entry_name", "RegisteredESM2Weights"]

#: Registry folder of the ESM2 weight files.
ESM2_GROUP = "weights/esm2"


def esm2_entry_name(model_name: str) -> str:
    """Registry name of the safetensors file of ``model_name`` (registered or not)."""
    return f"{ESM2_GROUP}/{model_name}.safetensors"


class RegisteredESM2Weights:
    """ESM2 weight files of the data registry, found in its cache or mirrors, verified by sha256.

    Parameters
    ----------
    registry : Registry, optional
        The registry to read (by default the package's, with ``$ATLASKIT_CACHE`` and
        ``$ATLASKIT_MIRROR``).
    """

    def __init__(self, registry: Registry | None = None):
        self._registry = registry

    @property
    def registry(self) -> Registry:
        return self._registry if self._registry is not None else default_registry()

    def models(self) -> list[str]:
        """Names of the ESM2 models the registry holds an entry for."""
        prefix = ESM2_GROUP + "/"
        return sorted(n[len(prefix):-len(".safetensors")] for n in self.registry.entries(on_request=True)
                      if n.startswith(prefix) and n.endswith(".safetensors"))

    def describe(self, model_name: str) -> str:
        """Where this source looks, for messages."""
        name = esm2_entry_name(model_name)
        if model_name not in self.models():
            return f"the data registry (no entry for {model_name})"
        from atlaskit._text import display_path

        return (f"the data registry's {name} in the cache {display_path(self.registry.cache_dir())} or a mirror "
                f"(`atlaskit data fetch {name}` downloads it where huggingface.co is reachable)")

    def locate(self, model_name: str, download: bool = False) -> Path | None:
        """A verified local copy of ``model_name``'s weights, or None.

        Parameters
        ----------
        model_name : str
        download : bool
            Download the file into the cache when no verified copy is present.

        Returns
        -------
        pathlib.Path or None
            None when the model has no entry, or (without ``download``) no verified copy is in the
            cache or a mirror. A copy whose sha256 differs from the registry's is never returned
            (a mirror's is skipped with a :class:`~atlaskit.data.registry.RegistryWarning`).

        Raises
        ------
        FetchError
            With ``download``: the download failed (offline, HTTP error) or its sha256 does not
            match the registry's.
        """
        registry = self.registry
        entry = registry.entries(on_request=True).get(esm2_entry_name(model_name))
        if entry is None:
            return None
        if not download:
            # The same cache and mirrors, this one entry: status() verifies without downloading.
            probe = Registry([entry], cache=registry.cache_dir(), mirrors=registry.mirror_dirs())
            if probe.status(on_request=True)["where"].iloc[0] == "missing":
                return None
        return registry.fetch(entry.name, progress=download)
