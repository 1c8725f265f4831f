"""Chapter 04 pipeline — DeepYeast (Pärnamaa & Parts 2017, *G3* 7:1385).

What the chapter calls, in order:

1. :func:`preset` — sizes per scale (``"ci"``: a narrow network and a few thousand simulated
   crops for 2 CPU cores; ``"full"``: the paper's network and data sizes).
2. :func:`build_data` — the 12-class set (train / val / test), the 4-class transfer set and, on
   simulated data, proteins spread between nucleus and cytoplasm; simulated (default, with
   non-cell crops mixed in as in a real screen) or the real DeepYeast images in their public
   layout. Each set is an :class:`~atlaskit.data.store.ArrayStore`, built once and reused.
3. :func:`train` — :class:`~atlaskit.models.deepyeast.DeepYeastNet` with the paper's SGD recipe
   (:func:`paper_train_config`) through :func:`atlaskit.studies._scaffold.fit_or_reuse`; a
   :class:`~atlaskit.studies._scaffold.TrainedRun`.
4. Evaluation: :func:`evaluate` (:func:`predict` and :func:`cell_metrics`: accuracy, kappa,
   precision / recall with stratified bootstrap intervals, confusion), :func:`quality_filter`
   (random forest cells vs non-cells), :func:`protein_level` and :func:`protein_accuracy_vs_cells`
   (Dirichlet–multinomial calls), :func:`spread_posteriors` (nucleus / cytoplasm proportions).
5. Baseline and transfer: :func:`hand_features` (cached), :func:`random_forest_baseline`,
   :func:`layer_features` and :func:`transfer_curves` (Fig. 4C and S6).
6. Interpretation: :func:`embed_layers` (t-SNE, Fig. 3B), :func:`layer_information`
   (mutual information, Fig. 3D), :func:`top_unit_patches` (Fig. 3A), :func:`example_cells` and
   :func:`activation_maps` (Fig. 3C), :func:`unit_feature_correlation` and
   :func:`strongest_correlations` (units against hand-crafted features, Fig. S4);
   :func:`forest_vs_network` (per-protein accuracy of the forest beside the network's, Fig. S2).
7. Real cells (:mod:`.realcells`): :func:`sim_to_real` (the network on the mirror's real
   Toronto WT2 cells) and :func:`real_and_simulated_probe` (protein-disjoint forests on network and
   hand-crafted features of real cells, beside the same on matched simulated cells).
8. Sim-to-real check: :func:`save_model` / :func:`load_model`, the checkpoint that
   ``atlaskit evaluate deepyeast --checkpoint PATH --images FILE.npz`` measures
   (:mod:`atlaskit.commands.evaluate`).

The figures the chapter shows are drawn by :mod:`atlaskit.studies.deepyeast.figures`.
"""
from __future__ import annotations

CHAPTER = "04_deepyeast"

from atlaskit.data.catalogs import DEEPYEAST_CLASSES, TRANSFER_CLASSES  # noqa: E402
from atlaskit.metrics import agreement  # noqa: E402
from atlaskit.studies.deepyeast.presets import PRESETS, TRANSFER_SIZES, Preset, describe, preset  # noqa: E402
from atlaskit.studies.deepyeast.data import (  # noqa: E402
    YeastData, build_data, data_sources, dual_specs, protein_key, real_splits, training_mean,
)
from atlaskit.studies.deepyeast.training import (  # noqa: E402
    CHECKPOINT_FORMAT, layer_table, load_model, paper_train_config, predict, save_model, train,
)
from atlaskit.studies.deepyeast.evaluation import (  # noqa: E402
    PAPER, cell_metrics, comparison_table, evaluate, forest_vs_network, one_hot, prior_sweep,
    protein_accuracy_vs_cells, protein_level, spread_posteriors, vote_calls,
)
from atlaskit.studies.deepyeast.features import (  # noqa: E402
    forest_learning_curve, hand_features, layer_features, quality_filter, quality_training_set,
    random_forest_baseline, stratified_subset, summarize_transfer, transfer_curves,
)
from atlaskit.studies.deepyeast.interpretation import (  # noqa: E402
    activation_maps, embed_layers, example_cells, layer_information, max_activating_patches, receptive_fields,
    strongest_correlations, top_unit_patches, unit_class_information, unit_feature_correlation,
)
from atlaskit.studies.deepyeast.realcells import (  # noqa: E402
    PROTEIN_FOLDS, SimToReal, protein_disjoint_probe, real_and_simulated_probe, sim_to_real, simulated_counterpart,
)
from atlaskit.studies.deepyeast.effects import measure_effects  # noqa: E402
from atlaskit.studies.deepyeast import figures  # noqa: E402

__all__ = [
    "measure_effects",
    "CHAPTER", "PAPER", "Preset", "PRESETS", "TRANSFER_SIZES", "preset", "describe",
    "YeastData", "build_data", "real_splits", "data_sources", "protein_key", "dual_specs", "training_mean",
    "paper_train_config", "train", "predict", "layer_table", "save_model", "load_model", "CHECKPOINT_FORMAT",
    "evaluate", "cell_metrics", "protein_level", "protein_accuracy_vs_cells", "prior_sweep", "vote_calls",
    "spread_posteriors", "comparison_table", "one_hot", "forest_vs_network",
    "hand_features", "random_forest_baseline", "stratified_subset", "forest_learning_curve", "quality_filter",
    "quality_training_set", "layer_features", "transfer_curves", "summarize_transfer",
    "embed_layers", "unit_class_information", "layer_information", "receptive_fields", "max_activating_patches",
    "top_unit_patches", "example_cells", "activation_maps", "unit_feature_correlation", "strongest_correlations",
    "figures", "DEEPYEAST_CLASSES", "TRANSFER_CLASSES",
    "PROTEIN_FOLDS", "SimToReal", "sim_to_real", "protein_disjoint_probe", "simulated_counterpart", "real_and_simulated_probe",
]
