"""Record the HTTP requests BioTool's own wrappers send, without network (golden file for issue 15).

  python scripts/biotool_requests.py requests BIOTOOL_DIR --commit SHA   # -> tests/data/biotool/requests.jsonl
  python scripts/biotool_requests.py examples BIOTOOL_DIR --commit SHA   # -> tests/data/biotool/example_calls.jsonl

BIOTOOL_DIR is a checkout of github.com/gxx27/BioTool (e.g. ``git -C MIRROR archive HEAD | tar -x -C DIR``).
Each wrapper module ``<source>/<group>/api.py`` is imported with ``requests`` replaced by a recorder
(a fake module: no socket is ever opened), then every published function is called with argument sets
that use each parameter of its signature at least once. A line per (function, arguments) holds the
request as it would go on the wire, after requests' own encoding rules: None values dropped, list
values repeated, other values ``str()``-ed (so ``True`` is ``"True"``), the URL re-quoted.

Nothing of BioTool is copied here: the script reads the checkout it is given.
The argument table is long on purpose (one realistic value per parameter), hence the module size.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import socket
import sys
import time
import types
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "catalog" / "published_functions.tsv"
OUT_DIR = ROOT / "tests" / "data" / "biotool"
CONTROLS = ("return_response", "postprocess")  # harness switches, not part of a call's meaning

# ---------------------------------------------------------------- argument values
# One realistic value per parameter name; FUNCTION_VALUES overrides it for one function.
VALUES: dict[str, Any] = {
    "species": "homo_sapiens",
    "symbol": "BRCA2",
    "id": "ENSG00000139618",
    "callback": "jsonp_cb",
    "compara": "vertebrates",
    "nh_format": "simple",
    "db_type": "core",
    "external_db": "HGNC",
    "object_type": "gene",
    "aligned": True,
    "cigar_line": True,
    "clusterset_id": "default",
    "prune_species": "mus_musculus",
    "prune_taxon": 40674,
    "sequence": "cdna",
    "compact": True,
    "display_species_set": "homo_sapiens",
    "mask": "soft",
    "method": "EPO",
    "species_set": "homo_sapiens,mus_musculus",
    "species_set_group": "mammals",
    "format_": "condensed",
    "target_species": "mus_musculus",
    "target_taxon": 10090,
    "type_": "orthologues",
    "all_levels": True,
    "bands": True,
    "synonyms": True,
    "region_name": "X",
    "expand": True,
    "group": "coding",
    "name": "protein_coding",
    "klass": "GenomicAlign",
    "feature": "gene",
    "filter_like": "HGNC",
    "filter": "dbSNP",
    "division": "EnsemblVertebrates",
    "hide_strain_info": True,
    "strain_collection": "mouse",
    "rank": True,
    "population_name": "1000GENOMES:phase_3:GBR",
    "attribs": True,
    "d_prime": 0.5,
    "r2": 0.85,
    "window_size": 500,
    "id1": "rs6792369",
    "id2": "rs1042779",
    "mane": True,
    "phenotypes": True,
    "utr": True,
    "include_original_region": True,
    "asm_one": "GRCh37",
    "asm_two": "GRCh38",
    "coord_system": "chromosome",
    "target_coord_system": "chromosome",
    "ontology": "GO",
    "closest_term": True,
    "subset": "goslim_generic",
    "zero_distance": True,
    "relation": "is_a",
    "simple": True,
    "biotype": "protein_coding",
    "logic_name": "ensembl",
    "misc_set": "cloneset_1mb",
    "so_term": "SO:0001566",
    "variant_set": "ClinVar",
    "trim_downstream": True,
    "trim_upstream": True,
    "accession": "EFO:0000305",
    "source": "ClinVar",
    "include_children": True,
    "include_pubmed_id": True,
    "include_review_status": True,
    "gene": "BRCA2",
    "include_associated": True,
    "include_overlap": True,
    "include_submitter": True,
    "non_specified": True,
    "trait": True,
    "tumour": True,
    "feature_type": "Variation",
    "only_phenotypes": True,
    "term": "coffee consumption",
    "binding_matrix": "ENSPFM0001",
    "unit": "frequencies",
    "start": 1,
    "end": 60,
    "expand_3prime": 10,
    "expand_5prime": 10,
    "mask_feature": True,
    "multiple_sequences": True,
    "coord_system_version": "GRCh38",
    "aligned_sequences": True,
    "samples": True,
    "failed": True,
    "fields": "id,hgvsg,vcf_string",
    "ga4gh_vrs": True,
    "gencode_basic": True,
    "gencode_primary": True,
    "minimal": True,
    "var_synonyms": True,
    "vcf_string": True,
    "genotypes": True,
    "genotyping_chips": True,
    "pops": True,
    "population_genotypes": True,
    "pmcid": "PMC5002951",
    "pmid": "26318936",
    "region": "13:32315474-32400266",
    "timeout": 30.0,
    "api_key": "0123456789abcdef0123456789abcdef",
    # VEP options
    "hgvs_notation": "ENST00000366667:c.803C>T",
    "allele": "C",
    "CADD": True,
    "Paralogues": "min_perc_pos=60",
    "SpliceAI": 2,
    "dbNSFP": "SIFT_score,Polyphen2_HVAR_score",
    "distance": 5000,
    "pick_order": "mane_select,canonical,appris",
    "transcript_id": "ENST00000366667",
    # GA4GH beacon
    "alternateBases": "C",
    "assemblyId": "GRCh38",
    "referenceBases": "G",
    "referenceName": "7",
    "variantType": "DEL",
    "dataset_ids": "Ensembl",
    "includeResultsetResponses": "ALL",
    # NCBI
    "db": "pubmed",
    "usehistory": "y",
    "WebEnv": "MCID_66d0f0c5a8b3e4a1b0c9d8e7",
    "query_key": 1,
    "retstart": 0,
    "retmax": 5,
    "rettype": "uilist",
    "field": "title",
    "idtype": "acc",
    "datetype": "pdat",
    "reldate": 365,
    "mindate": "2020/01/01",
    "maxdate": "2024/12/31",
    "version": "2.0",
    "holding": "ncbi",
    "linkname": "gene_pubmed",
    "cmd": "neighbor",
    "dbfrom": "gene",
    "retmode": "json",
    "strand": 1,
    "seq_start": 1,
    "seq_stop": 100,
    "complexity": 1,
    "bdata": "proc natl acad sci u s a|1991|88|3248|mann bj|Art1|",
    "normalize_separators": False,
    "rid": "8V3ZJ8XH013",
    "query": "gene:TP53 AND organism_id:9606",
    "database": "swissprot",
    "program": "blastp",
    "FILTER": "L",
    "EXPECT": 0.001,
    "WORD_SIZE": 3,
    "GAPCOSTS": "11 1",
    "MATRIX": "BLOSUM62",
    "COMPOSITION_BASED_STATISTICS": 2,
    "HITLIST_SIZE": 10,
    "SHORT_QUERY_ADJUST": "true",
    "FORMAT_TYPE": "JSON2",
    "DESCRIPTIONS": 10,
    "ALIGNMENTS": 5,
    "NCBI_GI": "T",
    # UniProt
    "sort": "accession asc",
    "includeIsoform": True,
    "download": True,
    "size": 5,
    "complete": True,
    "facet_filter": "member_id_type:uniprotkb_id",
    "upi": "UPI000002ED67",
    "dbTypes": "EMBL,RefSeq",
    "active": True,
    "taxonIds": "9606,10090",
    "upid": "UP000005640",
    "taxonId": "9606",
    "arbaId": "ARBA00000063",
    "uniruleid": "UR000000001",
    "citationId": "15165820",
}

BLAST_PROTEIN = "MEEPQSDPSVEPPLSQETFSDLWKLLPENNVLSPLPSQAMDDLMLSPDDIEQWFTEDPGP"
UNIPROT_QUERY = {
    "uniref": "uniprot_id:P04637",
    "uniparc": "P04637",
    "taxonomy": "scientific:Homo",
    "keywords": "apoptosis",
    "human_diseases": "cancer",
    "literature_citations": "TP53",
    "subcellular_locations": "membrane",
    "proteomes": "organism_id:9606",
    "arba": "taxonomy_name:Homo",
    "unirule": "protein_name:kinase",
    "cross_referenced_databases": "name:PDB",
    "genecentric": "gene:TP53",
}
UNIPROT_SORT = {
    "uniref": "id asc",
    "uniparc": "upi asc",
    "taxonomy": "scientific asc",
    "keywords": "name asc",
    "human_diseases": "name asc",
    "literature_citations": "title asc",
    "subcellular_locations": "name asc",
    "proteomes": "upid asc",
    "arba": "rule_id asc",
    "unirule": "unirule_id asc",
    "cross_referenced_databases": "name asc",
    "genecentric": "accession_id asc",
}
UNIPROT_FIELDS = {
    "uniprotkb": "accession,protein_name,gene_names",
    "uniref": "id,name,count",
    "uniparc": "upi,organism",
    "taxonomy": "id,scientific_name,lineage",
    "keywords": "id,name,category",
    "human_diseases": "id,name,acronym",
    "literature_citations": "id,title,authors",
    "subcellular_locations": "id,name,category",
    "proteomes": "upid,organism,protein_count",
    "arba": "rule_id,statistics",
    "unirule": "rule_id,statistics",
    "cross_referenced_databases": "id,name,abbrev",
    "genecentric": "accession,gene_name",
}
UNIPROT_ID = {
    "get_disease_by_id": "DI-00394",
    "get_keyword_by_id": "KW-0053",
    "get_location_by_id": "SL-0086",
    "get_crossref_database_by_id": "DB-0022",
    "get_uniref_by_id": "UniRef90_P04637",
    "get_uniref_members": "UniRef90_P04637",
    "get_uniref_light": "UniRef90_P04637",
    "get_uniparc_databases": "P04637",
    "get_genecentric_by_accession": "P04637",
    "get_uniprotkb_entry": "P04637",
}

FUNCTION_VALUES: dict[str, dict[str, Any]] = {
    "get_cafe_genetree_by_id": {"id": "ENSGT00390000003602"},
    "get_genetree_by_id": {"id": "ENSGT00390000003602"},
    "get_alignment_region": {"region": "2:106040000-106040050:1", "method": "EPO"},
    "get_homology_by_symbol": {"format_": "full"},
    "map_cdna_to_genome": {"id": "ENST00000380152", "region": "100..300"},
    "map_cds_to_genome": {"id": "ENST00000380152", "region": "1..1000"},
    "map_translation_to_genome": {"id": "ENSP00000369497", "region": "100..300"},
    "map_assembly": {"region": "X:1000000..1000100:1"},
    "lookup_by_id": {"format_": "full"},
    "lookup_by_symbol": {"format_": "full"},
    "get_ontology_ancestors": {"id": "GO:0005667"},
    "get_ontology_ancestors_chart": {"id": "GO:0005667"},
    "get_ontology_descendants": {"id": "GO:0005667"},
    "get_ontology_id": {"id": "GO:0005667"},
    "get_ontology_name": {"name": "transcription factor complex"},
    "get_taxonomy_classification": {"id": "9606"},
    "get_taxonomy_id": {"id": "9606"},
    "get_taxonomy_name": {"name": "Homo sapiens"},
    "get_info_biotypes_name": {"name": "protein_coding"},
    "get_info_compara_species_sets": {"method": "EPO", "compara": "vertebrates"},
    "get_info_external_dbs": {"feature": "xref"},
    "get_info_genomes": {"name": "nanoarchaeum_equitans_kin4_m"},
    "get_info_genomes_accession": {"accession": "GCA_000001405.29"},
    "get_info_genomes_assembly": {"assembly_id": "GCA_902167145.1"},
    "get_info_genomes_division": {"division": "EnsemblPlants"},
    "get_info_genomes_taxonomy": {"taxon_name": "Arabidopsis"},
    "get_info_variation_populations": {"filter": "LD"},
    "get_ld_around_variant": {"id": "rs56116432"},
    "get_ld_region": {"region": "6:25837556-25843455"},
    "overlap_by_region": {"region": "7:140424943-140624564", "species_set": "mammals"},
    "overlap_by_id": {"species_set": "mammals"},
    "overlap_translation": {"id": "ENSP00000288602", "feature": "protein_feature", "type_": "low_complexity"},
    "get_phenotype_by_region": {"region": "9:22125500-22136000:1"},
    "get_sequence_by_id": {"id": "ENST00000380152", "format_": "fasta", "type_": "cds", "object_type": "transcript"},
    "get_sequence_by_region": {"region": "X:1000000..1000100:1", "format_": "fasta"},
    "get_transcript_haplotypes": {"id": "ENST00000380152", "sequence": True},
    "get_query_beacon": {"start": 140453136, "end": 140453137},
    "get_ga4gh_features": {"id": "ENST00000408937.3"},
    "get_ga4gh_callsets": {"id": "1:NA19777"},
    "get_ga4gh_datasets": {"id": "6e340c4d1e333c7a676b1710d2e3953c"},
    "get_ga4gh_featuresets": {"id": "1"},
    "get_ga4gh_variants": {"id": "1:rs1333049"},
    "get_ga4gh_variantsets": {"id": "1"},
    "get_ga4gh_references": {"id": "9489ae7581e14efcad134f02afafe26c"},
    "get_ga4gh_referencesets": {"id": "GRCh38"},
    "get_ga4gh_variantannotationsets": {"id": "Ensembl"},
    "variant_recoder": {"id": "rs699"},
    "get_variation": {"id": "rs699"},
    "vep_by_id": {"id": "rs699"},
    "vep_by_region": {"region": "9:22125503-22125502:1"},
    "esearch": {"term": "BRCA2[gene] AND human[orgn]", "sort": "relevance"},
    "esummary": {"db": "gene", "id": "675", "retmode": "json"},
    "efetch": {"db": "protein", "id": "NP_000050.3", "rettype": "fasta", "retmode": "text", "retmax": 1},
    "elink": {"db": "pubmed", "id": "675", "term": "review[pt]"},
    "einfo": {"db": "pubmed"},
    "ecitmatch": {"retmode": "xml", "rettype": "xml", "db": "pubmed"},
    "blast": {"timeout": 120.0},
    "blast_retrieve": {"FORMAT_TYPE": "Text"},
}

# Minimal argument sets where the signature's required parameters are not a meaningful call.
BASE: dict[str, dict[str, Any]] = {
    "esummary": {"db": "gene", "id": "675"},
    "efetch": {"db": "protein", "id": "NP_000050.3"},
    "elink": {"dbfrom": "gene", "db": "pubmed", "id": "675"},
    "blast": {"query": BLAST_PROTEIN, "database": "swissprot", "program": "blastp"},
}

# Further named cases: other value forms BioTool accepts, and paths through the wrapper's branches.
EXTRA: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]] = {
    "esummary": [("history", {"db": "pubmed", "query_key": 1, "WebEnv": VALUES["WebEnv"]}, {})],
    "efetch": [
        ("history", {"db": "pubmed", "query_key": 1, "WebEnv": VALUES["WebEnv"]}, {}),
        ("retmode_none", {"db": "pubmed", "id": "22351513", "retmode": None}, {}),
    ],
    "elink": [("history", {"dbfrom": "gene", "db": "pubmed", "query_key": 1, "WebEnv": VALUES["WebEnv"]}, {})],
    "get_info_biotypes_groups": [("group_only", {"group": "coding"}, {})],
    "ecitmatch": [
        ("two_citations_%0D", {"bdata": VALUES["bdata"] + "%0Dscience|1987|235|182|palmenberg ac|Art2|"}, {}),
        (
            "two_citations_%0D_unnormalized",
            {"bdata": VALUES["bdata"] + "%0Dscience|1987|235|182|palmenberg ac|Art2|", "normalize_separators": False},
            {},
        ),
        ("two_citations_newline", {"bdata": VALUES["bdata"] + "\rscience|1987|235|182|palmenberg ac|Art2|"}, {}),
    ],
    "get_query_beacon": [("variant_type_only", {"alternateBases": "", "variantType": "DEL"}, {})],
    "get_alignment_region": [("display_two_species", {"display_species_set": "homo_sapiens,pan_troglodytes"}, {})],
    "blast": [
        ("poll_json2", {"FORMAT_TYPE": "JSON2"}, {"postprocess": True}),
        ("poll_default_format", {}, {"postprocess": True}),
        (
            "nucleotide_defaults",
            {
                "query": "ATGGAGGAGCCGCAGTCAGATCCTAGCGTCGAGCCCCCTCTGAGTCAGGAAACATTTTCAGACC",
                "database": "nt",
                "program": None,
            },
            {},
        ),
        ("expect_string", {"EXPECT": "1e-5"}, {}),
    ],
    "postprocess_transcript_haplotypes": [],
}


# Alternative value forms BioTool's wrappers accept (Union types, 0/1 flags in its published calls).
def variants(name: str, value: Any, annotation: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(value, bool) and name != "normalize_separators":  # that one is a Python switch
        out.append(("int0", 0))
    if "List" in annotation and isinstance(value, str) and "," in value:
        out.append(("list", value.split(",")))
    if name == "feature" and "Sequence" in annotation:
        out.append(("list", ["gene", "transcript"]))
    if name == "CADD":
        out.append(("str", "snv_indels"))
    return out


# ---------------------------------------------------------------- the recorder
class FakeResponse:
    def __init__(self, url: str, body: str, content_type: str = "application/json"):
        self.url, self.status_code, self.ok, self.reason = url, 200, True, "OK"
        self.headers = {"content-type": content_type, "Content-Type": content_type}
        self.text, self.content, self.encoding = body, body.encode(), "utf-8"

    def json(self, **_: Any) -> Any:
        return json.loads(self.text)

    def raise_for_status(self) -> None:
        return None

    def iter_content(self, chunk_size: int = 1024, decode_unicode: bool = False):
        yield self.text if decode_unicode else self.content

    def close(self) -> None:
        return None


QBLAST_PUT = "<html><!--QBlastInfoBegin\n    RID = 8V3ZJ8XH013\n    RTOE = 12\nQBlastInfoEnd\n--></html>"
BLAST_JSON2 = {
    "BlastOutput2": {
        "report": {"results": {"search": {"query_id": "Query_1", "query_len": 60, "hits": [], "stat": {}}}}
    }
}


class Recorder:
    """Stands in for the ``requests`` module: records each request, answers a plausible body."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.module = self._module()

    def reset(self) -> None:
        self.calls = []

    def answer(self, method: str, url: str) -> FakeResponse:
        if "blast.ncbi.nlm.nih.gov" in url:
            if method == "POST":
                return FakeResponse(url, QBLAST_PUT, "text/html")
            polls = sum(1 for c in self.calls if c["method"] == "GET")
            if polls <= 1:  # first poll: still running, so the wrapper's retry loop is exercised
                return FakeResponse(url, "<html>\n  Status=WAITING\n</html>", "text/html")
            return FakeResponse(url, json.dumps(BLAST_JSON2))
        if "ecitmatch" in url:
            return FakeResponse(url, "proc natl acad sci u s a|1991|88|3248|mann bj|Art1|2014248\n", "text/plain")
        return FakeResponse(url, "{}")

    def request(
        self,
        method: str,
        url: str,
        params: Any = None,
        data: Any = None,
        json: Any = None,
        headers: Any = None,
        **_: Any,
    ) -> FakeResponse:
        self.calls.append(wire_request(method.upper(), url, params, data, json, headers))
        return self.answer(method.upper(), url)

    def _module(self) -> types.ModuleType:
        mod = types.ModuleType("requests")
        rec = self

        class RequestException(IOError):
            pass

        class Session:
            headers: dict = {}

            def request(self, method, url, **kw):
                return rec.request(method, url, **kw)

            def get(self, url, **kw):
                return rec.request("GET", url, **kw)

            def post(self, url, **kw):
                return rec.request("POST", url, **kw)

            def mount(self, *a, **k):
                return None

            def close(self):
                return None

        mod.request = rec.request
        mod.get = lambda url, params=None, **kw: rec.request("GET", url, params=params, **kw)
        mod.post = lambda url, data=None, json=None, **kw: rec.request("POST", url, data=data, json=json, **kw)
        mod.Session, mod.Response = Session, FakeResponse
        mod.exceptions = types.SimpleNamespace(
            RequestException=RequestException,
            HTTPError=RequestException,
            Timeout=RequestException,
            ConnectionError=RequestException,
        )
        mod.RequestException = mod.HTTPError = mod.Timeout = mod.ConnectionError = RequestException
        return mod


