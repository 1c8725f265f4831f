"""Maintainer script: regenerate ``registry.json`` from a data mirror folder.

Usage::

    python -m atlaskit.data._make_registry ../shared/data            # writes atlaskit/data/registry.json
    python -m atlaskit.data._make_registry ../shared/data --check    # exit 1 if the manifest is stale

The mirror holds the files' bytes (sha256 and size are computed from it); this script holds what
bytes cannot tell: each file's public source, licence, description and transform. It is never
imported at run time: the package reads only the JSON it writes.

On-request entries (:data:`ON_REQUEST`: model weights, fetched only when named) need not be in the
mirror: their sha256 and size are written here, from the public source.

Sources are pinned to commits. Where only an abbreviated commit is known (the mirror's README
gives 8 hex digits and the full id could not be confirmed), the abbreviated id is used:
GitHub resolves it in raw URLs, and the sha256 check still protects users if it ever stops.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path, PurePosixPath

from atlaskit.data.registry import MANIFEST_PATH, Entry, sha256sum

RAW = "https://raw.githubusercontent.com"
# Full commit ids confirmed against stored copies of the repositories.
OPENCELL_FIGURES = f"{RAW}/czbiohub-sf/2021-opencell-figures/e0bedae07e6c1870f54c501bfa9a9120c8c38e09"
CHNOSZ = f"{RAW}/jedick/CHNOSZ/acf70af2a00965ce155e2e7265a40e04fa71c148"
DEEPYEAST = f"{RAW}/tanelp/deepyeast/6c403c1acab2a529f8d54754a256b01be13669b4"
# Abbreviated commit ids (full id not confirmed; see the module docstring).
OPENCELL_PPI = f"{RAW}/jmhb0/opencell_ppi/0eb3f35a"
HPA_KAGGLE = f"{RAW}/sanch7/Human-Protein-Atlas/ec49436d"
PROTICELLI = f"{RAW}/CellProfiling/ProtiCelli/7c7a935d"
BIO331 = f"{RAW}/vprobon/BIO331_2022/f9a6d184"
PAIRED_INPAINTING = f"{RAW}/alexxijielu/paired_cell_inpainting/f9d75831"
# Full commit ids confirmed against stored copies of the repositories (the mirror's README gives
# their first 8 hex digits).
CZB_OPENCELL = f"{RAW}/czbiohub/opencell/3ee98d23083c1f05ab20515fba3b958b88b33a0a"
MERIZO = f"{RAW}/psipred/Merizo/41d12fb84e6e8fdb586c2c859d12161dc7bb5bfd"
CHAINSAW = f"{RAW}/JudeWells/chainsaw/9ced6e6d04043b0f2c50afa4527013997e305d4d"
STRUCTUREMAP = f"{RAW}/MannLabs/structuremap/f14b4325e30f16394ea819af2e29f9c68f786ee4"
# The wheel pip picks on CPython 3.11 / Linux x86-64 (any stardist 0.9.2 wheel holds the same images).
STARDIST_WHEEL = (
    "https://files.pythonhosted.org/packages/4a/41/1552e918b9c79d46f878f65fb7fd1594ade491cfa7782c2732ccd4a70209/"
    "stardist-0.9.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
)

BSD3_OPENCELL = "BSD-3-Clause (czbiohub-sf/2021-opencell-figures)"
OPENCELL_PPI_LICENCE = "none stated (jmhb0/opencell_ppi; OpenCell data, opencell.czbiohub.org)"
HPA = "CC-BY-SA-3.0 (Human Protein Atlas)"
UNIPROT = "CC-BY-4.0 (UniProt)"
PAIRED_INPAINTING_LICENCE = "GPL-2.0 (alexxijielu/paired_cell_inpainting)"
CZB_LICENCE = ("Chan Zuckerberg Biohub Software License: BSD-2-Clause plus a clause forbidding commercial "
               "use without permission (czbiohub/opencell)")
ALPHAFOLD = "CC-BY-4.0 (AlphaFold DB)"

# name -> (url, licence, description, transform)
FILES: dict[str, tuple[str, str, str, str | None]] = {
    "opencell/annotations-flat.csv": (
        f"{OPENCELL_FIGURES}/data/2021-09-29-public-annotations-flat.csv", BSD3_OPENCELL,
        "OpenCell graded localization annotations (ensg_id, target_name, annotation_name, annotation_grade): "
        "1310 proteins, 17 compartments, grades 3/2/1", None),
    "opencell/annotations-wide.csv": (
        f"{OPENCELL_PPI}/data_preprocessed/opencell-localization-annotations.csv", OPENCELL_PPI_LICENCE,
        "OpenCell localization annotations, one row per protein (grade 3 / 2 / 1 columns)", None),
    "opencell/public-targets.csv": (
        f"{OPENCELL_FIGURES}/data/all-public-targets.csv", BSD3_OPENCELL,
        "OpenCell targets: cell line id, gene name, UniProt and Ensembl gene ids", None),
    "opencell/library-metadata.csv": (
        f"{OPENCELL_PPI}/data_preprocessed/opencell-library-metadata.csv", OPENCELL_PPI_LICENCE,
        "OpenCell library metadata: UniProt, ENSG, ENST, tagged terminus, guide and donor sequences", None),
    "opencell/protein-sequences.fasta": (
        f"{OPENCELL_PPI}/data_preprocessed/protein_sequences.pt", UNIPROT,
        "full amino-acid sequences of the 1310 OpenCell targets, FASTA '>GENE uniprot=ID', 60 residues a line",
        "torch-dict-to-fasta:opencell/library-metadata.csv"),
    "opencell/go-annotations.csv": (
        f"{OPENCELL_FIGURES}/data/external/go-annotations-for-opencell-baits.csv", BSD3_OPENCELL,
        "GO term ids per OpenCell target (uniprot, gene_name, go_annot)", None),
    "opencell/oc-hpa-discrepant-targets.csv": (
        f"{OPENCELL_FIGURES}/data/curated-OC-HPA-discrepant-targets.csv", BSD3_OPENCELL,
        "targets whose OpenCell and HPA localizations disagree (curated)", None),
    "opencell/LICENSE-opencell-figures.txt": (
        f"{OPENCELL_FIGURES}/LICENSE.txt", BSD3_OPENCELL,
        "licence of the czbiohub-sf/2021-opencell-figures files", None),
    "hpa/subcellular_location.tsv": (
        f"{OPENCELL_FIGURES}/data/external/hpa_subcellular_location.tsv", HPA,
        "Human Protein Atlas subcellular locations of 12,804 genes (main / additional locations, reliability)",
        None),
    "hpa/kaggle2018-train-labels.csv": (
        f"{HPA_KAGGLE}/data/train.csv", HPA,
        "Kaggle HPA 2018 training labels (Id, Target): 31,072 images, 28 classes, multi-label", None),
    "nuclei/dsb2018-nuclei.tif": (
        STARDIST_WHEEL, "BSD-3-Clause (stardist); image CC0 (2018 Data Science Bowl)",
        "512x512 uint16 fluorescence image of nuclei (2018 Data Science Bowl), as bundled with stardist",
        "zip-member:stardist/data/images/img2d.tif"),
    "nuclei/dsb2018-nuclei-mask.tif": (
        STARDIST_WHEEL, "BSD-3-Clause (stardist); mask CC0 (2018 Data Science Bowl)",
        "instance mask (125 nuclei) of nuclei/dsb2018-nuclei.tif, as bundled with stardist",
        "zip-member:stardist/data/images/mask2d.tif"),
    "yeast/yeastgfp-huh2003.csv": (
        f"{CHNOSZ}/inst/extdata/abundance/yeastgfp.csv.xz", "GPL-3.0 (CHNOSZ)",
        "YeastGFP (Huh et al. 2003): 4155 ORFs x 23 yes/no localizations and abundance", "xz"),
    "yeast/breker2013-localization.csv": (
        f"{OPENCELL_FIGURES}/data/external/yeast_localization_annotations.csv", BSD3_OPENCELL,
        "Breker et al. 2013 yeast localization annotations (5329 ORFs, control / DTT / H2O2 / starvation)",
        None),
    "yeast/uniprot-UP000002311-proteome.fasta.gz": (
        f"{BIO331}/UP000002311_559292.fasta.gz", UNIPROT,
        "UniProt S. cerevisiae S288c reference proteome UP000002311 (6059 sequences), gzipped FASTA", None),
    # Licence files of the image folders. The repositories' licence files could not be looked up
    # (no stored copy); `LICENSE` at the root is GitHub's convention, and the sha256 check would
    # catch another file there.
    "yeast/chong-wt2-toy/LICENSE-paired_cell_inpainting.txt": (
        f"{PAIRED_INPAINTING}/LICENSE", PAIRED_INPAINTING_LICENCE,
        "licence of the alexxijielu/paired_cell_inpainting files (GNU GPL version 2)", None),
    "hpa/inpainting-cells/LICENSE-paired_cell_inpainting.txt": (
        f"{PAIRED_INPAINTING}/LICENSE", PAIRED_INPAINTING_LICENCE,
        "licence of the alexxijielu/paired_cell_inpainting files (GNU GPL version 2)", None),
    "opencell/fov-hoechst/LICENSE-czbiohub-opencell.txt": (
        f"{CZB_OPENCELL}/LICENSE", CZB_LICENCE,
        "licence of the czbiohub/opencell files (Chan Zuckerberg Biohub Software License)", None),
}

# Files fetched only when named (Entry.on_request): large model weights no chapter or test downloads.
# They need not be in the mirror; sha256 and size come from the Hugging Face repositories' public
# Git-LFS pointers (the `oid sha256:` and `size` lines of model.safetensors).
# name -> (url, licence, description, sha256, size)
HF = "https://huggingface.co/facebook"
ESM_LICENCE = "MIT (facebookresearch/esm; Hugging Face facebook/esm2_* model cards)"
ESM2_SAFETENSORS = ("weights in the Hugging Face safetensors layout (transformers EsmForMaskedLM key names), "
                    "read by atlaskit.models.esm_weights; sha256 and size from the public Git-LFS pointer; "
                    "fetched only on request")
ON_REQUEST: dict[str, tuple[str, str, str, str, int]] = {
    "weights/esm2/esm2_t6_8M_UR50D.safetensors": (
        f"{HF}/esm2_t6_8M_UR50D/resolve/main/model.safetensors", ESM_LICENCE,
        f"ESM2 8M protein language model (6 layers, 320-d, 20 heads, 33 tokens): {ESM2_SAFETENSORS}",
        "c78322372c5f2a2db07ff6df20637701d82eb255aa32e2623c2db18553db28d9", 31_375_984),
    "weights/esm2/esm2_t12_35M_UR50D.safetensors": (
        f"{HF}/esm2_t12_35M_UR50D/resolve/main/model.safetensors", ESM_LICENCE,
        f"ESM2 35M protein language model (12 layers, 480-d, 20 heads, 33 tokens): {ESM2_SAFETENSORS}",
        "da93c01fb49062629d1e9040290fda26b7a69bb3daaccf8c2c16adf509f086d8", 136_000_488),
}

# Groups whose files lie in sub-folders: one group per data set, not one per sub-folder.
NESTED_GROUPS = ("hpa/inpainting-cells", "yeast/chong-wt2-toy")

KAGGLE_CHANNELS = {
    "blue": "nucleus",
    "green": "protein of interest",
    "red": "microtubules",
    "yellow": "endoplasmic reticulum",
}
DEEPYEAST_FILES = {
    "HOwt_doc.txt": "class list of the 12 main DeepYeast classes (label;label_idx)",
    "HOwt_train.txt": "DeepYeast main training split (image path, label index; 65,000 images)",
    "HOwt_val.txt": "DeepYeast main validation split (image path, label index; 12,500 images)",
    "HOwt_test.txt": "DeepYeast main test split (image path, label index; 12,500 images)",
    "HOwt_transfer_doc.txt": "class list of the 4 DeepYeast transfer classes (label;label_idx)",
    "HOwt_transfer_train.txt": "DeepYeast transfer training split (image path, label index; 4,000 images)",
    "HOwt_transfer_val.txt": "DeepYeast transfer validation split (image path, label index; 2,000 images)",
    "HOwt_transfer_test.txt": "DeepYeast transfer test split (image path, label index; 4,000 images)",
}
INPAINTING_CHANNELS = {"blue": "nucleus", "green": "protein of interest", "red": "microtubules"}
CHONG_CHANNELS = {"gfp": "GFP-tagged protein", "rfp": "cytosolic RFP marker"}
# filename -> (repository base URL, path in the repository, repository licence, protein)
ALPHAFOLD_FILES = {
    "AF-Q96HM7-F1-model_v4.pdb": (MERIZO, "examples", "GPL (psipred/Merizo)",
                                  "Q96HM7, PC-esterase domain-containing protein 1B, 432 aa"),
    "AF-Q96PD2-F1-model_v4.pdb": (MERIZO, "examples", "GPL (psipred/Merizo)",
                                  "Q96PD2, discoidin, CUB and LCCL domain-containing protein 2, 775 aa"),
    "AF-Q5T5X7-F1-model_v4.pdb": (CHAINSAW, "example_files", "MIT (JudeWells/chainsaw)",
                                  "Q5T5X7, BEN domain-containing protein 3, 828 aa"),
    "AF-A0A1W2PQ64-F1-model_v4.pdb": (CHAINSAW, "example_files", "MIT (JudeWells/chainsaw)",
                                      "A0A1W2PQ64, RNA polymerase II subunit A C-terminal domain "
                                      "phosphatase SSU72, 194 aa"),
    "O15552.cif": (STRUCTUREMAP, "data/test_files", "Apache-2.0 (MannLabs/structuremap)",
                   "O15552, free fatty acid receptor 2 (FFAR2), 330 aa"),
    "Q7Z6M3.cif": (STRUCTUREMAP, "data/test_files", "Apache-2.0 (MannLabs/structuremap)",
                   "Q7Z6M3, allergin-1 (MILR1), 343 aa"),
}


def group_of(name: str) -> str:
    """The group of the mirror file ``name``: its data set's folder, else the folder holding it."""
    for group in NESTED_GROUPS:
        if name.startswith(group + "/"):
            return group
    return PurePosixPath(name).parent.as_posix()


