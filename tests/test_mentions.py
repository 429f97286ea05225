"""Mention rules per kind of value (catalog/mentions.yaml): good and bad questions for each rule,
the one query-language parser, the rules' own checks, and the GX expectation over them."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from biocurate.catalog import CATALOG_DIR, MENTION_KINDS, load_catalog
from biocurate.errors import CatalogError
from biocurate.judge import rule_checks
from biocurate.mentions import MentionRules, mention_rules, mentioned, missing_mentions
from biocurate.query_language import Term, parse_query
from biocurate.vocabulary import identifiers

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()
RULES = mention_rules(CATALOG_DIR, ROOT / "data/seeds")


def missing(function: str, arguments: dict, text: str, rules: MentionRules = RULES) -> list[str]:
    return missing_mentions(text, rules.mentions(CATALOG[function], arguments))


# --- the query-language parser ----------------------------------------------------------------


def test_parse_uniprot_entrez_and_plain_queries():
    assert parse_query("gene:TP53 AND organism_id:9606 AND reviewed:true") == [
        Term("gene", "TP53", "field"),
        Term("organism_id", "9606", "field"),
        Term("reviewed", "true", "field"),
    ]
    assert parse_query("INS[gene] AND human[orgn]") == [Term("gene", "INS", "tag"), Term("orgn", "human", "tag")]
    assert parse_query('"breast cancer"[tiab] NOT txid10090[Organism:exp]') == [
        Term("tiab", "breast cancer", "tag"),
        Term("organism", "txid10090", "tag"),
    ]
    assert parse_query('category_exact:"Sequence databases" OR (insul* AND length:[100 TO 200])') == [
        Term("category_exact", "Sequence databases", "field"),
        Term(None, "insul", "word", prefix=True),
        Term("length", "100", "field"),
        Term("length", "200", "field"),
    ]
    assert parse_query("organism_id:(9606 OR 10090)") == [
        Term("organism_id", "9606", "field"),
        Term("organism_id", "10090", "field"),
    ]
    # An ontology id is one value, not a field query; plain words are words.
    assert parse_query("GO:0006915") == [Term(None, "GO:0006915", "word")]
    assert parse_query("insulin") == [Term(None, "insulin", "word")]
    assert parse_query("DI-01559") == [Term(None, "DI-01559", "word")]


# --- one rule per kind of value: good and bad questions -----------------------------------------

# (function, arguments, a good question, a bad question, what the bad one misses)
CASES = {
    "verbatim gene symbol": (
        "lookup_by_symbol",
        {"species": "homo_sapiens", "symbol": "TP53"},
        "Where is the human gene TP53 located?",
        "Where is the human gene tp53 located?",
        "symbol 'TP53' verbatim",
    ),
    "verbatim, not inside a longer symbol": (
        "lookup_by_symbol",
        {"species": "homo_sapiens", "symbol": "TP53"},
        "What does human TP53 do?",
        "What does human TP53BP1 do?",
        "symbol 'TP53' verbatim",
    ),
    "verbatim rsID": (
        "get_variation",
        {"id": "rs699", "species": "homo_sapiens"},
        "What is known about rs699?",
        "What is known about rs6990?",
        "id 'rs699' verbatim",
    ),
    "verbatim HGVS": (
        "vep_by_hgvs",
        {"hgvs_notation": "17:g.7676154G>C", "species": "homo_sapiens"},
        "What are the consequences of 17:g.7676154G>C?",
        "What are the consequences of 17:g.7676154G>A?",
        "hgvs_notation '17:g.7676154G>C' verbatim",
    ),
    "verbatim sequence (BLAST query)": (
        "blast",
        {"program": "blastp", "database": "swissprot", "query": "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQ"},
        "Which proteins resemble MQIFVKTLTGKTITLEVEPSDTIENVKAKIQ?",
        "Which proteins resemble ubiquitin?",
        "query 'MQIFVKTLTGKTITLEVEPSDTIENVKAKIQ' verbatim",
    ),
    "coordinates, strand and separator aside": (
        "map_assembly",
        {"asm_one": "GRCh37", "asm_two": "GRCh38", "region": "7:140453136..140453136:1", "species": "homo_sapiens"},
        "Where does human 7:140453136 on GRCh37 lie on GRCh38?",
        "Where does human 7:14045313 on GRCh37 lie on GRCh38?",
        "region '7:140453136..140453136:1' verbatim",
    ),
    "coordinates of a range": (
        "overlap_by_region",
        {"feature": "gene", "region": "9:22125500-22136000", "species": "homo_sapiens"},
        "Which human genes overlap 9:22125500..22136000?",
        "Which human genes overlap 9:22125500?",
        "region '9:22125500-22136000' verbatim",
    ),
    "chromosome": (
        "get_info_assembly_region",
        {"region_name": "X", "species": "homo_sapiens"},
        "How long is human chromosome X?",
        "How long is the human region X?",
        "region_name 'X' as chromosome X",
    ),
    "number": (
        "get_query_beacon",
        {"alternateBases": "C", "assemblyId": "GRCh38", "referenceBases": "G", "referenceName": "9", "start": 22125503},
        "Has anyone seen G to C on chromosome 9 at position 22,125,503 (GRCh38)?",
        "Has anyone seen G to C on chromosome 9 at position 2,212,550 (GRCh38)?",
        "start '22125503' as 22125503",
    ),
    "species by any of its names": (
        "get_info_assembly",
        {"species": "danio_rerio"},
        "Which assembly does Ensembl use for D. rerio?",
        "Which assembly does Ensembl use for fish?",
        "species 'danio_rerio' as Danio rerio, zebrafish, D. rerio or 7955",
    ),
    "species given as a common name": (
        "vep_by_region",
        {"allele": "T", "region": "7:140753336-140753336:1", "species": "human"},
        "What does a T at 7:140753336 do in Homo sapiens?",
        "What does a T at 7:140753336 do?",
        "species 'human'",
    ),
    "taxon id as a species": (
        "get_taxonomy_id",
        {"id": "10116"},
        "What is the lineage of the rat?",
        "What is the lineage of the mouse?",
        "id '10116' as Rattus norvegicus",
    ),
    "higher taxon": (
        "get_genetree_by_id",
        {"id": "ENSGT00390000003602", "prune_taxon": 9526},
        "Show gene tree ENSGT00390000003602 for Old World monkeys and apes only.",
        "Show gene tree ENSGT00390000003602 for primates only.",
        "prune_taxon '9526' as Catarrhini",
    ),
    "species left unsaid, never contradicted": (
        "vep_by_id",
        {"id": "rs7412", "species": "homo_sapiens"},
        "What are the consequences of rs7412?",
        "What are the consequences of rs7412 in mouse?",
        "species 'homo_sapiens': no other species (names 'mouse')",
    ),
    "name in natural form": (
        "get_info_genomes_division",
        {"division": "EnsemblPlants"},
        "Which genomes does Ensembl Plants hold?",
        "Which plant genomes does Ensembl hold?",
        "division 'EnsemblPlants' as Ensembl Plants",
    ),
    "name: snake_case said in words": (
        "get_info_biotypes_name",
        {"name": "protein_coding", "object_type": "gene"},
        "What does the protein-coding gene biotype mean?",
        "What does the coding gene biotype mean?",
        "name 'protein_coding' as protein coding",
    ),
    "name said with the words of its table": (
        "get_info_biotypes_groups",
        {"group": "lnoncoding", "object_type": "gene"},
        "Which gene biotypes count as long non-coding?",
        "Which gene biotypes count as non-coding?",
        "group 'lnoncoding' as lnoncoding or long non-coding",
    ),
    "population code or its population": (
        "get_ld_around_variant",
        {"id": "rs334", "population_name": "1000GENOMES:phase_3:CEU", "species": "homo_sapiens"},
        "Which variants are in LD with rs334 among Utah residents with Northern and Western European ancestry?",
        "Which variants are in LD with rs334 among Europeans?",
        "population_name '1000GENOMES:phase_3:CEU' as CEU",
    ),
    "Entrez database in words": (
        "esummary",
        {"db": "gene", "id": "6392"},
        "Summarise NCBI Gene record 6392.",
        "Summarise NCBI record 6392.",
        "db 'gene' as gene",
    ),
    "UniProt query: each entity in natural form": (
        "stream_uniprotkb",
        {"query": "gene:CFTR AND organism_id:9606 AND reviewed:true"},
        "Give me every reviewed human CFTR entry.",
        "Give me every CFTR entry.",
        "query organism_id:9606 '9606' as Homo sapiens",
    ),
    "UniProt query: identity as a percentage": (
        "search_uniref",
        {"query": "uniprot_id:A0A000 AND identity:0.9"},
        "Which 90% identity clusters hold A0A000?",
        "Which 0.9 identity clusters hold A0A000?",
        "query identity:0.9 '0.9' as 90%",
    ),
    "Entrez search term: each entity in natural form": (
        "esearch",
        {"db": "gene", "term": "Trp53[gene] AND mouse[orgn]"},
        "Which NCBI Gene records are there for mouse Trp53?",
        "Which NCBI Gene records are there for Trp53?",
        "term mouse[orgn] 'mouse' as Mus musculus",
    ),
    "citation: journal, year, volume, page and author": (
        "ecitmatch",
        {"bdata": "Biochem J|2002|368|377|Griffin M|citation_1|"},
        "Which PubMed article is Griffin et al., Biochem J 2002, volume 368, page 377?",
        "Which PubMed article is Griffin et al., Biochem J 2002, page 377?",
        "bdata volume '368' verbatim",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_mention_rule_passes_the_good_and_fails_the_bad_question(case):
    function, arguments, good, bad, reason = CASES[case]
    assert missing(function, arguments, good) == [], case
    found = missing(function, arguments, bad)
    assert found and any(m.startswith(reason) for m in found), (case, found)


def test_biotools_tp53_example_passes():
    # BioTool pairs stream_uniprotkb(query="gene:TP53") with this question; it failed "verbatim" before.
    tool = CATALOG["stream_uniprotkb"]
    text = "Which UniProt protein entries correspond to the TP53 gene?"
    assert missing("stream_uniprotkb", {"query": "gene:TP53"}, text) == []
    assert rule_checks(
        text,
        tool.name,
        RULES.mentions(tool, {"query": "gene:TP53"}),
        '{"results": [1, 2, 3]}' * 3,
        list(tool.function.params),
    )["arguments mentioned"]


def test_query_strings_are_never_required_verbatim():
    tool = CATALOG["search_uniprotkb"]
    args = {"query": "gene:BRCA1 AND organism_id:9606"}
    assert identifiers(tool, args) == ["BRCA1"]
    # Written verbatim it still names both entities: the mention rule passes, naturalness does not.
    assert missing("search_uniprotkb", args, "Which entries match gene:BRCA1 AND organism_id:9606?") == []
    assert missing("search_uniprotkb", args, "Which entries match gene:BRCA1?") == [
        "query organism_id:9606 '9606' as Homo sapiens, human, humans, H. sapiens or 9606"
    ]


def test_another_species_argument_is_not_a_contradiction():
    args = {"id": "ENSG00000001626", "species": "homo_sapiens", "target_species": "mus_musculus"}
    assert missing("get_homology_by_id", args, "Which mouse orthologues does ENSG00000001626 have?") == []
    assert missing("get_homology_by_id", args, "Which orthologues does ENSG00000001626 have in rat?") == [
        "species 'homo_sapiens': no other species (names 'rat')",
        "target_species 'mus_musculus' as Mus musculus, mouse, mice, murine or M. musculus",
    ]


def test_comma_joined_lists_are_mentioned_item_by_item():
    # BioTool sends lists as comma-joined strings; each item is one mention.
    args = {
        "species": "homo_sapiens",
        "region": "17:7676580-7676594:-1",
        "method": "LASTZ_NET",
        "species_set": "homo_sapiens,mus_musculus",
    }
    good = "Where does human 17:7676580-7676594 align in the mouse genome?"
    assert missing("get_alignment_region", args, good) == []
    assert missing("get_alignment_region", args, "How conserved is human 17:7676580-7676594 in other species?") == [
        "species_set 'mus_musculus' as Mus musculus, mouse, mice, murine or M. musculus"
    ]
    args = {"db": "pubmed", "id": "22351513,12366374"}
    assert missing("esummary", args, "Summarise PubMed articles 22351513 and 12366374.") == []
    assert missing("esummary", args, "Summarise PubMed article 22351513.") == ["id '12366374' verbatim"]


def test_species_names_come_from_the_taxon_seeds(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "taxon.csv").write_text(
        "scientific_name,taxon_id,common_name,ensembl_name,proteome_id,source\n"
        "Xenopus tropicalis,8364,western clawed frog,xenopus_tropicalis,,test\n"
    )
    rules = MentionRules.load(CATALOG_DIR, seeds)
    args = {"species": "xenopus_tropicalis"}
    tool = CATALOG["get_info_assembly"]
    assert missing_mentions("Which assembly does the western clawed frog have?", rules.mentions(tool, args)) == []
    assert missing_mentions("Which assembly does X. tropicalis have (8364)?", rules.mentions(tool, args)) == []
    # Without the seed the name is only known as written.
    assert missing_mentions("Which assembly does the western clawed frog have?", RULES.mentions(tool, args)) == [
        "species 'xenopus_tropicalis' as xenopus tropicalis"
    ]


def test_mentioned_matches_missing_mentions_row_by_row():
    rows = [(f, a, t) for f, a, good, bad, _ in CASES.values() for t in (good, bad)]
    shared = {}
    columns = [shared.setdefault((f, repr(a)), [m.row() for m in RULES.mentions(CATALOG[f], a)]) for f, a, _ in rows]
    fast = mentioned([t for _, _, t in rows], columns)
    assert fast == [not missing_mentions(t, c) for (_, _, t), c in zip(rows, columns, strict=True)]
    assert fast == [i % 2 == 0 for i in range(len(rows))]


def test_mention_expectation_through_gx():
    from biocurate.expectations_gx import ExpectQueryToMentionArguments
    from tests.test_quality import gx_failures

    def row(name, function, args, text):
        return name, text, [m.row() for m in RULES.mentions(CATALOG[function], args)]

    frame = pd.DataFrame(
        [
            row(
                "good_tp53",
                "stream_uniprotkb",
                {"query": "gene:TP53"},
                "Which UniProt protein entries correspond to the TP53 gene?",
            ),
            row("good_none", "get_info_ping", {}, "Is the Ensembl service up?"),
            row(
                "bad_species",
                "lookup_by_symbol",
                {"species": "mus_musculus", "symbol": "Brca2"},
                "Where is the human gene Brca2?",
            ),
            row(
                "bad_case",
                "lookup_by_symbol",
                {"species": "homo_sapiens", "symbol": "BRCA2"},
                "Where is the human gene brca2?",
            ),
        ],
        columns=["id", "text", "mentions"],
    )
    assert gx_failures(frame, ExpectQueryToMentionArguments(column_A="text", column_B="mentions")) == [
        "bad_case",
        "bad_species",
    ]


# --- the rules themselves -----------------------------------------------------------------------


def test_every_identifier_parameter_has_a_mention_rule():
    RULES.check(CATALOG)
    for tool in CATALOG:
        for name, param in tool.function.params.items():
            if param.identifier:
                assert RULES.kind_of(tool.name, name) is not None, (tool.name, name)


def test_mentions_yaml_has_no_duplicate_keys():
    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        keys = [loader.construct_object(k) for k, _ in node.value]
        twice = [k for k, n in collections.Counter(keys).items() if n > 1]
        assert not twice, f"catalog/mentions.yaml: {twice} given twice (the last would win silently)"
        return loader.construct_mapping(node, deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    spec = yaml.load((CATALOG_DIR / "mentions.yaml").read_text(), Loader=Strict)
    kinds = {v if isinstance(v, str) else v["kind"] for v in spec["params"].values()}
    assert kinds <= set(MENTION_KINDS)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.replace("  symbol: verbatim", "  symbol: verbose"), "params.symbol.kind"),
        (lambda s: s.replace("  blast: {query: verbatim}", "  blastx: {query: verbatim}"), "functions.blastx"),
        (lambda s: s.replace("  blast: {query: verbatim}", "  blast: {queryx: verbatim}"), "blast has no parameter"),
        (lambda s: s.replace("words: biotype_groups", "words: no_such_table"), "no_such_table"),
        (lambda s: s.replace("  symbol: verbatim", "  symbol: verbatim\n  no_such_param: verbatim"), "no_such_param"),
    ],
)
def test_a_bad_rule_is_an_error_naming_what_and_where(tmp_path, edit, message):
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, catalog_dir)
    path = catalog_dir / "mentions.yaml"
    path.write_text(edit(path.read_text()))
    with pytest.raises(CatalogError, match="mentions.yaml") as err:
        MentionRules.load(catalog_dir, ROOT / "data/seeds").check(load_catalog(catalog_dir))
    assert message in str(err.value)
