"""UniProt builders: entries (reviewed and unreviewed), search pages, ARBA and UniRule rules."""

from __future__ import annotations

from typing import Any

from biocurate.observations.json_builders import compact, flatten, load_json, pick, require_answer
from biocurate.observations.registry import UnexpectedShape, builder


def _value(node: Any) -> Any:
    return node.get("value") if isinstance(node, dict) else node


def _names(block: dict | None) -> dict[str, Any]:
    """fullName, shortNames and EC numbers of one name block (recommended, submitted, alternative)."""
    if not isinstance(block, dict):
        return {}
    out: dict[str, Any] = {"name": _value(block.get("fullName"))}
    short = [_value(s) for s in block.get("shortNames") or []]
    ec = [_value(e) for e in block.get("ecNumbers") or []]
    if short:
        out["short_names"] = short
    if ec:
        out["ec"] = ec
    return {k: v for k, v in out.items() if v}


def protein_names(description: dict | None) -> dict[str, Any]:
    """The protein's name: the recommended one, else the submitted one (unreviewed entries)."""
    description = description or {}
    main = _names(description.get("recommendedName"))
    if not main.get("name"):
        submitted = description.get("submissionNames") or []
        main = _names(submitted[0]) if submitted else {}
    out: dict[str, Any] = {"protein": main.get("name")}
    if main.get("short_names"):
        out["short_names"] = main["short_names"]
    ec = list(main.get("ec", []))
    alternatives = [_names(a) for a in description.get("alternativeNames") or []]
    if alternatives:
        out["alternative_names"] = [a["name"] for a in alternatives if a.get("name")]
        ec += [e for a in alternatives for e in a.get("ec", [])]
    if ec:
        out["ec"] = ec
    return {k: v for k, v in out.items() if v}


def _genes(genes: list) -> list[str]:
    out = []
    for gene in genes or []:
        name = _value(gene.get("geneName"))
        others = [_value(s) for key in ("synonyms", "orderedLocusNames", "orfNames") for s in gene.get(key) or []]
        if name and others:
            out.append(f"{name} ({', '.join(others)})")
        elif name or others:
            out.append(name or ", ".join(others))
    return out


def comment_text(comment: dict) -> list[str]:
    """What one UniProt comment says, whatever its type."""
    texts = [_value(t) for t in comment.get("texts") or []]
    for loc in comment.get("subcellularLocations") or []:
        texts.append(" / ".join(str(_value(loc.get(k))) for k in ("location", "topology", "orientation") if loc.get(k)))
    disease = comment.get("disease")
    if disease:
        texts.append(
            " ".join(
                str(x)
                for x in (
                    disease.get("diseaseId"),
                    f"({disease['acronym']})" if disease.get("acronym") else None,
                    disease.get("description"),
                )
                if x
            )
        )
    reaction = comment.get("reaction")
    if reaction:
        texts.append(
            " ".join(
                str(x)
                for x in (reaction.get("name"), f"EC {reaction['ecNumber']}" if reaction.get("ecNumber") else None)
                if x
            )
        )
    if comment.get("note") and not texts:
        texts.append("; ".join(flatten(comment["note"])))
    if not texts:
        rest = {k: v for k, v in comment.items() if k not in ("commentType", "molecule")}
        texts.append("; ".join(flatten(rest)))
    return [t for t in texts if t]


COMMENTS_FIRST = (
    "function",
    "subcellular_location",
    "disease",
    "catalytic_activity",
    "subunit",
    "tissue_specificity",
    "pathway",
)


def entry_summary(data: dict) -> dict[str, Any]:
    """A UniProtKB entry, the most telling facts first (``fit_json`` drops from the end)."""
    organism = data.get("organism") or {}
    sequence = data.get("sequence") or {}
    out: dict[str, Any] = {
        "accession": data.get("primaryAccession") or data.get("accession"),
        "entry_name": data.get("uniProtkbId"),
        "entry_type": data.get("entryType"),
    }
    out.update(protein_names(data.get("proteinDescription")))
    out["genes"] = _genes(data.get("genes") or [])
    out["organism"] = organism.get("scientificName")
    out["common_name"] = organism.get("commonName")
    out["taxon_id"] = organism.get("taxonId")
    out["length"] = sequence.get("length")
    comments: dict[str, list[str]] = {}
    for comment in data.get("comments") or []:
        kind = str(comment.get("commentType", "comment")).lower().replace(" ", "_")
        comments.setdefault(kind, []).extend(comment_text(comment))
    out.update({k: comments.pop(k) for k in COMMENTS_FIRST if k in comments})
    out["existence"] = data.get("proteinExistence")
    out["annotation_score"] = data.get("annotationScore")
    out["mass_da"] = sequence.get("molWeight")
    out["keywords"] = [k.get("name") for k in data.get("keywords") or [] if k.get("name")]
    xrefs = data.get("uniProtKBCrossReferences") or []
    out["go"] = [
        f"{x.get('id')} {p.get('value')}"
        for x in xrefs
        if x.get("database") == "GO"
        for p in x.get("properties") or []
        if p.get("key") == "GoTerm"
    ]
    out.update(comments)
    features = (data.get("extraAttributes") or {}).get("countByFeatureType")
    if not features and data.get("features"):
        features = {}
        for feature in data["features"]:
            features[feature.get("type")] = features.get(feature.get("type"), 0) + 1
    out["features"] = features
    databases: dict[str, int] = {}
    for x in xrefs:
        databases[x.get("database")] = databases.get(x.get("database"), 0) + 1
    out["cross_references"] = databases
    out["references"] = len(data.get("references") or []) or None
    out["secondary_accessions"] = data.get("secondaryAccessions")
    out["last_annotation_update"] = (data.get("entryAudit") or {}).get("lastAnnotationUpdateDate")
    out["sequence"] = sequence.get("value")
    return {k: v for k, v in out.items() if v not in (None, "", [], {})}


