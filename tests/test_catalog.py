"""The catalog covers every published function; every function can be sampled and asked about."""
from __future__ import annotations

from typer.testing import CliRunner

from biocurate.catalog import build_request, load_catalog, published_functions
from biocurate.cli import app
from biocurate.config import SampleConfig
from biocurate.sampling import sample_calls
from biocurate.seeds import load_seeds, species_table
from biocurate.store import Store
from tests.conftest import ROOT


def test_every_published_function_is_in_the_catalog_with_its_group():
    catalog = load_catalog()
    published = published_functions()
    assert len(published) == 137
    missing = sorted(set(published) - set(catalog.tools))
    assert missing == []
    wrong_group = {n: (f"{catalog[n].source}/{catalog[n].group}", g) for n, g in published.items()
                   if f"{catalog[n].source}/{catalog[n].group}" != g}
    assert wrong_group == {}
    assert len(catalog.groups()) == 36


def test_coverage_command_reports_137_of_137():
    out = CliRunner().invoke(app, ["tools", "--coverage"])
    assert out.exit_code == 0, out.output
    assert "137/137 published functions present" in out.output


def test_every_function_has_a_template_and_a_default_sample_draws_it():
    catalog = load_catalog()
    assert [t.name for t in catalog if t.function.sample is None or t.function.questions is None] == []
    seeds = load_seeds(ROOT / "data" / "seeds")
    calls = sample_calls(catalog, seeds.entities, species_table(), SampleConfig()).calls
    assert {c["function"] for c in calls} == set(catalog.tools)
    assert all(c["valid"] for c in calls)


def test_published_wrapper_defects_are_fixed():
    catalog = load_catalog()
    for tool in catalog:
        assert "%7B" not in tool.function.path, tool.name
        if tool.name.startswith("stream_") and tool.source == "uniprot":
            assert tool.function.path.endswith("/stream"), tool.name
    req = build_request(catalog["get_uniref_members"], {"id": "UniRef100_P04637"})
    assert req.url == "https://rest.uniprot.org/uniref/UniRef100_P04637/members"


def test_demo_sample_covers_all_categories_and_databases(demo_config):
    from biocurate.stages import run_stage

    run_stage("sample", demo_config, "r1")
    with Store(demo_config.store.path).open(read_only=True) as con:
        rows = con.execute("select database, category, calls, calls_with_optional_args from sample_coverage").fetchall()
    assert {r[0] for r in rows} == {"NCBI", "Ensembl", "UniProt"}
    assert {r[1] for r in rows} == {"variation", "genomics", "proteomics", "evolution", "general_biology"}
    assert sum(r[3] for r in rows) > 0  # optional arguments are taught too


def test_every_response_format_has_its_auto_builder():
    """``observation: auto`` picks the builder named after the response format."""
    from typing import get_args

    from biocurate.catalog import Function
    from biocurate.observations import BUILDERS

    formats = set(get_args(Function.model_fields["response"].annotation))
    assert formats and formats <= set(BUILDERS)
