"""Targeting-signal features (atlaskit.models.sequence_features) and the SignalEmbedder:
every feature on hand-made sequences, shape, determinism, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from atlaskit.errors import DataError
from atlaskit.models import sequence as S
from atlaskit.models import sequence_features as F


def feats(seq: str) -> dict[str, float]:
    return dict(zip(F.SIGNAL_FEATURES, F.signal_features(seq)))


FILLER = "GSGSTGSGNGSGSQ" * 6  # 84 polar residues: no motif, no hydrophobic stretch


def test_feature_names_match_the_vector():
    assert len(F.SIGNAL_FEATURES) == len(set(F.SIGNAL_FEATURES)) == F.signal_features(FILLER).size == 88
    assert S.SignalEmbedder().dim == 88 and S.SignalEmbedder.feature_names() == F.SIGNAL_FEATURES


def test_c_terminal_tags():
    assert feats(FILLER + "KDEL")["cterm_er_retention"] == 1.0
    assert feats(FILLER + "HDEL")["cterm_er_retention"] == 1.0
    assert feats(FILLER + "KDELG")["cterm_er_retention"] == 0.0  # must be the very end
    assert feats(FILLER + "KDEA")["cterm_er_retention"] == 0.0
    assert feats(FILLER + "SKL")["cterm_pts1"] == 1.0 and feats(FILLER + "SKA")["cterm_pts1"] == 0.0
    assert feats(FILLER + "CVIM")["cterm_caax"] == 1.0 and feats(FILLER + "CGIM")["cterm_caax"] == 0.0
    assert feats(FILLER + "KKGG")["cterm_dilysine"] == 1.0 and feats(FILLER + "KGKGG")["cterm_dilysine"] == 1.0
    assert feats(FILLER + "GKGG")["cterm_dilysine"] == 0.0
    assert feats(FILLER)["cterm_net_charge"] == 0.0 and feats(FILLER + "KDEL")["cterm_net_charge"] == -1.0


def test_nuclear_localization_signals():
    sv40 = FILLER + "PKKKRKV" + FILLER  # SV40 large-T NLS
    f, plain = feats(sv40), feats(FILLER + FILLER)
    per100 = 100 / len(sv40)
    # K(K/R)X(K/R): KKKR (at K1) and KKRK (at K2): two overlapping occurrences
    assert f["nls_mono"] == pytest.approx(2 * per100)
    # pat4 windows of 4 from PKKKRKV: PKKK (H/P + 3 basic), KKKR, KKRK = 3
    assert f["nls_pat4"] == pytest.approx(3 * per100)
    assert f["nls_pat7"] > 0  # P followed by a basic stretch
    assert f["max_basic_density8"] == pytest.approx(5 / 8)  # PKKKRKV + one G: 5 of 8
    assert plain["nls_mono"] == plain["nls_pat4"] == plain["nls_bipartite"] == 0.0
    # nucleoplasmin: KR + 10-residue linker + KKKK (≥ 3 of 5 basic)
    bip = FILLER + "KRPAATKKAGQAKKKK" + FILLER
    assert feats(bip)["nls_bipartite"] > 0
    assert F.motif_counts("KRPAATKKAGQAKKKK")["nls_bipartite"] == 1
    assert F.motif_counts("KRPAAGGGGGGGGGGGGGGGGKKKK")["nls_bipartite"] == 0  # linker too long


def test_one_hydrophobic_stretch_is_one_transmembrane_segment():
    tm = FILLER + "L" * 20 + FILLER
    assert feats(tm)["tm_segments"] == 1
    assert feats(tm)["max_hydropathy19"] == pytest.approx(3.8)
    assert feats(FILLER + "L" * 20 + FILLER + "I" * 22 + FILLER)["tm_segments"] == 2
    assert feats(FILLER + FILLER)["tm_segments"] == 0
    assert F.tm_segment_count(np.full(18, 4.0)) == 0  # shorter than one window
    assert F.tm_segment_count(np.r_[np.full(19, 1.5), np.zeros(5)]) == 0  # under the 1.6 threshold
    assert F.tm_segment_count(np.r_[np.full(19, 1.7), np.zeros(5)]) == 1


def test_presequence_like_n_terminus():
    # positively charged, amphipathic, no acidic residue (a COX8-like presequence)
    pre = "MSVLTPLLLRGLTGSARRLPVPRAKIHSL" + FILLER
    f, plain = feats(pre), feats(FILLER)
    assert f["nterm_net_charge"] == 3.0 and f["nterm_arg"] == 3.0 and f["nterm_acidic"] == 0.0
    assert f["nterm_max_moment"] > plain["nterm_max_moment"]
    # an ideal amphipathic helix (L on one face, K on the other, 100° per residue): a square wave
    # of amplitude (1.06 + 1.50) / 2 = 1.28 whose fundamental is 4/π · 1.28, so μH ≈ 2/π · 1.28 = 0.815
    helix = "".join("L" if (i * 100) % 360 < 180 else "K" for i in range(18))
    assert F.hydrophobic_moment([F.EISENBERG[a] for a in helix]) == pytest.approx(0.815, abs=0.03)
    assert F.hydrophobic_moment([F.EISENBERG["L"]] * 18) < 0.1


def test_signal_peptide_h_region():
    sp = "MKWVTFISLLFLFSSAYS" + FILLER  # albumin signal peptide
    assert feats(sp)["nterm_max_h_region"] > 2.0 > feats(FILLER)["nterm_max_h_region"]
    assert feats(sp)["nterm_hydropathy"] > feats(FILLER)["nterm_hydropathy"]


def test_global_and_regional_composition():
    seq = "K" * 50 + "G" * 100 + "E" * 50
    f = feats(seq)
    assert f["log10_length"] == pytest.approx(np.log10(200))
    assert f["nterm50_K"] == 1.0 and f["cterm50_E"] == 1.0 and f["aa_G"] == 0.5
    assert f["net_charge_per_res"] == 0.0 and f["frac_basic"] == f["frac_acidic"] == 0.25
    assert f["min_entropy12"] == pytest.approx(0.0) and f["frac_low_complexity"] == 1.0
    assert f["frac_disorder_promoting"] == 1.0 and f["frac_order_promoting"] == 0.0
    assert f["mean_hydropathy"] == pytest.approx((50 * -3.9 + 100 * -0.4 + 50 * -3.5) / 200)
    # every one of the 20 amino acids in a window of 20: high entropy, no low complexity
    assert feats(F.STANDARD20 * 3)["frac_low_complexity"] == 0.0


def test_ambiguity_letters_count_fractionally():
    f = feats("B" * 30)
    assert f["aa_D"] == f["aa_N"] == 0.5
    assert f["mean_hydropathy"] == pytest.approx(-3.5)


def test_short_sequences_give_finite_features():
    for seq in ("M", "MK", "MKTAYIAKQR"):
        assert np.isfinite(F.signal_features(seq)).all()


def test_embedder_shape_determinism_and_cache_key():
    e = S.SignalEmbedder()
    records = [("a", "MKTAYIAKQRQISFVKSHFSRQ"), ("b", "mkwvtfisllflfssays" + FILLER), ("c", FILLER + "KDEL")]
    x1, x2 = e.embed(records, cache=False), e.embed(records, cache=False)
    assert x1.shape == (3, 88) and x1.dtype == np.float32
    assert np.array_equal(x1, x2)
    assert np.array_equal(x1[1], e.embed([("b", "MKWVTFISLLFLFSSAYS" + FILLER)], cache=False)[0])  # case
    assert e.key == "signals-v1" and e.spec()["kind"] == "signals"
    assert isinstance(S.embedder_from_spec(e.spec()), S.SignalEmbedder)
    with pytest.raises(DataError, match="signals-v0"):
        S.embedder_from_spec({**e.spec(), "key": "signals-v0"})


@pytest.mark.parametrize("seq, match", [("", "empty"), ("MKT1AY", "'1'"), ("MKJAY", "'J'"), ("MK*AY", r"'\*'")])
def test_embedder_bad_input_is_a_data_error(seq, match):
    with pytest.raises(DataError, match=match):
        S.SignalEmbedder().embed([("ok", "MKTAYIAK"), ("bad", seq)], cache=False)
