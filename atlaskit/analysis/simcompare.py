"""Simulated versus real images: the measurements behind chapter 00's comparison.

Each function pairs a real image set from the data registry with simulated images of the same
kind and returns tidy tables (and the images, for figures). The measurements come from
:mod:`atlaskit.analysis.imagestats`; segmentation from :mod:`atlaskit.data.segment`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlaskit.analysis import imagestats
from atlaskit.data import registry, segment

#: Kaggle HPA channel colour → the simulator's channel name (the HPA staining convention).
HPA_CHANNELS = {"green": "protein", "blue": "nucleus", "red": "microtubules", "yellow": "er"}


def real_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """The real DSB2018 nuclei image (512×512 uint16) and its instance mask (125 nuclei)."""
    import tifffile

    image = tifffile.imread(registry.fetch("nuclei/dsb2018-nuclei.tif", progress=False))
    mask = tifffile.imread(registry.fetch("nuclei/dsb2018-nuclei-mask.tif", progress=False))
    return image, mask.astype(np.int32)


@dataclass
class NucleusComparison:
    """Result of :func:`compare_nuclei`."""

    real_image: np.ndarray  # (H, W) real nucleus stain
    real_labels: np.ndarray  # (H, W) our segmentation of it
    sim_image: np.ndarray  # (H, W) one simulated OpenCell field, nucleus channel
    sim_labels: np.ndarray  # (H, W) our segmentation of it
    segmentation: pd.DataFrame  # F1 / IoU of the segmentation on real and simulated images
    shapes: pd.DataFrame  # per-nucleus shapes, column "source" = real / simulated
    table: pd.DataFrame  # compare_samples of the shape columns


def compare_nuclei(proteins, *, n_fields: int = 4, seed: int = 0, size: int = 512) -> NucleusComparison:
    """Segment real and simulated nuclei the same way and compare their shapes.

    Ground-truth masks give the shapes (the real annotation and the simulator's own masks);
    the segmentation scores say how well the cytoself-style pipeline recovers them.
    """
    from atlaskit.data import sim

    real_image, real_mask = real_nuclei()
    real_labels = segment.segment_nuclei(real_image)
    rows = [{"images": "real (DSB2018)", **segment.match_instances(real_labels, real_mask)}]
    sim_shapes, first = [], None
    for index in range(n_fields):
        protein = proteins[index % len(proteins)]
        field = sim.opencell_field(protein, seed=seed, size=size, index=index, normalize="raw")
        nucleus, truth = field.images[0, 1], field.nucleus_masks[0]
        labels = segment.segment_nuclei(nucleus, clear_border=False)
        rows.append({"images": f"simulated field {index}", **segment.match_instances(labels, truth)})
        sim_shapes.append(imagestats.nucleus_shapes(truth))
        if first is None:
            first = (nucleus, labels)
    real_shapes = imagestats.nucleus_shapes(real_mask)
    simulated = pd.concat(sim_shapes, ignore_index=True)
    shapes = pd.concat([real_shapes.assign(source="real"), simulated.assign(source="simulated")], ignore_index=True)
    table = imagestats.compare_samples(real_shapes, simulated, imagestats.SHAPE_COLUMNS)
    segmentation = pd.DataFrame(rows)[["images", "n_true", "n_pred", "precision", "recall", "f1", "mean_iou"]]
    return NucleusComparison(real_image, real_labels, first[0], first[1], segmentation, shapes, table)


def real_hpa_channels() -> dict[str, list[tuple[str, np.ndarray]]]:
    """The real Kaggle HPA channel PNGs of the mirror, by colour: ``{colour: [(id, (H, W) uint8)]}``."""
    import imageio.v3 as iio

    channels: dict[str, list] = {colour: [] for colour in HPA_CHANNELS}
    for name in sorted(n for n in registry.entries() if n.startswith("hpa/kaggle2018-sample/")):
        ident, _, colour = name.rsplit("/", 1)[1].removesuffix(".png").rpartition("_")
        channels[colour].append((ident, iio.imread(registry.fetch(name, progress=False))))
    return channels


def _channel_measures(image: np.ndarray) -> dict[str, float]:
    return {**imagestats.intensity_profile(image), **imagestats.texture_features(image)}


def compare_hpa_channels(n_fields: int = 12, *, seed: int = 0, size: int = 512) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Intensity and texture of real Kaggle HPA channels versus simulated HPA fields.

    Returns
    -------
    measures : DataFrame
        One row per (image, channel): source, channel and every measurement.
    table : DataFrame
        Per channel and measurement: real and simulated medians, their ratio and the KS statistic.
    """
    from atlaskit.data import sim

    rows = []
    for colour, images in real_hpa_channels().items():
        for ident, image in images:
            rows.append({"source": "real", "channel": HPA_CHANNELS[colour], "image": ident, **_channel_measures(image)})
    fields = sim.hpa_fields(n_fields, 1, seed=seed, size=size)
    for index in range(len(fields.images)):
        for channel_index, channel in enumerate(fields.channels):
            rows.append({"source": "simulated", "channel": channel, "image": str(fields.meta["field_id"].iloc[index]),
                         **_channel_measures(fields.images[index, channel_index])})
    measures = pd.DataFrame(rows)
    tables = []
    for channel, group in measures.groupby("channel", sort=False):
        numeric = group.drop(columns=["source", "channel", "image"])
        table = imagestats.compare_samples(numeric[group["source"] == "real"], numeric[group["source"] == "simulated"])
        tables.append(table.assign(channel=channel).rename_axis("measure").reset_index())
    table = pd.concat(tables, ignore_index=True)[["channel", "measure", "real_median", "sim_median", "ratio", "ks_statistic"]]
    return measures, table
