"""Observation builders keep the answer, stay valid JSON within the bound, and read every format.

Golden facts come from real response bodies: the demo snapshot's (``origin = real`` and the
illustrative ones in the real formats) and the reference bodies copied into
``tests/data/real_responses`` with their provenance. The GFF3, TSV and MEDLINE bodies below are
illustrative (no real one was available), written in the formats Ensembl, UniProt and PubMed use.
"""

from __future__ import annotations

import json
import random
import re
from functools import cache

import pytest
from pydantic import ValidationError

from biocurate.catalog import Function, build_request, load_catalog
from biocurate.config import load_config
from biocurate.execute import classify, execute_calls
from biocurate.hashing import content_hash
from biocurate.observations import BUILDER_FORMAT, BUILDERS, NotAnAnswer, UnexpectedShape, build_observation, observe
from biocurate.observations.corpus import RecordedCall, reference_calls, snapshot_calls
from biocurate.observations.fit import fit_json
from biocurate.observations.formats import resolve_format
from biocurate.snapshot import Snapshot
from biocurate.store import Store, insert_new
from tests.conftest import ROOT
from tests.standins.api import ApiStandIn

REAL = ROOT / "tests/data/real_responses"
DEMO = ROOT / "data/demo_snapshot"
PLACEHOLDER = re.compile(r"\{\d+ (keys|elements)\}")

GFF3 = (
    b"##gff-version 3\n#!genome-build GRCh38.p14\n##sequence-region   7 140719327 140924929\n"
    b"7\tensembl_havana\tgene\t140719327\t140924929\t.\t-\t.\tID=gene:ENSG00000157764;Name=BRAF;"
    b"biotype=protein_coding;description=B-Raf proto-oncogene%2C serine/threonine kinase;"
    b"gene_id=ENSG00000157764;logic_name=ensembl_havana_gene_homo_sapiens;version=14\n"
    b"7\thavana\tgene\t140807936\t140809398\t.\t+\t.\tID=gene:ENSG00000230979;Name=BRAF-AS1;"
    b"biotype=lncRNA;gene_id=ENSG00000230979;version=1\n"
)
UNIPROT_TSV = (
    b"Entry\tEntry Name\tProtein names\tGene Names\tOrganism\tLength\n"
    b"P04637\tP53_HUMAN\tCellular tumor antigen p53\tTP53 P53\tHomo sapiens (Human)\t393\n"
)
UNIPROT_FASTA = (
    b">sp|P04637|P53_HUMAN Cellular tumor antigen p53 OS=Homo sapiens OX=9606 GN=TP53 PE=1 SV=4\n"
    b"MEEPQSDPSVEPPLSQETFSDLWKLLPENNVLSPLPSQAMDDLMLSPDDIEQWFTEDPGP\nDEAPRMPEAAPPVAPAPAAPTPAAPAPAPSWPL\n"
)
MEDLINE = b"""
PMID- 22351513
TI  - Variation in oil content and fatty acid composition of the seed oil of Acacia
      species collected from the northwest zone of India.
AB  - BACKGROUND: The oil content and fatty acid composition of the mature seeds of
      Acacia species were analyzed.
AU  - Khan R
AU  - Srivastava R
TA  - J Sci Food Agric
JT  - Journal of the science of food and agriculture
DP  - 2012 Aug 30
MH  - Acacia/*chemistry
MH  - Fatty Acids/*analysis
"""


@cache
def recorded() -> dict[str, RecordedCall]:
    catalog = load_catalog()
    calls = {f"demo:{c.file}": c for c in snapshot_calls(DEMO, catalog)}
    calls.update({f"real:{c.file}": c for c in reference_calls(REAL, catalog)})
    return calls


def summary_of(key: str, max_chars: int = 2000) -> dict:
    call = recorded()[key]
    _, text = observe(call.tool, call.arguments, call.body, max_chars, call.content_type)
    return json.loads(text)


def real(name: str) -> bytes:
    return (REAL / name).read_bytes()


# --- golden facts, by name, per builder ----------------------------------------------------


