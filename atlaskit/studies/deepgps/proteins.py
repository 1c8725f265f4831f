"""Proteins of the deepGPS study: the real OpenCell labels, the sequences, the one split, the
proteins of each variant, and their sequence vectors."""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np
import pandas as pd

from atlaskit.data.embeddings import embedding_cache
from atlaskit.errors import DataError, ParameterError
from atlaskit.models.sequence import SequenceEmbedder
from atlaskit.studies.deepgps.presets import Preset

__all__ = ["VARIANTS", "CLASS_LABELS", "MAX_LENGTH", "catalog_sequences", "protein_table", "variant_table",
           "variant_classes", "embed_proteins", "image_proteins", "used_proteins", "equal_count_sample"]

VARIANTS = ("single-2", "single-4", "all")

#: The paper left out sequences longer than this (residues); every variant here does too.
MAX_LENGTH = 2700

#: Readable class names for the OpenCell compartments of the variants.
CLASS_LABELS = {"cytoplasmic": "cytoplasm", "nucleoplasm": "nucleoplasm", "vesicles": "vesicles", "er": "ER"}


def catalog_sequences() -> tuple[dict[str, str], pd.DataFrame]:
    """Sequences of the OpenCell catalog proteins, keyed by the catalog's gene names.

    The FASTA's ids are matched to the annotation table's genes exactly, then ignoring case
    (the FASTA spells e.g. ``DnaJA1`` / ``RuvBL1``), then by UniProt accession (the FASTA's
    ``FAM241A`` is the catalog's ``C4orf32``).

    Returns
    -------
    sequences : dict gene → sequence
    matches : DataFrame
        ``gene``, ``fasta_id``, ``how`` ("exact", "case", "uniprot" or "missing") for every
        protein not matched exactly.
    """
    from atlaskit.data import catalogs, registry
    from atlaskit.data import sequences as seqmod

    records = seqmod.read_fasta(registry.fetch("opencell/protein-sequences.fasta", progress=False))
    by_id = {r.id: r.sequence for r in records}
    by_upper = {r.id.upper(): r for r in records}
    by_acc = {}
    for r in records:
        m = re.search(r"uniprot=(\S+)", r.description)
        if m:
            by_acc.setdefault(m.group(1), r)
    prot = catalogs.opencell_proteins()
    out, rows = {}, []
    for gene, acc in zip(prot["gene"], prot["uniprot"]):
        if gene in by_id:
            out[gene] = by_id[gene]
            continue
        hit, how = by_upper.get(gene.upper()), "case"
        if hit is None and acc in by_acc:
            hit, how = by_acc[acc], "uniprot"
        if hit is None:
            rows.append({"gene": gene, "fasta_id": None, "how": "missing"})
        else:
            out[gene] = hit.sequence
            rows.append({"gene": gene, "fasta_id": hit.id, "how": how})
    return out, pd.DataFrame(rows, columns=["gene", "fasta_id", "how"])


