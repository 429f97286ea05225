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
        + "BRCA2,homo_sapiens,ENSG0000013961,675,,,,curated\n"          # id too short
        + "KRAS,martian,,3845,,,,curated\n"                               # unknown species
        + ",homo_sapiens,,,,,,curated\n"                                  # symbol missing
        + "EGFR,homo_sapiens,,1956,,,,\n"                                 # no source
        + "INS,homo_sapiens,ENSG00000254647,3630,P01308,,,curated\n")
    result = load_seeds(tmp_path)
    assert [e["label"] for e in result.entities] == ["TP53", "INS"]
    problems = [str(p) for p in result.problems]
    assert problems[0].endswith("gene.csv:3: ensembl_gene_id 'ENSG0000013961' does not match the pattern ENS[A-Z]*G\\d{11}")
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
