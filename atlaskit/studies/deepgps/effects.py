"""deepGPS's headline effects, measured in this run (the chapter's ledger).

The classification effect runs on **real** inputs and labels (OpenCell sequences and their
annotated localization): out-of-fold predictions of a protein-disjoint cross-validation over
every single-2 protein (:mod:`.crossval`), intervals resampling proteins. The generation effects
(against the mean-image floor, between the variants at equal numbers of training proteins, and
the scored cross-assay) run on the images the chapter used (simulated by default); their
intervals resample test proteins.
"""
from __future__ import annotations

import numpy as np

from atlaskit.analysis.effects import Effect, bootstrap_interval, hierarchical_bootstrap_interval
from atlaskit.errors import ParameterError
from atlaskit.metrics import classification as cm
from atlaskit.studies.deepgps.baselines import BaselineResult
from atlaskit.studies.deepgps.evaluation import PAPER_AUROC_SINGLE2, PAPER_TABLE1, floor_quality, generation_quality

__all__ = ["classifier_vs_majority", "generation_vs_floor", "variants_at_equal_counts", "cross_assay_agreement",
           "measure_effects"]


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
    """PSNR of the generated images minus that of the mean training image, per test image (the
    SSIM difference with its interval in the measure's text).

    ``run`` is one trained run or a list of training repeats of one variant (same proteins,
    other training seeds): the interval is then a two-level bootstrap over repeats and test
    proteins (:func:`~atlaskit.analysis.effects.hierarchical_bootstrap_interval`).
    """
    runs = list(run) if isinstance(run, (list, tuple)) else [run]
    items = np.asarray(items)
    floor = floor_quality(images, items, floor_items)
    qualities = [generation_quality(r, images, items, features) for r in runs]
    groups = qualities[0]["protein"].to_numpy()
    gain = np.stack([q["psnr"].to_numpy() - floor["psnr"].to_numpy() for q in qualities])  # (R, N)
    ssim_gain = np.stack([q["ssim"].to_numpy() - floor["ssim"].to_numpy() for q in qualities])
    est, low, high = hierarchical_bootstrap_interval(gain, groups, n_boot=n_boot, seed=seed)
    s_est, s_low, s_high = hierarchical_bootstrap_interval(ssim_gain, groups, n_boot=n_boot, seed=seed)
    return Effect.measured(
        f"generated images are closer to the truth than the average image (deepGPS-{runs[0].variant})",
        "deepGPS generates the protein's image from its sequence and a nucleus image (Fig. 2)",
        f"PSNR(generated) − PSNR(mean training image), dB, {len(items)} test images of "
        f"{len(set(groups))} proteins{_repeats_text(len(runs))}; SSIM(generated) − SSIM(mean training image) "
        f"{s_est:+.3f} [{s_low:+.3f}, {s_high:+.3f}]", est, low, high,
        reason=_reason(len(runs)), data=images.source)


def _repeats_text(n_repeats: int) -> str:
    return f", mean over {n_repeats} training repeats" if n_repeats > 1 else ""


def _reason(n_repeats: int, paired: bool = False) -> str:
    kind = "paired " if paired else ""
    if n_repeats > 1:
        return f"{kind}two-level bootstrap over {n_repeats} training repeats and test proteins"
    return f"{kind}bootstrap over test proteins; one training run (its spread not measured)"


def variants_at_equal_counts(equal, images, features, items, *, n_boot: int, seed: int = 0,
                             reference: str = "single-2") -> list[Effect]:
    """Generation of each other variant minus that of ``reference``, all trained on ``equal.n`` proteins.

    ``equal`` is an :class:`~atlaskit.studies.deepgps.training.EqualCounts`; every run is scored
    on the same store ``items`` (the single-2 test images), and the per-image PSNR difference is
    averaged with a bootstrap over test proteins (paired: the same images for both models) and,
    when ``equal`` holds training repeats, over the repeats too (two-level bootstrap). The
    SSIM difference and its interval are given in the measure's text.
    """
    items = np.asarray(items)
    repeats = equal.repeats  # [equal.runs] when it was built without repeats
    refs = [generation_quality(r[reference], images, items, features) for r in repeats]
    groups = refs[0]["protein"].to_numpy()
    claims = {
        "all": ("training on every localization ('all') generates cytoplasmic and nucleoplasmic proteins better than "
                "training on them alone (single-2), at equal numbers of training proteins",
                "the paper trains deepGPS-all on every OpenCell protein as its generator for any protein, beside "
                "single-2 and single-4; no side-by-side number at equal training size is quoted here"),
        "single-4": ("adding vesicle and ER proteins (single-4) generates cytoplasmic and nucleoplasmic proteins "
                     "better than single-2 alone, at equal numbers of training proteins",
                     "deepGPS extends to vesicles and ER 'even with limited volumes of training data' (abstract); "
                     "no side-by-side number at equal training size is quoted here"),
    }
    rows = []
    for v in equal.runs:
        if v == reference:
            continue
        qs = [generation_quality(r[v], images, items, features) for r in repeats]
        d_psnr = np.stack([q["psnr"].to_numpy() - ref["psnr"].to_numpy() for q, ref in zip(qs, refs)])  # (R, N)
        d_ssim = np.stack([q["ssim"].to_numpy() - ref["ssim"].to_numpy() for q, ref in zip(qs, refs)])
        est, low, high = hierarchical_bootstrap_interval(d_psnr, groups, n_boot=n_boot, seed=seed)
        s_est, s_low, s_high = hierarchical_bootstrap_interval(d_ssim, groups, n_boot=n_boot, seed=seed)
        effect, paper = claims.get(v, (f"deepGPS-{v} generates better than deepGPS-{reference} at equal numbers of "
                                       "training proteins", "the paper's variants"))
        rows.append(Effect.measured(
            effect, paper,
            f"PSNR(deepGPS-{v}) − PSNR(deepGPS-{reference}), dB, both trained on {equal.n} proteins, on the "
            f"{len(items)} images of the {len(set(groups))} {reference} test proteins{_repeats_text(len(repeats))}; "
            f"SSIM difference {s_est:+.3f} [{s_low:+.3f}, {s_high:+.3f}]", est, low, high,
            reason=_reason(len(repeats), paired=True), data=images.source))
    return rows