def test_pubmed_xml_keeps_title_abstract_authors_journal_year_and_mesh():
    for key in ("real:ncbi/efetch-xml__pubmed_22351513.xml", "demo:responses/ncbi/efetch__308a31bdbc.xml"):
        obs = summary_of(key)
        assert obs["pmid"] == "22351513"
        assert obs["title"].startswith("Variation in oil content and fatty acid composition of the seed oil of Acacia")
        assert obs["year"] == "2012"
        assert obs["journal"] == "Journal of the science of food and agriculture"
        assert obs["authors"][:2] == ["Khan R", "Srivastava R"]
        assert "Acacia bivenosa" in obs["abstract"]
        assert {"Acacia", "Fatty Acids"} <= set(obs["mesh_terms"])
        assert obs["doi"] == "10.1002/jsfa.5627"


def test_genbank_flat_file_keeps_definition_organism_length():
    obs = summary_of("real:ncbi/efetch-genbank__nucleotide_EU490707.txt")
    assert obs["accession"] == "EU490707" and obs["length"] == 1302 and obs["unit"] == "bp"
    assert obs["definition"].startswith("Selenipedium aequinoctiale maturase K (matK) gene")
    assert obs["organism"] == "Selenipedium aequinoctiale"
    assert "Orchidaceae" in obs["lineage"] and obs["products"] == ["maturase K"]
    assert obs["references"][0]["title"].startswith("Phylogenetic utility of ycf1 in orchids")


def test_fasta_keeps_id_description_organism_length_and_sequence_start():
    obs = summary_of("real:ncbi/efetch-fasta__protein_NP_056374.2.fasta")
    assert obs["id"] == "NP_056374.2" and obs["organism"] == "Homo sapiens" and obs["length"] == 1596
    assert obs["description"].startswith("SET-binding protein isoform a")
    assert obs["sequence"].startswith("MESRETLSSSRQRGGESDFLPVSS") and len(obs["sequence"]) == 1596
    small = summary_of("real:ncbi/efetch-fasta__protein_NP_056374.2.fasta", max_chars=400)
    assert small["id"] == "NP_056374.2" and small["length"] == 1596
    assert small["sequence"].startswith("MESRETLSSS") and small["sequence"].endswith("… [1596 chars]")


def test_unreviewed_uniprot_entry_keeps_its_submitted_protein_name():
    obs = summary_of("real:uniprot/uniprotkb-entry__A8Y1C3.json")
    assert obs["protein"] == "Protein CBG22016"  # proteinDescription.submissionNames
    assert obs["entry_type"] == "UniProtKB unreviewed (TrEMBL)"
    assert obs["organism"] == "Caenorhabditis briggsae" and obs["taxon_id"] == 6238 and obs["length"] == 327
    assert "GO:0047756 F:chondroitin 4-sulfotransferase activity" in obs["go"]


def test_reviewed_uniprot_entries_keep_name_gene_organism_and_function():
    obs = summary_of("demo:responses/uniprot/get_uniprotkb_entry__be64a2517a.json")
    assert obs["protein"] == "Succinate dehydrogenase [ubiquinone] cytochrome b small subunit, mitochondrial"
    assert obs["genes"][0].startswith("SDHD") and obs["length"] == 159
    search = summary_of("real:uniprot/uniprotkb-search__glucose_facets.json")
    first = search["entries"][0]
    assert first["accession"] == "P13866" and first["protein"] == "Sodium/glucose cotransporter 1"
    assert first["genes"] == ["SLC5A1 (NAGT, SGLT1)"] and first["organism"] == "Homo sapiens"
    assert search["results"] == 2 and search["facets"]["Status"]["Reviewed (Swiss-Prot)"] == 16683
    function = summary_of("demo:responses/uniprot/get_uniprotkb_entry__a2e93d901a.json")["function"][0]
    assert function.startswith("Receptor tyrosine kinase binding ligands of the EGF family")


def test_rules_are_summarised_with_their_conditions_and_annotations():
    arba = summary_of("demo:responses/uniprot/get_arba_by_id__b89ef8e399.json")
    assert arba["rule"] == "ARBA00020180" and arba["annotations"]["protein_name"] == ["Insulin"]
    assert "InterPro id IPR004825 AND InterPro id IPR016179 AND taxon Laurasiatheria" in arba["condition_sets"]
    assert arba["unreviewed_proteins"] == 1052
    unirule = summary_of("demo:responses/uniprot/get_unirule_by_id__539687a40e.json")
    assert "Cholesterol metabolism" in unirule["annotations"]["keywords"]
    assert unirule["annotations"]["function"] == ["Mediates feedback control of cholesterol synthesis"]
    assert "Pfam id PF07281 AND sequence length 100-400 AND taxon Euteleostomi" in unirule["condition_sets"]
    assert unirule["exceptions"][0].startswith("Known exception: 19 accessions (Q8AV61")
    searched = summary_of("real:uniprot/arba-search__insulin.json")
    assert [r["rule"] for r in searched["rules"]] == ["ARBA00020180", "ARBA00070927"]