def describe_folder_file(group: str, filename: str) -> tuple[str, str, str, str | None]:
    """(url, licence, description, transform) of a file inside one of the registered folders.

    ``filename`` is the path relative to the group's folder (sub-folders included).
    """
    stem = PurePosixPath(filename).stem
    if group == "hpa/kaggle2018-sample":
        image_id, channel = stem.rsplit("_", 1)
        return (f"{HPA_KAGGLE}/data/train_sample/{filename}", HPA,
                f"Kaggle HPA 2018 training image {image_id}, {channel} channel "
                f"({KAGGLE_CHANNELS[channel]}); 512x512 uint8 PNG", None)
    if group == "hpa/proticelli-cells":
        return (f"{PROTICELLI}/example_cell_reference_input/{filename}",
                "MIT (ProtiCelli); image CC-BY-SA-3.0 (Human Protein Atlas)",
                f"HPA single-cell crop {stem} (A-431): float32 in [-1, 1], 512x512x3 "
                "(microtubules, nucleus, ER)", None)
    if group == "yeast/deepyeast-splits":
        return (f"{DEEPYEAST}/deepyeast/data/{filename}", "MIT (tanelp/deepyeast)",
                DEEPYEAST_FILES[filename], None)
    if group == "yeast/chong-wt2-toy":
        # images/<GENE>/<GENE>_<field>_rfp_<cell>_<gfp|rfp>.tif
        _, gene, _ = PurePosixPath(filename).parts
        cell, channel = stem.rsplit("_", 1)
        return (f"{PAIRED_INPAINTING}/yeast_model/toy_dataset/{filename}", PAIRED_INPAINTING_LICENCE,
                f"Chong et al. 2015 WT2 screen, yeast cell {cell} ({gene}-GFP strain), {channel} channel "
                f"({CHONG_CHANNELS[channel]}); 64x64 float32 TIFF in [0, 1]", None)
    if group == "hpa/inpainting-cells":
        # <GENE>_<plate>_<well>/<cell>_<blue|green|red>.tif
        image, _ = PurePosixPath(filename).parts
        cell, channel = stem.rsplit("_", 1)
        gene = image.split("_", 1)[0]
        return (f"{PAIRED_INPAINTING}/human_model/toy_dataset/{filename}",
                f"{PAIRED_INPAINTING_LICENCE}; image CC-BY-SA-3.0 (Human Protein Atlas)",
                f"HPA single-cell crop {cell} of {gene} (image {image}), {channel} channel "
                f"({INPAINTING_CHANNELS[channel]}); 128x128 float32 TIFF in [0, 1]", None)
    if group == "opencell/fov-hoechst":
        if not (stem.startswith("FOV_") and stem.endswith("_RAW")):
            raise KeyError(filename)
        return (f"{CZB_OPENCELL}/tests/data/projections/{filename}", CZB_LICENCE,
                f"OpenCell HEK293T field of view {stem.removesuffix('_RAW')}: z-projection of the Hoechst "
                "(nuclei) channel; 1024x1024 uint16 TIFF", None)
    if group == "structures/alphafold-human-samples":
        base, folder, repo_licence, protein = ALPHAFOLD_FILES[filename]
        fmt = "PDB" if filename.endswith(".pdb") else "mmCIF"
        return (f"{base}/{folder}/{filename}", f"{ALPHAFOLD}; {repo_licence}",
                f"AlphaFold DB predicted structure of human {protein}; {fmt}, pLDDT in the B-factor column",
                None)
    raise KeyError(f"{group}/{filename}")


