"""Targeting-signal features of a protein sequence: the biology of where a protein goes, as numbers.

A protein's destination is written in a few places of its sequence: an N-terminal signal
peptide (ER / secretory pathway) or mitochondrial presequence, nuclear localization signals
(clusters of K/R), transmembrane segments (long hydrophobic stretches), short C-terminal tags
(ER retention, peroxisomal import, prenylation), and the disorder and charge of the chain. This
module turns those into a fixed vector of :data:`SIGNAL_FEATURES` numbers, with no weights and
no network: :class:`atlaskit.models.sequence.SignalEmbedder` wraps :func:`signal_features` as a
sequence embedder. Everything here is numpy on one cleaned sequence (see
:func:`atlaskit.models.sequence.clean_sequence`); Biopython's ProtParam would give the
Kyte–Doolittle scan too, but it is not a dependency of atlaskit, so the 20-value scales are
written out below with their sources.

Features (name: meaning — source)
---------------------------------
Global
    ``log10_length`` — log10 of the number of residues.
    ``net_charge_per_res``, ``frac_basic`` (K+R), ``frac_acidic`` (D+E) — charge at neutral pH,
    counting K, R as +1 and D, E as −1.
    ``mean_hydropathy`` — mean Kyte–Doolittle value (Kyte & Doolittle 1982, J Mol Biol 157:105).
    ``frac_disorder_promoting`` (A R G Q S P E K) and ``frac_order_promoting`` (W C F I Y V L N)
    — Dunker et al. 2001 (J Mol Graph Model 19:26).
    ``uversky_distance`` — ⟨R⟩ − (⟨H⟩·2.785 − 1.151), with ⟨H⟩ the mean Kyte–Doolittle value
    rescaled to [0, 1] over a 5-residue window and ⟨R⟩ the absolute mean net charge: positive
    on the "natively unfolded" side of the charge–hydropathy boundary (Uversky et al. 2000,
    Proteins 41:415).
    ``min_entropy12``, ``frac_low_complexity`` — Shannon entropy (bits) of 12-residue windows,
    its minimum and the fraction of windows under 2.2 bits (the SEG trigger window and
    complexity, Wootton & Federhen 1993, Comput Chem 17:149).
N-terminus (signal peptide, mitochondrial presequence)
    ``nterm_hydropathy`` — mean Kyte–Doolittle value of residues 1–20.
    ``nterm_max_h_region`` — largest mean Kyte–Doolittle value of an 11-residue window that
    starts within residues 1–30: the hydrophobic h-region of a signal peptide (von Heijne 1985,
    J Mol Biol 184:99; SignalP's positional logic).
    ``nterm_net_charge``, ``nterm_arg``, ``nterm_acidic`` — net charge, arginine and D+E counts
    of residues 1–20 (presequences are rich in R, almost free of D/E; von Heijne 1986, EMBO J
    5:1335).
    ``nterm_max_moment`` — largest hydrophobic moment μH (Eisenberg consensus scale, 100° per
    residue, an ideal α-helix) of an 18-residue window starting within residues 1–25, divided
    by the window length: the amphipathic helix of a presequence (Eisenberg et al. 1984, PNAS
    81:140; used this way by MitoProt, Claros & Vincens 1996).
Nuclear localization signals
    ``nls_mono`` — occurrences of K(K/R)X(K/R) (the classical monopartite core; Kosugi et al.
    2009, J Biol Chem 284:478), per 100 residues.
    ``nls_pat4`` — occurrences of four consecutive K/R, or three K/R with one H or P (PSORT II
    "pat4", Nakai & Horton 1999, TIBS 24:34), per 100 residues.
    ``nls_pat7`` — P followed within 3 residues by a 4-residue stretch with ≥3 K/R (PSORT II
    "pat7"), per 100 residues.
    ``nls_bipartite`` — (K/R)(K/R), a 10–12-residue linker, then ≥3 K/R among the next 5
    residues (Robbins et al. 1991, Cell 64:615; Kosugi et al. 2009), per 100 residues.
    ``max_basic_density8`` — largest fraction of K+R in an 8-residue window.
Transmembrane segments
    ``tm_segments`` — number of separate stretches where the 19-residue Kyte–Doolittle window
    mean exceeds 1.6 (Kyte & Doolittle 1982: the window and threshold that pick out membrane-
    spanning segments); overlapping above-threshold windows are one segment.
    ``max_hydropathy19`` — largest 19-residue window mean (0 when the protein is shorter).
C-terminal tags
    ``cterm_er_retention`` — the chain ends in (K/H/R)DEL (Munro & Pelham 1987, Cell 48:899).
    ``cterm_dilysine`` — K at −3 and K at −4 or −5 (KKXX / KXKXX; Jackson et al. 1990, EMBO J
    9:3153).
    ``cterm_pts1`` — ends in (S/A/C)(K/R/H)(L/M) (PTS1; Gould et al. 1989, J Cell Biol 108:1657).
    ``cterm_caax`` — C at −4 then two aliphatic residues (A I L V M) and any last residue (CaaX
    prenylation; Zhang & Casey 1996, Annu Rev Biochem 65:241).
    ``cterm_net_charge`` — net charge of the last 20 residues.
Regional composition
    ``aa_<X>``, ``nterm50_<X>``, ``cterm50_<X>`` — fraction of each of the 20 amino acids over
    the whole chain, the first 50 and the last 50 residues (Nakashima & Nishikawa 1994, J Mol
    Biol 238:54: composition of N-terminal and full sequences as localization features).

Ambiguity letters count fractionally, as in :class:`~atlaskit.models.sequence.CompositionEmbedder`
(B = ½ D + ½ N, Z = ½ E + ½ Q, U → C, O → K, X = 1/20 of each); motifs match the standard
letters only (an X never completes a motif).
"""
from __future__ import annotations

