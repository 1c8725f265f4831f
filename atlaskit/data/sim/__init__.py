"""Procedural fluorescence-microscopy simulator — the book's default data source.

Deterministic (same seed → identical pixels, whatever the batching or thread count), vectorised
(numpy + FFTs on whole batches) and streaming (iterators yield fixed-size batches), in three
imaging styles:

========  =============================================  ============================================
style     images                                         functions
========  =============================================  ============================================
OpenCell  (N, 2, 100, 100) protein, Hoechst; HEK293T;    :func:`opencell_crops`,
          crops centred on a nucleus; one protein per     :func:`iter_opencell_crops`,
          real OpenCell target (1310)                    :func:`opencell_field`, :func:`opencell_specs`
HPA       (N, 4, S, S) protein, nucleus, microtubules,   :func:`hpa_fields`, :func:`iter_hpa_fields`,
          ER; U-2 OS / A-431 / HeLa fields; real          :func:`hpa_specs`
          Cyto-2017 label sets; per-cell heterogeneity
Yeast     (N, 2, 64, 64) GFP protein, RFP cytosol;        :func:`yeast_crops`, :func:`iter_yeast_crops`,
          12 DeepYeast + 4 transfer classes, real ORFs;   :func:`yeast_noncells`, :func:`yeast_specs`
          non-cell crops for the quality filter
========  =============================================  ============================================

Every function returns or yields a :class:`SimBatch`: ``images`` float32 ``(N, C, H, W)``, a
``meta`` DataFrame (one row per image: protein, labels, cell line, field id, acquisition
parameters, normalisation), optional instance ``cell_masks`` / ``nucleus_masks`` ``(N, H, W)``
and, for fields, a per-cell ``cells`` table (per-cell labels for HPA).

How an image is made
--------------------
1. **Cells** (:mod:`.cells`): a cell line's :class:`Morphology` → a layout of cells (a crop's
   neighbourhood or a field's jittered lattice) → per-pixel geometry (owner cell, normalised
   radial coordinate, nucleus/cell masks, borders, nucleoli, DNA texture).
2. **Compartments** (:mod:`.compartments`): one renderer per compartment in
   :data:`COMPARTMENT_RENDERERS` draws a concentration map and/or puncta from the geometry and
   random fields; a protein is a weighted mixture (:class:`Component`) with parameters drawn
   once from its name; every cell scales it by its own expression level.
3. **Optics** (:mod:`.optics`): Gaussian PSF + defocus + halo (one FFT per channel), photon shot
   noise, camera offset/gain/read noise on a uint16 scale, then the paper's normalisation
   (cytoself: protein min-max to [0, 1], nucleus raw; HPA: 8-bit, /255; yeast: 8-bit at a fixed
   saturation, /255). :func:`signed_distance_transform` gives cytoself's nucleus channel from a
   mask.

What it does not capture: see ``LIMITATIONS``.
"""
from atlaskit.data.sim._core import SimBatch, item_generator, protein_generator
from atlaskit.data.sim.cells import CELL_LINES, Morphology
from atlaskit.data.sim.compartments import (
    COMPARTMENT_RENDERERS, Component, Ctx, Layer, ParamView, draw_params, register_compartment, render_components,
)
from atlaskit.data.sim.hpa import (
    CYTO2017, HPA_CELL_LINES, HPA_RENDERERS, hpa_fields, hpa_specs, iter_hpa_fields, make_hpa_protein,
)
from atlaskit.data.sim.opencell import (
    GRADE_WEIGHTS, OPENCELL_RENDERERS, ProteinSpec, iter_opencell_crops, make_protein, opencell_crops,
    opencell_field, opencell_specs,
)
from atlaskit.data.sim.optics import Optics, signed_distance_transform
from atlaskit.data.sim.yeast import (
    NONCELL_KINDS, YEAST_LOOKS, YEAST_RENDERERS, YeastLook, iter_yeast_crops, make_yeast_protein, yeast_crops,
    yeast_noncells, yeast_specs,
)

#: Known gaps between the simulator and real microscopy (shown in chapter 00).
LIMITATIONS = (
    "2-D only: no z-stacks, no out-of-plane cell shape beyond a radial thickness falloff and a broad halo.",
    "Cells are star-shaped around their nucleus (a radial coordinate): no long protrusions, no overlapping "
    "cells, no multinucleated or dying cells; mitosis is not simulated (no mitotic spindles, rounded cells).",
    "Patterns are procedural textures: organelle networks (ER, mitochondria) are level sets of random "
    "fields, not physical structures; filament counts, lengths and puncta statistics are plausible, not measured.",
    "Protein parameters are random draws within per-compartment ranges — proteins of one compartment differ "
    "by chance, not by their biology; sequence carries no information about the image.",
    "Co-localisation of compartments in one protein is an additive mixture; no compartment-specific "
    "cell-cycle or cell-density dependence; expression varies log-normally between cells, no bimodality.",
    "Optics are Gaussian (no spherical aberration, no vignetting, no uneven illumination, no bleaching, "
    "no chromatic shift, no bleed-through between channels); noise is Poisson + Gaussian read noise.",
    "HPA fields use three stylised cell lines; the Kaggle images come from ~30 cell lines and vary in "
    "staining quality, which the simulator does not reproduce.",
    "Yeast: no cell-cycle-dependent localisation apart from buds; vacuoles and nuclei are circles. The look "
    "(cell size, optics, photons, export) and where the mitochondria and the cytosol sit in the cell (their "
    "edge profiles) are calibrated on 1642 real cells of two classes (mitochondrion, cytosol); the cytosol's "
    "centre is still less bright than real (no cell thickness); the other ten classes' patterns are "
    "procedural, rendered with those optics, not measured.",
)

__all__ = [
    "SimBatch", "ProteinSpec", "Component", "Layer", "Ctx", "ParamView", "Morphology", "Optics",
    "COMPARTMENT_RENDERERS", "register_compartment", "draw_params", "render_components",
    "CELL_LINES", "OPENCELL_RENDERERS", "HPA_RENDERERS", "YEAST_RENDERERS", "GRADE_WEIGHTS", "CYTO2017",
    "HPA_CELL_LINES", "NONCELL_KINDS", "LIMITATIONS",
    "opencell_crops", "iter_opencell_crops", "opencell_field", "opencell_specs", "make_protein",
    "hpa_fields", "iter_hpa_fields", "hpa_specs", "make_hpa_protein",
    "yeast_crops", "iter_yeast_crops", "yeast_noncells", "yeast_specs", "make_yeast_protein", "YeastLook", "YEAST_LOOKS",
    "signed_distance_transform", "item_generator", "protein_generator",
]