def _pairs(data: Any) -> list[list[str]] | None:
    """requests' ``_encode_params`` rules: mappings or pair lists; lists repeat; None dropped; str()."""
    if data is None:
        return None
    if isinstance(data, (str, bytes)):
        return [["", data if isinstance(data, str) else data.decode()]]
    items = data.items() if hasattr(data, "items") else data
    out: list[list[str]] = []
    for key, values in items:
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        out.extend([str(key), v.decode() if isinstance(v, bytes) else str(v)] for v in values if v is not None)
    return sorted(out)


def requote(url: str) -> str:
    """requests' ``requote_uri``: unquote unreserved characters, then quote what is left unsafe."""
    parts = url.split("%")
    for i in range(1, len(parts)):
        h = parts[i][:2]
        if len(h) == 2 and h.isalnum():
            c = chr(int(h, 16))
            unreserved = c.isascii() and (c.isalnum() or c in "-._~")
            parts[i] = (c + parts[i][2:]) if unreserved else ("%" + parts[i])
        else:
            parts[i] = "%" + parts[i]
    return quote("".join(parts), safe="!#$%&'()*+,/:;=?@[]~")


def wire_request(method: str, url: str, params: Any, data: Any, json_body: Any, headers: Any) -> dict:
    prepared = requote(url)
    split = urlsplit(prepared)
    query = [[unquote(x) for x in (p.split("=", 1) + [""])[:2]] for p in split.query.split("&") if p]
    return {
        "method": method,
        "url": split._replace(query="", fragment="").geturl(),
        "params": sorted(query + (_pairs(params) or [])),
        "form": _pairs(data),
        "json": json_body,
        "headers": dict(headers or {}),
    }


