"""The cytoself study (Kobayashi et al. 2022, *Nature Methods* 19:995–1003): what chapter 01 runs.

Pipeline::

    select_proteins ──► build_data ──► CytoselfData (array store: protein, nucleus distance,
                                        raw nucleus; 8:1:1 split within every protein)
                               │
                               ▼
    train(variant) for variant in VARIANTS ──► VariantRun (model with its best weights, history)
                               │                 (train_variants: every variant × repeat)
                               ▼
    evaluate(runs, data): embed(model, test set) ──► Embedding (VQ2 global vectors, VQ1 / VQ2 indices)
          │                          │                               │
          ▼                          ▼                               ▼
    ablation_table (UMAP +     feature_spectra / orphan_ranking   zeroing_maps
    clustering score by        (VQ1 index histograms, biclusters,  (what each index cluster
    family, mean ± sd)          consensus per family)               draws)

Modules: :mod:`.presets` (presets, variants), :mod:`.data` (proteins, the image store),
:mod:`.training` (runs), :mod:`.evaluation` (embeddings, clustering scores, ablation table, code
usage), :mod:`.spectra` (feature spectra, orphans, feature zeroing and its on/off-target score),
:mod:`.heldout` (proteins never in training, placed by their spectra), :mod:`.place` (new images
placed on an existing atlas: UMAP transform, nearest proteins, family vote), :mod:`.atlas` (example
proteins, the nucleus ↔ cytoplasm axis of the grey band, the AnnData export) and :mod:`.figures` (every figure of the chapter).

Presets per scale (:data:`PRESETS`): ``tiny`` (tests and teaching), ``ci`` (the book's default:
a deliberately small model on a few dozen proteins, minutes on two CPU cores) and ``full`` (the
paper's configuration: all 1310 OpenCell proteins, the published model — 57 million parameters in
atlaskit's implementation, most of them in the two classifiers —, Adam, plateau schedule, early
stopping).

Variants (:data:`VARIANTS`, the paper's ablations): ``full``; ``no_nucleus`` (protein channel
only); ``no_distance`` (the raw nucleus image, min-max scaled to [0, 1], instead of its signed
distance transform); ``no_split`` (VQ2 quantizes whole 576-d vectors instead of 9 sub-vectors);
``no_pretext`` (no protein-identification classifiers).

Decisions
---------
* Nucleus channel of simulated crops: the signed distance transform of **our segmentation** of the
  simulated Hoechst channel (:func:`atlaskit.data.segment.segment_nuclei` with
  :data:`SEGMENT_KWARGS`), as the real pipeline segments real images; the simulator's true
  masks are used only to score that segmentation (and as a fallback for a crop in which it finds
  no nucleus, recorded in the ``nucleus_source`` column). Distances are those of every nucleus in
  the crop, divided by the largest absolute value (:func:`atlaskit.data.segment.signed_distance`,
  ``"max_abs"``): inside positive, in [-1, 1].
* Learning rate: the paper's text says Adam with 4e-4, the public code uses 1e-4; ``full`` uses the
  paper's 4e-4. ``ci`` uses 2e-3 because it trains for only about a hundred steps per run
  (stated in the chapter); at 1e-3 the pretext classifier is still near chance after 4 epochs.
* Clustering score: :func:`atlaskit.analysis.atlas.clustering_score` on the 2-D UMAP
  (15 neighbours, min_dist 0.1) of the flattened VQ2 vectors of the **test** images, labelled by
  the protein's localization family (:data:`atlaskit.data.catalogs.FAMILIES`)::

      c_k = median of the points of family k,  s_k = median_j ||x_j − c_k||
      score = sqrt(mean over k and axes of (c_k − mean_k c_k)²) / median_k s_k
"""

from __future__ import annotations

#: The chapter this study belongs to (its runs and stores are filed under it).
CHAPTER = "01_cytoself"

from atlaskit.studies.cytoself.effects import measure_effects  # noqa: E402
from atlaskit.studies.cytoself import figures  # noqa: E402
from atlaskit.studies.cytoself.atlas import (  # noqa: E402
    BAND_GROUPS,
    atlas_obs,
    band_group,
    band_groups,
    band_positions,
    band_scores,
    band_summary,
    default_orphan,
    example_proteins,
    export_atlas,
)
from atlaskit.studies.cytoself.data import CHANNELS, SEGMENT_KWARGS, CytoselfData, build_data, select_proteins  # noqa: E402
from atlaskit.studies.cytoself.evaluation import (  # noqa: E402
    Embedding,
    Evaluation,
    ablation_table,
    clustering_scores,
    code_usage,
    embed,
    evaluate,
    umap_seed_scores,
)
from atlaskit.studies.cytoself.heldout import (  # noqa: E402
    HELDOUT_CROPS,
    HELDOUT_PER_FAMILY,
    HeldOut,
    build_heldout,
    heldout_by_family,
    heldout_orphans,
    heldout_ranking,
    select_heldout,
)
from atlaskit.studies.cytoself.place import (  # noqa: E402
    Placement,
    heldout_images,
    load_run,
    place_features,
    place_on_atlas,
    placement_figure,
    read_place_images,
)
from atlaskit.studies.cytoself.presets import (  # noqa: E402
    FULL_SIM_CROPS,
    PAPER_TABLE1_ORDER,
    PRESETS,
    SCALES,
    VARIANTS,
    Preset,
    Variant,
    describe_model,
    preset,
)
from atlaskit.studies.cytoself.spectra import (  # noqa: E402
    Spectra,
    feature_spectra,
    image_code_histograms,
    orphan_accuracy,
    orphan_ranking,
    family_clusters,
    repeat_spectra,
    zeroing_by_family,
    zeroing_changes,
    zeroing_examples,
    zeroing_maps,
    zeroing_scores,
)
from atlaskit.studies.cytoself.training import (  # noqa: E402
    VariantRun,
    final_perplexity,
    history_frame,
    perplexity_history,
    runs_table,
    train,
    train_variants,
)

__all__ = [
    "measure_effects",
    "CHAPTER",
    "SCALES",
    "CHANNELS",
    "Preset",
    "PRESETS",
    "FULL_SIM_CROPS",
    "preset",
    "describe_model",
    "Variant",
    "VARIANTS",
    "PAPER_TABLE1_ORDER",
    "SEGMENT_KWARGS",
    "select_proteins",
    "CytoselfData",
    "build_data",
    "VariantRun",
    "train",
    "train_variants",
    "runs_table",
    "history_frame",
    "perplexity_history",
    "final_perplexity",
    "Embedding",
    "embed",
    "Evaluation",
    "evaluate",
    "clustering_scores",
    "ablation_table",
    "umap_seed_scores",
    "code_usage",
    "image_code_histograms",
    "Spectra",
    "feature_spectra",
    "orphan_ranking",
    "orphan_accuracy",
    "zeroing_maps",
    "zeroing_examples",
    "repeat_spectra",
    "family_clusters",
    "zeroing_changes",
    "zeroing_scores",
    "zeroing_by_family",
    "HELDOUT_PER_FAMILY",
    "HELDOUT_CROPS",
    "select_heldout",
    "HeldOut",
    "build_heldout",
    "heldout_ranking",
    "heldout_orphans",
    "heldout_by_family",
    "example_proteins",
    "default_orphan",
    "atlas_obs",
    "export_atlas",
    "BAND_GROUPS",
    "band_group",
    "band_groups",
    "band_positions",
    "band_scores",
    "band_summary",
    "Placement",
    "place_on_atlas",
    "place_features",
    "read_place_images",
    "load_run",
    "heldout_images",
    "placement_figure",
    "figures",
]