def on_request_entries() -> list[Entry]:
    """The :data:`ON_REQUEST` entries (whether or not the mirror holds their files)."""
    return [Entry(name=name, url=url, sha256=sha256, size=size, licence=licence, description=description,
                  group=group_of(name), on_request=True)
            for name, (url, licence, description, sha256, size) in ON_REQUEST.items()]


def build_entries(mirror: Path) -> list[Entry]:
    """One entry per file of ``mirror`` (README.md excepted) plus the on-request ones, sorted by name."""
    entries = on_request_entries()
    for path in sorted(p for p in mirror.rglob("*") if p.is_file()):
        name = path.relative_to(mirror).as_posix()
        if name == "README.md":
            continue
        if name in ON_REQUEST:  # a mirror may hold them: it must hold the registered bytes
            if sha256sum(path) != ON_REQUEST[name][3]:
                raise SystemExit(f"mirror file {name} does not match its registered sha256")
            continue
        group = group_of(name)
        try:
            url, licence, description, transform = FILES.get(name) or describe_folder_file(
                group, name.removeprefix(group + "/"))
        except (KeyError, ValueError):  # unknown group or file, or a file name of another layout
            raise SystemExit(f"no source is known for mirror file {name}; add it to {__file__}") from None
        entries.append(Entry(name=name, url=url, sha256=sha256sum(path), size=path.stat().st_size,
                             licence=licence, description=description, group=group, transform=transform))
    missing = set(FILES) - {e.name for e in entries}
    if missing:
        raise SystemExit(f"files listed here but absent from the mirror: {sorted(missing)}")
    return sorted(entries, key=lambda e: PurePosixPath(e.name).parts)  # the order of the mirror walk


def render(entries: list[Entry]) -> str:
    """The manifest's text: one line per file (a null transform is left out), so that thousands of
    entries stay compact and a changed file is a one-line diff."""
    head = {
        "schema": 1,
        "comment": "Generated by atlaskit/data/_make_registry.py from a data mirror, one file a line; "
                   "sha256 and size are those of the final (transformed) file; no transform: identical "
                   "to the download.",
    }
    defaults = {"transform": None, "on_request": False}  # left out: most entries have them
    records = [json.dumps({k: v for k, v in e.to_dict().items() if not (k in defaults and v is defaults[k])},
                          ensure_ascii=False) for e in entries]
    lines = [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    return "{\n" + "\n".join(lines) + '\n "files": [\n  ' + ",\n  ".join(records) + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mirror", type=Path)
    parser.add_argument("--output", type=Path, default=MANIFEST_PATH)
    parser.add_argument("--check", action="store_true", help="only compare with the existing manifest")
    args = parser.parse_args(argv)
    entries = build_entries(args.mirror)
    text = render(entries)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: regenerate it with this script", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(entries)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