# ---------------------------------------------------------------- running the wrappers
def published(path: Path = PUBLISHED) -> list[tuple[str, str, str]]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    head = lines[0].split("\t")
    rows = [dict(zip(head, line.split("\t"), strict=False)) for line in lines[1:]]
    return [(r["source"], r["group"], r["function"]) for r in rows]


def load_wrappers(checkout: Path, recorder: Recorder) -> dict[str, tuple[str, str, Any]]:
    sys.modules["requests"] = recorder.module
    try:
        import pandas  # noqa: F401  (one post-processing module imports it)
    except ImportError:
        sys.modules["pandas"] = types.ModuleType("pandas")
    sys.path.insert(0, str(checkout))
    out = {}
    for source, group, name in published():
        module = importlib.import_module(f"{source}.{group}.api")
        out[name] = (source, group, getattr(module, name))
    return out


def value_for(fn: str, group: str, name: str, annotation: str = "") -> Any:
    if name in FUNCTION_VALUES.get(fn, {}):
        return FUNCTION_VALUES[fn][name]
    if group in UNIPROT_QUERY or group == "uniprotkb":
        if name == "query" and group in UNIPROT_QUERY:
            return UNIPROT_QUERY[group]
        if name == "sort" and group in UNIPROT_SORT:
            return UNIPROT_SORT[group]
        if name == "fields":
            return UNIPROT_FIELDS[group]
        if name in ("id", "accession") and fn in UNIPROT_ID:
            return UNIPROT_ID[fn]
    if name == "accession" and group == "uniprotkb":
        return "P04637"
    if name not in VALUES and annotation in ("Optional[bool]", "bool | None"):
        return True  # VEP's many on/off plugin flags
    if name not in VALUES:
        raise KeyError(f"{fn}: no value for parameter {name!r}")
    return VALUES[name]


