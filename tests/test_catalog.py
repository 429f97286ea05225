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
    wrong_group = {
        n: (f"{catalog[n].source}/{catalog[n].group}", g)
        for n, g in published.items()
        if f"{catalog[n].source}/{catalog[n].group}" != g
    }
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


# ---------------------------------------------------------------- requests in BioTool's forms
def _load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wire_forms_defaults_nulls_and_transport_arguments():
    catalog = load_catalog()
    entry = build_request(catalog["get_uniprotkb_entry"], {"accession": "P04637", "fields": "accession,gene_names"})
    assert entry.params == [("fields", "accession"), ("fields", "gene_names")]  # one per item
    efetch = catalog["efetch"]
    assert ("retmode", "xml") in build_request(efetch, {"db": "pubmed", "id": "1"}).params  # BioTool's default
    assert "retmode" not in dict(build_request(efetch, {"db": "pubmed", "id": "1", "retmode": None}).params)
    esearch = build_request(catalog["esearch"], {"db": "gene", "term": "x", "api_key": "secret", "timeout": 3})
    assert "api_key" not in dict(esearch.params) and "timeout" not in dict(esearch.params)
    lookup = catalog["lookup_by_id"]
    for flag, wire in ((True, "1"), (1, "1"), ("1", "1"), (False, "0"), (0, "0")):
        assert dict(build_request(lookup, {"id": "ENSG00000141510", "expand": flag}).params)["expand"] == wire
    uniparc = catalog["get_uniparc_by_upi"]
    assert dict(build_request(uniparc, {"upi": "UPI0000000001", "active": 0}).params)["active"] == "false"
    blast = build_request(catalog["blast"], {"query": "MKV", "database": "nr"})
    assert blast.params == [] and blast.form == {"CMD": "Put", "QUERY": "MKV", "DATABASE": "nr", "PROGRAM": "blastn"}
    groups = catalog["get_info_biotypes_groups"]
    assert build_request(groups, {}).url.endswith("/info/biotypes/groups/")
    assert build_request(groups, {"group": "coding", "object_type": "gene"}).url.endswith("/groups/coding/gene")
    ecit = build_request(catalog["ecitmatch"], {"bdata": "a|1|%0Db|2|"})
    assert dict(ecit.params)["bdata"] == "a|1|\rb|2|"


def test_parameter_sets_and_transport_arguments_resolve(tmp_path):
    import shutil

    import pytest

    from biocurate.catalog import TRANSPORT_ARGUMENTS
    from biocurate.errors import CatalogError

    catalog = load_catalog()
    vep = catalog["vep_by_id"]
    assert len([p for p in vep.function.params if p not in ("species", "id")]) == 63
    assert vep.transport == ("callback", "timeout") and catalog["lookup_by_id"].transport == ("callback",)
    assert catalog["esearch"].transport == ("timeout", "api_key") and catalog["search_uniprotkb"].transport == ()
    assert set(TRANSPORT_ARGUMENTS) == {"callback", "timeout", "api_key"}
    broken = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", broken)
    vep_yaml = broken / "ensembl" / "vep.yaml"
    vep_yaml.write_text(vep_yaml.read_text().replace("uses: [vep_options]", "uses: [no_such_set]", 1))
    with pytest.raises(CatalogError, match="no_such_set"):
        load_catalog(broken)


def test_every_sampled_request_round_trips_through_its_inverse():
    """arguments_from_request reads a request back into the call that builds the same request."""
    from biocurate.catalog import arguments_from_request

    catalog = load_catalog()
    seeds = load_seeds(ROOT / "data" / "seeds")
    calls = sample_calls(catalog, seeds.entities, species_table(), SampleConfig()).calls
    for call in calls:
        tool = catalog[call["function"]]
        request = build_request(tool, call["arguments"])
        args = arguments_from_request(tool, request.url, request.params, request.form or request.json_body)
        assert args is not None and tool.validate(args) is None, (call, args)
        assert build_request(tool, args).fingerprint() == request.fingerprint(), (call, args)


def test_snapshot_rekey_moves_only_requests_that_ask_the_same(tmp_path):
    from biocurate.snapshot import Snapshot

    snapshot_script = _load_script("snapshot")
    catalog = load_catalog()
    snap = Snapshot(tmp_path)
    # recorded as the catalog wrote them before: a comma-joined fields, no elink cmd (ELink's default), no einfo retmode
    old = [
        (
            "uniprot/get_uniprotkb_entry__old.json",
            "https://rest.uniprot.org/uniprotkb/P04637",
            [("fields", "accession,gene_names")],
        ),
        (
            "ncbi/elink__old.json",
            "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/elink.fcgi",
            [("db", "taxonomy"), ("dbfrom", "gene"), ("id", "7157"), ("retmode", "json")],
        ),
        ("ncbi/einfo__old.xml", "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/einfo.fcgi", []),
    ]
    for file, url, params in old:
        snap.add(
            method="GET",
            url=url,
            params=params,
            body=None,
            status=200,
            content_type="application/json",
            content=b"{}",
            file=file,
            origin="illustrative",
            provenance=f"test {file}",
        )
    snapshot_script.rekey(snap, catalog, dry_run=False)
    again = Snapshot(tmp_path)
    by_file = {e.file: e for e in again.entries.values()}
    entry = build_request(catalog["get_uniprotkb_entry"], {"accession": "P04637", "fields": "accession,gene_names"})
    elink = build_request(catalog["elink"], {"dbfrom": "gene", "db": "taxonomy", "id": "7157"})
    assert by_file["responses/uniprot/get_uniprotkb_entry__old.json"].key == entry.fingerprint()
    assert by_file["responses/ncbi/elink__old.json"].key == elink.fingerprint()  # cmd=neighbor now sent
    assert by_file["responses/ncbi/elink__old.json"].provenance == "test ncbi/elink__old.json"
    einfo = build_request(catalog["einfo"], {})  # now asks JSON: a different question, left where it was
    assert by_file["responses/ncbi/einfo__old.xml"].key != einfo.fingerprint()


def test_a_snapshot_index_holds_repeated_values_once_and_names_a_bad_line(tmp_path):
    import pytest

    from biocurate.errors import BiocurateError
    from biocurate.snapshot import INDEX_COLUMNS, Snapshot

    # written row by row, as a recording appends: each value its own string until read back
    rows = [
        [f"k{i}", "GET", f"https://example.org/{i}", "200", "application/json", "responses/a.json", "real", "recorded"]
        for i in range(3)
    ]
    (tmp_path / "index.tsv").write_text("\n".join("\t".join(r) for r in [INDEX_COLUMNS, *rows, []]) + "\n")
    entries = Snapshot(tmp_path).entries
    assert sorted(entries) == ["k0", "k1", "k2"]
    assert entries["k2"].status == 200 and entries["k2"].url == "https://example.org/2"
    assert entries["k0"].file is entries["k2"].file and entries["k0"].provenance is entries["k1"].provenance
    assert not hasattr(entries["k0"], "__dict__")  # slots: no dict per recorded request

    good = (tmp_path / "index.tsv").read_text()
    (tmp_path / "index.tsv").write_text(good + "k3\tGET\n")
    with pytest.raises(BiocurateError, match=r"index.tsv, line 6: 2 columns, the header names 8"):
        Snapshot(tmp_path)
    (tmp_path / "index.tsv").write_text(good + "\t".join(["k3", "GET", "u", "ok", "t", "f", "real", "p"]) + "\n")
    with pytest.raises(BiocurateError, match=r"index.tsv, line 6: the status is not a number"):
        Snapshot(tmp_path)
