"""Tidy catalogs of the real annotation tables (atlaskit.data.catalogs)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlaskit.data import catalogs as cat
from atlaskit.errors import DataError

# ---------------------------------------------------------------------------------------------
# small hand-written inputs (independent of the mirror)

FLAT_HEADER = "ensg_id,target_name,annotation_name,annotation_grade\n"
FLAT = FLAT_HEADER + (
    "E1,AAA,nucleoplasm,3\n"
    "E1,AAA,nucleolus_gc,3\n"
    "E1,AAA,cytoplasmic,1\n"
    "E2,BBB,cytoplasmic,3\n"
    "E2,BBB,vesicles,2\n"
    "E3,CCC,er,2\n"
    "E3,CCC,nucleoplasm,1\n"
    "E4,DDD,mitochondria,1\n"
)
TARGETS = '"cell_line_id","target_name","uniprot_id","ensg_id"\n1,"AAA","P1","E1"\n2,"BBB","WRONG","E2"\n'
METADATA = "gene_name,uniprot_id,ensg_id\nAaa,PX,E1\nBBB,P2,E2\nCCC,P3,E3\n"


@pytest.fixture()
def opencell_files(tmp_path):
    def make(flat: str = FLAT):
        (tmp_path / "flat.csv").write_text(flat)
        (tmp_path / "targets.csv").write_text(TARGETS)
        (tmp_path / "meta.csv").write_text(METADATA)
        return dict(
            path=tmp_path / "flat.csv", targets_path=tmp_path / "targets.csv", metadata_path=tmp_path / "meta.csv"
        )

    return make


def test_opencell_annotations_own_copy(opencell_files):
    df = cat.opencell_annotations(**opencell_files())
    assert list(df.columns) == ["gene", "ensg", "uniprot", "compartment", "grade"]
    assert df["grade"].dtype == np.int64
    # library metadata wins (matched case-insensitively), public targets fill in, else None
    assert df.groupby("gene")["uniprot"].first().to_dict() == {"AAA": "PX", "BBB": "P2", "CCC": "P3", "DDD": None}
    # sorted by gene, grade (high first), compartment priority
    assert df[df.gene == "AAA"][["compartment", "grade"]].values.tolist() == [
        ["nucleolus_gc", 3], ["nucleoplasm", 3], ["cytoplasmic", 1]
    ]


def test_opencell_proteins_rules(opencell_files):
    p = cat.opencell_proteins(**opencell_files()).set_index("gene")
    assert p.loc["AAA", "grade3"] == ("nucleolus_gc", "nucleoplasm")
    assert p.loc["AAA", "major_localizations"] == ("nucleolus_gc", "nucleoplasm")
    assert not p.loc["AAA", "single_localized"] and p.loc["AAA", "major"] is None
    assert p.loc["AAA", "family"] == "nucleolus"  # priority: nucleolus before nucleoplasm
    assert p.loc["BBB", "major"] == "cytoplasmic" and p.loc["BBB", "family"] == "cytoplasm"
    assert p.loc["CCC", "major"] == "er"  # no grade 3: falls back to grade 2
    # only grade-1 annotations: no major localization, but a family for colouring
    assert p.loc["DDD", "major_localizations"] == () and not p.loc["DDD", "single_localized"]
    assert p.loc["DDD", "family"] == "mitochondria"

    strict = cat.opencell_proteins(**opencell_files(), rule="grade3").set_index("gene")
    assert strict.loc["CCC", "major_localizations"] == () and strict.loc["BBB", "major"] == "cytoplasmic"
    with pytest.raises(ValueError):
        cat.opencell_proteins(**opencell_files(), rule="lowest")


@pytest.mark.parametrize(
    "flat, match",
    [
        ("ensg_id,target_name,annotation_name\nE1,AAA,er\n", r"flat\.csv: missing column\(s\) 'annotation_grade'"),
        (FLAT_HEADER + "E1,AAA,er,3\nE2,BBB,golgi,7\n", r"flat\.csv: line 3: annotation_grade '7' for BBB"),
        (FLAT_HEADER + "E1,AAA,er,high\n", r"flat\.csv: line 2: annotation_grade 'high'"),
        (FLAT_HEADER + "E1,AAA,er,2.5\n", r"line 2: annotation_grade '2.5'"),
        (FLAT_HEADER + "E1,AAA,er,3\nE1,AAA,lysosome,2\n", r"line 3: unknown compartment 'lysosome'"),
        (FLAT_HEADER + "E1,AAA,er,3\nE1,AAA,er,2\n", r"line 3: AAA is annotated 'er' more than once"),
        (FLAT_HEADER + "E1,AAA,er,3\n,BBB,golgi,2\n", r"line 3: empty value in column 'ensg_id'"),
        (FLAT_HEADER + "E1,AAA,er,3\nE9,AAA,golgi,2\n", r"gene AAA has more than one ensg_id"),
        ("", r"flat\.csv: empty file"),
    ],
)
def test_opencell_malformed(opencell_files, flat, match):
    with pytest.raises(DataError, match=match):
        cat.opencell_annotations(**opencell_files(flat))


def test_missing_file_is_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        cat.kaggle_hpa_labels(tmp_path / "absent.csv")


def test_family_mapping_invariants():
    assert len(cat.OPENCELL_COMPARTMENTS) == 17 == len(set(cat.OPENCELL_COMPARTMENTS))
    assert set(cat.OPENCELL_FAMILY) == set(cat.OPENCELL_COMPARTMENTS)
    assert set(cat.OPENCELL_FAMILY.values()) == set(cat.FAMILIES)


def test_results_are_copies(opencell_files):
    files = opencell_files()
    df = cat.opencell_annotations(**files)
    df.loc[0, "gene"] = "MUTATED"
    assert "MUTATED" not in set(cat.opencell_annotations(**files)["gene"])


# ---------------------------------------------------------------------------------------------
# real OpenCell files


def test_opencell_real(mirror):
    ann = cat.opencell_annotations()
    assert len(ann) == 2749 and ann["gene"].nunique() == 1310
    assert ann["uniprot"].notna().all() and set(ann["grade"]) == {1, 2, 3}
    assert set(ann["compartment"]) == set(cat.OPENCELL_COMPARTMENTS)
    assert set(ann.loc[ann.gene == "NAPG", "uniprot"]) == {"Q99747"}  # not RAB11FIP5's Q9BXF6

    p = cat.opencell_proteins()
    assert len(p) == 1310 and p["gene"].is_unique
    assert (p["major_localizations"].map(len) > 0).all()  # every protein has grade 3 or grade 2
    assert set(p.loc[p["grade3"].map(len) == 0, "gene"]) == {"CDK13", "CSE1L", "HSPB11", "IPO13"}
    assert p["single_localized"].sum() == 871
    assert (p["major"].notna() == p["single_localized"]).all()
    assert p["family"].notna().all() and set(p["family"]) == set(cat.FAMILIES)


def test_deepgps_label_counts(mirror):
    # The deepGPS paper reports 865 single-localized proteins: cytoplasm 222, nucleoplasm 132,
    # vesicles 140, ER 78. The paper's rule ("compartments at the highest available grade")
    # applied to the 1310-target public annotations gives 871: cytoplasmic 222, vesicles 140 and
    # er 78 match exactly, nucleoplasm has 3 more (135). deepGPS's code reads its labels from
    # "label_data_1301": 9 of the 1310 targets were not in their set, which is the likely source
    # of the 6 extra proteins. The alternative rule "grade 3 only" gives 868 with cytoplasmic 221,
    # nucleoplasm 133 - closer in total but it breaks the cytoplasm match.
    counts = cat.deepgps_label_counts().set_index("compartment")
    assert counts.attrs["n_single_localized"] == counts["n_proteins"].sum() == 871
    assert counts.attrs["paper_single_localized"] == 865 and counts.attrs["n_proteins"] == 1310
    assert counts["n_proteins"].to_dict() == {
        "cytoplasmic": 222, "vesicles": 140, "nucleoplasm": 135, "er": 78, "nucleolus_gc": 58,
        "chromatin": 47, "membrane": 41, "golgi": 27, "nuclear_punctae": 25, "centrosome": 19,
        "nucleolus_fc_dfc": 18, "nuclear_membrane": 18, "cytoskeleton": 13, "mitochondria": 11,
        "focal_adhesions": 7, "big_aggregates": 7, "cell_contact": 5,
    }
    assert counts["paper"].dropna().to_dict() == {"cytoplasmic": 222, "vesicles": 140, "nucleoplasm": 132, "er": 78}
    assert counts["difference"].dropna().to_dict() == {"cytoplasmic": 0, "vesicles": 0, "nucleoplasm": 3, "er": 0}

    alt = cat.deepgps_label_counts(rule="grade3").set_index("compartment")
    assert alt["n_proteins"].sum() == 868
    assert alt.loc[["cytoplasmic", "nucleoplasm", "vesicles", "er"], "n_proteins"].tolist() == [221, 133, 140, 78]

    two = cat.deepgps_labels("single-2")
    assert two["label"].value_counts().to_dict() == {"cytoplasmic": 222, "nucleoplasm": 135}
    four = cat.deepgps_labels("single-4")
    assert len(four) == 575 and set(four["label_idx"]) == {0, 1, 2, 3}
    assert (four["label"].map(cat.DEEPGPS_VARIANTS["single-4"].index) == four["label_idx"]).all()


def test_go_complexes(mirror):
    go = cat.go_complexes()
    assert go["gene"].is_unique
    assert go["complex"].value_counts().to_dict() == {
        "spliceosome": 37, "proteasome": 35, "nuclear pore": 18, "cytosolic ribosome": 15
    }
    members = go.groupby("complex")["gene"].apply(set)
    assert {"PSMA1", "PSMB5", "PSMD1"} <= members["proteasome"]
    assert {"NUP98", "NUP153", "TPR"} <= members["nuclear pore"]
    assert {"RPL4", "RPS18"} <= members["cytosolic ribosome"]
    assert {"SF3B1", "PRPF8", "SNRPB"} <= members["spliceosome"]
    # every default GO id is present in the file
    used = {t for terms in go["go_terms"] for t in terms}
    assert used == {t for ids in cat.GO_COMPLEXES.values() for t in ids}
    only = cat.go_complexes(complexes={"pore": ["GO:0005643"]})
    assert set(only["complex"]) == {"pore"} and len(only) == 18


# ---------------------------------------------------------------------------------------------
# Human Protein Atlas


def test_hpa_locations(mirror, tmp_path):
    h = cat.hpa_locations()
    assert len(h) == 12813 and h["ensg"].is_unique
    assert list(h.columns) == ["gene", "ensg", "reliability", "main_locations", "additional_locations", "all_locations"]
    row = h.set_index("ensg").loc["ENSG00000000003"]
    assert row.main_locations == ("Cell Junctions", "Cytosol")
    assert row.all_locations == ("Cell Junctions", "Cytosol", "Nucleoli fibrillar center")

    bad = tmp_path / "hpa.tsv"
    bad.write_text(
        "Gene\tGene name\tReliability\tMain location\tAdditional location\n"
        "E1\tA\tApproved\tCytosol\t\nE2\tB\tMaybe\tCytosol\t\n"
    )
    with pytest.raises(DataError, match=r"hpa\.tsv: line 3: unknown Reliability 'Maybe'"):
        cat.hpa_locations(bad)


def test_kaggle_classes():
    assert len(cat.KAGGLE_HPA_CLASSES) == 28 == len(set(cat.KAGGLE_HPA_CLASSES))
    assert cat.KAGGLE_HPA_CLASSES[0] == "Nucleoplasm" and cat.KAGGLE_HPA_CLASSES[27] == "Rods & rings"
    assert len(cat.CYTO2017_CLASSES) == 13 == len(set(cat.CYTO2017_CLASSES))


def test_kaggle_to_cyto2017_invariants():
    mapping = cat.kaggle_to_cyto2017()
    assert list(mapping) == list(cat.KAGGLE_HPA_CLASSES)
    for kaggle, cyto in mapping.items():
        assert cyto in cat.CYTO2017_CLASSES or (cyto is None and kaggle in cat.CYTO2017_DROPPED)
    assert set(cat.CYTO2017_DROPPED) == {"Cytokinetic bridge", "Mitotic spindle", "Rods & rings"}
    assert set(mapping.values()) - {None} == set(cat.CYTO2017_CLASSES)  # every target class is reached
    mapping["Nucleoplasm"] = "changed"
    assert cat.kaggle_to_cyto2017()["Nucleoplasm"] == "nucleus"


def test_kaggle_labels_real(mirror):
    k = cat.kaggle_hpa_labels()
    assert len(k) == 31072 and k["id"].is_unique
    assert set(i for t in k["labels"] for i in t) == set(range(28))
    assert k.loc[1, "labels"] == (0, 1, 2, 7)
    assert k.loc[1, "label_names"] == ("Nucleoplasm", "Nuclear membrane", "Nucleoli", "Golgi apparatus")

    c = cat.cyto2017_label_sets()
    assert c.attrs["dropped_images"] == 30 and len(c) == 31072 - 30
    assert (c["n_labels"] >= 1).all()
    assert set(i for t in c["label_idx"] for i in t) == set(range(13))
    assert c.loc[1, "labels"] == ("golgi apparatus", "nuclear membrane", "nucleoli", "nucleus")

    co = cat.label_cooccurrence(k, range(28))
    assert co.shape == (28, 28) and (co.values == co.values.T).all()
    assert co.loc[0, 0] == 12885 and co.loc[27, 27] == 11
    co13 = cat.label_cooccurrence(c, cat.CYTO2017_CLASSES)
    assert list(co13.index) == list(cat.CYTO2017_CLASSES)
    assert np.trace(co13.values) == c["n_labels"].sum()


def test_label_cooccurrence_small():
    df = pd.DataFrame({"labels": [("a", "b"), ("a",), ("b", "c"), ()]})
    co = cat.label_cooccurrence(df)
    assert co.values.tolist() == [[2, 1, 0], [1, 2, 1], [0, 1, 1]]
    assert list(co.index) == ["a", "b", "c"]
    with pytest.raises(DataError, match="'c' is not one of the given classes"):
        cat.label_cooccurrence(df, ["a", "b"])
    with pytest.raises(DataError, match="no column 'targets'"):
        cat.label_cooccurrence(df, column="targets")


@pytest.mark.parametrize(
    "text, match",
    [
        ("Id,Target\na,0 28\n", r"labels\.csv: line 2: image a: label '0 28' outside 0\.\.27"),
        ("Id,Target\na,0\nb,x\n", r"line 3: image b: Target 'x' is not a list of integers"),
        ("Id,Target\na,0\na,1\n", r"line 3: duplicate image id 'a'"),
        ("Id,Target\na,\n", r"line 2: empty value in column 'Target'"),
        ("Id,Labels\na,0\n", r"missing column\(s\) 'Target'"),
    ],
)
def test_kaggle_malformed(tmp_path, text, match):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        cat.kaggle_hpa_labels(path)


# ---------------------------------------------------------------------------------------------
# Yeast


def test_yeast_class_constants(mirror):
    folder = mirror / "yeast" / "deepyeast-splits"
    doc = [ln.split(";")[0] for ln in (folder / "HOwt_doc.txt").read_text().split("\n")[1:] if ln.strip()]
    tdoc = [ln.split(";")[0] for ln in (folder / "HOwt_transfer_doc.txt").read_text().split("\n")[1:] if ln.strip()]
    assert tuple(doc) == cat.DEEPYEAST_CLASSES and len(doc) == 12
    assert tuple(tdoc) == cat.TRANSFER_CLASSES == ("actin", "bud neck", "lipid particle", "microtubule")
    assert set(cat.YEASTGFP_TO_DEEPYEAST.values()) == set(cat.DEEPYEAST_CLASSES) | set(cat.TRANSFER_CLASSES)
    assert set(cat.YEASTGFP_TO_DEEPYEAST) | set(cat.YEASTGFP_UNMAPPED) == set(cat.YEASTGFP_LOCALIZATIONS)
    assert len(cat.YEASTGFP_LOCALIZATIONS) == 23


def test_yeastgfp_real(mirror):
    y = cat.yeastgfp()
    assert len(y) == 4155 and y["orf"].is_unique
    assert y["abundance"].notna().sum() == 3570
    assert y["abundance_note"].value_counts().to_dict() == {
        "not visualized": 266, "low signal": 188, "technical problem": 131
    }
    row = y.set_index("orf").loc["YAL001C"]
    assert (row.gene, row.abundance, row.localizations) == ("TFC3", 125.0, ("cytoplasm", "nucleus"))
    assert y["ambiguous"].sum() == 237


def test_yeast_classes_real(mirror):
    yc = cat.yeast_classes()
    assert yc["orf"].is_unique and len(yc) == 2670
    counts = yc.groupby("task")["klass"].value_counts()
    # every class of both tasks has proteins
    assert set(counts["main"].index) == set(cat.DEEPYEAST_CLASSES)
    assert set(counts["transfer"].index) == set(cat.TRANSFER_CLASSES)
    assert counts["transfer"].to_dict() == {"actin": 27, "lipid particle": 19, "bud neck": 15, "microtubule": 10}
    assert counts["main"]["cytoplasm"] == 821 and counts["main"]["peroxisome"] == 21
    main = yc[yc.task == "main"]
    assert (main["klass"].map(cat.DEEPYEAST_CLASSES.index) == main["label_idx"]).all()
    assert len(cat.yeast_classes(strict=False)) == 2734


def test_yeast_malformed(tmp_path):
    header = "yORF,gene name,abundance," + ",".join(f'"{c}"' for c in cat.YEASTGFP_LOCALIZATIONS) + "\n"
    flags = ["F"] * 23
    good = "YAL001C,TFC3,125," + ",".join(flags) + "\n"
    bad_flags = list(flags)
    bad_flags[cat.YEASTGFP_LOCALIZATIONS.index("nucleus")] = "yes"
    path = tmp_path / "gfp.csv"
    path.write_text(header + good + "YAL002W,VPS8,736," + ",".join(bad_flags) + "\n")
    with pytest.raises(DataError, match=r"gfp\.csv: line 3: ORF YAL002W: column 'nucleus' is 'yes'"):
        cat.yeastgfp(path)
    path.write_text(header.replace('"nucleus",', "") + good)
    with pytest.raises(DataError, match=r"missing column\(s\) 'nucleus'"):
        cat.yeastgfp(path)


def test_deepyeast_splits_real(mirror):
    s = cat.deepyeast_splits()
    assert len(s) == 100_000
    assert s["split"].value_counts(sort=False).to_dict() == cat.DEEPYEAST_SPLIT_SIZES
    assert s["split"].value_counts(sort=False).to_dict() == {
        "train": 65000, "val": 12500, "test": 12500, "transfer_train": 4000, "transfer_val": 2000, "transfer_test": 4000
    }
    main = s[s.task == "main"]
    assert set(main["label"]) == set(cat.DEEPYEAST_CLASSES)
    assert set(s.loc[s.task == "transfer", "label"]) == set(cat.TRANSFER_CLASSES)
    first = s.loc[0, ["path", "label_idx", "label"]].tolist()
    assert first == ["plate10/015005000-6-15188-94.png", 0, "cell periphery"]


MAIN_DOC = "label;label_idx\n" + "".join(f"{c};{i}\n" for i, c in enumerate(cat.DEEPYEAST_CLASSES))


def _write_splits(folder, sizes, *, doc=MAIN_DOC, bad_line=None):
    folder.mkdir(exist_ok=True)
    (folder / "HOwt_doc.txt").write_text(doc)
    (folder / "HOwt_transfer_doc.txt").write_text(
        "label;label_idx\n" + "".join(f"{c};{i}\n" for i, c in enumerate(cat.TRANSFER_CLASSES))
    )
    for split, name in cat._SPLIT_FILES.items():
        lines = [f"plate01/img{split}{i}.png {i % (4 if 'transfer' in split else 12)}" for i in range(sizes[split])]
        if bad_line and split == "train":
            lines.append(bad_line)
        (folder / name).write_text("\n".join(lines))  # no final newline, as in the real files
    return folder


def test_deepyeast_splits_own_folder(tmp_path):
    sizes = {k: 3 for k in cat.DEEPYEAST_SPLIT_SIZES}
    folder = _write_splits(tmp_path / "splits", sizes)
    with pytest.raises(DataError, match=r"HOwt_train\.txt: 3 images in split 'train', expected 65000"):
        cat.deepyeast_splits(folder)
    s = cat.deepyeast_splits(folder, check_sizes=False)
    assert len(s) == 18 and s.loc[2, "label"] == "endosome"


@pytest.mark.parametrize(
    "bad_line, match",
    [("plate01/x.png 12", r"HOwt_train\.txt: line 4: .*label_idx in 0\.\.11"), ("plate01/x.png", r"line 4: expected")],
)
def test_deepyeast_splits_malformed(tmp_path, bad_line, match):
    folder = _write_splits(tmp_path / "splits", {k: 3 for k in cat.DEEPYEAST_SPLIT_SIZES}, bad_line=bad_line)
    with pytest.raises(DataError, match=match):
        cat.deepyeast_splits(folder, check_sizes=False)


def test_deepyeast_doc_mismatch(tmp_path):
    sizes = {k: 1 for k in cat.DEEPYEAST_SPLIT_SIZES}
    folder = _write_splits(tmp_path / "splits", sizes, doc="label;label_idx\nnucleus;0\n")
    with pytest.raises(DataError, match=r"HOwt_doc\.txt: class list"):
        cat.deepyeast_splits(folder, check_sizes=False)


def test_deepyeast_split_files_name_the_registered_lists(tmp_path):
    from atlaskit.data import registry

    files = cat.deepyeast_split_files()
    prefix = "yeast/deepyeast-splits/"
    assert files == [
        prefix + name
        for name in (
            "HOwt_doc.txt", "HOwt_transfer_doc.txt", "HOwt_train.txt", "HOwt_val.txt", "HOwt_test.txt",
            "HOwt_transfer_train.txt", "HOwt_transfer_val.txt", "HOwt_transfer_test.txt",
        )
    ]
    assert all(name in registry.entries() for name in files)
    # exactly the files deepyeast_splits reads from a folder of one's own
    folder = _write_splits(tmp_path / "splits", {k: 1 for k in cat.DEEPYEAST_SPLIT_SIZES})
    assert sorted(p.name for p in folder.iterdir()) == sorted(name[len(prefix):] for name in files)
    assert len(cat.deepyeast_splits(folder, check_sizes=False)) == 6
    files.append("changed by the caller")  # a fresh list each call
    assert len(cat.deepyeast_split_files()) == 8
