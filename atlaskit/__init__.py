"""atlaskit — the supporting package of the Protein Localization Atlas book.

The book rebuilds four published studies of protein subcellular localization (cytoself, deepGPS,
CNN vs FCN on the Human Protein Atlas, DeepYeast). Logic lives here; the chapters in
``notebooks/`` hold narrative, parameters and calls.
"""

__version__ = "0.1.0"

from atlaskit.errors import AtlaskitError, DataError, FetchError  # noqa: E402

__all__ = ["__version__", "AtlaskitError", "DataError", "FetchError", "load"]


def __getattr__(name: str):
    """``atlaskit.load`` (:func:`atlaskit.loading.load`), imported on first use so that
    ``import atlaskit`` stays light (no torch)."""
    if name == "load":
        from atlaskit.loading import load

        return load
    raise AttributeError(f"module 'atlaskit' has no attribute {name!r}")