def cases(fn: str, group: str, func: Any) -> list[tuple[str, dict, dict]]:
    """(case name, arguments, controls) for one function."""
    sig = inspect.signature(func)
    params = {n: p for n, p in sig.parameters.items() if n not in CONTROLS}
    controls = {c: (c == "return_response") for c in CONTROLS if c in sig.parameters}
    if fn == "postprocess_transcript_haplotypes":
        result = {
            "transcript_id": "ENST00000380152",
            "total_haplotype_count": 2,
            "total_population_counts": {"AFR": 3},
            "cds_haplotypes": [{"name": "ENST00000380152:c.1A>G", "frequency": 0.5, "count": 2}],
            "protein_haplotypes": [],
        }
        return [("base", {"result": result}, {})]
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty]
    base = dict(BASE.get(fn) or {n: value_for(fn, group, n) for n in required})
    optional = [n for n in params if n not in base]
    annot = {n: str(p.annotation).replace("typing.", "") for n, p in params.items()}
    out = [("base", base, controls)]
    for name in optional:
        value = value_for(fn, group, name, annot[name])
        out.append((f"opt:{name}", {**base, name: value}, controls))
        for label, alt in variants(name, value, annot[name]):
            out.append((f"form:{name}={label}", {**base, name: alt}, controls))
    for name in required:  # value forms of required parameters too (overlap's feature list)
        for label, alt in variants(name, base[name], annot[name]):
            out.append((f"form:{name}={label}", {**base, name: alt}, controls))
    if optional:
        out.append(("all", {**base, **{n: value_for(fn, group, n, annot[n]) for n in optional}}, controls))
    for label, extra, ctl in EXTRA.get(fn, []):
        args = {**base, **extra}
        args = {k: v for k, v in args.items() if v is not None or k == "retmode"}
        out.append((label, args, {**controls, **ctl}))
    return out


