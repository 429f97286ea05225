"""The offline template generator: varied questions in a biologist's words that mention every argument."""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import replace

import pytest

from biocurate.catalog import Catalog, load_catalog
from biocurate.config import load_config
from biocurate.judge import rule_checks
from biocurate.mentions import MentionRules, mention_rules, missing_mentions
from biocurate.naturalness import problems
from biocurate.sampling import MissingField, fill, sample_calls
from biocurate.seeds import load_seeds, species_table
from biocurate.stages import run_stage
from biocurate.store import Store
from biocurate.synthesis import synthesize, template_questions
from biocurate.wording import wording
from tests.conftest import ROOT
from tests.store_rows import observed_lookup_calls
from tests.test_llm import CALLS


def natural_check():
    """The quality suite's naturalness rule (biocurate.naturalness) with the suite's word lists."""
    config = load_config(ROOT / "biocurate.toml")
    suite = json.loads((ROOT / "expectations" / "queries.json").read_text())
    kwargs = next(e["kwargs"] for e in suite["expectations"] if e["name"] == "query_reads_naturally")
    code_names = MentionRules.code_names(load_catalog(), config.quality.leak_allowed)
    api_words = [*kwargs["api_words"], *config.quality.leak_jargon]
    return lambda text: problems(text, code_names, api_words)


unnatural = natural_check()


def identifier_like(text: str) -> set[str]:
    return {w.rstrip(".,?") for w in re.findall(r"[A-Z0-9][A-Za-z0-9_.:-]*\d[A-Za-z0-9_.:-]*", text)}


def demo_calls():
    """Every call the demo seeds sample, with its entity's fields."""
    config = load_config(ROOT / "biocurate.toml")
    seeds = load_seeds(config.path(config.sample.seeds_dir))
    fields = {e["entity_id"]: e["fields"] for e in seeds.entities}
    result = sample_calls(load_catalog(), seeds.entities, species_table(), config.sample)
    return [(c["function"], c["arguments"], fields.get(c["entity_id"])) for c in result.calls]


def test_offline_generator_gives_varied_natural_questions_per_function(demo_config):
    for stage in ("sample", "execute", "synthesize"):
        run_stage(stage, demo_config, "r1")
    catalog, rules = load_catalog(), rules_of(demo_config)
    with Store(demo_config.store.path).open(read_only=True) as con:
        rows = con.execute(
            "select c.function, c.arguments, q.text, q.generator, q.prompt_version from queries q "
            "join candidate_calls c using (call_id)"
        ).fetchall()
        observed = {
            f
            for (f,) in con.execute(
                "select distinct function from candidate_calls join observations using (call_id)"
            ).fetchall()
        }
    texts: dict[str, set[str]] = {}
    wrong: list[tuple] = []
    for function, arguments, text, generator, version in rows:
        assert generator == "template" and version.startswith("template-")
        args = json.loads(arguments)
        wrong += [(function, text, p) for p in unnatural(text)]
        # every argument is mentioned as the mention rules require
        wrong += [(function, text, m) for m in missing_mentions(text, rules.mentions(catalog[function], args))]
        assert text.rstrip()[-1] in "?.", text
        texts.setdefault(function, set()).add(text)
    assert wrong == [], "\n".join(map(str, wrong))
    assert set(texts) == observed
    # four questions a call (the demo config), one or two calls a function
    few = {f: len(t) for f, t in texts.items() if len(t) < 4}
    assert few == {}


def rules_of(config):
    return mention_rules(config.path(config.sample.catalog_dir), config.path(config.sample.seeds_dir))


def meets_rules(tool, arguments):
    """The generator's test of a question: it mentions the call's arguments as the rules require."""
    mentions = rules_of(load_config(ROOT / "biocurate.toml")).mentions(tool, arguments)
    return lambda text: not missing_mentions(text, mentions)


def test_every_sampled_call_has_templates_in_both_styles():
    """No call of the demo seeds is left with fewer than two templates of a style whose question
    mentions all its arguments (as the mention rules require) and reads naturally."""
    catalog, words = load_catalog(), wording()
    rules = rules_of(load_config(ROOT / "biocurate.toml"))
    short = []
    for function, arguments, fields in demo_calls():
        tool = catalog[function]
        said, mentions = words.say(tool, arguments, fields), rules.mentions(tool, arguments)
        for style in ("broad", "specific"):
            usable = 0
            for template in getattr(tool.function.questions, style):
                try:
                    text = fill(template, said.fields)
                except MissingField:
                    continue
                usable += not missing_mentions(text, mentions) and not unnatural(text)
            if usable < 2:
                short.append((function, style, arguments, usable))
    assert short == []


