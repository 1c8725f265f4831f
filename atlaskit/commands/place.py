"""``atlaskit place``: images of a new protein placed on chapter 01's cytoself atlas.

The chapter writes its atlas (``atlas-<scale>-<data>-seed<seed>.h5ad``) and its trained runs
(``full-r0-<key>/``) under ``_build/runs/01_cytoself``. Given a run folder, an atlas, or both,
:func:`resolve_run_and_atlas` finds the other one in the same folder by the data set key they
share (the most recent match); :func:`place_images` reads the images
(:func:`atlaskit.studies.cytoself.place.read_place_images`), encodes them with the run's model
and places them (:func:`atlaskit.studies.cytoself.place.place_on_atlas`).
"""
from __future__ import annotations

from pathlib import Path

from atlaskit.errors import DataError

__all__ = ["resolve_run_and_atlas", "place_images", "placement_text"]


def _run_data_key(folder: Path) -> tuple[str | None, str | None]:
    """(data key, variant) of a run folder's checkpoint, (None, None) when unreadable."""
    import warnings

    from atlaskit.train import load_checkpoint

    path = next((folder / n for n in ("best.pt", "last.pt") if (folder / n).is_file()), None)
    if path is None:
        return None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = (load_checkpoint(path).get("config") or {}).get("model") or {}
    except Exception:
        return None, None
    return config.get("data"), config.get("variant")


def resolve_run_and_atlas(run: str | Path | None, atlas: str | Path | None = None) -> tuple[Path, Path]:
    """A run folder and an atlas file that belong together.

    ``run`` may be a run folder or an ``.h5ad`` atlas (then ``atlas`` is taken from it). The
    missing one is looked up beside the given one: the most recently written atlas (or ``full``
    run) with the same data set key.

    Raises
    ------
    DataError
        Neither given, a path that does not exist, or no match beside it.
    """
    from atlaskit.analysis.atlas import read_atlas_h5ad

    if run is not None and str(run).lower().endswith(".h5ad"):
        run, atlas = (None, run) if atlas is None else (run, atlas)
    if run is None and atlas is None:
        raise DataError("give --run (a chapter-01 run folder) or --atlas (a chapter-01 .h5ad atlas)")
    for given, what in ((run, "run folder"), (atlas, "atlas")):
        if given is not None and not Path(given).exists():
            raise DataError(f"{given}: no such {what}")
    if run is not None and atlas is not None:
        return Path(run), Path(atlas)
    if atlas is None:
        run = Path(run)
        key, _ = _run_data_key(run)
        if key is None:
            raise DataError(f"{run}: no readable best.pt or last.pt (not a finished chapter-01 run)")
        matches = []
        for path in run.parent.glob("atlas-*.h5ad"):
            try:
                if read_atlas_h5ad(path).uns.get("data_key") == key:
                    matches.append(path)
            except DataError:
                continue
        if not matches:
            raise DataError(f"{run}: no atlas of its data set beside it; run chapter 01 or pass --atlas")
        return run, max(matches, key=lambda p: p.stat().st_mtime)
    atlas = Path(atlas)
    key = read_atlas_h5ad(atlas).uns.get("data_key")
    matches = [f for f in atlas.parent.glob("full-r0-*") if f.is_dir() and _run_data_key(f) == (key, "full")]
    if not matches:
        raise DataError(f"{atlas}: no finished 'full' run of its data set beside it; pass --run RUN_DIR")
    return max(matches, key=lambda p: p.stat().st_mtime), atlas


def place_images(run, images, *, atlas=None, k: int = 10):
    """Place the images of ``images`` (an ``.npz`` or a cytoself-format folder of one protein).

    Returns
    -------
    placement : Placement
    name : str
        The protein's name (file prefix or ``.npz`` stem).
    run_dir, atlas_path : Path
    """
    from atlaskit.studies.cytoself.place import load_run, place_on_atlas, read_place_images

    run_dir, atlas_path = resolve_run_and_atlas(run, atlas)
    x, name = read_place_images(images)  # before the model: a wrong path fails in a second
    model = load_run(run_dir)
    return place_on_atlas(model, atlas_path, x, k=k), name, run_dir, atlas_path


def placement_text(placement, name: str, run_dir, atlas_path) -> str:
    """The placement as plain text: where, the family vote, the neighbour table."""
    import pandas as pd

    from atlaskit._text import display_path

    table = placement.table()
    table["distance"] = table["distance"].map(lambda v: f"{v:.3f}")
    table["family share"] = table["family share"].map(lambda v: f"{v:.0%}")
    with pd.option_context("display.width", 160, "display.max_rows", None):
        return (f"{name}: placed on {display_path(atlas_path)} with the model of {display_path(run_dir)}\n"
                f"{placement.summary()}\n"
                f"most likely family: {placement.family} ({placement.votes.iloc[0]:.0%} of the votes"
                f"{' each' if len(placement.leading) > 1 else ''})\n"
                + (f"note: the refitted UMAP differs from the stored map by up to {placement.refit_shift:.3g}\n"
                   if placement.refit_shift > 1e-3 else "")
                + f"\nnearest proteins (embedding space):\n{table.to_string()}\n")
