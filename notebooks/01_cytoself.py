# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · cytoself: a self-supervised atlas of protein localization
#
# *This chapter as a file:* {download}`the executed notebook (.ipynb) <01_cytoself.ipynb>` · {download}`its jupytext source (.py) <../../notebooks/01_cytoself.py>`
#
# **The paper.** Kobayashi, Cheveralls, Leonetti & Royer {cite:p}`kobayashi2022cytoself`
# trained **cytoself** on images of 1,311 endogenously tagged proteins from OpenCell. Each input
# is a 100 × 100 crop around a nucleus with two channels: the tagged protein and the nucleus.
# The model is a two-level vector-quantized variational autoencoder (VQ-VAE-2): a *local*
# representation (25 × 25 positions, codebook VQ1) and a *global* one (4 × 4 positions, codebook
# VQ2, quantized as 9 sub-vectors per position against one shared codebook: **split
# quantization**). Besides reconstructing the image, two classifiers must tell **which protein**
# an image shows (the *pretext task*). No localization label is ever used in training, yet a
# UMAP of the global representation groups proteins by compartment, and even by protein complex.
# The paper then reads the local codebook as a **feature spectrum** per protein, localizes
# "orphan" proteins by correlating their spectra with those of annotated ones, and measures
# what each component contributes by **ablation** (Table 1): removing the protein-ID pretext
# task collapses the clustering score.
#
# **What this chapter rebuilds**, end to end with `atlaskit`: the data (nucleus-centred crops,
# nucleus segmentation, signed distance transform, an 8:1:1 split within every protein, 90°
# rotations and flips), the model and its loss terms, training with the paper's schedule,
# the VQ perplexity with and without split quantization (the paper's Fig. 1c), the interactive
# atlas coloured by the real OpenCell localization families with real GO complexes
# highlighted, the clustering score, the feature spectra with their clusters and per-family
# consensus, an orphan-protein analysis, feature-zeroing maps and their on/off-target score, the
# nucleus ↔ cytoplasm band of the atlas, and the ablation table.
#
# **How big.** At the default `scale="ci"` this chapter trains a *deliberately small* model on a
# few dozen proteins with a few dozen images each, for a few epochs: five variants, twice each,
# in a few minutes on two CPU cores. It tests the method; it cannot reproduce the paper's
# numbers. `-p scale full -p data real -p data_dir …` runs the paper's configuration (all
# proteins, the published model size, the paper's optimiser and schedule) on a GPU, unchanged.

# %% tags=["remove-cell"]
# Colab, Binder or a Jupyter without atlaskit: install it (this cell does nothing where it is installed)
import importlib.util, os, pathlib, subprocess, sys

if importlib.util.find_spec("atlaskit") is None:
    here = pathlib.Path.cwd()
    checkout = next((p for p in [here, *here.parents] if (p / "atlaskit" / "__init__.py").is_file()), None)
    requirement = ["-e", str(checkout)] if checkout else [os.environ.get("ATLASKIT_INSTALL", "atlaskit")]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *requirement], check=True)

# %% tags=["parameters"]
scale = "ci"
data = "sim"
data_dir = None
seed = 0
device = "auto"
epochs = None
repeats = None
orphan = None

# %%
from atlaskit.chapter import data_files_table, ledger, setup_chapter
from atlaskit.studies import cytoself as study

run = setup_chapter(
    study.CHAPTER, scale=scale, data=data, data_dir=data_dir, seed=seed, device=device, scales=study.SCALES,
)

# %%
import numpy as np
import pandas as pd

from atlaskit.analysis import atlas
from atlaskit.runs import runs_root
from atlaskit.studies.cytoself import figures

preset = study.preset(run.scale, epochs=epochs, repeats=repeats)
pd.Series(preset.to_dict(), name=f"preset '{preset.scale}'").to_frame()

# %% [markdown]
# The table lists what the scale decides. `ci` uses a model far smaller than the paper's
# (`model="ci"`: the narrow `tiny` encoders of `atlaskit`, 128-code books, decoders without
# residual units, classifiers with 128 hidden units) and a learning rate five times the
# paper's, because each run takes only about a hundred optimisation steps; `full` uses the
# published model, Adam at the paper's 4e-4 (the public code used 1e-4), the learning rate
# × 0.1 after 4 epochs without validation improvement and early stopping after 12. On a CPU the
# `ci` runs are trained two at a time, one per core.
#
# `tiny` (learner mode, `-p scale tiny`, under two minutes on two cores) trains every variant
# once, for one epoch, on 12 proteins with 20 crops each and 32-code books: it leaves out the
# repeats (no spread to compare differences with) and any real learning, so its scores only
# show that the pipeline runs.

# %% [markdown]
# ## 1 · Data
#
# The labels that colour the atlas, and the complexes highlighted on it, are **real**: the
# OpenCell annotations of 1310 proteins and their GO annotations. With `data="sim"` the images
# are simulated (one simulated protein per real OpenCell target, its pattern mixed from its real
# graded compartments; see chapter 00); with `data="real"` they are read from a folder in the
# public cytoself format.

# %%
data_files_table([
    "opencell/annotations-flat.csv", "opencell/public-targets.csv", "opencell/library-metadata.csv",
    "opencell/go-annotations.csv",
])