def test_every_function_has_five_phrasings_of_each_style():
    catalog = load_catalog()
    assert len(catalog) == 137
    thin = {
        t.name: (len(t.function.questions.broad), len(t.function.questions.specific))
        for t in catalog
        if min(len(t.function.questions.broad), len(t.function.questions.specific)) < 5
    }
    assert thin == {}


@pytest.mark.parametrize(
    ("function", "arguments", "expected", "absent"),
    [
        # BioTool's own example: stream_uniprotkb(query="gene:TP53")
        ("stream_uniprotkb", {"query": "gene:TP53"}, ["TP53"], ["gene:"]),
        ("search_uniprotkb", {"query": "gene:BRCA1 AND organism_id:9606"}, ["BRCA1", "human"], ["organism_id", "AND"]),
        (
            "stream_uniprotkb",
            {"query": "gene:CFTR AND organism_id:9606 AND reviewed:true"},
            ["CFTR", "human", "reviewed"],
            ["reviewed:true"],
        ),
        ("esearch", {"db": "gene", "term": "INS[gene] AND human[orgn]"}, ["INS", "human", "NCBI Gene"], ["[gene]"]),
        (
            "ecitmatch",
            {"bdata": "Biochem J|2002|368|377|Griffin M|citation_1|"},
            ["Biochem J", "2002", "368", "377", "Griffin M"],
            ["|", "citation_1"],
        ),
        ("search_uniref", {"query": "uniprot_id:A0A000 AND identity:1.0"}, ["A0A000", "100%"], ["identity:"]),
        ("search_proteomes", {"query": "organism_id:7955"}, ["zebrafish"], ["7955", "organism_id"]),
        ("get_info_analysis", {"species": "danio_rerio"}, ["zebrafish"], ["danio_rerio"]),
        (
            "get_ld_region",
            {"species": "homo_sapiens", "region": "6:25837556-25843455", "population_name": "1000GENOMES:phase_3:CEU"},
            ["6:25837556-25843455", "CEU"],
            ["1000GENOMES", "phase_3", "homo_sapiens"],
        ),
    ],
)
def test_query_language_and_codes_are_said_in_words(function, arguments, expected, absent):
    """Every template of the function, filled for this call, names each entity and no syntax."""
    tool, words = load_catalog()[function], wording()
    said, accept = words.say(tool, arguments), meets_rules(tool, arguments)
    texts = [t for _, t in template_questions(tool, 0, said, 10, 7, accept)]
    assert len(texts) >= 4
    for text in texts:
        for value in expected:
            if value == "human" and "Homo sapiens" in text:
                continue
            if value == "zebrafish" and "Danio rerio" in text:
                continue
            if value == "CEU" and "Utah residents with Northern and Western European ancestry" in text:
                continue
            assert value in text, (value, text)
        for value in absent:
            assert value not in text, (value, text)
        assert unnatural(text) == []


def test_the_words_for_values():
    words = wording()
    assert words.uniprot_query("gene:TP53 AND organism_id:9606") == (
        "human TP53",
        {"gene": ["TP53"], "species": ["human"]},
    )
    assert words.uniprot_query("organism_id:7955")[0] == "zebrafish"
    assert words.uniprot_query("uniprot_id:A0A000 AND identity:0.9")[0] == "A0A000 at 90% identity"
    assert words.uniprot_query("(taxonomy_id:9606 OR taxonomy_id:10090)")[0] == "human or mouse"
    assert words.entrez_term("Trp53[gene] AND mouse[orgn]")[0] == "mouse Trp53"
    assert words.entrez_term("Hereford[Breed]")[0] == "the Hereford breed"
    assert words.population("1000GENOMES:phase_3:YRI") == ("YRI", "1000 Genomes YRI", "Yoruba in Ibadan, Nigeria")
    assert words.species_words("danio_rerio") == ("zebrafish", "Danio rerio")
    assert words.species_words("arabidopsis_thaliana") == ("Arabidopsis thaliana", "Arabidopsis thaliana")
    assert words.species_words("9606") == ("human", "Homo sapiens")
    catalog = load_catalog()
    said = words.say(catalog["get_info_genomes_division"], {"division": "EnsemblPlants"})
    assert said.fields["division"] == "Ensembl Plants" and said.fields["division_code"] == "EnsemblPlants"
    said = words.say(
        catalog["get_uniprotkb_entry"], {"accession": "P04637", "fields": ["accession", "gene_names", "cc_function"]}
    )
    assert said.fields["fields"] == "accession, gene names and function"
    said = words.say(
        catalog["get_homology_by_symbol"], {"species": "human", "symbol": "BRCA2", "target_species": "mus_musculus"}
    )
    assert said.fields["target_species"] == "mouse" and said.fields["target_species_plural"] == "mice"