def cross_assay_agreement(scores, *, n_boot: int, seed: int = 0, data: str = "sim") -> Effect:
    """The scored cross-assay (:func:`~atlaskit.studies.deepgps.evaluation.cross_assay_scores`) as a ledger row.

    The estimate is the balanced agreement (the mean of the agreement rates of the two classes;
    a generator blind to the sequence scores 0.5 whatever the class shares), with a bootstrap
    over proteins within each class; the plain agreement rate (bootstrap over proteins) and the
    rate of the same rule on the ground-truth images are given in the measure's text.
    """
    agrees = scores["agrees"].to_numpy(dtype=float)
    labels = scores["label"].to_numpy()
    if len(set(labels)) < 2:
        raise ParameterError("the cross-assay agreement needs test proteins of both classes")
    codes = np.unique(labels, return_inverse=True)[1]

    def balanced(a, c):
        return float(np.mean([a[c == k].mean() for k in np.unique(c)]))

    est, low, high = bootstrap_interval(balanced, agrees, codes, strata=codes, n_boot=n_boot, seed=seed)
    rate, r_low, r_high = bootstrap_interval(np.mean, agrees, n_boot=n_boot, seed=seed)
    truth = scores["truth_agrees"].to_numpy(dtype=float)
    return Effect.measured(
        "a generated image puts the protein where its annotation says: in the nucleus for nucleoplasmic proteins, "
        "around it for cytoplasmic ones (cross-assay, single-2)",
        "Fig. 2e: one nucleus image with the sequences of different proteins; deepGPS 'predicts cytoplasmic and "
        "nuclear localizations by reporting both textual labels and generative images' (abstract)",
        f"balanced agreement of the call (generated intensity inside / outside the Otsu nucleus mask of the given "
        f"nucleus > 1 = nucleus) with the annotation, {len(agrees)} test proteins on nuclei of other cells; "
        f"0.5 = blind to the sequence; agreement rate {rate:.3f} [{r_low:.3f}, {r_high:.3f}]; the same rule on "
        f"the ground-truth images {truth.mean():.3f}", est, low, high, null=0.5,
        reason="bootstrap over test proteins (within class for the balanced rate)", data=data)


def measure_effects(*, model: BaselineResult, majority: BaselineResult, run, images, features, items, floor_items,
                    n_boot: int, seed: int = 0, equal=None, cross=None, cellline=None,
                    structure=None) -> list[Effect]:
    """The chapter's ledger rows: ``model`` vs ``majority`` (classification; use the cross-validated
    results), the generation of ``run`` vs the mean-image floor, and, when given, the variants at
    equal numbers of training proteins (``equal``, :func:`variants_at_equal_counts` on ``items``)
    and the scored cross-assay (``cross``, :func:`cross_assay_agreement`), and the cell-line model
    against the OpenCell one (``cellline``, a :class:`~atlaskit.studies.deepgps.cellline.CellLineComparison`;
    :func:`~atlaskit.studies.deepgps.cellline.cellline_effect`), and the structure variant (``structure``, a
    :class:`~atlaskit.studies.deepgps.structure.StructureExperiment`)."""
    n_boot = int(min(n_boot, 2000))
    if equal is not None and equal.runs.get(run.variant) is run:  # its training repeats, when there are any
        run = equal.repeat_runs(run.variant)
    rows = [classifier_vs_majority(model, majority, n_boot=n_boot, seed=seed),
            generation_vs_floor(run, images, features, items, floor_items, n_boot=n_boot, seed=seed)]
    if equal is not None:
        rows += variants_at_equal_counts(equal, images, features, items, n_boot=n_boot, seed=seed)
    if cross is not None:
        rows.append(cross_assay_agreement(cross, n_boot=n_boot, seed=seed, data=images.source))
    if cellline is not None:
        from atlaskit.studies.deepgps.cellline import cellline_effect

        rows.append(cellline_effect(cellline, n_boot=n_boot, seed=seed))
    if structure is not None:  # a StructureExperiment (.structure): measured, or not testable with its reason
        from atlaskit.studies.deepgps.structure import structure_effect

        rows.append(structure_effect(structure, n_boot=n_boot, seed=seed))
    return rows