import re

import numpy as np

__all__ = ["STANDARD20", "KYTE_DOOLITTLE", "EISENBERG", "SIGNAL_FEATURES", "signal_features",
           "residue_profile", "window_means", "tm_segment_count", "hydrophobic_moment", "motif_counts"]

#: The 20 standard amino acids, alphabetical (the order of the composition features).
STANDARD20 = "ACDEFGHIKLMNPQRSTVWY"

#: Kyte & Doolittle (1982) hydropathy index.
KYTE_DOOLITTLE = {"A": 1.8, "C": 2.5, "D": -3.5, "E": -3.5, "F": 2.8, "G": -0.4, "H": -3.2, "I": 4.5, "K": -3.9,
                  "L": 3.8, "M": 1.9, "N": -3.5, "P": -1.6, "Q": -3.5, "R": -4.5, "S": -0.8, "T": -0.7, "V": 4.2,
                  "W": -0.9, "Y": -1.3}
#: Eisenberg et al. (1984) normalised consensus hydrophobicity scale.
EISENBERG = {"A": 0.62, "C": 0.29, "D": -0.90, "E": -0.74, "F": 1.19, "G": 0.48, "H": -0.40, "I": 1.38, "K": -1.50,
             "L": 1.06, "M": 0.64, "N": -0.78, "P": 0.12, "Q": -0.85, "R": -2.53, "S": -0.18, "T": -0.05, "V": 1.08,
             "W": 0.81, "Y": 0.26}
_CHARGE = {"K": 1.0, "R": 1.0, "D": -1.0, "E": -1.0}
_DISORDER = "ARGQSPEK"
_ORDER = "WCFIYVLN"

# Each accepted letter (by ASCII code) as a distribution over the 20 standard amino acids; shared
# with atlaskit.models.sequence's composition embedder.
LETTER_ROWS = np.zeros((128, 20), dtype=np.float64)
for _i, _a in enumerate(STANDARD20):
    LETTER_ROWS[ord(_a), _i] = 1.0
LETTER_ROWS[ord("B"), [STANDARD20.index("D"), STANDARD20.index("N")]] = 0.5
LETTER_ROWS[ord("Z"), [STANDARD20.index("E"), STANDARD20.index("Q")]] = 0.5
LETTER_ROWS[ord("U"), STANDARD20.index("C")] = 1.0
LETTER_ROWS[ord("O"), STANDARD20.index("K")] = 1.0
LETTER_ROWS[ord("X"), :] = 1.0 / 20


