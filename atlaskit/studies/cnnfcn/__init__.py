"""Chapter 03 pipeline: CNN vs FCN on Human Protein Atlas images (Cyto 2017, 13 classes).

What the chapter calls, in order::

    p = preset(scale, epochs=epochs)                        # sizes, model width, epochs per scale
    data = build_data(p, data="sim", seed=seed)             # cached ArrayStore + splits
    cnn = train("cnn", data, p, seed=seed, device=device)   # a CnnFcnRun; reuses a finished run (runs.run_dir)
    fcn = train("fcn", data, p, seed=seed, device=device)
    ev = {"cnn": evaluate(cnn, data), "fcn": evaluate(fcn, data)}   # thresholds on train, scores on test
    summary_table(ev); calibration_table(ev); table1(ev)            # with bootstrap intervals, reliability
    counts = label_count_data(p, seed=seed, exclude=data.meta["protein"])   # fresh fields, 1-4 labels each
    ev_counts = {k: evaluate_fresh(m, ev[k], counts) for k, m in (("cnn", cnn), ("fcn", fcn))}
    table1(ev_counts); cell_line_table(ev_counts, train_lines=...)
    hdata = heterogeneity_data(p, seed=seed, exclude=data.meta["protein"])   # fresh fields, 4 cell fractions
    het = heterogeneity_experiment({"cnn": (cnn, ev["cnn"]), "fcn": (fcn, ev["fcn"])}, hdata)
    heterogeneity_summary(het); heterogeneity_verdict(het)
    pre = pretrain(pretraining_data(p, seed=seed, exclude=data.meta["protein"]), p, seed=seed)  # transfer
    tuned = finetune(pre, data, p, seed=seed); transfer_table({"from scratch": ev["cnn"], "pretrained": ...})
    # exercises: threshold_comparison, heatmap_confidences + pooling_table, target_variants, most_missed
    # figures: figures.fig_class_distribution(data), figures.fig_loss_curves({...}), ...

Data
----
*Simulated* (default): HPA-like 4-channel fields from :mod:`atlaskit.data.sim` whose label sets
are real Kaggle HPA label sets mapped to the 13 Cyto 2017 classes, so class frequencies and
co-occurrences are the real ones. Each simulated protein is one field (one label set), so the
random split of fields is protein-disjoint. Each field draws its per-cell heterogeneity from
``Preset.cell_fractions`` (the probability that a cell shows each of the protein's classes).
Images are cached as uint8 (the simulator's 8-bit values are kept exactly) in an
:class:`~atlaskit.data.store.ArrayStore` keyed by every generating parameter and the data layer's
source (the simulator included), under :func:`atlaskit.runs.store_root` of the chapter
(:func:`atlaskit.studies._scaffold.study_store`).

*Real*: an HPA image folder (``<id>_<green|blue|red|yellow>.png``) with a Kaggle-style label
table ``Id,Target`` (28 classes) mapped with :func:`atlaskit.data.catalogs.kaggle_to_cyto2017`;
images whose labels all map to dropped classes are left out. An optional cell-line column
(``cell_line``, ``Cell line`` or ``cellline``) enables the per-cell-line table. The Kaggle table
has no protein ids, so the split is by image.

Scales
------
``full`` is the paper: 4 × 256 × 256 input (the whole field of view at the paper's scale), kernels
32 … 512, 16 × 16 heat maps, 14,400 / 1,600 / 4,000 images, batch 64, up to 100 epochs with early
stopping after 20. ``ci`` keeps the architecture, the batch and the pixel scale but crops the
field (128 × 128 → 8 × 8 heat maps), divides every width by 4, and trains on about a thousand
fields for 20 epochs, so that the chapter runs in minutes on two CPU cores.
``tiny`` is smaller still (tests, teaching).

Modules
-------
:mod:`.presets` (scales), :mod:`.data` (stores, splits, FCN targets, heterogeneity fields),
:mod:`.training` (the paper's recipe, :class:`CnnFcnRun`, confidences and heat maps),
:mod:`.evaluation` (thresholds, the paper's metrics and tables), :mod:`.heterogeneity` (the test of
the paper's explanation), :mod:`.transfer` (pretraining on other simulated proteins and fine-tuning,
the analogue of the paper's ImageNet Inception-V3; a user's Inception-V3 checkpoint), :mod:`.exercises` (the exercises' helpers) and :mod:`.figures` (every
figure of the chapter).
"""
from __future__ import annotations

CHAPTER = "03_cnn_vs_fcn"

from atlaskit.studies.cnnfcn.presets import PRESETS, Preset, preset, settings_table  # noqa: E402
from atlaskit.studies.cnnfcn.data import (  # noqa: E402
    CLASSES,
    KAGGLE_LABELS,
    N_CLASSES,
    HPAData,
    HPADataset,
    build_data,
    build_real_data,
    build_sim_data,
    data_sources,
    heterogeneity_data,
    label_count_data,
    regenerate_fields,
    target_map_check,
)
from atlaskit.studies.cnnfcn.training import (  # noqa: E402
    CnnFcnRun,
    architecture_table,
    heatmaps,
    predict,
    train,
    train_config,
)
from atlaskit.studies.cnnfcn.evaluation import (  # noqa: E402
    PAPER,
    Evaluation,
    cell_line_table,
    compare_with_paper,
    confusion_frames,
    evaluate,
    evaluate_fresh,
    pick_examples,
    pick_heterogeneous,
    summary_table,
    summary_display,
    SUMMARY_ROWS,
    calibration_table,
    table1,
    threshold_table,
)
from atlaskit.studies.cnnfcn.heterogeneity import (  # noqa: E402
    HETERO_BINS,
    heterogeneity_experiment,
    heterogeneity_summary,
    heterogeneity_verdict,
)
from atlaskit.studies.cnnfcn.exercises import (  # noqa: E402
    POOLINGS,
    heatmap_confidences,
    most_missed,
    pooling_table,
    target_variants,
    threshold_comparison,
)
from atlaskit.studies.cnnfcn.transfer import (  # noqa: E402
    PAPER_TRANSFER,
    finetune,
    pretrain,
    pretraining_data,
    train_inception,
    transfer_display,
    transfer_table,
    transferred_cnn,
)
from atlaskit.studies.cnnfcn.effects import measure_effects  # noqa: E402
from atlaskit.studies.cnnfcn import figures  # noqa: E402

__all__ = [
    "measure_effects",
    "CHAPTER", "CLASSES", "N_CLASSES", "PAPER", "KAGGLE_LABELS",
    "Preset", "PRESETS", "preset", "settings_table",
    "HPAData", "HPADataset", "build_data", "build_sim_data", "build_real_data", "data_sources", "target_map_check",
    "regenerate_fields", "heterogeneity_data", "label_count_data",
    "CnnFcnRun", "train_config", "train", "predict", "heatmaps", "architecture_table",
    "Evaluation", "evaluate", "evaluate_fresh", "threshold_table", "summary_table",
    "summary_display", "SUMMARY_ROWS",
    "calibration_table", "table1", "cell_line_table", "compare_with_paper",
    "confusion_frames", "pick_examples", "pick_heterogeneous",
    "heterogeneity_experiment", "HETERO_BINS", "heterogeneity_summary", "heterogeneity_verdict",
    "threshold_comparison", "POOLINGS", "heatmap_confidences", "pooling_table", "target_variants", "most_missed",
    "pretraining_data", "pretrain", "transferred_cnn", "finetune", "train_inception", "transfer_table",
    "transfer_display", "PAPER_TRANSFER",
    "figures",
]
