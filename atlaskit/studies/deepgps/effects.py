"""deepGPS's headline effects, measured in this run (the chapter's ledger).

The classification effect runs on **real** inputs and labels (OpenCell sequences and their
annotated localization): out-of-fold predictions of a protein-disjoint cross-validation over
every single-2 protein (:mod:`.crossval`), intervals resampling proteins. The generation effect
runs on the images the chapter used (simulated by default); its intervals resample test proteins.
"""
from __future__ import annotations

import numpy as np

from atlaskit.analysis.effects import Effect, bootstrap_interval
from atlaskit.metrics import classification as cm
from atlaskit.studies.deepgps.baselines import BaselineResult
from atlaskit.studies.deepgps.evaluation import PAPER_AUROC_SINGLE2, PAPER_TABLE1, floor_quality, generation_quality

__all__ = ["classifier_vs_majority", "generation_vs_floor", "measure_effects"]


def classifier_vs_majority(model: BaselineResult, majority: BaselineResult, *, n_boot: int, seed: int = 0) -> Effect:
    """Accuracy of ``model`` minus the majority class's on the same proteins (paired bootstrap over proteins).

    ``model`` and ``majority`` are test-split results or, better, out-of-fold cross-validation
    results (:class:`~atlaskit.studies.deepgps.crossval.CrossValResult`) over the same proteins;
    the measure names which, and gives the model's AUROC with its bootstrap interval beside the
    paper's.
    """
    if list(model.genes) != list(majority.genes):
        order = {g: i for i, g in enumerate(majority.genes)}
        majority_proba = majority.proba[[order[g] for g in model.genes]]
    else:
        majority_proba = majority.proba
    hit_model = (model.proba.argmax(1) == model.y_true).astype(float)
    hit_majority = (majority_proba.argmax(1) == model.y_true).astype(float)
    est, low, high = bootstrap_interval(lambda a, b: float(a.mean() - b.mean()), hit_model, hit_majority,
                                        n_boot=n_boot, seed=seed)
    acc, clo, chi = bootstrap_interval(np.mean, hit_model, n_boot=n_boot, seed=seed)
    auroc, alo, ahi = bootstrap_interval(lambda y, p: cm.auroc(y, p), model.y_true, model.proba, n_boot=n_boot,
                                         seed=seed)
    n_folds = getattr(model, "n_folds", 0)
    which = (f"{len(model.y_true)} proteins, out-of-fold ({n_folds}-fold protein-disjoint cross-validation)"
             if n_folds else f"{len(model.y_true)} test proteins")
    return Effect.measured(
        "a protein's sequence predicts its localization (single-2: cytoplasm vs nucleoplasm)",
        f"deepGPS-single-2 accuracy {PAPER_TABLE1['deepGPS-single-2']:.3f}, AUROC {PAPER_AUROC_SINGLE2:.3f} "
        "(ESM2-650M embeddings)",
        f"accuracy({model.name}) − accuracy(majority class), {which}; accuracy here "
        f"{acc:.3f} [{clo:.3f}, {chi:.3f}] vs {hit_majority.mean():.3f} (paper "
        f"{PAPER_TABLE1['deepGPS-single-2']:.3f}), AUROC {auroc:.3f} [{alo:.3f}, {ahi:.3f}] (paper {PAPER_AUROC_SINGLE2:.3f})",
        est, low, high, reason="paired bootstrap over proteins", data="real")


def generation_vs_floor(run, images, features, items, floor_items, *, n_boot: int, seed: int = 0) -> Effect:
    """PSNR of the generated images minus that of the mean training image, per test image."""
    items = np.asarray(items)
    quality = generation_quality(run, images, items, features)
    floor = floor_quality(images, items, floor_items)
    gain = quality["psnr"].to_numpy() - floor["psnr"].to_numpy()
    est, low, high = bootstrap_interval(np.mean, gain, groups=quality["protein"].to_numpy(), n_boot=n_boot, seed=seed)
    return Effect.measured(
        f"generated images are closer to the truth than the average image (deepGPS-{run.variant})",
        "deepGPS generates the protein's image from its sequence and a nucleus image (Fig. 2)",
        "PSNR(generated) − PSNR(mean training image), dB, test images", est, low, high,
        reason="bootstrap over test proteins", data=images.source)


def measure_effects(*, model: BaselineResult, majority: BaselineResult, run, images, features, items, floor_items,
                    n_boot: int, seed: int = 0) -> list[Effect]:
    """The chapter's ledger rows: ``model`` vs ``majority`` (classification; use the cross-validated
    results) and the generation of ``run`` vs the mean-image floor."""
    n_boot = int(min(n_boot, 2000))
    return [classifier_vs_majority(model, majority, n_boot=n_boot, seed=seed),
            generation_vs_floor(run, images, features, items, floor_items, n_boot=n_boot, seed=seed)]