def _scale(values: dict[str, float]) -> np.ndarray:
    return np.array([values.get(a, 0.0) for a in STANDARD20])


_KD, _EIS, _CH = _scale(KYTE_DOOLITTLE), _scale(EISENBERG), _scale(_CHARGE)
_DIS = np.array([a in _DISORDER for a in STANDARD20], float)
_ORD = np.array([a in _ORDER for a in STANDARD20], float)
_BASIC = np.array([a in "KR" for a in STANDARD20], float)
_ACIDIC = np.array([a in "DE" for a in STANDARD20], float)
_ARG = np.array([a == "R" for a in STANDARD20], float)

# motifs (lookaheads count overlapping occurrences)
_NLS_MONO = re.compile(r"(?=K[KR].[KR])")
_NLS_PAT4 = re.compile(r"(?=([KR]{4}|[KR]{3}[HP]|[KR]{2}[HP][KR]|[KR][HP][KR]{2}|[HP][KR]{3}))")
_NLS_PAT7 = re.compile(r"(?=P.{0,2}(?:[KR]{3}.|[KR]{2}.[KR]|[KR].[KR]{2}|.[KR]{3}))")
_NLS_BI_HEAD = re.compile(r"(?=[KR][KR])")

_GLOBAL = ["log10_length", "net_charge_per_res", "frac_basic", "frac_acidic", "mean_hydropathy",
           "frac_disorder_promoting", "frac_order_promoting", "uversky_distance", "min_entropy12",
           "frac_low_complexity"]
_NTERM = ["nterm_hydropathy", "nterm_max_h_region", "nterm_net_charge", "nterm_arg", "nterm_acidic", "nterm_max_moment"]
_NLS = ["nls_mono", "nls_pat4", "nls_pat7", "nls_bipartite", "max_basic_density8"]
_TM = ["tm_segments", "max_hydropathy19"]
_CTERM = ["cterm_er_retention", "cterm_dilysine", "cterm_pts1", "cterm_caax", "cterm_net_charge"]
#: Names of the features, in the order of :func:`signal_features`.
SIGNAL_FEATURES: list[str] = (_GLOBAL + _NTERM + _NLS + _TM + _CTERM + [f"aa_{a}" for a in STANDARD20]
                              + [f"nterm50_{a}" for a in STANDARD20] + [f"cterm50_{a}" for a in STANDARD20])


def residue_profile(sequence: str) -> np.ndarray:
    """``(L, 20)`` distribution over the standard amino acids of every residue of a cleaned sequence."""
    return LETTER_ROWS[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]


def window_means(values: np.ndarray, width: int) -> np.ndarray:
    """Means of every ``width``-long window of ``values`` (empty when shorter than ``width``)."""
    values = np.asarray(values, float)
    if len(values) < width:
        return np.zeros(0)
    c = np.concatenate([[0.0], np.cumsum(values)])
    return (c[width:] - c[:-width]) / width


def tm_segment_count(hydropathy: np.ndarray, *, window: int = 19, threshold: float = 1.6) -> int:
    """Transmembrane segments: runs of consecutive ``window``-residue windows whose mean
    Kyte–Doolittle value exceeds ``threshold`` (Kyte & Doolittle 1982), each run counted once."""
    above = window_means(hydropathy, window) > threshold
    if not above.any():
        return 0
    return int(above[0]) + int(np.count_nonzero(above[1:] & ~above[:-1]))


def hydrophobic_moment(eisenberg: np.ndarray, *, angle_deg: float = 100.0) -> float:
    """Hydrophobic moment per residue of a segment, |Σ h_n e^{i n δ}| / n (Eisenberg et al. 1984)."""
    h = np.asarray(eisenberg, float)
    if h.size == 0:
        return 0.0
    phase = np.deg2rad(angle_deg) * np.arange(h.size)
    return float(np.hypot((h * np.cos(phase)).sum(), (h * np.sin(phase)).sum()) / h.size)