@builder("uniprot_entry", "json")
def uniprot_entry(body: bytes) -> Any:
    data = load_json(body)
    if not isinstance(data, dict) or not ("primaryAccession" in data or "accession" in data):
        raise UnexpectedShape("no primaryAccession in the UniProt entry")
    return require_answer(entry_summary(data), "UniProt entry")


def _facets(facets: list) -> dict[str, dict[str, Any]]:
    return {
        f.get("label") or f.get("name"): {
            v.get("label") or v.get("value"): v.get("count") for v in f.get("values") or []
        }
        for f in facets
    }


def result_summary(item: Any) -> Any:
    if isinstance(item, dict) and ("primaryAccession" in item and ("entryType" in item or "sequence" in item)):
        return entry_summary(item)
    if isinstance(item, dict) and "uniRuleId" in item:
        return rule_summary(item)
    return compact(item)


@builder("uniprot_search", "json")
def uniprot_search(body: bytes) -> Any:
    data = load_json(body)
    if not isinstance(data, dict) or "results" not in data:
        raise UnexpectedShape("expected {'results': [...]} from a UniProt search")
    results = data["results"] or []
    out: dict[str, Any] = {"results": len(results)}
    if data.get("facets"):
        out["facets"] = _facets(data["facets"])
    out["entries"] = [result_summary(r) for r in results]
    return require_answer(out, "UniProt search")


def _condition(cond: dict) -> str:
    values = [str(_value(v)) for v in cond.get("conditionValues") or []]
    text = f"{'NOT ' if cond.get('isNegative') else ''}{cond.get('type', 'condition')}"
    if values:
        text += " " + " or ".join(values)
    span = cond.get("range")
    if span:
        text += f" {_value(span.get('start'))}-{_value(span.get('end'))}"
    return text


def _annotation(ann: dict) -> tuple[str, list[str]]:
    if ann.get("proteinDescription"):
        names = protein_names(ann["proteinDescription"])
        return "protein_name", [names["protein"]] if names.get("protein") else flatten(ann["proteinDescription"])
    if ann.get("comment"):
        kind = str(ann["comment"].get("commentType", "comment")).lower().replace(" ", "_")
        return kind, comment_text(ann["comment"])
    if ann.get("keyword"):
        return "keywords", [ann["keyword"].get("name") or ann["keyword"].get("id")]
    if ann.get("gene"):
        return "gene", _genes([ann["gene"]])
    if ann.get("dbReference"):
        ref = ann["dbReference"]
        props = [p.get("value") for p in ref.get("properties") or [] if p.get("value")]
        return str(ref.get("database", "reference")).lower(), [" ".join([str(ref.get("id")), *props])]
    rest = {k: v for k, v in ann.items() if k != "annotationType"}
    return "other", ["; ".join(flatten(rest))]


def _annotations(items: list) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ann in items or []:
        kind, texts = _annotation(ann)
        out.setdefault(kind, []).extend(t for t in texts if t)
    return out


def rule_summary(rule: dict) -> dict[str, Any]:
    main = rule.get("mainRule") or {}
    out: dict[str, Any] = {"rule": rule.get("uniRuleId")}
    out.update(pick(rule.get("information") or {}, "version", "oldRuleNum", "dataClass"))
    out["condition_sets"] = [
        " AND ".join(_condition(c) for c in cs.get("conditions") or []) for cs in main.get("conditionSets") or []
    ]
    out["annotations"] = _annotations(main.get("annotations") or [])
    out["exceptions"] = [
        f"{e.get('category', 'exception')}: {len(e.get('accessions') or [])} accessions"
        + (
            f" ({', '.join((e.get('accessions') or [])[:5])}{', …' if len(e.get('accessions') or []) > 5 else ''})"
            if e.get("accessions")
            else ""
        )
        for e in main.get("ruleExceptions") or []
    ]
    sam = rule.get("samFeatureSets") or []
    if sam:
        out["sam_features"] = [
            {
                "trigger": "; ".join(flatten(s.get("samTrigger") or {})),
                "annotations": _annotations(s.get("annotations") or []),
            }
            for s in sam
        ]
    if rule.get("positionFeatureSets"):
        out["position_features"] = len(rule["positionFeatureSets"])
    stats = rule.get("statistics") or {}
    out["reviewed_proteins"] = stats.get("reviewedProteinCount")
    out["unreviewed_proteins"] = stats.get("unreviewedProteinCount")
    out["created"] = rule.get("createdDate")
    out["modified"] = rule.get("modifiedDate")
    return {k: v for k, v in out.items() if v not in (None, "", [], {})}


@builder("uniprot_rule", "json")
def uniprot_rule(body: bytes) -> Any:
    """One ARBA or UniRule rule, or a search page of them."""
    data = load_json(body)
    if isinstance(data, dict) and "uniRuleId" in data:
        return require_answer(rule_summary(data), "rule")
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        rules = [rule_summary(r) if isinstance(r, dict) and "uniRuleId" in r else compact(r) for r in data["results"]]
        return require_answer({"results": len(rules), "rules": rules}, "rule search")
    raise UnexpectedShape("neither a rule (uniRuleId) nor a page of rules (results)")
