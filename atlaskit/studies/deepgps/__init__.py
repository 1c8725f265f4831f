"""The deepGPS study (chapter 02): labels, sequence baselines, image data, training, evaluation, figures.

What is real and what is simulated
----------------------------------
- **Labels and sequences are real**: the OpenCell annotations (1310 proteins) give each protein
  its major localization by the paper's rule (:func:`atlaskit.data.catalogs.opencell_proteins`)
  and the OpenCell FASTA its sequence. The sequence-only classifiers (composition + logistic
  regression / random forest, ESM2 + MLP) and the deepGPS classifier head read only sequences,
  so their accuracies are results on real proteins and real labels.
- **Images are simulated** by default: the target protein image of a protein is a simulated
  OpenCell-style crop rendered from that protein's real graded annotation
  (:func:`atlaskit.data.sim.opencell_crops`), resized to the model size; its nucleus (Hoechst)
  channel is the model input. Generation metrics (PSNR, SSIM) therefore test the method, not
  biology. ``data="real"`` reads real crops in the cytoself/OpenCell folder format instead.

Split
-----
One protein-disjoint 4:1 split (train/test) of **all** OpenCell proteins, stratified by a stratum
= the major localization of single-localized proteins (``single:<compartment>``) or the family
of multi-localized ones (``multi:<family>``). Every variant takes its proteins from it, so the
test proteins of single-2 are test proteins of single-4 and of "all" as well, and no model ever
trains on a protein another model is tested on. There is no validation split (the paper had
none either; its code kept the checkpoint with the best *test* PSNR, which we do not do: we use
the weights after the last epoch).

Presets (:data:`PRESETS`)
-------------------------
``full``: the paper (208×208, U-Net 64…1024, 50 epochs, batch 32, AdamW 2e-4, ×0.9 per epoch,
ESM2-650M), 16 images per protein, every protein. ``ci``: a 2-core laptop in minutes: 64×64
images, widths × 1/8 (8…128), 12 epochs of batch 16 at LR 1e-3 (about 1/25 of the paper's
steps, hence the higher rate), 2 images per protein, the "all" variant on at most 12 training
proteins per stratum and no more proteins than single-2 (a sample stratified by stratum). ``tiny`` (learner mode, under two minutes): 32×32 images, 1 image per
protein, 3 epochs, at most 6 "all" training proteins per stratum.

Every variant leaves out the proteins longer than :data:`MAX_LENGTH` (2700) residues, as the
paper did. :func:`equal_count_runs` trains the variants on equal numbers of proteins (a
stratified sample of the larger sets) so that their generators can be compared without the
number of training proteins as a confounder.

Modules
-------
:mod:`.presets` (scales), :mod:`.proteins` (labels, split, sequence vectors), :mod:`.baselines`
(sequence-only classifiers on the split), :mod:`.crossval` (sequence-only classifiers by
protein-disjoint cross-validation over every protein), :mod:`.data` (the image store), :mod:`.training` (the variants),
:mod:`.evaluation` (metrics, generated images), :mod:`.judged` (generated images judged by chapter 01's
cytoself embedding, beyond the papers) and :mod:`.figures` (every figure of the chapter).
The batch predictor of ``atlaskit predict`` lives in :mod:`atlaskit.commands.predict`.
"""
from __future__ import annotations

CHAPTER = "02_deepgps"

from atlaskit.studies.deepgps.presets import PRESETS, Preset, model_config, preset  # noqa: E402
from atlaskit.studies.deepgps.proteins import (  # noqa: E402
    CLASS_LABELS,
    MAX_LENGTH,
    VARIANTS,
    catalog_sequences,
    equal_count_sample,
    embed_proteins,
    choose_embedder,
    image_proteins,
    protein_table,
    used_proteins,
    variant_classes,
    variant_table,
)
from atlaskit.studies.deepgps.baselines import (  # noqa: E402
    BaselineResult,
    expected_embedding_dim,
    logistic_baseline,
    majority_baseline,
    sequence_baselines,
)
from atlaskit.studies.deepgps.crossval import (  # noqa: E402
    CV_MODELS,
    CrossValResult,
    cross_validate,
    length_filter,
)
from atlaskit.studies.deepgps.data import DeepGPSDataset, ImageData, build_data  # noqa: E402
from atlaskit.studies.deepgps.training import (  # noqa: E402
    EXPORT_FILE,
    EXPORT_FORMAT,
    EqualCounts,
    VariantRun,
    equal_count_runs,
    train,
    training_proteins,
)
from atlaskit.studies.deepgps.evaluation import (  # noqa: E402
    PAPER_AUROC_SINGLE2,
    PAPER_POSITIVE,
    PAPER_TABLE1,
    PAPER_TABLE1_COUNTS,
    CrossAssay,
    best_baseline,
    block_gradients,
    block_parameters,
    blur_calibration,
    classification_table,
    classifier_result,
    classify_proteins,
    confusions,
    cross_assay,
    cross_assay_example,
    agreement_table,
    cross_assay_scores,
    generate,
    generation_quality,
    generation_table,
    repeat_spread,
    paper_comparison,
    paper_metrics,
    paper_metrics_table,
    metrics_display,
    nuclear_ratio,
    nucleus_mask,
)
from atlaskit.studies.deepgps.effects import measure_effects  # noqa: E402
from atlaskit.studies.deepgps import figures  # noqa: E402
from atlaskit.studies.deepgps import structure  # noqa: E402
from atlaskit.studies.deepgps.structure import structure_experiment  # noqa: E402

__all__ = [
    "measure_effects",
    "CHAPTER", "VARIANTS", "CLASS_LABELS", "PAPER_TABLE1", "PAPER_AUROC_SINGLE2", "EXPORT_FILE", "EXPORT_FORMAT",
    "Preset", "PRESETS", "preset", "model_config",
    "catalog_sequences", "protein_table", "variant_table", "variant_classes", "embed_proteins", "choose_embedder", "image_proteins",
    "used_proteins", "equal_count_sample",
    "BaselineResult", "sequence_baselines", "logistic_baseline", "majority_baseline", "expected_embedding_dim",
    "MAX_LENGTH", "CV_MODELS", "CrossValResult", "cross_validate", "length_filter",
    "PAPER_TABLE1_COUNTS", "PAPER_POSITIVE", "paper_metrics", "paper_metrics_table", "metrics_display",
    "ImageData", "build_data", "DeepGPSDataset",
    "VariantRun", "train", "EqualCounts", "equal_count_runs", "training_proteins",
    "classification_table", "paper_comparison", "blur_calibration", "block_parameters", "block_gradients",
    "classify_proteins", "generate", "generation_quality", "cross_assay", "classifier_result", "confusions",
    "best_baseline", "generation_table", "repeat_spread", "CrossAssay", "cross_assay_example", "cross_assay_scores", "nuclear_ratio", "agreement_table",
    "nucleus_mask",
    "figures",
    "structure", "structure_experiment",
]