def test_e_utilities_answers_keep_their_facts():
    einfo = summary_of("real:ncbi/einfo-xml__dblist.xml")
    assert {"pubmed", "gene", "taxonomy"} <= set(einfo["databases"]) and einfo["count"] == len(einfo["databases"])
    summary_xml = summary_of("real:ncbi/esummary-xml__pubmed_2ids.xml")  # XML although esummary asks JSON
    first = summary_xml["records"][0]
    assert first["id"] == "11850928" and first["Title"] == "Zirconium granuloma following treatment of rhus dermatitis."
    assert first["AuthorList"] == ["LoPresti PJ", "Hambrick GW Jr"]
    gene = summary_of("real:ncbi/esummary-json__gene_6392.json")["records"]["6392"]
    assert gene["description"] == "succinate dehydrogenase complex subunit D" and gene["chromosome"] == "11"
    search = summary_of("real:ncbi/esearch-json__gds_GSE93374.json")
    assert search["count"] and search["idlist"]
    links = summary_of("real:ncbi/elink-json__nuccore_neighbor_NM_003002.4.json")["linksets"][0]["linksetdbs"]
    assert {"nuccore_nuccore_comp", "nuccore_mrna_nuccore"} <= {db["linkname"] for db in links}
    assert summary_of("real:ncbi/ecitmatch__pnas_1991_88_3248.txt")["pmid"] == "2014248"


def test_ensembl_answers_keep_their_facts():
    gene = summary_of("real:ensembl/lookup-id__ENSG00000150779_expand1.json")
    assert gene["display_name"] == "TIMM8B" and gene["transcript_count"] == 4
    canonical = [t for t in gene["transcripts"] if t.get("is_canonical") == 1]
    assert canonical[0]["id"] == "ENST00000504148" and canonical[0]["protein"] == "ENSP00000422122"
    tree = summary_of("demo:responses/ensembl/get_genetree_member_by_symbol__06b43efbdd.json")
    assert tree["member_count"] == 4 and tree["events"] == {"duplication": 1, "speciation": 1}
    assert {"gene": "ENSMUSG00000059552", "name": "Trp53", "species": "Mus musculus"} in tree["members"]
    variant = summary_of("real:ensembl/variation-human__rs56116432.json")
    assert variant["most_severe_consequence"] == "Missense variant"
    assert variant["mappings"][0]["location"] == "9:133256042-133256042"
    overlap = summary_of("real:ensembl/overlap-region__7_140424943-140425943_variation.json")
    assert overlap[0]["id"] == "rs7793448" and re.match(r"… \d+ more \((\d+) in all\)", overlap[-1])


def test_blast_report_keeps_hits_with_scores_and_identity():
    obs = summary_of("demo:responses/ncbi/blast_retrieve__37c3343d53.txt")
    top = obs["hits"][0]
    assert obs["rid"] == "8V3ZJ8XH013" and obs["query_length"] == 76 and obs["hit_count"] == 4
    assert top["id"] == "sp|P0CG48.1|" and top["evalue"] == "2e-47" and top["identity"] == "76/76 (100%)"


def test_gff3_tsv_medline_and_uniprot_fasta_builders():
    gff = json.loads(build_observation("gff3", "gff3", GFF3, 2000)[1])
    assert gff["features"] == 2 and gff["by_type"] == {"gene": 2}
    assert gff["records"][0]["Name"] == "BRAF" and gff["records"][0]["ID"] == "gene:ENSG00000157764"
    assert gff["records"][0]["start"] == 140719327 and "genome-build GRCh38.p14" in gff["directives"]
    table = json.loads(build_observation("tsv", "tsv", UNIPROT_TSV, 2000)[1])
    assert table["rows"] == 1 and table["records"][0]["Protein names"] == "Cellular tumor antigen p53"
    article = json.loads(build_observation("medline", "text", MEDLINE, 2000)[1])
    assert article["title"].endswith("collected from the northwest zone of India.")
    assert article["year"] == "2012" and article["authors"] == ["Khan R", "Srivastava R"]
    assert article["mesh_terms"] == ["Acacia/*chemistry", "Fatty Acids/*analysis"]
    protein = json.loads(build_observation("fasta", "fasta", UNIPROT_FASTA, 2000)[1])
    assert protein["id"] == "sp|P04637|P53_HUMAN" and protein["length"] == 93


