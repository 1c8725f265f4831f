"""FASTA reading and validation (atlaskit.data.sequences)."""
from __future__ import annotations

import gzip

import pytest

from atlaskit.data import sequences as seqs
from atlaskit.data.sequences import (
    AMINO_ACIDS,
    FastaWarning,
    Problem,
    Record,
    read_fasta,
    read_fasta_report,
)
from atlaskit.errors import DataError


def write(tmp_path, text: str, name: str = "x.fasta"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = ">P1 first protein\nMKT\nAYIA\n>P2\nACDEFGHIKLMNPQRSTVWY\n"


# ---------------------------------------------------------------------------------------------
# parsing


def test_amino_acids():
    assert AMINO_ACIDS == "ACDEFGHIKLMNPQRSTVWY"
    assert len(set(AMINO_ACIDS)) == 20


def test_read_good_file(tmp_path):
    records = read_fasta(write(tmp_path, GOOD))
    assert records == [Record("P1", "first protein", "MKTAYIA"), Record("P2", "", AMINO_ACIDS)]
    assert [r.line for r in records] == [1, 4]
    assert len(records[0]) == 7


def test_lowercase_whitespace_crlf_stop_and_ambiguity_letters(tmp_path):
    path = tmp_path / "x.fasta"
    path.write_bytes(b">a desc\r\nmk t\r\nXBZUO*\r\n\r\n>b\r\nMA\tK\r\n")
    records = read_fasta(path)
    assert [(r.id, r.sequence) for r in records] == [("a", "MKTXBZUO"), ("b", "MAK")]
    assert not seqs.is_standard(records[0].sequence) and seqs.is_standard(records[1].sequence)


def test_gzip_fasta(tmp_path):
    path = tmp_path / "x.fa.gz"
    path.write_bytes(gzip.compress(GOOD.encode()))
    assert [r.id for r in read_fasta(path)] == ["P1", "P2"]
    # gzip is recognised by content, not by suffix
    other = tmp_path / "plain-name.fasta"
    other.write_bytes(gzip.compress(GOOD.encode()))
    assert len(read_fasta(other)) == 2


def test_gzip_with_bad_record_names_it(tmp_path):
    path = tmp_path / "bad.fasta.gz"
    path.write_bytes(gzip.compress(b">ok\nMKT\n>broken\nMK1T\n"))
    with pytest.raises(DataError, match=r"bad\.fasta\.gz.*broken"):
        read_fasta(path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "c.fasta.gz"
    path.write_bytes(gzip.compress(GOOD.encode())[:20])
    with pytest.raises(DataError, match="gzip"):
        read_fasta(path)


# ---------------------------------------------------------------------------------------------
# validation: each problem is named by file, record id and line


def test_bad_letters(tmp_path):
    path = write(tmp_path, ">ok\nMKT\n>bad1 x\nMK-T\nAJ\n>bad2\nM*KT\n")
    with pytest.raises(DataError) as err:
        read_fasta(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "'bad1'" in msg and "'bad2'" in msg and "'ok'" not in msg
    assert "line 3" in msg and "line 6" in msg
    assert "'-' (line 4)" in msg and "'J' (line 5)" in msg and "'*' (line 7)" in msg


def test_empty_record(tmp_path):
    path = write(tmp_path, ">empty\n>full\nMKT\n>empty_at_end\n")
    records, problems = read_fasta_report(path)
    assert [r.id for r in records] == ["full"]
    assert [(p.id, p.line) for p in problems] == [("empty", 1), ("empty_at_end", 4)]
    assert all("empty sequence" in p.message for p in problems)
    with pytest.raises(DataError, match=r"'empty'.*empty sequence"):
        read_fasta(path)


def test_stop_only_is_empty(tmp_path):
    _, problems = read_fasta_report(write(tmp_path, ">s\n*\n"))
    assert [p.message for p in problems] == ["empty sequence"]


def test_duplicate_id(tmp_path):
    path = write(tmp_path, ">A\nMKT\n>B\nMK\n>A\nMKT\n")
    records, problems = read_fasta_report(path)
    assert [r.id for r in records] == ["A", "B"]  # the first occurrence is kept
    assert problems == [Problem("A", 5, "duplicate id (first seen at line 1)")]
    with pytest.raises(DataError, match=r"duplicate id"):
        read_fasta(path)


def test_text_before_first_header(tmp_path):
    path = write(tmp_path, "some notes\nMKT\n>A\nMKT\n")
    records, problems = read_fasta_report(path)
    assert [r.id for r in records] == ["A"]
    assert problems == [Problem(None, 1, "text before the first '>' header")]
    with pytest.raises(DataError, match="before the first"):
        read_fasta(path)


def test_header_without_id_and_no_records(tmp_path):
    _, problems = read_fasta_report(write(tmp_path, ">\nMKT\n>  \nMK\n"))
    assert [(p.id, p.line) for p in problems] == [(None, 1), (None, 3)]
    _, problems = read_fasta_report(write(tmp_path, "", name="empty.fasta"))
    assert [p.message for p in problems] == ["no FASTA record (no line starting with '>')"]


def test_binary_content_always_raises(tmp_path):
    path = tmp_path / "bin.fasta"
    path.write_bytes(b">A\nMKT\n\x00\x01\x02\xff")
    for call in (lambda: read_fasta(path), lambda: read_fasta(path, on_error="skip"), lambda: read_fasta_report(path)):
        with pytest.raises(DataError, match=r"bin\.fasta.*binary"):
            call()
    ctrl = tmp_path / "ctrl.fasta"
    ctrl.write_bytes(b">A\nMKT\n>B\nMK\x07T\n")
    with pytest.raises(DataError, match=r"control byte.*line 4"):
        read_fasta(ctrl)
    latin = tmp_path / "latin.fasta"
    latin.write_bytes(b">A caf\xe9\nMKT\n")
    with pytest.raises(DataError, match="UTF-8"):
        read_fasta(latin)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such"):
        read_fasta(tmp_path / "nope.fasta")


def test_skip_mode_warns_and_never_drops_silently(tmp_path):
    path = write(tmp_path, ">ok\nMKT\n>bad\nMK2\n>ok\nMKT\n>empty\n")
    with pytest.warns(FastaWarning, match=r"3 FASTA problem.*bad ids: bad, ok, empty"):
        records = read_fasta(path, on_error="skip")
    assert [r.id for r in records] == ["ok"]
    with pytest.raises(ValueError):
        read_fasta(path, on_error="ignore")


def test_long_problem_lists_are_truncated(tmp_path):
    text = "".join(f">r{i}\nMK1\n" for i in range(30))
    with pytest.raises(DataError, match=r"(?s)30 FASTA problem.*r0, r1, r2,.*and 10 more"):
        read_fasta(write(tmp_path, text))


# ---------------------------------------------------------------------------------------------
# the real files


def test_opencell_sequences(mirror):
    seq = seqs.opencell_sequences()
    assert len(seq) == 1310
    lengths = [len(s) for s in seq.values()]
    assert min(lengths) == 37 and max(lengths) == 4646
    assert seq["NAPG"].startswith("MAAQKINEGLEHLAKAEKYL")
    seq["NAPG"] = "changed"  # callers get a fresh dict
    assert seqs.opencell_sequences()["NAPG"] != "changed"


def test_opencell_sequences_own_copy(tmp_path):
    path = write(tmp_path, ">GENE1 uniprot=P1\nMKT\n>GENE2\nMA\n")
    assert seqs.opencell_sequences(path) == {"GENE1": "MKT", "GENE2": "MA"}


def test_yeast_proteome(mirror):
    df = seqs.yeast_proteome()
    assert len(df) == 6059
    assert list(df.columns) == ["accession", "entry_name", "protein_name", "gene", "orf", "sequence"]
    assert df["accession"].is_unique and df["gene"].notna().all()
    # the FASTA headers carry no OrderedLocusNames: only systematic GN= values give an ORF
    assert df["orf"].notna().sum() == 873
    assert df["orf"].dropna().str.match(seqs.YEAST_ORF.pattern).all()
    row = df.set_index("entry_name").loc["HXKA_YEAST"]
    assert (row.accession, row.gene, row.protein_name) == ("P04806", "HXK1", "Hexokinase-1")

    resolved = seqs.yeast_proteome(gene_to_orf={"hxk1": "YFR053C"})
    assert resolved.set_index("gene").loc["HXK1", "orf"] == "YFR053C"
    assert resolved["orf"].notna().sum() == 874


def test_yeast_proteome_headers(tmp_path):
    path = tmp_path / "y.fasta.gz"
    path.write_bytes(
        gzip.compress(
            b">sp|P1|A_YEAST Protein A OS=S. cerevisiae OX=559292 GN=ABC1 PE=1 SV=1\nMKT\n"
            b">tr|P2|B_YEAST Protein B OS=S. cerevisiae OX=559292 OrderedLocusNames=YBR001C PE=4\nMK\n"
            b">sp|P3|C_YEAST Protein C OS=S. cerevisiae GN=YAL064W-B PE=1\nMA\n"
        )
    )
    df = seqs.yeast_proteome(path)
    assert df["orf"].tolist() == [None, "YBR001C", "YAL064W-B"]
    assert df["protein_name"].tolist() == ["Protein A", "Protein B", "Protein C"]
    bad = write(tmp_path, ">P4 not uniprot\nMKT\n", name="bad.fasta")
    with pytest.raises(DataError, match=r"bad\.fasta.*'P4'.*UniProt"):
        seqs.yeast_proteome(bad)
