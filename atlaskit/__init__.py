"""atlaskit — the supporting package of the Protein Localization Atlas book.

The book rebuilds four published studies of protein subcellular localization (cytoself, deepGPS,
CNN vs FCN on the Human Protein Atlas, DeepYeast). Logic lives here; the chapters in
``notebooks/`` hold narrative, parameters and calls.
"""

__version__ = "0.1.0"

from atlaskit.errors import AtlaskitError, DataError, FetchError  # noqa: E402

__all__ = ["__version__", "AtlaskitError", "DataError", "FetchError"]