def test_text_builder_reads_what_the_body_is_and_keeps_plain_text_as_lines():
    fasta_as_text = json.loads(
        build_observation("text", "text", real("ncbi/efetch-fasta__protein_NP_056374.2.fasta"), 2000)[1]
    )
    assert fasta_as_text["id"] == "NP_056374.2" and fasta_as_text["length"] == 1596  # read as FASTA
    abstract = b"1. J Sci Food Agric. 2012 Aug 30;92(11):2310-5.\n\nVariation in oil content of Acacia seeds.\n"
    plain = json.loads(build_observation("text", "text", abstract, 2000)[1])
    assert plain == {
        "lines": 2,
        "text": ["1. J Sci Food Agric. 2012 Aug 30;92(11):2310-5.", "Variation in oil content of Acacia seeds."],
    }
    page = json.loads(build_observation("html", "html", real("ncbi/blast-put__error_msgid29_html.txt"), 2000)[1])
    assert "Message ID#29 Error: Query string not found in the CGI context" in page["text"]


# --- every body, every bound: valid JSON, within the bound, never a placeholder ----------


@pytest.mark.parametrize("max_chars", [200, 500, 2000])
def test_every_recorded_body_gives_valid_json_within_the_bound(max_chars):
    built = 0
    for key, call in recorded().items():
        if call.tool is None:
            continue
        outcome, _ = classify(call.status, call.content_type, call.body, call.tool.response_for(call.arguments)[0])
        if outcome != "ok" or (call.tool.function.blast and call.tool.function.fixed.get("CMD") == "Put"):
            continue
        try:
            _, text = observe(call.tool, call.arguments, call.body, max_chars, call.content_type)
        except NotAnAnswer:
            continue
        built += 1
        assert len(text) <= max_chars, key
        data = json.loads(text)
        assert not PLACEHOLDER.search(text), key
        assert data not in ({}, [], None), key
    assert built >= 250


def test_any_builder_on_any_body_refuses_or_gives_bounded_json():
    """No builder crashes on a body of another shape: it refuses it (UnexpectedShape) or fits it."""
    bodies = [c.body for c in recorded().values()] + [GFF3, UNIPROT_TSV, MEDLINE, b"", b"{}", b"[]", b"<x/>"]
    for name in BUILDERS:
        for body in bodies:
            try:
                _, text = build_observation(name, BUILDER_FORMAT[name], body, 300)
            except UnexpectedShape:
                continue
            assert len(text) <= 300 and json.loads(text) is not None


def test_fit_trims_whole_items_of_random_nested_values():
    rng = random.Random(16)

    widths = (60, 12, 6, 4, 3, 2)  # wide at the top, narrower deeper: up to ~100k nodes

    def value(depth: int):
        kind = rng.choice(["str", "int", "list", "dict"] if depth < 5 else ["str", "int"])
        if kind == "str":
            return "".join(rng.choice('ab"\\\n\té…€𝄞 ') for _ in range(rng.randint(0, 400)))
        if kind == "int":
            return rng.randint(-(10**9), 10**9)
        if kind == "list":
            return [value(depth + 1) for _ in range(rng.randint(0, widths[depth]))]
        return {f"k{i}{rng.choice('xyz')}": value(depth + 1) for i in range(rng.randint(0, widths[depth]))}

    for _ in range(30):
        summary = value(0)
        for bound in (200, 1000, 2000):
            text = fit_json(summary, bound)
            assert len(text) <= bound
            json.loads(text)


def test_fit_says_how_much_was_left_out():
    text = fit_json({"id": "X1", "items": [{"name": f"item {i}"} for i in range(300)], "note": "n" * 5000}, 600)
    data = json.loads(text)
    assert data["id"] == "X1" and data["items"][0] == {"name": "item 0"}
    assert re.fullmatch(r"… \d+ more \(300 in all\)", data["items"][-1])
    assert data["note"].endswith("… [5000 chars]")


def test_long_lists_are_counted_in_full_however_few_items_are_shown():
    features = [{"id": f"rs{i}", "feature_type": "variation", "start": 140424943 + i} for i in range(1000)]
    for bound in (300, 2000, 100_000):
        data = json.loads(build_observation("json", "json", json.dumps(features).encode(), bound)[1])
        assert data[0] == features[0] and re.fullmatch(r"… \d+ more \(1000 in all\)", data[-1])