def test_query_words_read_the_one_query_parser_and_the_one_taxon_table():
    """Wording reads queries through biocurate.query_language and names taxa through the mention
    rules' taxon table: a qualified Entrez tag, a grouped value, a range and a phrase of bare words
    are read as the parser reads them; a taxon of mentions.yaml has its name, not "taxon <id>"."""
    words = wording()
    assert words.entrez_term("txid9606[Organism:exp] AND BRCA1[gene name]") == (
        "human BRCA1",
        {"species": ["human"], "gene": ["BRCA1"]},
    )
    assert words.uniprot_query("organism_id:(9606 OR 10090) AND gene:BRCA1")[0] == "human or mouse and BRCA1"
    assert words.uniprot_query("length:[100 TO 200]")[0] == "length 100 to 200"
    assert words.uniprot_query("baker's yeast")[1] == {"text": ["baker's yeast"]}
    assert words.uniprot_query("GO:0006915")[1] == {"text": ["GO:0006915"]}
    assert words.taxon_words("9526") == "Catarrhini"
    # a name shared by a seed species (559292) and a taxon of mentions.yaml (4932) is the seed's
    assert words.species_words("Saccharomyces cerevisiae") == ("baker's yeast", "Saccharomyces cerevisiae")
    assert words.species("saccharomyces_cerevisiae").taxon_id == "559292"


def test_calls_of_a_function_without_templates_are_counted_under_one_reason(demo_config):
    """Every such call adds to the same failure count (it was written under one key, read under another)."""
    catalog = load_catalog()
    tool = catalog["lookup_by_symbol"]
    bare = Catalog([replace(tool, function=tool.function.model_copy(update={"questions": None}))])
    with Store(demo_config.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        summary = synthesize(demo_config, con, bare, "r1")
        n_queries = con.execute("select count(*) from queries").fetchall()[0][0]
    assert n_queries == 0 and summary.calls == 2
    assert summary.failures == {"lookup_by_symbol: no question templates": 2}


def test_demo_reviewer_rewords_naturally():
    """The simulated reviewer's edits keep the question's case and identifiers and add no filler."""
    spec = importlib.util.spec_from_file_location("demo_review", ROOT / "scripts" / "demo_review.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    catalog, words = load_catalog(), wording()
    edited = 0
    for function, arguments, fields in demo_calls():
        tool = catalog[function]
        said = words.say(tool, arguments, fields)
        for _, text in template_questions(tool, 0, said, 4, 7, meets_rules(tool, arguments)):
            edit = module.reworded(text)
            if edit is None:
                continue
            edited += 1
            assert edit != text and unnatural(edit) == [], (text, edit)
            assert edit[-1] == "?" and not edit.startswith("For my project")
            assert identifier_like(text) <= identifier_like(edit), (text, edit)
    assert edited > 100
    assert module.reworded("How many genes are there?") is None


@pytest.mark.parametrize(
    "observation, expected",
    [
        ('{"ping":1}', True),  # Ensembl's liveness answer: short, and complete
        ('{"releases":[115]}', True),
        ('{"Status":"WAITING"}', False),  # a job status is no answer
        ('{"results":[]}', False),
        ("{}", False),
        ('"ACGT"', True),
    ],
)
def test_the_offline_judge_finds_an_observation_informative_by_its_facts_not_its_size(observation, expected):
    tool = load_catalog()["get_info_ping"]
    checks = rule_checks("Is the Ensembl service up right now?", tool.name, (), observation, [])
    assert checks["observation informative"] is expected


def test_changed_judge_rules_judge_every_query_again(demo_config):
    """A store judged under older rules (rules-v2 rejected {"ping":1} for its size) is judged again
    under the current ones; the newest judgment is the current one."""
    from biocurate.judge import RULES_VERSION, judge

    catalog = load_catalog()
    with Store(demo_config.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        synthesize(demo_config, con, catalog, "r1")
        first = judge(demo_config, con, catalog, "r1")
        assert first.new > 0 and judge(demo_config, con, catalog, "r2").new == 0
        con.execute(
            "update judgments set prompt_version = 'rules-old', judgment_id = judgment_id || '-old', "
            "created_at = created_at - interval 1 day"
        )
        again = judge(demo_config, con, catalog, "r3")
        versions = con.execute("select distinct prompt_version from latest_judgments").fetchall()
    assert again.new == first.new
    assert versions == [(RULES_VERSION,)]
