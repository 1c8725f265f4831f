"""Registry of external data files (temporary minimal version: mirror lookup only).

The full version (cache, sha256 verification, resumable download) replaces this file.
"""
from __future__ import annotations

import os
from pathlib import Path

from atlaskit.errors import FetchError


def fetch(name: str) -> Path:
    """Return a local path for the registered file ``name`` (e.g. ``"opencell/annotations-flat.csv"``)."""
    for folder in filter(None, os.environ.get("ATLASKIT_MIRROR", "").split(os.pathsep)):
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
    raise FetchError(f"{name}: not found in ATLASKIT_MIRROR")