# --- no status-only or empty answer is ever ok --------------------------------------------


def test_status_only_and_empty_answers_are_never_ok():
    waiting = (DEMO / "responses/ncbi/blast_retrieve__e9298664a4.html").read_bytes()
    assert classify(200, "text/html", waiting, "text")[0] == "ok_empty"  # still running: no report yet
    unknown = waiting.replace(b"Status=WAITING", b"Status=UNKNOWN")
    assert classify(200, "text/html", unknown, "text")[0] == "api_error"
    with pytest.raises(NotAnAnswer) as pending:
        build_observation("blast_report", "text", waiting, 2000)
    assert pending.value.outcome == "ok_empty" and "WAITING" in str(pending.value)
    assert classify(200, "text/xml", real("ncbi/esearch-xml__taxonomy_no_results.xml"), "json")[0] == "ok_empty"
    assert classify(200, "application/json", b'{"result": {"uids": []}}', "json")[0] == "ok_empty"
    assert classify(200, "text/plain;format=tsv", UNIPROT_TSV.splitlines()[0], "json")[0] == "ok_empty"
    assert classify(200, "text/x-gff3", b"##gff-version 3\n", "json")[0] == "ok_empty"
    assert classify(200, "application/json", real("ncbi/esummary-json__nucleotide_SDHD_error.json"), "json") == (
        "api_error",
        "Invalid uid SDHD at position= 0",
    )
    with pytest.raises(NotAnAnswer):  # a link set without links
        build_observation("ncbi_elink", "json", b'{"linksets": [{"dbfrom": "gene", "ids": ["1"]}]}', 2000)
    with pytest.raises(NotAnAnswer):  # only a job's status
        build_observation("json", "json", real("uniprot/idmapping-run__jobId_redacted.json"), 2000)


# --- every format the catalog offers is read as what it is -------------------------------


def test_catalog_names_only_registered_builders_and_readable_formats():
    for tool in load_catalog():
        fn = tool.function
        for response, name in [(fn.response, fn.observation), *((r.response, r.observation) for r in fn.formats)]:
            assert response in BUILDERS, (tool.name, response)
            assert name == "auto" or name in BUILDERS, (tool.name, name)


def test_every_offered_format_option_has_its_format_declared():
    """An option whose value names a format (format_=fasta, retmode=xml...) is read in that format."""
    formats = {"json", "xml", "text", "fasta", "tsv", "gff3"}
    checked = 0
    for tool in load_catalog():
        for name, param in tool.function.params.items():
            for value in param.enum or []:
                if isinstance(value, str) and value in formats and value != tool.function.response:
                    assert tool.response_for({name: value})[0] == value, (tool.name, name, value)
                    checked += 1
    assert checked >= 2  # get_sequence_by_id and get_sequence_by_region format_=fasta at least


def test_format_rules_must_name_parameters_and_their_values():
    base = {"name": "f", "path": "/x", "description": "d", "params": {"format_": {"enum": ["json", "tsv"]}}}
    Function(**base, formats=[{"when": {"format_": "tsv"}, "response": "tsv"}])
    with pytest.raises(ValidationError, match="not a parameter"):
        Function(**base, formats=[{"when": {"fmt": "tsv"}, "response": "tsv"}])
    with pytest.raises(ValidationError, match="not one of its values"):
        Function(**base, formats=[{"when": {"format_": "xml"}, "response": "xml"}])


def test_option_values_choose_the_format_and_the_builder():
    catalog = load_catalog()
    efetch = catalog["efetch"]
    assert efetch.response_for({"db": "pubmed", "id": "1", "retmode": "xml"}) == ("xml", "auto")
    assert efetch.response_for({"db": "protein", "id": "1", "rettype": "fasta", "retmode": "text"}) == ("fasta", "auto")
    assert efetch.response_for({"db": "nuccore", "id": "1", "rettype": "gb", "retmode": "text"}) == ("text", "genbank")
    assert catalog["get_sequence_by_id"].response_for({"id": "ENSP1", "format_": "fasta"}) == ("fasta", "auto")
    assert catalog["get_sequence_by_id"].response_for({"id": "ENSP1"}) == ("json", "auto")