def run_case(recorder: Recorder, func: Any, arguments: dict, controls: dict) -> dict:
    recorder.reset()
    error = returned = None
    try:
        value = func(**arguments, **controls)
        if not recorder.calls:
            returned = value
    except Exception as exc:  # recorded: a wrapper that raises is a finding, not a crash of this script
        error = f"{type(exc).__name__}: {exc}"
    calls = list(recorder.calls)
    return {"request": calls[0] if calls else None, "followups": calls[1:], "error": error, "returned": returned}


def no_network() -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise OSError("biotool_requests: network access is disabled")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]


def prepare(checkout: Path) -> tuple[Recorder, dict]:
    no_network()
    for key in ("NCBI_API_KEY", "NCBI_EUTILS_API_KEY"):
        os.environ.pop(key, None)
    time.sleep = lambda *_: None  # BLAST's RTOE wait and backoff between polls
    recorder = Recorder()
    return recorder, load_wrappers(checkout, recorder)


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def record_requests(checkout: Path, out: Path, commit: str) -> int:
    recorder, wrappers = prepare(checkout)
    lines = []
    signatures = {fn: list(inspect.signature(func).parameters) for fn, (_, _, func) in wrappers.items()}
    for fn, (source, group, func) in wrappers.items():
        for case, arguments, controls in cases(fn, group, func):
            result = run_case(recorder, func, arguments, controls)
            if result["error"]:
                print(f"note: {fn} [{case}] raised {result['error']}", file=sys.stderr)
            lines.append(
                {
                    "function": fn,
                    "source": source,
                    "group": group,
                    "case": case,
                    "arguments": jsonable(arguments),
                    "controls": controls,
                    **jsonable(result),
                }
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in lines))
    provenance = {"repository": "github.com/gxx27/BioTool", "commit": commit}
    (out.parent / "signatures.json").write_text(
        json.dumps({"biotool": provenance, "functions": signatures}, indent=1) + "\n"
    )
    print(f"{len(lines)} cases for {len(wrappers)} functions -> {out}")
    return 0


