"""Sampling: deterministic, valid against the catalog, specific errors."""

from __future__ import annotations

from biocurate.catalog import load_catalog
from biocurate.config import SampleConfig
from biocurate.sampling import sample_calls
from biocurate.seeds import load_seeds, species_table
from tests.conftest import ROOT


def demo_sample(config: SampleConfig):
    seeds = load_seeds(ROOT / "data" / "seeds")
    return sample_calls(load_catalog(), seeds.entities, species_table(), config)


def test_same_seed_and_config_give_the_same_calls():
    a = demo_sample(SampleConfig(seed=5)).calls
    b = demo_sample(SampleConfig(seed=5)).calls
    assert a == b and len(a) > 0


def test_quota_changes_only_its_function():
    base = demo_sample(SampleConfig(seed=5, calls_per_function=2)).calls
    more = demo_sample(SampleConfig(seed=5, calls_per_function=2, quota={"function": {"lookup_by_symbol": 4}})).calls

    def others(calls):
        return [c for c in calls if c["function"] != "lookup_by_symbol"]

    assert others(base) == others(more)
    assert len([c for c in more if c["function"] == "lookup_by_symbol"]) == 4
    # the first two are the same calls as before: a larger quota extends, it does not reshuffle
    first = [c for c in base if c["function"] == "lookup_by_symbol"]
    assert [c for c in more if c["function"] == "lookup_by_symbol"][:2] == first


def test_every_function_with_a_template_is_sampled_and_valid():
    catalog = load_catalog()
    calls = demo_sample(SampleConfig()).calls
    sampled = {c["function"] for c in calls}
    templated = {t.name for t in catalog if t.function.sample is not None}
    assert templated == sampled
    invalid = [(c["function"], c["invalid_reason"]) for c in calls if not c["valid"]]
    assert invalid == []


def test_validation_error_names_the_parameter():
    tool = load_catalog()["lookup_by_symbol"]
    assert tool.validate({"species": "homo_sapiens", "symbol": "BRCA2"}) is None
    problem = tool.validate({"species": "homo_sapiens", "symbol": "BRCA2", "expand": "yes"})
    assert problem == "lookup_by_symbol: parameter expand: 'yes' is not a flag (true/false or 1/0)"
    problem = tool.validate({"species": "homo_sapiens", "symbol": "BRCA2", "colour": "red"})
    assert problem == "lookup_by_symbol: unknown parameter(s) colour: not in the catalog"
    problem = tool.validate({"species": None, "symbol": "BRCA2"})
    assert problem == "lookup_by_symbol: parameter species: None is not a string"


def test_biotool_value_forms_are_accepted():
    catalog = load_catalog()
    lookup = catalog["lookup_by_symbol"]
    for flag in (True, False, 1, 0, "1", "0"):
        assert lookup.validate({"species": "human", "symbol": "BRCA2", "expand": flag}) is None, flag
    assert lookup.validate({"species": "human", "symbol": "BRCA2", "expand": 2}) is not None
    assert lookup.validate({"species": "human", "symbol": "BRCA2", "format_": None}) is None  # null: absent
    entry = catalog["get_uniprotkb_entry"]
    for fields in ("accession,gene_names", ["accession", "gene_names"]):
        assert entry.validate({"accession": "P04637", "fields": fields}) is None
    assert entry.validate({"accession": "P04637", "fields": {"accession": True}}) is not None
    # transport-only arguments: accepted where BioTool's wrapper takes them, never sent
    assert catalog["esearch"].validate({"db": "gene", "term": "x", "api_key": "k", "timeout": 5}) is None
    assert catalog["get_uniprotkb_entry"].validate({"accession": "P04637", "timeout": 5}) is not None
    # what BioTool leaves optional is optional
    assert catalog["efetch"].validate({"db": "pubmed", "id": "1"}) is None
    assert catalog["elink"].validate({"dbfrom": "gene"}) is None
    assert catalog["esummary"].validate({"db": "gene"}) == "esummary: give id or query_key+WebEnv"


def test_sampled_calls_are_in_biotool_value_forms():
    catalog = load_catalog()
    calls = demo_sample(SampleConfig()).calls
    for call in calls:
        tool = catalog[call["function"]]
        for name, value in call["arguments"].items():
            param = tool.function.params[name]
            assert not isinstance(value, list), (call["function"], name, value)  # lists as comma-separated text
            if param.type == "boolean" and param.encode == "int":
                assert value in (0, 1) and not isinstance(value, bool), (call["function"], name, value)
            if param.type == "boolean" and param.encode == "bool":
                assert isinstance(value, bool), (call["function"], name, value)
    flags = [c for c in calls if c["function"] == "lookup_by_id" and "expand" in c["arguments"]]
    assert flags and all(c["arguments"]["expand"] == 1 for c in flags)
    fields = [
        c["arguments"]["fields"] for c in calls if c["function"] == "get_uniprotkb_entry" and "fields" in c["arguments"]
    ]
    assert fields and all(isinstance(f, str) and "," in f for f in fields)


def test_call_keys_are_canonical():
    """Two spellings of one call (BioTool's value forms) have one key; a different value another."""
    tool = load_catalog()["search_uniprotkb"]
    a = tool.canonical_arguments(
        {"query": "gene:TP53", "fields": "gene_names,accession", "includeIsoform": 1, "size": 25, "timeout": None}
    )
    b = tool.canonical_arguments({"query": "gene:TP53", "fields": ["accession", "gene_names"], "includeIsoform": True})
    assert a == b == {"query": "gene:TP53", "fields": ["accession", "gene_names"], "includeIsoform": True}
    five = tool.canonical_arguments({"query": "gene:TP53", "size": 5})
    assert five != tool.canonical_arguments({"query": "gene:TP53"})


def test_each_function_gets_its_quota_of_distinct_calls_where_the_seeds_allow():
    """calls_per_function distinct calls per function, or every distinct call the seeds and cases give."""
    every = demo_sample(SampleConfig(seed=13, calls_per_function=1000)).calls
    two = demo_sample(SampleConfig(seed=13, calls_per_function=2)).calls
    possible: dict[str, int] = {}
    for c in every:
        possible[c["function"]] = possible.get(c["function"], 0) + 1
    got: dict[str, int] = {}
    for c in two:
        got[c["function"]] = got.get(c["function"], 0) + 1
    assert len({c["call_id"] for c in two}) == len(two)
    assert got == {f: min(2, n) for f, n in possible.items()}
    assert any(n > 2 for n in possible.values())  # the quota binds somewhere


def test_a_where_list_keeps_the_entities_with_one_of_its_values():
    catalog = load_catalog()
    listed = catalog["postprocess_transcript_haplotypes"].function.sample.where["ensembl_transcript_id"]
    assert isinstance(listed, list) and len(listed) >= 2
    calls = demo_sample(SampleConfig(seed=13, calls_per_function=1000)).calls
    ids = {c["arguments"]["id"] for c in calls if c["function"] == "postprocess_transcript_haplotypes"}
    assert ids == set(listed)
    seeded = {
        e["fields"]["ensembl_transcript_id"]
        for e in load_seeds(ROOT / "data" / "seeds").entities
        if e["entity_type"] == "transcript"
    }
    assert seeded - set(listed)  # the list, not the seeds, decided