def _bipartite_count(seq: str) -> int:
    """(K/R)(K/R), a 10–12-residue linker, then ≥3 K/R of the next 5 residues (fewer at the chain's
    end); a head counts once whichever linker length fits."""
    n = 0
    for m in _NLS_BI_HEAD.finditer(seq):
        s = m.start() + 2
        if any(sum(c in "KR" for c in seq[s + gap:s + gap + 5]) >= 3 for gap in (10, 11, 12)):
            n += 1
    return n


def motif_counts(sequence: str) -> dict[str, int]:
    """Occurrences (overlapping) of the nuclear-localization motifs in a cleaned sequence."""
    return {"nls_mono": len(_NLS_MONO.findall(sequence)), "nls_pat4": len(_NLS_PAT4.findall(sequence)),
            "nls_pat7": len(_NLS_PAT7.findall(sequence)), "nls_bipartite": _bipartite_count(sequence)}


def _entropies(profile: np.ndarray, width: int = 12) -> np.ndarray:
    """Shannon entropy (bits) of the composition of every ``width``-residue window."""
    if len(profile) < width:
        windows = profile.mean(axis=0, keepdims=True)
    else:
        c = np.concatenate([np.zeros((1, 20)), np.cumsum(profile, axis=0)])
        windows = (c[width:] - c[:-width]) / width
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(windows > 0, windows * np.log2(windows), 0.0)
    return -terms.sum(axis=1)


def signal_features(sequence: str) -> np.ndarray:
    """The :data:`SIGNAL_FEATURES` of one cleaned sequence (upper case, accepted letters only).

    Returns
    -------
    numpy.ndarray
        float64 of length ``len(SIGNAL_FEATURES)``.
    """
    p = residue_profile(sequence)  # (L, 20)
    length = len(sequence)
    kd, eis, charge = p @ _KD, p @ _EIS, p @ _CH
    comp = p.mean(axis=0)

    kd_norm = (kd + 4.5) / 9.0  # Uversky: hydropathy rescaled to [0, 1], 5-residue window
    h_mean = window_means(kd_norm, 5).mean() if length >= 5 else kd_norm.mean()
    r_mean = abs(charge.mean())
    ent = _entropies(p)
    glob = [np.log10(length), charge.mean(), comp @ _BASIC, comp @ _ACIDIC, kd.mean(), comp @ _DIS, comp @ _ORD,
            r_mean - (2.785 * h_mean - 1.151), ent.min(), float((ent < 2.2).mean())]

    n20 = p[:20]
    h_region = window_means(kd[:40], 11)[:30]
    moments = [hydrophobic_moment(eis[s:s + 18]) for s in range(0, max(1, min(25, length - 17)))]
    nterm = [kd[:20].mean(), h_region.max() if h_region.size else kd[:30].mean(), (n20 @ _CH).sum(),
             (n20 @ _ARG).sum(), (n20 @ _ACIDIC).sum(), max(moments)]

    per100 = 100.0 / length
    motifs = motif_counts(sequence)
    basic8 = window_means(p @ _BASIC, 8)
    nls = [motifs["nls_mono"] * per100, motifs["nls_pat4"] * per100, motifs["nls_pat7"] * per100,
           motifs["nls_bipartite"] * per100, basic8.max() if basic8.size else (p @ _BASIC).mean()]

    w19 = window_means(kd, 19)
    tm = [tm_segment_count(kd), w19.max() if w19.size else 0.0]

    cterm = [float(bool(re.search(r"[KHR]DEL$", sequence))),
             float(bool(re.search(r"(KK..|K.K..)$", sequence))),
             float(bool(re.search(r"[SAC][KRH][LM]$", sequence))),
             float(bool(re.search(r"C[AILVM][AILVM].$", sequence))),
             (p[-20:] @ _CH).sum()]

    return np.concatenate([glob, nterm, nls, tm, cterm, comp, p[:50].mean(axis=0), p[-50:].mean(axis=0)])
