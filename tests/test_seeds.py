"""Seed loading: bad rows reported with file:line and reason, good rows kept."""

from __future__ import annotations

import pytest

from biocurate.errors import SeedError
from biocurate.seeds import load_seeds

HEADER = "symbol,species,ensembl_gene_id,ncbi_gene_id,uniprot_accession,refseq_mrna,refseq_protein,source\n"


def test_bad_rows_are_reported_and_good_rows_kept(tmp_path):
    (tmp_path / "gene.csv").write_text(
        HEADER
        + "TP53,homo_sapiens,ENSG00000141510,7157,P04637,,,curated\n"
        + "BRCA2,homo_sapiens,ENSG0000013961,675,,,,curated\n"  # id too short
        + "KRAS,martian,,3845,,,,curated\n"  # unknown species
        + ",homo_sapiens,,,,,,curated\n"  # symbol missing
        + "EGFR,homo_sapiens,,1956,,,,\n"  # no source
        + "INS,homo_sapiens,ENSG00000254647,3630,P01308,,,curated\n"
    )
    result = load_seeds(tmp_path)
    assert [e["label"] for e in result.entities] == ["TP53", "INS"]
    problems = [str(p) for p in result.problems]
    assert problems[0].endswith(
        "gene.csv:3: ensembl_gene_id 'ENSG0000013961' does not match the pattern ENS[A-Z]*G\\d{11}"
    )
    assert "gene.csv:4: species 'martian' is not a known species" in problems[1]
    assert problems[2].endswith("gene.csv:5: symbol is required")
    assert "gene.csv:6: source is required" in problems[3]


def test_unknown_seed_file_names_the_known_types(tmp_path):
    (tmp_path / "genes.csv").write_text(HEADER)
    with pytest.raises(SeedError, match="no entity type 'genes'.*gene"):
        load_seeds(tmp_path)


def test_shipped_seeds_are_all_valid():
    from tests.conftest import ROOT

    result = load_seeds(ROOT / "data" / "seeds")
    assert result.entities
    assert result.problems == []


def test_a_byte_that_is_not_utf8_costs_its_row_not_the_other_rows_and_files(tmp_path):
    good = "TP53,homo_sapiens,ENSG00000141510,7157,P04637,,,curated\n"
    (tmp_path / "gene.csv").write_bytes(
        HEADER.encode()
        + good.encode()
        + b"CAF\xe9,homo_sapiens,,3845,,,,curated\n"  # Latin-1 e-acute in the symbol
        + b"INS,homo_sapiens,ENSG00000254647,3630,P01308,,,from \xff\xfe\n"  # two bad bytes in the source
        + b"BRCA2,homo_sapiens,ENSG00000139618,675,,,,curated\n"
    )
    (tmp_path / "variant.csv").write_bytes(b"rsid,species,hgvs,source\nrs699,homo_sapiens,,curated\n")
    result = load_seeds(tmp_path)
    assert sorted(e["label"] for e in result.entities) == ["BRCA2", "TP53", "rs699"]
    problems = [str(p) for p in result.problems]
    assert problems == [
        f"{tmp_path / 'gene.csv'}:3: not UTF-8 (byte 0xe9 in symbol)",
        f"{tmp_path / 'gene.csv'}:4: not UTF-8 (bytes 0xfe, 0xff in source)",
    ]


def test_a_header_that_is_not_utf8_skips_only_its_file(tmp_path):
    (tmp_path / "gene.csv").write_bytes(b"symb\xf6l,species,source\nTP53,homo_sapiens,curated\n")
    (tmp_path / "variant.csv").write_bytes(b"rsid,species,hgvs,source\nrs699,homo_sapiens,,curated\n")
    result = load_seeds(tmp_path)
    assert [e["label"] for e in result.entities] == ["rs699"]
    assert [str(p) for p in result.problems] == [
        f"{tmp_path / 'gene.csv'}:1: not UTF-8 (byte 0xf6 in the header); the file is skipped"
    ]


def test_a_short_row_names_the_missing_columns(tmp_path):
    (tmp_path / "gene.csv").write_text(
        HEADER
        + "TP53,homo_sapiens,ENSG00000141510\n"
        + "INS,homo_sapiens,ENSG00000254647,3630,P01308,,,curated,extra\n"
        + "KRAS,homo_sapiens,,3845,,,,curated\n"
    )
    result = load_seeds(tmp_path)
    assert [e["label"] for e in result.entities] == ["KRAS"]
    problems = [str(p) for p in result.problems]
    assert problems[0].endswith(
        "gene.csv:2: 3 values for 8 columns: missing ncbi_gene_id, uniprot_accession, "
        "refseq_mrna, refseq_protein, source"
    )
    assert problems[1].endswith(
        "gene.csv:3: more values than columns (8 columns: symbol, species, "
        "ensembl_gene_id, ncbi_gene_id, uniprot_accession, refseq_mrna, refseq_protein, "
        "source)"
    )


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    (tmp_path / "gene.csv").write_bytes(
        "\ufeff".encode() + HEADER.encode() + b"TP53,homo_sapiens,ENSG00000141510,7157,P04637,,,curated\n"
    )
    result = load_seeds(tmp_path)
    assert [e["label"] for e in result.entities] == ["TP53"] and not result.problems


def test_a_missing_catalog_folder_is_an_error_naming_it(tmp_path):
    from biocurate.errors import CatalogError

    (tmp_path / "gene.csv").write_text(HEADER)
    with pytest.raises(CatalogError, match=r"nowhere/entities\.yaml: the catalog folder does not exist"):
        load_seeds(tmp_path, tmp_path / "nowhere")