# %% [markdown]
# The proteins are real OpenCell targets, chosen *stratified*: a few members of each GO complex
# (proteasome, nuclear pore, cytosolic ribosome, spliceosome) first, then one family at a time,
# always the family with the fewest proteins so far. Each image has three stored channels: the
# protein (scaled to [0, 1] per image), the **signed distance transform** of the nucleus
# segmentation (inside positive, scaled to [-1, 1]; the paper's input) and the raw nucleus image
# scaled to [0, 1] (input of the "no distance transform" ablation). For simulated crops the
# nuclei are segmented from the simulated Hoechst channel with the same pipeline as real images
# (`atlaskit.data.segment`); the simulator's true masks only score that segmentation. The crops
# of each protein are split 8:1:1 into training, validation and test sets: the pretext task
# classifies proteins, so every protein must be in every split.

# %%
cdata = study.build_data(preset, run.data, run.data_dir, run.seed)
cdata.summary()

# %%
# NBVAL_CHECK_OUTPUT
print(f"{cdata.num_classes} proteins, {len(cdata.meta)} images ({cdata.source}); "
      f"families: {cdata.proteins['family'].value_counts().to_dict()}")
members = cdata.proteins.dropna(subset=["complex"])
print("GO complex members:", {c: sorted(g) for c, g in members.groupby("complex")["gene"]})
if cdata.source == "sim":
    seg = cdata.meta
    print(f"nucleus masks: {(seg['nucleus_source'] == 'segmented').mean():.1%} from our segmentation; "
          f"IoU with the simulator's truth: mean {seg['nucleus_iou'].mean():.3f}, "
          f"5th percentile {seg['nucleus_iou'].quantile(0.05):.3f}")

# %% mystnb={"figure": {"name": "fig-01-crops", "caption": "Training crops as the model sees them: protein channel and nucleus channel of four example proteins (simulated OpenCell style)."}}
fig = figures.stored_channels(cdata, study.example_proteins(cdata, 4))

# %% [markdown]
# ## 2 · The model
#
# `atlaskit.models.cytoself` follows the paper and its public code: EfficientNet-style encoders
# (MBConv blocks), encoder 1 to the 25 × 25 local map and encoder 2 to the 4 × 4 global map,
# residual decoders (decoder 2 reconstructs encoder 1's output from VQ2; decoder 1 the image from
# VQ1 and the upsampled VQ2), two protein-ID classifiers on the quantized vectors, and the loss
#
# $$
# L = \frac{\mathrm{MSE}(\hat x, x)}{\operatorname{var}(x_{\text{train}})} + \mathrm{MSE}(\hat z_1, z_1)
#   + \sum_{i=1,2} \Big( \lVert \mathrm{sg}[z_i] - e_i \rVert^2 + 0.25\, \lVert z_i - \mathrm{sg}[e_i] \rVert^2 \Big)
#   + \sum_{i=1,2} \mathrm{CE}_i
# $$
#
# (sg: stop-gradient; $z_i$ the encoder output and $e_i$ its nearest codebook vector at level $i$;
# $\hat z_1$ decoder 2's reconstruction of $z_1$; $\mathrm{CE}_i$ the protein-ID cross-entropy on
# VQ$i$. The book typesets formulas with its own copy of MathJax, so they display offline.)
#
# The ablations change one thing each: no nucleus channel; the raw nucleus image instead of its
# distance transform; VQ2 without split quantization (whole 576-d vectors against one codebook);
# no classifiers.

# %%
from atlaskit.models.cytoself import CytoselfConfig

this_model = study.describe_model(preset.model_config(cdata.num_classes))
paper_model = study.describe_model(CytoselfConfig.paper())
pd.DataFrame({f"this run ({preset.model})": this_model, "paper configuration (1311 proteins)": paper_model})

# %% [markdown]
# ## 3 · Training
#
# Every variant is trained `preset.repeats` times with different seeds (initialisation, batch
# order, augmentation, dropout). Finished runs are stored under `_build/runs/01_cytoself`, keyed
# by every parameter and by atlaskit's source code: a second execution of this chapter loads
# them instead of training again.

# %%
runs = study.train_variants(list(study.VARIANTS), cdata, preset, seed=run.seed, device=run.device)
study.runs_table(runs)

# %%
# NBVAL_CHECK_OUTPUT
for (name, repeat), r in runs.items():
    val = r.history.val[-1]
    extra = f", val accuracy (VQ2 classifier) {val['metric_accuracy2']:.3f}" if "metric_accuracy2" in val else ""
    print(f"{name:12s} r{repeat}: {len(r.history)} epochs, val loss {val['loss']:.4f}{extra}")

# %% [markdown]
# ### Loss terms
#
# The curves of the full model (first repeat), every term separately: the reconstruction MSE
# (divided by the variance of the training images), decoder 2's MSE, the two VQ losses and the
# two classifiers' cross-entropies, with the total.

# %% mystnb={"figure": {"name": "fig-01-loss-terms", "caption": "Loss terms of the full model (first repeat) per epoch, training and validation: reconstruction, decoder 2, the two VQ losses and the two protein-ID classifiers. Look for terms still falling at the last epoch."}}
hist = study.history_frame(list(runs.values()))
figures.loss_terms(hist, "full", 0).show()

