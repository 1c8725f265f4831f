"""Proteins of the deepGPS study: the real OpenCell labels, the sequences, the one split, the
proteins of each variant, and their sequence vectors."""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np
import pandas as pd

from atlaskit.data.embeddings import embedding_cache
from atlaskit.errors import ParameterError
from atlaskit.models.sequence import SequenceEmbedder
from atlaskit.studies.deepgps.presets import Preset

__all__ = ["VARIANTS", "CLASS_LABELS", "catalog_sequences", "protein_table", "variant_table", "variant_classes",
           "embed_proteins", "image_proteins", "used_proteins"]

VARIANTS = ("single-2", "single-4", "all")

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


def variant_table(table: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The proteins of a variant: ``gene``, ``split``, ``stratum`` and, for single-2/4, ``label``
    (compartment) and ``label_idx`` (its index in the variant's class order)."""
    from atlaskit.data.catalogs import DEEPGPS_VARIANTS

    if variant not in VARIANTS:
        raise ParameterError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
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
    not depend on the variant), every test protein of single-4 (so that all three variants can
    be scored on the same test images), and up to a quarter of the cap (at least 1) other test
    proteins per stratum. Without a cap (``None``, the full preset) every protein is kept.
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
    out = pd.concat(parts).drop(columns="_rank").sort_values("gene").reset_index(drop=True)
    return out


def used_proteins(table: pd.DataFrame, preset: Preset, seed: int = 0) -> list[str]:
    """Every protein the chapter needs a sequence vector for (variants and image proteins), sorted."""
    genes = set(variant_table(table, "single-4")["gene"])
    for v in VARIANTS:
        genes |= set(image_proteins(table, v, preset, seed)["gene"])
    return sorted(genes)
