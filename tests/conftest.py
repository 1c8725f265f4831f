"""Test-wide set-up: point the data registry at the read-only mirror beside the project and give
every test session its own empty cache, so tests never touch a user's cache or the network."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIRROR = (ROOT.parent / "shared" / "data").resolve()


def pytest_configure(config):
    if "ATLASKIT_MIRROR" not in os.environ and MIRROR.is_dir():
        os.environ["ATLASKIT_MIRROR"] = str(MIRROR)
    os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """A fresh cache folder for the whole session (the mirror is read in place, never copied)."""
    if "ATLASKIT_TEST_KEEP_CACHE" not in os.environ:
        os.environ["ATLASKIT_CACHE"] = str(tmp_path_factory.mktemp("atlaskit-cache"))
    yield


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The read-only mirror of real data (../shared/data); tests needing it skip without it."""
    path = Path(os.environ.get("ATLASKIT_MIRROR", str(MIRROR)).split(os.pathsep)[0])
    if not path.is_dir():
        pytest.skip(f"no data mirror at {path}")
    return path


def train_tiny_deepgps(root: Path, images_per_protein: int = 1):
    """A tiny deepGPS-single-2 chapter run (4 proteins per class and split, 32 px, one epoch) under
    ``root``: ``(table, images, features, run)``. Set ``ATLASKIT_RUNS`` (e.g. to ``root / "runs"``)
    before calling, so that the run stays in the test's folder."""
    from atlaskit.models.sequence import CompositionEmbedder
    from atlaskit.studies import deepgps

    table = deepgps.protein_table(0)
    keep = [g for _, grp in table[table["single-2"].notna()].groupby(["single-2", "split"]) for g in grp["gene"].head(4)]
    small = table[table["gene"].isin(keep)].reset_index(drop=True)
    preset = deepgps.preset("ci", epochs=1).replace(image_size=32, width_multiplier=0.0625,
                                                    images_per_protein=images_per_protein, batch_size=8)
    embedder = CompositionEmbedder()
    feats = deepgps.embed_proteins(small, embedder, cache=root / "emb")
    images = deepgps.build_data(small, preset, root=root / "stores")
    run = deepgps.train("single-2", small, images, feats, preset, embedder=embedder, device="cpu")
    return small, images, feats, run


@pytest.fixture(scope="session")
def tiny_deepgps_trainer():
    """:func:`train_tiny_deepgps`, for fixtures that need another size of the tiny run."""
    return train_tiny_deepgps


@pytest.fixture(scope="module")
def tiny_deepgps_run(tmp_path_factory):
    """A tiny deepGPS-single-2 chapter run in its own runs folder: ``(root, run)``."""
    root = tmp_path_factory.mktemp("dgps")
    mp = pytest.MonkeyPatch()
    mp.setenv("ATLASKIT_RUNS", str(root / "runs"))
    yield root, train_tiny_deepgps(root)[3]
    mp.undo()