# %% [markdown]
# ### Split quantization keeps the global codebook in use (paper, Fig. 1c)
#
# The perplexity of a quantizer is the exponential of the entropy of its code usage,
# $\exp\big(-\sum_k p_k \log p_k\big)$ with $p_k$ the share of vectors that take code $k$: 1 when
# every vector takes the same code, the codebook size when all codes are used equally. The paper shows that VQ2's
# perplexity stays far higher with split quantization, whose 9 sub-vectors per position draw on
# one shared codebook, than without it.

# %% mystnb={"figure": {"name": "fig-01-perplexity", "caption": "VQ2 codebook perplexity per epoch with and without split quantization (paper Fig. 1c). With the split, far more codes stay in use."}}
ppl = study.perplexity_history(hist, ["full", "no_split"])
figures.perplexity_curves(ppl).show()

# %%
# NBVAL_CHECK_OUTPUT
ppl_mean = study.final_perplexity(ppl)
print("final validation VQ2 perplexity (mean over repeats):",
      {k: round(float(v), 1) for k, v in ppl_mean.items()})
print(f"codebook size: {preset.model_config(cdata.num_classes).global_codebook_size}; "
      f"split/no-split ratio {ppl_mean['full'] / ppl_mean['no_split']:.2f}")

# %% [markdown]
# ## 4 · The localization atlas
#
# Every test image is encoded; its global representation (the quantized VQ2 vectors, flattened)
# is embedded in 2-D by UMAP (15 neighbours, min_dist 0.1, as in the paper). Points are coloured
# by the protein's **real** OpenCell localization family; hover shows the gene. Members of four
# real GO complexes are drawn larger with a black outline ({numref}`fig-01-atlas`).

# %% mystnb={"figure": {"name": "fig-01-atlas", "caption": "The atlas: UMAP of the full model's global embedding of the test images, coloured by the proteins' real OpenCell family; complex members drawn larger. Look for families that form their own regions."}}
evaluation = study.evaluate(runs, cdata, split="test", seed=run.seed, umap_seeds=preset.umap_seeds)
embeddings, scores, umaps = evaluation.embeddings, evaluation.scores, evaluation.umaps
obs = study.atlas_obs(cdata, embeddings[("full", 0)])
band_of = study.band_groups(cdata.proteins["gene"])
figures.atlas_map(umaps[("full", 0)], obs, cdata, band=list(band_of[band_of == "both"].index)).show()

# %% [markdown]
# The **clustering score** measures how well the families separate on this map: with the
# median point $c_k$ of family $k$, its spread $s_k$ (the median distance of its points to $c_k$)
# and the mean $\bar c$ of the $K$ family centres, in $d = 2$ dimensions,
#
# $$
# \text{score} = \frac{\sqrt{\sum_k \lVert c_k - \bar c \rVert^2 / (K d)}}{\operatorname{median}_k s_k} ,
# $$
#
# the spread of the family centres over the typical family size (median-based, as the paper's
# Methods describe; `atlaskit.analysis.atlas.clustering_score`). The same score with the GO
# complexes as classes is printed too, but on simulated images it means little: the simulator
# knows a protein's compartments, not its complex, so complex members only share a compartment.

# %%
# NBVAL_CHECK_OUTPUT
full_scores = scores[scores["variant"] == "full"]["score"]
print(f"clustering score by family (full model, {len(evaluation.labels)} test images, mean of "
      f"{preset.umap_seeds} UMAP{'s' if preset.umap_seeds > 1 else ''} per repeat): "
      + ", ".join(f"{s:.3f}" for s in full_scores))
in_complex = obs["complex"].notna()
if obs.loc[in_complex, "complex"].nunique() >= 2:
    complex_score = atlas.clustering_score(umaps[("full", 0)][in_complex.to_numpy()], obs.loc[in_complex, "complex"])
    print(f"clustering score by GO complex (repeat 0, {int(in_complex.sum())} images of "
          f"{obs.loc[in_complex, 'gene'].nunique()} proteins): {complex_score:.3f}")

# %% [markdown]
# ### The grey band between nucleus and cytoplasm (paper, Fig. 3a)
#
# On the paper's atlas the proteins found in both the nucleus and the cytoplasm (grey) sit between
# the nuclear and the cytoplasmic clusters. Here a protein is *nuclear* when its major
# localizations (its OpenCell compartments at the highest grade) all belong to the nucleoplasm
# family, *cytoplasmic* when they all belong to the cytoplasm family, and *both* when they cover
# exactly these two families (highlighted on the map above as "nucleus + cytoplasm"). Its
# position is measured on the global representation itself, not on one UMAP: the mean vector of
# the protein's test images projected on the line from the nuclear centroid (0) to the
# cytoplasmic one (1), for every repeat of the full model (`study.band_scores`). The table gives
# each group's mean position over proteins × repeats and its extreme proteins.

# %%
band_table = study.band_scores(embeddings, cdata)
band_groups_table = study.band_summary(band_table) if len(band_table) else pd.DataFrame()
band_groups_table.round(2)

# %%
# NBVAL_CHECK_OUTPUT
if len(band_table):
    print("nucleus ↔ cytoplasm axis, mean position (proteins): " + ", ".join(
        f"{g} {r['mean position']:.2f} ({int(r['proteins'])})" for g, r in band_groups_table.iterrows()))
