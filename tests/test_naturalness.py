"""Natural phrasing (biocurate.naturalness, the `query_reads_naturally` expectation): good and bad
questions for each rule, the issue's examples, the vectorised search, GX and the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from biocurate.catalog import load_catalog
from biocurate.config import load_config
from biocurate.gx import catalog_value, load_suites, resolve_kwargs
from biocurate.mentions import MentionRules
from biocurate.naturalness import describe, prefilter, problems, unnatural
from biocurate.quality import run_quality
from biocurate.stages import catalog_for
from biocurate.store import Store

ROOT = Path(__file__).resolve().parent.parent
CONFIG = load_config(ROOT / "biocurate.toml")
SPEC = next(
    e for s in load_suites(ROOT / "expectations") for e in s["expectations"] if e["name"] == "query_reads_naturally"
)
KWARGS = resolve_kwargs(SPEC["kwargs"], CONFIG)
NAMES = KWARGS["code_names"]
WORDS = [*KWARGS["api_words"], *KWARGS["jargon"]]


def found(text: str) -> list[tuple[str, str]]:
    return problems(text, NAMES, WORDS)


# rule -> (questions that break it, with what is reported; questions that do not)
RULES = {
    "query syntax field:value": (
        [
            ("Which UniProt entries match gene:TP53?", "gene:TP53"),
            ("List the proteomes for organism_id:9606.", "organism_id:9606"),
        ],
        [
            "Is GO:0006915 linked to TP53?",
            "What does AGT:c.803T>C change?",
            "Note: I mean human TP53.",
            "What lies at 7:140753336 on GRCh38?",
            "Is the ratio 1:2 in chr7:140453136?",
        ],
    ),
    "boolean operator": (
        [
            ("Which entries are TP53 AND human?", "AND"),
            ("Find BRCA1 OR BRCA2 in mouse.", "OR"),
            ("Which human genes NOT on chromosome X?", "NOT"),
        ],
        ["What is the OR of rs699 for hypertension?", "Which genes and proteins are there?", "AND then?"],
    ),
    "Entrez tag": (
        [
            ("Search for INS[gene] in humans.", "INS[gene]"),
            ("Which genes match txid9606[Organism:exp]?", "txid9606[Organism:exp]"),
        ],
        ["Which genes [if any] lie near TP53?", "What is the value [in percent] for TP53?"],
    ),
    "pipe": (
        [("Which article is Biochem J|2002|368|377?", "|")],
        ["Which article did Griffin publish in Biochem J in 2002?"],
    ),
    "snake_case name": (
        [
            ("Which assembly does Ensembl use for homo_sapiens?", "homo_sapiens"),
            ("What does the protein_coding biotype mean?", "protein_coding"),
            ("Which LD data exist for 1000GENOMES:phase_3:CEU?", "phase_3"),
        ],
        [
            "Which assembly does GCA_000001405.29 belong to?",
            "What is NM_007294.4?",
            "What is UniRef100_P04637?",
            "Which EPO_EXTENDED alignments exist?",
            "What does NM_007294.4:c.68_69delAG do?",
        ],
    ),
    "catalog name": (
        [
            ("Call lookup_by_symbol for human BRCA2.", "lookup_by_symbol"),
            ("Set taxonId for human.", "taxonId"),
            ("Run an esearch for human INS.", "esearch"),
            ("Which format_ works for BRCA2?", "format_"),
        ],
        [
            "Run a BLAST search with this human sequence.",
            "Which species does Ensembl cover?",
            "What is the taxon ID of the zebrafish?",
        ],
    ),
    "API word": (
        [
            ("Give me the UIDs in NCBI Gene for human INS.", "UIDs"),
            ("Which endpoint lists human genes?", "endpoint"),
            ("Stream all human TP53 entries.", "Stream"),
            ("I want every record matching human TP53.", "record matching"),
            ("Which API gives me TP53?", "API"),
            ("Give me the JSON for TP53.", "JSON"),
        ],
        [
            "Which upstream and downstream genes flank TP53?",
            "Which records mention human TP53?",
            "Which rapid tests exist?",
        ],
    ),
    "URL": (
        [
            ("What does https://rest.ensembl.org say about TP53?", "https://rest.ensembl.org"),
            ("What does rest.ensembl.org say about TP53?", "rest.ensembl.org"),
        ],
        ["What does Ensembl say about TP53?"],
    ),
    'lower-case "i"': (
        [
            ("For my project, i want the human TP53 entry.", "i"),
            ("Which variants do i need to check?", "i"),
            ("What can i'd say about TP53?", "i"),
        ],
        [
            "Which one, i.e. the human TP53 entry, is reviewed?",
            "Which (i) human and (ii) mouse genes are there?",
            "Is vitamin B12 linked to TP53?",
        ],
    ),
    "sentence starts in lower case": (
        [("which human genes overlap 7:140753336?", "which"), ("Tell me about TP53. also list its isoforms.", "also")],
        [
            "rs699 is a variant; which gene is it in?",
            "mRNA levels of TP53: which tissues?",
            "What is it, e.g. in mice? Is it in H. sapiens?",
            "Which genes vs. the mouse ones differ?",
        ],
    ),
    "template residue": (
        [
            ("What is the {species_common} gene BRCA2?", "{species_common}"),
            ("What is the None gene?", "None"),
            ("Which gene is null in this record?", "null"),
            ("Which assembly does ${species} use?", "${species}"),
            ("What is <symbol> in human?", "<symbol>"),
            ("Where is the nan gene?", "nan"),
        ],
        ["What does the null allele of Trp53 do in mice?", "None of these human genes: which one is TP53?"],
    ),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_catches_its_bad_questions_and_spares_the_good(rule):
    bad, good = RULES[rule]
    for text, shown in bad:
        assert (rule, shown) in found(text), (text, found(text))
    for text in good:
        assert rule not in {r for r, _ in found(text)}, (text, found(text))


def test_the_issues_examples_fail_with_the_right_reasons():
    assert found(
        "I want every UniProt record matching gene:CFTR AND organism_id:9606 AND reviewed:true in one go."
    ) == [
        ("API word", "record matching"),
        ("query syntax field:value", "gene:CFTR"),
        ("boolean operator", "AND"),
        ("query syntax field:value", "organism_id:9606"),
        ("boolean operator", "AND"),
        ("query syntax field:value", "reviewed:true"),
    ]
    assert found("Give me the UIDs in gene for the query INS[gene] AND human[orgn].") == [
        ("API word", "UIDs"),
        ("Entrez tag", "INS[gene]"),
        ("boolean operator", "AND"),
        ("Entrez tag", "human[orgn]"),
    ]
    assert found("For my project, i want to know which reference databases I can map homo_sapiens genes to?") == [
        ('lower-case "i"', "i"),
        ("snake_case name", "homo_sapiens"),
    ]
    assert found("Can you find this paper in PubMed: Biochem J|2002|368|377|Griffin M|citation_1|?") == [
        ("pipe", "|"),
        ("pipe", "|"),
        ("pipe", "|"),
        ("pipe", "|"),
        ("pipe", "|"),
        ("snake_case name", "citation_1"),
        ("pipe", "|"),
    ]
    assert describe(found("Give me the UIDs in gene for the query INS[gene] AND human[orgn].")) == (
        "API word 'UIDs'; Entrez tag 'INS[gene]'; boolean operator 'AND'; Entrez tag 'human[orgn]'"
    )


def test_natural_questions_pass():
    for text in [
        "Which UniProt protein entries correspond to the TP53 gene?",  # BioTool's own example
        "Which reviewed human CFTR entries does UniProt hold?",
        "Which NCBI Gene records are there for human INS?",
        "Which PubMed article is Griffin M et al., Biochem J 2002, volume 368, page 377?",
        "Which variants are in strong LD with rs334 in the CEU population?",
        "What are the consequences of 17:g.7676154G>C in H. sapiens?",
        "How many 90% identity clusters contain A0A000?",
    ]:
        assert found(text) == [], (text, found(text))


def test_a_function_name_is_reported_once_not_also_as_snake_case():
    assert found("Call lookup_by_symbol.") == [("catalog name", "lookup_by_symbol")]


def test_catalog_names_come_from_the_catalog():
    names = catalog_value("code_names", CONFIG)
    catalog = load_catalog()
    assert names == MentionRules.code_names(catalog, CONFIG.quality.leak_allowed)
    assert "stream_uniprotkb" in names and "taxonId" in names and "format_" in names and "esearch" in names
    # Plain words are how people talk; "blast" is allowed by [quality] leak_allowed.
    assert "species" not in names and "query" not in names and "blast" not in names


def test_vectorised_search_agrees_with_the_rules_row_by_row():
    texts = [t for bad, good in RULES.values() for t in [b for b, _ in bad] + good]
    texts += ["Which UniProt protein entries correspond to the TP53 gene?"] * 3
    series = pd.Series(texts * 50, index=range(7, 7 + len(texts) * 50))
    flags = unnatural(series, NAMES, WORDS)
    assert flags.index.equals(series.index)
    assert flags.tolist() == [bool(found(t)) for t in series]
    assert 0 < flags.sum() < len(series)


def test_the_search_pattern_is_re2_and_a_superset():
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = [t for bad, good in RULES.values() for t in [b for b, _ in bad] + good]
    hits = pc.match_substring_regex(pa.array(texts), prefilter(tuple(NAMES), tuple(WORDS))).to_pylist()
    assert all(hit for text, hit in zip(texts, hits, strict=True) if found(text))


def test_naturalness_expectation_through_gx():
    from biocurate.expectations_gx import ExpectQueryToReadNaturally
    from tests.test_quality import gx_failures

    frame = pd.DataFrame(
        [
            ("good", "Which UniProt protein entries correspond to the TP53 gene?"),
            ("bad_syntax", "Which entries match gene:TP53 AND organism_id:9606?"),
            ("bad_name", "Run stream_uniprotkb for human TP53."),
            ("bad_word", "Give me the UIDs for human TP53."),
        ],
        columns=["id", "text"],
    )
    expectation = ExpectQueryToReadNaturally(
        column="text", code_names=NAMES, api_words=KWARGS["api_words"], jargon=KWARGS["jargon"]
    )
    assert gx_failures(frame, expectation) == ["bad_name", "bad_syntax", "bad_word"]


def test_naturalness_blocks_by_default_and_can_be_a_warning(tmp_path):
    from tests.test_quality import Items

    assert SPEC.get("severity", "blocking") == "blocking"
    results = {}
    for severity in ("blocking", "warning"):
        overrides = {
            "store.path": str(tmp_path / f"{severity}.duckdb"),
            "quality.data_docs_dir": str(tmp_path / f"docs-{severity}"),
        }
        if severity == "warning":
            overrides["quality.severity"] = {"query_reads_naturally": "warning"}
        config = load_config(ROOT / "biocurate.toml", overrides=overrides)
        with Store(config.store.path).open() as con:
            item = Items(con).add(
                "Which UniProt record matching gene:TP53 AND organism_id:9606 is reviewed?",
                function="stream_uniprotkb",
                arguments={"query": "gene:TP53 AND organism_id:9606 AND reviewed:true"},
                observation=json.dumps({"results": [{"primaryAccession": "P04637"}]}),
            )
            run_quality(config, con, catalog_for(config), run_id="r1")
            row = con.execute(
                "select severity, reason from qc_results where item_id = ? and expectation = 'query_reads_naturally'",
                [item],
            ).fetchall()
            others = con.execute(
                "select expectation from qc_results where item_id = ? and not passed and item_kind = 'query'", [item]
            ).fetchall()
            survives = con.execute("select count(*) from survivors where query_id = ?", [item]).fetchall()[0][0]
        results[severity] = (row, others, survives)
    for severity, (row, others, survives) in results.items():
        assert row[0][0] == severity
        assert row[0][1].endswith(
            "(API word 'record matching'; query syntax field:value 'gene:TP53'; "
            "boolean operator 'AND'; query syntax field:value 'organism_id:9606')"
        )
        assert others == [("query_reads_naturally",)]  # the mention rule passes: TP53, 9606, reviewed
        assert survives == (severity == "warning")