def protein_table(seed: int = 0, *, sequences: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Every OpenCell protein with its deepGPS labels and its split.

    Parameters
    ----------
    seed : int
        Seed of the split.
    sequences : mapping, optional
        Gene → sequence (default :func:`catalog_sequences`); proteins without a sequence are
        dropped (``table.attrs["no_sequence"]`` lists them).

    Returns
    -------
    pandas.DataFrame
        One row per protein, sorted by gene: ``gene``, ``uniprot``, ``single_localized``,
        ``major`` (str or None), ``family``, ``stratum``, ``single-2`` and ``single-4`` (the
        class name, or None when the protein is not in the variant), ``length`` and ``split``
        ("train" / "test"; protein-disjoint 4:1, stratified by ``stratum``).
    """
    from atlaskit.data import catalogs
    from atlaskit.data.datasets import protein_disjoint_split

    prot = catalogs.opencell_proteins()
    seqs = catalog_sequences()[0] if sequences is None else dict(sequences)
    missing = sorted(set(prot["gene"]) - set(seqs))
    prot = prot[prot["gene"].isin(seqs)].reset_index(drop=True)
    out = pd.DataFrame({
        "gene": prot["gene"],
        "uniprot": prot["uniprot"],
        "single_localized": prot["single_localized"].astype(bool),
        "major": prot["major"],
        "family": prot["family"],
    })
    out["stratum"] = np.where(out["single_localized"], "single:" + out["major"].astype(str),
                              "multi:" + out["family"].astype(str))
    for variant, classes in catalogs.DEEPGPS_VARIANTS.items():
        member = out["single_localized"] & out["major"].isin(classes)
        out[variant] = out["major"].where(member, None)
    out["length"] = out["gene"].map(lambda g: len(seqs[g])).astype(int)
    out["split"] = protein_disjoint_split(out.rename(columns={"gene": "protein"}), group="protein",
                                          stratify="stratum", fractions=(0.8, 0.2), names=("train", "test"),
                                          seed=seed).to_numpy()
    out.attrs["no_sequence"] = missing
    out.attrs["seed"] = seed
    return out


def variant_table(table: pd.DataFrame, variant: str, *, max_length: int | None = MAX_LENGTH) -> pd.DataFrame:
    """The proteins of a variant: ``gene``, ``split``, ``stratum`` and, for single-2/4, ``label``
    (compartment) and ``label_idx`` (its index in the variant's class order).

    Proteins longer than ``max_length`` residues (:data:`MAX_LENGTH`, as in the paper) are left
    out when ``table`` has a ``length`` column; ``None`` keeps every protein.
    """
    from atlaskit.data.catalogs import DEEPGPS_VARIANTS

    if variant not in VARIANTS:
        raise ParameterError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if max_length is not None and "length" in table.columns:
        if int(max_length) < 1:
            raise ParameterError(f"max_length must be a positive number of residues, got {max_length!r}")
        table = table[table["length"] <= int(max_length)]
    if variant == "all":
        return table[["gene", "split", "stratum"]].reset_index(drop=True)
    classes = DEEPGPS_VARIANTS[variant]
    sel = table[table[variant].notna()]
    out = sel[["gene", "split", "stratum"]].copy()
    out["label"] = sel[variant].to_numpy()
    out["label_idx"] = out["label"].map({c: i for i, c in enumerate(classes)}).astype(int)
    return out.reset_index(drop=True)


def variant_classes(variant: str) -> tuple[str, ...]:
    """Class names (OpenCell compartments) of a variant in label-index order; () for "all"."""
    from atlaskit.data.catalogs import DEEPGPS_VARIANTS

    return tuple(DEEPGPS_VARIANTS.get(variant, ()))


def embed_proteins(table: pd.DataFrame, embedder: SequenceEmbedder, *, sequences: Mapping[str, str] | None = None,
                   cache=True) -> pd.DataFrame:
    """Embedding of every protein of ``table`` (rows indexed by gene, float32 columns)."""
    seqs = catalog_sequences()[0] if sequences is None else sequences
    genes = table["gene"].tolist()
    x = embedder.embed([(g, seqs[g]) for g in genes], cache=embedding_cache(cache))
    return pd.DataFrame(x, index=pd.Index(genes, name="gene"))


def image_proteins(table: pd.DataFrame, variant: str, preset: Preset, seed: int = 0) -> pd.DataFrame:
    """The proteins of a variant that get images at this preset (the variant table, capped).

    Single-2/4 use all their proteins. "all" keeps, per stratum, at most
    ``preset.all_max_train_per_stratum`` training proteins (chosen by a seeded ranking that does
    not depend on the variant) and, when that leaves more training proteins than single-2 has,
    a stratified sample of them (:func:`equal_count_sample`, by stratum) as large as single-2's,
    so that "all" and single-2 train on equal numbers of proteins; every test protein of
    single-4 (so that all three variants can be scored on the same test images), and up to a
    quarter of the cap (at least 1) other test proteins per stratum. Without a cap (``None``,
    the full preset) every protein is kept.
    """
    vt = variant_table(table, variant)
    cap = preset.all_max_train_per_stratum
    if variant != "all" or cap is None:
        return vt
    rank = pd.Series(np.random.default_rng(seed).permutation(len(table)), index=table["gene"].to_numpy())
    vt = vt.assign(_rank=vt["gene"].map(rank)).sort_values(["stratum", "split", "_rank"])
    keep_test = set(variant_table(table, "single-4").query("split == 'test'")["gene"])
    test_cap = max(1, cap // 4)
    parts = []
    for (_, split), grp in vt.groupby(["stratum", "split"], sort=True):
        if split == "train":
            parts.append(grp.head(cap))
        else:
            parts.append(pd.concat([grp[grp["gene"].isin(keep_test)], grp[~grp["gene"].isin(keep_test)].head(test_cap)]))
    out = pd.concat(parts).drop(columns="_rank")
    train = out[out["split"] == "train"]
    n_single2 = int((variant_table(table, "single-2")["split"] == "train").sum())
    if 0 < n_single2 < len(train):
        keep = set(equal_count_sample(train, n_single2, by="stratum", seed=seed))
        out = out[(out["split"] == "test") | out["gene"].isin(keep)]
    return out.sort_values("gene").reset_index(drop=True)


def equal_count_sample(proteins: pd.DataFrame, n: int, *, by: str, seed: int = 0) -> list[str]:
    """``n`` genes of ``proteins``, drawn without replacement and stratified by the column ``by``.

    Each stratum gets its proportional share of ``n``, rounded by the largest remainder
    (Hamilton's method; ties go to the larger stratum, then to the stratum's name), so the
    class shares of the sample differ from those of ``proteins`` by less than one protein per
    stratum; inside a stratum the genes are a seeded random draw. ``n`` equal to the number of
    proteins returns them all.

    Parameters
    ----------
    proteins : DataFrame
        With columns ``gene`` (unique) and ``by``.
    n : int
        Sample size, 1 ≤ n ≤ len(proteins).
    by : str
        The stratifying column (the class label, or the localization stratum of "all").
    seed : int
        Seed of the draw.

    Returns
    -------
    list of str
        The drawn genes, sorted.

    Raises
    ------
    ParameterError
        ``n`` outside 1…len(proteins), or ``by`` / ``gene`` missing.
    DataError
        A gene appears twice.
    """
    for col in ("gene", by):
        if col not in proteins.columns:
            raise ParameterError(f"equal_count_sample needs a {col!r} column, got {list(proteins.columns)}")
    if proteins["gene"].duplicated().any():
        raise DataError("a gene appears twice: a protein would count twice in the sample")
    total = len(proteins)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= int(n) <= total:
        raise ParameterError(f"n must be a whole number of proteins from 1 to {total}, got {n!r}")
    n = int(n)
    sizes = proteins.groupby(by, sort=True).size()
    exact = sizes * n / total
    share = np.floor(exact).astype(int)
    order = sorted(sizes.index, key=lambda k: (-(exact[k] - share[k]), -sizes[k], str(k)))
    for k in order[: n - int(share.sum())]:
        share[k] += 1
    rng = np.random.default_rng(seed)
    picked: list[str] = []
    for k in sizes.index:  # sorted strata, sorted genes: the draw depends on the seed alone
        genes = np.sort(proteins.loc[proteins[by] == k, "gene"].to_numpy().astype(str))
        picked += genes[rng.permutation(len(genes))[: share[k]]].tolist()
    return sorted(picked)


def used_proteins(table: pd.DataFrame, preset: Preset, seed: int = 0) -> list[str]:
    """Every protein the chapter needs a sequence vector for (variants and image proteins), sorted."""
    genes = set(variant_table(table, "single-4")["gene"])
    for v in VARIANTS:
        genes |= set(image_proteins(table, v, preset, seed)["gene"])
    return sorted(genes)


def choose_embedder(embedder: str = "auto", *, esm_model: str, download: bool = False, device: str = "cpu"):
    """The chapter's sequence embedder (:func:`atlaskit.models.sequence.select_embedder`), with
    the data registry's verified ESM2 files as one of the places ESM2 weights are looked for
    (after ``$ATLASKIT_ESM2``, before torch hub); ``download`` fetches a registered model into
    the atlaskit cache (sha256-checked).

    Returns
    -------
    EmbedderChoice
        ``.embedder`` and ``.message`` (which embedder ran, and why).
    """
    from atlaskit.data.model_weights import RegisteredESM2Weights
    from atlaskit.models import sequence

    return sequence.select_embedder(embedder, esm_model=esm_model, download=download, device=device,
                                    registered=RegisteredESM2Weights())