else:
    print("nucleus ↔ cytoplasm axis: no nuclear or no cytoplasmic protein in this data set")

# %% [markdown]
# The atlas is also written as an AnnData file (global representation as `X`, VQ1 indices as
# the local representation, the UMAP in `obsm["X_umap"]` with its parameters in
# `uns["umap"]`, per-image metadata in `obs`), ready for scanpy or cellxgene:
# `scanpy.pl.umap(adata, color="family")` draws this atlas in the book's family colours
# (`uns["family_colors"]`).

# %%
from atlaskit.chapter import display_path

atlas_path = runs_root() / study.CHAPTER / f"atlas-{run.scale}-{run.data}-seed{run.seed}.h5ad"
study.export_atlas(atlas_path, cdata, embeddings[("full", 0)], umaps[("full", 0)],
                   uns={"scale": run.scale, "seed": run.seed, "clustering_score": evaluation.score("full", 0)},
                   umap_params=evaluation.umap_params)
print(f"atlas written to {display_path(atlas_path)}")

# %% [markdown]
# ## 5 · Feature spectra
#
# The local codebook's indices are the model's vocabulary. For every protein the histogram of
# VQ1 indices over its images (625 positions each) is its **feature spectrum**. Indices are
# ordered by hierarchical clustering of their correlation profiles across proteins and cut into
# (up to) 11 clusters, I … XI, as in the paper; the heat map shows every protein's spectrum, the
# bar charts the mean spectrum of each family. At `ci` the spectra use all images of a protein
# (a test set of four images per protein is too small); at `full` the test images.

# %% mystnb={"figure": {"name": "fig-01-spectra", "caption": "Feature spectra (paper Fig. 4): how often each protein's images use each VQ1 code, codes ordered by hierarchical clustering into groups I … XI."}}
spectra_split = "test" if run.scale == "full" else "all"
full_model = runs[("full", 0)].model
emb_all = study.embed(full_model, cdata.dataset(spectra_split, "full"))
genes_all = cdata.meta["protein"].to_numpy()[emb_all.rows]
family_of = cdata.proteins.set_index("gene")["family"]
spec = study.feature_spectra(emb_all.local_indices, genes_all, family_of, full_model.config.local_codebook_size)
fig = figures.spectrum_heatmap(spec)

# %% mystnb={"figure": {"name": "fig-01-consensus", "caption": "Mean feature spectrum of each family: families whose bars peak in different code groups are the ones the spectra tell apart."}}
fig = figures.consensus(spec)

# %%
# NBVAL_CHECK_OUTPUT
used = spec.spectra.shape[1]
print(f"VQ1 indices used by the {len(spec.histograms)} proteins: {used} of {full_model.config.local_codebook_size}; "
      f"{spec.bicluster.n_clusters} index clusters")
print("indices per cluster:", spec.bicluster.clusters.value_counts().sort_index().to_dict())

# %% [markdown]
# ### An "orphan" protein
#
# The paper localizes proteins without a confident annotation by correlating their spectrum with
# each family's consensus spectrum. Here one protein plays the orphan: the consensus spectra are
# recomputed **without it**, and the families are ranked by Pearson correlation with its
# spectrum. (Parameter `orphan`; by default the first single-localized protein outside the GO
# complexes, in the family with the most proteins.)

# %%
orphan_gene = orphan or study.default_orphan(cdata)
ranking = study.orphan_ranking(spec, orphan_gene)
true_family = family_of[orphan_gene]
ranking.round(3).to_frame()

# %%
# NBVAL_CHECK_OUTPUT
if true_family in ranking.index:
    rank = list(ranking.index).index(true_family) + 1
    print(f"orphan {orphan_gene}: annotated family '{true_family}' ranks {rank} of {len(ranking)} "
          f"(r = {ranking[true_family]:.3f}); best match '{ranking.idxmax()}' (r = {ranking.max():.3f})")
else:
    rank = None
    print(f"orphan {orphan_gene}: no other protein of its family '{true_family}' is in the data, so the "
          f"family cannot be found; best match '{ranking.idxmax()}' (r = {ranking.max():.3f})")

# %% [markdown]
# One protein is an anecdote. Taking every protein in turn as the orphan (leaving it out of its
# family's consensus each time) tells how often the spectrum points to the annotated family.
# Proteins that are alone in their family here are skipped. Every one of these proteins was in
# training, with its own protein-ID class, so this measures how the spectra **cluster** by
# family, not whether the model can place a protein it has never seen.

# %%
# NBVAL_CHECK_OUTPUT
loo = study.orphan_accuracy(spec)
chance = 1 / spec.consensus.shape[0]
if len(loo):
    print(f"leave-one-out: the annotated family ranks first for {int((loo['rank'] == 1).sum())} of {len(loo)} "
          f"proteins ({loo.attrs['top1']:.0%}; chance about {chance:.0%}); median rank "
          f"{loo['rank'].median():.0f} of {spec.consensus.shape[0]}")
else:
    print("leave-one-out: no family has two proteins in this data set")