def record_examples(checkout: Path, out: Path, commit: str) -> int:
    recorder, wrappers = prepare(checkout)
    rel = "script/data_construction/few_shot.json"
    examples = json.loads((checkout / rel).read_text())
    lines = []
    for index, ex in enumerate(examples):
        fn = ex["function"]
        source, group, func = wrappers[fn]
        sig = inspect.signature(func)
        controls = {c: (c == "return_response") for c in CONTROLS if c in sig.parameters}
        result = run_case(recorder, func, ex["params"], controls)
        lines.append(
            {
                "function": fn,
                "arguments": ex["params"],
                "user_query": ex["query"],
                "source": source,
                "group": group,
                "biotool_schema": ex["document"],
                "provenance": {"repository": "github.com/gxx27/BioTool", "commit": commit, "path": rel, "index": index},
                **jsonable(result),
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in lines))
    print(f"{len(lines)} example calls -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["requests", "examples"])
    parser.add_argument("checkout", type=Path, help="a BioTool checkout (its repository root)")
    parser.add_argument("--commit", default="unknown", help="the BioTool commit the checkout is from")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.what == "requests":
        return record_requests(args.checkout.resolve(), args.out or OUT_DIR / "requests.jsonl", args.commit)
    return record_examples(args.checkout.resolve(), args.out or OUT_DIR / "example_calls.jsonl", args.commit)


if __name__ == "__main__":
    sys.exit(main())
