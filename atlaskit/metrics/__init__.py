"""Metrics of the four studies, as pure functions on numpy arrays (tested on hand-computed cases).

- :mod:`atlaskit.metrics.classification` — accuracy, specificity, sensitivity, F1, AUROC, AUPRC,
  confusion matrices (deepGPS), PSNR and SSIM of generated images;
- :mod:`atlaskit.metrics.multilabel` — per-class Dice thresholds, the multi-label confusion matrix
  and accuracy by number of labels (CNN vs FCN);
- :mod:`atlaskit.metrics.agreement` — Cohen's kappa, stratified bootstrap intervals, protein-level
  Dirichlet–multinomial calls (DeepYeast).
"""