# %% [markdown]
# ### A protein never seen in training
#
# The paper's orphan claim (Fig. 4c–e) is that a protein's spectrum alone tells its family. The
# strict test is a protein the model has never seen, so here proteins are **held out
# entirely**: real OpenCell targets outside this run's training set (no protein-ID class, no
# image), three per localization family that has training proteins —
# single-localized ones first, in a random order fixed by the seed
# (`study.select_heldout`) — each rendered 16 times by the same simulator, with the same seed
# (which fixes every protein's simulated pattern) and the same segmentation and distance
# transform as the training images; their genes differ from the training genes, so no image is
# shared. Nothing is retrained: every repeat of the `full` model encodes their images, each
# protein's feature spectrum is computed from its own images (the spectrum definition above), and
# the families are ranked by correlation with that repeat's consensus spectra of the training
# proteins. The table gives, per family, how many proteins were held out and how often their
# family ranked first and in the first three, over proteins × repeats.

# %%
heldout = study.build_heldout(cdata, seed=run.seed)
heldout_table = study.heldout_orphans(runs, cdata, heldout, split=spectra_split, spectra={0: spec})
heldout_families = study.heldout_by_family(heldout_table)
heldout_families.round(2)

# %%
# NBVAL_CHECK_OUTPUT
if len(heldout_table):
    n_families = int(heldout_table["families"].max())
    overall = heldout_families.loc["all"]
    print(f"held out: {int(overall['proteins'])} proteins never in training, {heldout_table['images'].iloc[0]} images "
          f"each, placed by {heldout_table['repeat'].nunique()} training repeats; family first for "
          f"{overall['top1']:.0%} (chance {1 / n_families:.0%}), in the first three for {overall['top3']:.0%} "
          f"(chance {min(3, n_families) / n_families:.0%})")
else:
    print("held out: no protein outside training here (real images, or every catalog protein trained on)")

# %% [markdown]
# ### Placing a new protein on the atlas (the paper's FAM241A)
#
# The paper took images of FAM241A, a protein of unknown localization, encoded them with the
# trained model and placed them on the existing atlas. Here the first held-out protein above
# (never in training) plays that part: its images are encoded by the `full` model (repeat 0) and
# put on the atlas map of section 4 with `umap.UMAP.transform` (the atlas file keeps the map,
# not the fitted UMAP, so the UMAP is refitted on the atlas's features with the atlas's seed —
# deterministic, it reproduces the stored map); its 10 nearest atlas proteins, by the distance
# between mean global vectors, vote for a family (`study.place_on_atlas`). The same from the
# command line, for a folder or an `.npz` of your own crops:
# `atlaskit place --run <the atlas .h5ad above> --images crops.npz`.

# %% mystnb={"figure": {"name": "fig-01-placement", "caption": "A held-out protein placed on the atlas with `UMAP.transform` (black crosses), beside the atlas proteins; its nearest proteins vote for a family (table below)."}}
from IPython.display import display

if heldout is not None:
    new_gene = str(heldout.proteins["gene"].iloc[0])
    new_family = heldout.proteins.set_index("gene")["family"][new_gene]
    placement = study.place_on_atlas(runs[("full", 0)], atlas_path, study.heldout_images(heldout, new_gene), k=10)
    study.placement_figure(placement, new_gene, family=new_family).show()

# %%
if heldout is not None:
    display(placement.table().round(3))

# %%
# NBVAL_CHECK_OUTPUT
if heldout is not None:
    print(f"{new_gene} (annotated '{new_family}', never in training): {len(placement.coords)} images placed")
    print("family vote of the 10 nearest proteins: " + ", ".join(f"{f} {v:.0%}" for f, v in placement.votes.items()))
    print(f"most likely: {placement.family}")
    print(f"UMAP refit reproduces the atlas map: {placement.refit_shift < 1e-3}")
else:
    print("no held-out protein to place here (real images, or every catalog protein trained on)")

# %% [markdown]
# ### What the index clusters draw: feature zeroing
#
# For one test image of three proteins of different families, the VQ1 positions whose index
# belongs to one cluster are set to zero and the image is decoded again; the maps show
# |reconstruction − reconstruction with that cluster zeroed| in the protein channel, one column
# per cluster, on one colour scale per row. A cluster that the image does not use leaves the
# reconstruction unchanged (a black map).

# %% mystnb={"figure": {"name": "fig-01-zeroing", "caption": "Feature zeroing (paper Fig. 5): change of the reconstruction when one code cluster is zeroed, one column per cluster, one row per example image. Bright maps mark the clusters an image relies on."}}
examples = study.zeroing_examples(full_model, cdata, spec, study.example_proteins(cdata, 3), split="test")
fig = figures.zeroing_figure(examples)

# %% [markdown]
# The maps are examples; the paper's claim is that zeroing a family's cluster removes **that
# family's** pattern. To score it, each family gets the index cluster its consensus spectrum is
# most enriched in (share of the family's spectrum in the cluster over the mean share of all
# families; `study.family_clusters`), chosen from the spectra of the **training** images so that
# the images scored take no part in the choice. Then, for two test images of every protein and
# every repeat of the full model, that cluster is zeroed and the change of the protein channel's
# reconstruction is measured as Σ|x̂ − x̂ zeroed| / Σ|x̂|: **on target** for images of the family,
# **off target** for the others. The table gives, per family, the cluster(s) chosen over the
# repeats (numbered in each repeat's own training-image dendrogram, so not the numbering of the
# figure above) and the mean change on and off target.