def test_media_type_names_the_format_unless_it_says_nothing_definite():
    assert resolve_format("json", "text/x-gff3") == "gff3"
    assert resolve_format("json", "text/plain;format=tsv") == "tsv"
    assert resolve_format("text", "text/xml; charset=UTF-8") == "xml"
    assert resolve_format("json", "text/html") == "json"  # an HTML error page is not an answer
    assert resolve_format("fasta", "text/plain") == "fasta"


def test_observations_without_arguments_match_the_executors():
    """Drift and evaluation rebuild observations from a function's defaults: same text as the executor's."""
    catalog = load_catalog()
    sequence = catalog["get_sequence_by_id"]
    fasta = RecordedCall(
        "fasta answer",
        sequence,
        {"id": "ENSP00000288602", "format_": "fasta"},
        200,
        "text/x-fasta",
        b">ENSP00000288602.7\nMAALSGGGGGGAEPGQALFNGDMEPEAG\n",
        "illustrative",
    )
    compared = 0
    for call in [*recorded().values(), fasta]:
        if call.tool is None or not call.tool.function.formats:
            continue
        try:
            expected = observe(call.tool, call.arguments, call.body, 2000, call.content_type)[1]
        except UnexpectedShape:
            continue
        fn = call.tool.function
        assert build_observation(fn.observation, fn.response, call.body, 2000)[1] == expected, call.file
        compared += 1
    assert compared >= 7  # efetch as XML, FASTA and GenBank, Ensembl sequences as JSON and FASTA


# --- through the executor: valid answers in every format are observations --------------


def _call(tool, args: dict) -> dict:
    return {
        "call_id": content_hash("call", tool.name, args),
        "function": tool.name,
        "arguments": json.dumps(args),
        "template": "t",
        "database": tool.database,
        "tool_group": tool.group,
        "category": tool.category,
        "valid": True,
    }


def test_executor_stores_every_format_as_an_observation(tmp_path):
    catalog = load_catalog()
    snapshot = Snapshot(tmp_path / "snap")
    cases = [  # function, arguments, content type, body, builder expected
        (
            "get_sequence_by_id",
            {"id": "ENSP00000288602", "format_": "fasta"},
            "text/x-fasta",
            b">ENSP00000288602.7\nMAALSGGGGGGAEPGQALFNGDMEPEAGAGAGAAASSAADPAIPEEVWNIKQMIKLTQEHIEALLDKFGG\n",
            "fasta",
        ),
        (
            "overlap_by_region",
            {"species": "human", "region": "7:140719327-140924929", "feature": "gene"},
            "text/x-gff3",
            GFF3,
            "gff3",
        ),
        (
            "esummary",
            {"db": "pubmed", "id": "11850928,11482001"},
            "text/xml",
            real("ncbi/esummary-xml__pubmed_2ids.xml"),
            "xml",
        ),
        (
            "efetch",
            {"db": "nucleotide", "id": "EU490707", "rettype": "gb", "retmode": "text"},
            "text/plain",
            real("ncbi/efetch-genbank__nucleotide_EU490707.txt"),
            "genbank",
        ),
        (
            "elink",
            {"db": "pubmed", "dbfrom": "gene", "id": "1"},
            "application/json",
            b'{"header": {}, "linksets": [{"dbfrom": "gene", "ids": ["1"]}]}',
            None,
        ),
    ]
    calls = []
    for function, args, ctype, body, _ in cases:
        tool = catalog[function]
        req = build_request(tool, args)
        snapshot.add(
            method=req.method,
            url=req.url,
            params=req.params,
            body=req.json_body or req.form,
            status=200,
            content_type=ctype,
            content=body,
            file=f"{function}.txt",
            origin="illustrative",
            provenance="test",
        )
        calls.append(_call(tool, args))
    server = ApiStandIn(snapshot).start()
    cfg = load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(tmp_path / "s.duckdb"),
            "execute.transport": "live",
            "execute.base_urls": server.base_urls(),
            "execute.max_retries": 0,
        },
    )
    try:
        with Store(cfg.store.path).open() as con:
            insert_new(con, "candidate_calls", calls)
            execute_calls(cfg, con, catalog, "r1")
            rows = dict(
                con.execute(
                    "select c.function, r.outcome || ':' || coalesce(o.builder, '') "
                    "from api_responses r join candidate_calls c using (call_id) "
                    "left join observations o using (response_id)"
                ).fetchall()
            )
    finally:
        server.stop()
    for function, _, _, _, builder in cases:
        assert rows[function] == (f"ok:{builder}" if builder else "ok_empty:"), function
