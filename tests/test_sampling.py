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
    others = lambda calls: [c for c in calls if c["function"] != "lookup_by_symbol"]
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
    assert problem == "lookup_by_symbol: parameter expand: 'yes' is not of type 'boolean'"
    problem = tool.validate({"species": "homo_sapiens", "symbol": "BRCA2", "colour": "red"})
    assert "colour" in problem and "Additional properties" in problem