# %%
zeroing_spectra = study.repeat_spectra(runs, cdata, split="val" if run.scale == "full" else "train")
zeroing_table = study.zeroing_scores(runs, cdata, split="test", per_protein=2, spectra=zeroing_spectra)
zeroing_families = study.zeroing_by_family(zeroing_table)
zeroing_families.round(3)

# %%
# NBVAL_CHECK_OUTPUT
zeroing_all = zeroing_families.loc["all"]
higher = int((zeroing_families.drop(index="all")["on/off"] > 1).sum())
print(f"feature zeroing: change of the reconstruction {zeroing_all['on']:.3f} on target vs {zeroing_all['off']:.3f} off "
      f"target ({zeroing_all['on/off']:.2f} ×); higher on target for {higher} of {len(zeroing_families) - 1} families "
      f"({zeroing_table['repeat'].nunique()} repeats, {zeroing_table['protein'].nunique()} proteins)")

# %% [markdown]
# ## 6 · Ablations (the paper's Table 1)
#
# Each variant's clustering score on its own atlas of the test images, mean ± standard
# deviation over the repeats, beside what the paper's Table 1 says. We could not read the
# table's numbers from a source available here, so the `paper` column quotes only its headline:
# removing the protein-ID pretext task collapses the score.

# %%
table = study.ablation_table(scores)
table

# %%
# NBVAL_CHECK_OUTPUT
for variant, row in table.iterrows():
    sd = "n/a" if np.isnan(row["sd"]) else f"{row['sd']:.3f}"
    print(f"{variant:12s} score {row['mean']:.3f} ± {sd} (n={row['repeats']}), rank {row['rank']}, "
          f"{row['vs_full']:.2f} × full")
beats = table.loc["full", "mean"] > table.loc["no_pretext", "mean"]
print(f"full model beats no_pretext: {beats} "
      f"({table.loc['full', 'mean']:.3f} vs {table.loc['no_pretext', 'mean']:.3f})")
# a difference smaller than the two variants' repeat-to-repeat spread is not resolved by this run
resolved = {v: bool(abs(table.loc[v, "mean"] - table.loc["full", "mean"]) > table.loc[v, "sd"] + table.loc["full", "sd"])
            for v in table.index if v != "full" and min(table.loc[v, "repeats"], table.loc["full", "repeats"]) >= 2}
print("differs from full by more than the two sds together:", resolved or "needs at least 2 repeats")

# %% mystnb={"figure": {"name": "fig-01-scores", "caption": "Clustering score of every variant (paper Table 1): one point per training repeat, with the mean. The spread between repeats is what the ledger's intervals carry."}}
figures.score_strip(scores).show()

# %% [markdown]
# What the score measures, seen on the maps (the paper's Supplementary Figs. 8 and 11): the atlas
# of every variant, repeat 0, coloured by family. Without the protein-ID pretext the families
# should merge into one cloud; the other ablations change the layout less.

# %% mystnb={"figure": {"name": "fig-01-variant-atlases", "caption": "The atlas of every variant, repeat 0 (paper Supplementary Figs. 8 and 11). Without the protein-ID pretext the families should merge into one cloud."}}
figures.variant_atlases(evaluation, repeat=0).show()

# %% [markdown]
# ## 7 · Comparison with the paper

# %%
ratio_ppl = ppl_mean["full"] / ppl_mean["no_split"]
comparison = pd.DataFrame([
    {"quantity": "proteins", "paper": "1,311 (OpenCell)", "this run": f"{cdata.num_classes} ({cdata.source})"},
    {"quantity": "input", "paper": "2 × 100 × 100 (protein, nucleus distance)",
     "this run": this_model["input"]},
    {"quantity": "local / global representation", "paper": "25×25×64 / 4×4×576 (9 × 64)",
     "this run": f"{this_model['local (VQ1)']} / {this_model['global (VQ2)']}"},
    {"quantity": "codebooks", "paper": "2048×64, 2048×64", "this run": this_model["codebooks"]},
    {"quantity": "VQ2 perplexity: split vs no split (Fig. 1c)", "paper": "much higher with split",
     "this run": f"{ratio_ppl:.2f} × higher with split" if ratio_ppl >= 1 else f"{1 / ratio_ppl:.2f} × lower with split"},
    {"quantity": "clustering score: no ID pretext vs full (Table 1)", "paper": "collapses",
     "this run": f"{table.loc['no_pretext', 'vs_full']:.2f} × full"},
    {"quantity": "rank of the full model among the five variants (Table 1)", "paper": "not quoted here",
     "this run": f"{table.loc['full', 'rank']} of {len(table)}"},
])
comparison

# %% [markdown]
# **Why the numbers differ, and what a simulated run can and cannot show.** The paper trained the
# full-size model (2048-code books) on all 1,311 proteins, with far more images per protein,
# until early stopping; a few minutes on a laptop CPU cannot reproduce its scores. At `ci` our
# score is computed on a few dozen proteins and about a hundred test images, so it is noisy:
# the repeats show how much, and only differences larger than their spread (printed under the
# ablation table) should be read as effects of a component; with three repeats that is still a
# rough guide. On **simulated** images the families differ by construction, so a high score
# says that the *method* recovers the structure the simulator put in, and a resolved
# difference between variants says what a component contributes on this controlled problem.
# Neither says anything about real cells. In particular the **complex** highlighting and its
# score are only meaningful on real images: simulated proteins of one complex share a
# compartment, not a pattern. The same holds for the orphan analyses (a simulated orphan, held
# out of training or not, can only be placed in the compartments it was simulated in, and the
# held-out proteins share the simulator's family patterns with the training ones) and the
# feature spectra (the
# clusters reflect the simulator's textures). The grey band is built into simulated cells: a
# protein annotated in both nucleus and cytoplasm is simulated as a mixture of the two patterns,
# so finding it between them tests the model, not the biology; at `ci` too few proteins lie on
# that axis for a ledger row (the counts are printed above and in the row's reason). Run
# `-p scale full -p data real -p data_dir …` on a GPU to ask these questions of real data.
#
# ### The effects ledger
#
# Each finding of the paper, measured in this run: the difference the paper's claim says is
# positive, with a 95 % interval and the verdict that follows from the numbers —
# **reproduced** (the interval lies on the paper's side of zero), **not significant** (the
# interval includes zero, whichever sign the estimate has), **reversed** (the interval lies on
# the other side: the data contradict the paper), or **not testable** here (with the reason).
# Comparisons of variants are paired by training repeat and their interval is a t interval over
# the repeats. Where the noise comes from decided the protocol: in our development runs at `ci`
# the clustering score of one variant moved by up to 1.7 between two training repeats, by 0.2
# between UMAP seeds, and hardly with the number of test images (val + test gave the same
# picture), so `ci` trains **three** repeats (a t interval over two is 9 standard deviations
# wide, over three 2.5) and averages three UMAPs per run. Three times the epochs (12) doubled
# the classifiers' validation accuracy and halved the full model's repeat spread, but left
# `full`, `no_split`, `no_nucleus` and `no_distance` within 0.3 of one another (1.41, 1.59,
# 1.52, 1.33, two repeats each) while `no_pretext` stayed at 0.37; six epochs with three repeats
# gave 1.28, 1.74, 1.29, 1.13 and 0.49, one of the full model's three runs again barely learning
# (validation accuracy 0.19 against 0.53–0.60). At this scale on simulated cells only the
# pretext task's contribution is of the size of the training noise, and "the full model scores
# highest" — one row per ablation below, each paired by repeat — is not expected to be
# reproduced. The book's [ledger page](../ledger.md) gathers the rows of all chapters.

# %%
effect_rows = study.measure_effects(runs, scores, loo, spec.consensus.shape[0], seed=run.seed, data=cdata.source,
                                    heldout=heldout_table, zeroing=zeroing_table, band=band_table)
ledger(run, effect_rows)

# %% tags=["remove-cell"]
# NBVAL_CHECK_OUTPUT
for row in effect_rows:
    print(row.summary())

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 · Code usage of VQ2 with and without split quantization
#
# For every run of `full` and `no_split`, encode the validation images
# (`study.embed(r.model, cdata.dataset("val", name))`) and recompute the VQ2 perplexity the way
# training logs it, per batch of `preset.batch_size` images (`study.code_usage(...,
# batch_size=...)`); the weights in `runs` are those of the best epoch, `r.history.best_epoch`.
# Then compute the number of VQ2 codes used and the perplexity pooled over the test images in
# `embeddings`, and compare the two variants.
#
# **Check:** the recomputed validation perplexity agrees with the logged value of the best epoch
# within 2 %; the paper leads one to expect more codes in use with split quantization.

# %% tags=["hide-cell"]
# Solution
recomputed = {}
for (name, repeat), r in runs.items():
    if name not in ("full", "no_split"):
        continue
    k2 = r.config.global_codebook_size
    val_use = study.code_usage(study.embed(r.model, cdata.dataset("val", name)).global_indices, k2,
                               batch_size=preset.batch_size)
    logged = r.history.val[r.history.epochs.index(r.history.best_epoch)]["metric_perplexity2"]
    test_use = study.code_usage(embeddings[(name, repeat)].global_indices, k2)
    print(f"{name:8s} r{repeat}: validation perplexity {val_use['batch_perplexity']:.2f} recomputed, "
          f"{logged:.2f} logged (epoch {r.history.best_epoch}); test images: {test_use['codes_used']} of {k2} "
          f"codes used, pooled perplexity {test_use['perplexity']:.2f}")
    recomputed[(name, repeat)] = (val_use["batch_perplexity"], logged)

# %% tags=["remove-cell"]
# the exercise's check, executed by nbval: the recomputed perplexity agrees with the logged one within 2 %
assert recomputed and all(abs(mine - logged) <= 0.02 * logged for mine, logged in recomputed.values()), recomputed

# %% [markdown]
# ### Exercise 2 · How much of the clustering score is UMAP noise?
#
# The UMAP layout depends on its seed. Recompute the clustering score of the full model
# (repeat 0) on UMAPs with seeds `run.seed`, `run.seed + 1` and `run.seed + 2`
# (`study.umap_seed_scores`) and compare their standard deviation with the repeat-to-repeat
# standard deviation of the ablation table, `table.loc["full", "sd"]`.
#
# **Check:** the score for seed `run.seed` equals the one in `evaluation.seed_scores` exactly (a
# seeded UMAP is reproducible); if the seed spread is of the order of the repeat spread, part of
# the differences in the ablation table is UMAP noise, not training — which is why every run's
# score in this chapter is already the mean over `preset.umap_seeds` UMAPs.

# %% tags=["hide-cell"]
# Solution
by_seed = study.umap_seed_scores(embeddings[("full", 0)], evaluation.labels, [run.seed, run.seed + 1, run.seed + 2])
seeds = evaluation.seed_scores.set_index(["variant", "repeat", "umap_seed"])["score"]
logged = seeds.loc[("full", 0, run.seed)]
repeat_sd = table.loc["full", "sd"]
print("clustering score (full model, repeat 0) by UMAP seed:", {s: round(v, 3) for s, v in by_seed.items()})
print(f"sd over UMAP seeds {by_seed.std(ddof=1):.3f}; sd over training repeats "
      + ("n/a (one repeat at this scale)" if np.isnan(repeat_sd) else f"{repeat_sd:.3f}"))

# %% tags=["remove-cell"]
# the exercise's check, executed by nbval: a seeded UMAP is reproducible
assert np.isclose(by_seed[run.seed], logged, rtol=1e-9, atol=0)

# %% [markdown]
# ### Exercise 3 · Clustering score of the local (VQ1) representation
#
# The atlas uses the global representation. Summarise the local one of every test image by its
# VQ1 code histogram (`study.image_code_histograms` on `embeddings[("full", 0)].local_indices`;
# it keeps which codes occur, not where), and compute its clustering score by family with
# `study.clustering_scores`, beside the VQ2 score of the same UMAP seed (`evaluation.seed_scores`).
#
# **Check:** the same histograms computed for `emb_all`, averaged per protein and multiplied by
# the 625 positions, reproduce the feature spectra `spec.histograms`.

# %% tags=["hide-cell"]
# Solution
k1 = full_model.config.local_codebook_size
local = study.image_code_histograms(embeddings[("full", 0)].local_indices, k1)
local_scores, _ = study.clustering_scores({("full", 0): local}, evaluation.labels, seed=run.seed)
vq1 = float(local_scores.set_index(["variant", "repeat"]).loc[("full", 0), "score"])
vq2 = float(evaluation.seed_scores.set_index(["variant", "repeat", "umap_seed"]).loc[("full", 0, run.seed), "score"])
print(f"clustering score by family (full model, repeat 0): VQ1 code histograms {vq1:.3f}, "
      f"VQ2 global representation {vq2:.3f}; {'VQ1' if vq1 > vq2 else 'VQ2'} separates the families better here")
per_image = study.image_code_histograms(emb_all.local_indices, k1) * emb_all.local_indices[0].size
rebuilt = pd.DataFrame(per_image).groupby(genes_all).mean()
print("rebuilt spectra equal the feature spectra:",
      bool(np.allclose(rebuilt.to_numpy(), spec.histograms.loc[rebuilt.index].to_numpy())))

# %% tags=["remove-cell"]
# the exercise's check, executed by nbval
assert np.allclose(rebuilt.to_numpy(), spec.histograms.loc[rebuilt.index].to_numpy())

# %% [markdown]
# ## Summary

# %%
from IPython.display import Markdown

ablation_rank = ", ".join(f"{v} {table.loc[v, 'mean']:.2f}" for v in table.sort_values("mean", ascending=False).index)
Markdown("\n".join([
    f"- Data: {cdata.num_classes} real OpenCell targets, {len(cdata.meta)} {'simulated' if cdata.source == 'sim' else 'real'} "
    f"crops, split 8:1:1 within every protein.",
    f"- Model: `{preset.model}` configuration ({this_model['parameters']} parameters; the paper's configuration has "
    f"{paper_model['parameters']} in atlaskit), {len(runs)} training runs ({len(study.VARIANTS)} variants × {preset.repeats}).",
    f"- Split quantization: final VQ2 perplexity {ppl_mean['full']:.1f} with vs {ppl_mean['no_split']:.1f} without.",
    f"- Clustering score by family, mean over repeats: {ablation_rank}.",
    f"- The full model {'beats' if beats else 'does not beat'} the variant without the ID pretext task; "
    + (f"differences from the full model larger than the repeats' spread: "
       f"{', '.join(v for v, ok in resolved.items() if ok) or 'none'}." if resolved
       else "one repeat only, so no spread to compare with."),
    (f"- Orphans, leave-one-out: annotated family first for {loo.attrs['top1']:.0%} of {len(loo)} proteins "
     f"(chance about {chance:.0%})." if len(loo) else "- Orphans: no family has two proteins here."),
    (f"- Proteins never seen in training: family first for {heldout_families.loc['all', 'top1']:.0%} of "
     f"{int(heldout_families.loc['all', 'placements'])} placements ({int(heldout_families.loc['all', 'proteins'])} proteins × "
     f"repeats; chance about {chance:.0%})." if len(heldout_table) else "- No protein was held out of training here."),
    (f"- Orphan test: {orphan_gene}'s annotated family ranks {rank} of {len(ranking)} by spectrum correlation."
     if rank is not None else f"- Orphan test: {orphan_gene} is the only protein of its family here."),
    f"- Feature zeroing: a family's index cluster changes the reconstruction of its own images by "
    f"{zeroing_all['on']:.3f}, of the other families' by {zeroing_all['off']:.3f} ({zeroing_all['on/off']:.2f} ×).",
    "- On simulated images these results test the method, not biology.",
]))
