"""The dataset card (README.md of a version) and what it reports: counts, plots, upstream
releases and provenance (also recorded in the manifest)."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from biocurate.config import Config
from biocurate.publish.common import SPLITS
from biocurate.publish.formats import FORMATS, PROVENANCE_COLUMNS


def _tally(items: pl.DataFrame, *columns: str) -> list[tuple]:
    """(value, ..., items) of each distinct combination of these columns (None a value of its own)."""
    return items.group_by(list(dict.fromkeys(columns))).len().rows()


def write_plots(folder: Path, items: pl.DataFrame) -> list[str]:
    """Bar charts (PNG) of items per split, and per database, tool and category stacked by split."""
    columns = ("split", "database", "tool", "category")
    tallies: dict[str, Counter] = {column: Counter() for column in columns}
    for column in columns:
        for *values, n in _tally(items, column, "split"):
            tallies[column][(_label(values[0]), values[-1])] += n
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    colours = {"train": "#4C72B0", "validation": "#DD8452", "test": "#55A868"}
    written = []
    (folder / "plots").mkdir(exist_ok=True)
    for column in columns:
        counts = tallies[column]
        labels = SPLITS if column == "split" else sorted({label for label, _ in counts})
        labels = [label for label in labels if any(counts[(label, s)] for s in SPLITS)]
        height = max(2.5, 0.28 * len(labels) + 1.2)
        fig, ax = plt.subplots(figsize=(7, height))
        left = [0] * len(labels)
        for split in SPLITS:
            values = [counts[(label, split)] for label in labels]
            ax.barh(labels, values, left=left, color=colours[split], label=split)
            left = [a + b for a, b in zip(left, values, strict=False)]
        ax.invert_yaxis()
        ax.set_xlabel("items")
        ax.set_title(f"items per {column}")
        if column != "split":
            ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        rel = f"plots/{column}.png"
        fig.savefig(folder / rel, dpi=100, metadata={"Software": None})
        plt.close(fig)
        written.append(rel)
    return written


# ---------------------------------------------------------------------------------------------
# Counts, provenance, upstream releases


_COUNTED = {
    "databases": "database",
    "tools": "tool",
    "categories": "category",
    "functions": "function",
    "kinds": "kind",
}
NO_CALL = "(no call)"  # the database, tool, ... of a no_tool item (issue 18)


def _label(value: str | None) -> str:
    return NO_CALL if value is None else value


def counts_of(items: pl.DataFrame) -> dict:
    """Items, groups, calls and items per database, tool, category, function and provenance,
    overall and per split (each tally grouped by split too: no copy of a split's items)."""
    columns = {**_COUNTED, **{k: k for k in PROVENANCE_COLUMNS}}
    blocks: dict[str | None, dict] = {s: {"items": 0, "groups": 0, "calls": 0} for s in (None, *SPLITS)}
    sizes = items.group_by("split").agg(
        pl.len().alias("items"), pl.col("group_key").n_unique().alias("groups"), pl.col("call_id").n_unique()
    )
    for split, n, groups, calls in sizes.rows():
        blocks[split].update(items=n, groups=groups, calls=calls)
    if items.height:
        blocks[None].update(items=items.height, groups=items["group_key"].n_unique(), calls=items["call_id"].n_unique())
    for name, column in columns.items():
        tallies: dict[str | None, Counter] = {s: Counter() for s in blocks}
        for value, split, n in _tally(items, column, "split"):
            tallies[None][_label(value)] += n
            tallies[split][_label(value)] += n
        for s, block in blocks.items():
            block[name] = dict(sorted(tallies[s].items()))
    out = blocks[None]
    out["splits"] = {s: blocks[s]["items"] for s in SPLITS}
    out["by_split"] = {s: blocks[s] for s in SPLITS}
    return out


# Info endpoints whose bodies name the upstream release: url pattern -> (database, parser).
def _ensembl_data(body: bytes) -> list[str]:
    return [str(r) for r in json.loads(body).get("releases", [])]


def _ensembl_software(body: bytes) -> list[str]:
    release = json.loads(body).get("release")
    return [str(release)] if release is not None else []


def _ensembl_genomes(body: bytes) -> list[str]:
    version = json.loads(body).get("version")
    return [f"Ensembl Genomes {version}"] if version is not None else []


def _ncbi_einfo(body: bytes) -> list[str]:
    text = body.decode("utf-8", "replace")
    db = re.search(r"<DbInfo>\s*<DbName>([^<]+)</DbName>", text)
    build = re.search(r"<DbBuild>([^<]+)</DbBuild>", text)
    return [f"{db.group(1)}: {build.group(1)}"] if db and build else []


RELEASE_ENDPOINTS: list[tuple[re.Pattern, str, Callable[[bytes], list[str]]]] = [
    (re.compile(r"rest\.ensembl\.org/info/data/?(\?|$)"), "Ensembl", _ensembl_data),
    (re.compile(r"rest\.ensembl\.org/info/software/?(\?|$)"), "Ensembl", _ensembl_software),
    (re.compile(r"rest\.ensembl\.org/info/eg_version/?(\?|$)"), "Ensembl", _ensembl_genomes),
    (re.compile(r"eutils\.ncbi\.nlm\.nih\.gov/entrez/eutils/einfo\.fcgi"), "NCBI", _ncbi_einfo),
]


def upstream_releases(con: duckdb.DuckDBPyConnection, items: pl.DataFrame) -> dict:
    """Per database: the release each exported observation came from (as recorded at execute time
    from the API's headers), and the releases the APIs' own info endpoints reported in this store."""
    out: dict[str, dict] = {}
    for database, release, n in _tally(items, "database", "upstream_release"):
        if database is None:  # a no_tool item: no call, no release
            continue
        entry = out.setdefault(database, {"items_by_release": Counter(), "reported_by_api": []})
        entry["items_by_release"][release or "not reported"] += n
    rows = con.execute(
        "select url, body, transport, fetched_at from api_responses "
        "where outcome = 'ok' and body is not null and (url like '%/info/%' or url like '%einfo.fcgi%') "
        "order by fetched_at, url"
    ).fetchall()
    seen = set()
    for url, body, transport, fetched_at in rows:
        for pattern, database, parse in RELEASE_ENDPOINTS:
            if not pattern.search(url):
                continue
            try:
                releases = parse(gzip.decompress(body))
            except (OSError, ValueError, AttributeError):
                continue
            for release in releases:
                if (database, release, url) in seen:
                    continue
                seen.add((database, release, url))
                entry = out.setdefault(database, {"items_by_release": Counter(), "reported_by_api": []})
                entry["reported_by_api"].append(
                    {"release": release, "source": url, "transport": transport, "fetched_at": str(fetched_at)}
                )
    return {
        db: {"items_by_release": dict(sorted(e["items_by_release"].items())), "reported_by_api": e["reported_by_api"]}
        for db, e in sorted(out.items())
    }


def provenance(config: Config, con: duckdb.DuckDBPyConnection, items: pl.DataFrame) -> dict:
    """Who wrote, judged and reviewed the exported items (annotators counted, never named)."""

    def tally(counts: Counter) -> list[dict]:
        return [{"name": " / ".join(str(p) for p in k if p), "items": n} for k, n in sorted(counts.items(), key=str)]

    def writer(generator: str | None, model: str | None) -> tuple:
        if generator == "human_edit":
            return ("reviewer edit", "")
        return ("offline template generator" if generator == "template" else generator, model)

    writers: Counter = Counter()
    judged: Counter = Counter()
    prompts: dict[str, set] = {}
    for generator, model, prompt_version, n in _tally(items, "generator", "generator_model", "prompt_version"):
        writers[writer(generator, model)] += n
        prompts.setdefault(" / ".join(p for p in writer(generator, model) if p), set()).add(prompt_version)
    for judge, model, verdict, n in _tally(items, "judge", "judge_model", "judge_verdict"):
        judged[(judge or "no judgment", model or "", verdict or "")] += n
    as_is = int((items["text_query_id"] == items["item_id"]).sum())
    generators = tally(writers)
    for g in generators:
        g["prompt_versions"] = len(prompts[g["name"]])
    judges = tally(judged)
    con.register("_ids", items.select(pl.col("item_id").alias("query_id")))
    try:
        annotators, annotations = con.execute(
            "select count(distinct annotator), count(*) from latest_annotations "
            "where query_id in (select query_id from _ids)"
        ).fetchall()[0]
        multi, agreeing = con.execute(
            "select count(*), count(*) filter (where not conflicting) from review_resolution "
            "where annotations >= 2 and query_id in (select query_id from _ids)"
        ).fetchall()[0]
        all_multi, all_agreeing, all_annotators = con.execute(
            "select count(*) filter (where annotations >= 2), "
            "count(*) filter (where annotations >= 2 and not conflicting), "
            "(select count(distinct annotator) from annotations) from review_resolution"
        ).fetchall()[0]
    finally:
        con.unregister("_ids")
    return {
        "generators": generators,
        "judges": judges,
        "review": {
            "rule": config.review.resolve,
            "annotators": annotators,
            "annotations": annotations,
            "accepted_as_is": as_is,
            "accepted_with_edited_question": items.height - as_is,
            "multi_annotated": multi,
            "agreement": round(agreeing / multi, 4) if multi else None,
            "all_reviewed": {
                "annotators": all_annotators,
                "multi_annotated": all_multi,
                "agreement": round(all_agreeing / all_multi, 4) if all_multi else None,
            },
        },
    }


# ---------------------------------------------------------------------------------------------
# The card


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _format_rows() -> list[tuple[str, str]]:
    """The file table's row of each export format (its files per split, and its other files)."""
    return [(", ".join(f"`{rel}`" for rel in fmt.paths()), fmt.about) for fmt in FORMATS.values()]


# What each response_provenance label means, for the card (the labels: the response_provenance view).
RESPONSE_KINDS = {
    "live": "fetched from the API by this pipeline",
    "recorded": "recorded from the live API earlier (`record` mode), replayed from the snapshot",
    "fixture": "a real API response another project kept as a test fixture, replayed from the snapshot",
    "illustrative": "hand-written in the API's format, not recorded from the API: an example of shape, not data",
    "unknown": "replayed from a store made before responses kept their origin: not known",
    "no call": "a no_tool item: its answer is not to call a tool, so there is no response",
}
REVIEWERS = {
    "human": "accepted by a person in Label Studio",
    "script": "accepted only by a scripted reviewer (`review.scripted_annotators`, e.g. the demo reviewer)",
    "unknown": "accepted by a Label Studio user the store could not name",
}


def _notices(c: dict) -> list[str]:
    """The card's first lines when not every item was reviewed by a person or recorded from an API."""
    items, reviewed, responses = c["items"], c["reviewed_by"], c["response_provenance"]
    out = []
    not_human = {k: n for k, n in reviewed.items() if k != "human"}
    if not_human:
        parts = ", ".join(f"{n} {REVIEWERS[k].removeprefix('accepted ')}" for k, n in not_human.items())
        none = sum(not_human.values()) == items
        out.append(
            f"> **{'No' if none else 'Not every'} item was reviewed by a person.** "
            f"{sum(not_human.values())} of {items} items were "
            f"not accepted by a human reviewer: {parts}. Column `reviewed_by` (Parquet, ShareGPT) says which; "
            "keep `reviewed_by = 'human'` for human-verified items only."
        )
    not_api = {k: n for k, n in responses.items() if k in ("illustrative", "unknown")}
    if not_api:
        out.append(
            "> **Not every observation comes from a real API response.** "
            + ", ".join(f"{n} of {items} items: {k} ({RESPONSE_KINDS[k]})" for k, n in not_api.items())
            + ". Column `response_provenance` (Parquet, ShareGPT) says which; drop `illustrative` to train "
            "or evaluate on real responses only."
        )
    return [line for notice in out for line in (notice, "")]


def dataset_card(manifest: dict) -> str:
    m, c = manifest, manifest["counts"]
    all_human = set(c["reviewed_by"]) == {"human"}
    some_human = "human" in c["reviewed_by"]
    prov, review = m["provenance"], m["provenance"]["review"]
    split_rows = [
        (
            s,
            c["by_split"][s]["items"],
            c["by_split"][s]["groups"],
            c["by_split"][s]["calls"],
            len(c["by_split"][s]["tools"]),
        )
        for s in SPLITS
    ]
    agreement = (
        "n/a (no item had two annotations)"
        if review["agreement"] is None
        else f"{review['agreement']:.0%} of {review['multi_annotated']} items"
    )
    changes = m["changes"]
    lines = [
        f"# biocurate dataset {m['version_id']}",
        "",
        *_notices(c),
        ("Human-verified b" if all_human else "B")
        + "iomedical tool-calling data: natural-language questions paired with the NCBI, "
        "Ensembl or UniProt API call that answers them and a compact observation of the API's response. "
        + (
            "Every item was accepted by a human reviewer in Label Studio."
            if all_human
            else "Every item was accepted in review in Label Studio, "
            + ("not every one by a person (see above)." if some_human else "none by a person (see above).")
        ),
        "",
        f"- version: {m['version_id']} (parent: {m['parent'] or 'none'}; created {m['created_at']})",
        f"- items: {c['items']} in {c['groups']} groups, {c['calls']} distinct calls, "
        f"{len(c['functions'])} functions, {len(c['tools'])} tools, {len(c['databases'])} databases",
        f"- since the parent: {changes['added']} added, {changes['removed']} removed, {changes['changed']} changed",
        f"- code version {m['code_version']}, config hash {m['config_hash']}, content hash {m['content_hash']}",
        "",
        "## Files",
        "",
        *_table(
            ("path", "what"),
            [
                *_format_rows(),
                ("`manifest.json`", "counts, sha256 of every file, parent, config, upstream releases, provenance"),
                ("`plots/*.png`", "the distributions below"),
            ],
        ),
        "",
        "A split without items has no files.",
        "",
        "## Splits",
        "",
        f"Ratios train/validation/test {m['splits']['ratios']['train']}/{m['splits']['ratios']['validation']}/"
        f"{m['splits']['ratios']['test']}, grouped by **{m['splits']['group_by']}** (no group is in two splits), "
        + ("stratified by database and tool. " if m["splits"]["stratify"] else "assigned by hash of the group key. ")
        + "An item keeps its split in every later version; new groups are assigned once, deterministically "
        f"(seed `{m['splits']['seed']}`). In this version {m['splits']['inherited_items']} items kept or inherited an "
        f"earlier split and {m['splits']['new_groups']} groups were new.",
        "",
        *_table(("split", "items", "groups", "calls", "tools"), split_rows),
        "",
        "![items per split](plots/split.png)",
        "",
        "## Distributions",
        "",
        "![items per database](plots/database.png)",
        "",
        "![items per tool](plots/tool.png)",
        "",
        "![items per category](plots/category.png)",
        "",
        *_table(("database", "items"), list(c["databases"].items())),
        "",
        "Items per kind (docs/item_kinds.md: `single` is one call, `parallel` several independent calls in "
        "one turn, `multi_step` a chain in which a later call's argument comes from an earlier call's "
        "observation, `no_tool` a question no offered tool answers, answered without a call):",
        "",
        *_table(
            ("kind", *SPLITS, "items"),
            [(k, *(c["by_split"][s]["kinds"].get(k, 0) for s in SPLITS), n) for k, n in c["kinds"].items()],
        ),
        "",
        *_table(("category", "items"), list(c["categories"].items())),
        "",
        "## Provenance",
        "",
        "Questions were written by:",
        "",
        *_table(
            ("generator / model", "prompt versions", "items"),
            [(g["name"], g["prompt_versions"], g["items"]) for g in prov["generators"]],
        ),
        "",
        "Judged (before human review) by:",
        "",
        *_table(("judge / model / verdict", "items"), [(j["name"], j["items"]) for j in prov["judges"]]),
        "",
        "Reviewed by (column `reviewed_by`):",
        "",
        *_table(("reviewed by", "what", "items"), [(k, REVIEWERS[k], n) for k, n in c["reviewed_by"].items()]),
        "",
        f"Review (rule `{review['rule']}`): annotators: {review['annotators']}, annotations on these "
        f"items: {review['annotations']}; {review['accepted_as_is']} accepted as written, "
        f"{review['accepted_with_edited_question']} with a reviewer's edited question (re-checked by the "
        f"quality suite). Agreement on items with two or more annotations: {agreement}.",
        "",
        "Observations are compact summaries built from the stored raw API responses, which came from "
        "(column `response_provenance`):",
        "",
        *_table(
            ("response", "what", "items"),
            [(k, RESPONSE_KINDS[k], n) for k, n in c["response_provenance"].items()],
        ),
        "",
        "Upstream releases (from the APIs' headers at execute time, and from their info endpoints):",
        "",
        *_table(
            ("database", "items by release", "reported by the API"),
            [
                (
                    db,
                    ", ".join(f"{k}: {v}" for k, v in e["items_by_release"].items()),
                    ", ".join(sorted({r["release"] for r in e["reported_by_api"]})) or "-",
                )
                for db, e in m["upstream_releases"].items()
            ],
        ),
        "",
        "## Not exported",
        "",
        "Queries that were not exported, and why:",
        "",
        *(_table(("reason", "queries"), list(m["not_exported"].items())) if m["not_exported"] else ["none"]),
        "",
        "## Limitations",
        "",
        "- Each item is one question and its call(s) (or, for `no_tool`, the answer that no tool applies). "
        "The ShareGPT and OpenAI records end with the (last) call, the reviewed unit; a multi_step item "
        "holds the observations its later calls were built from; the observations are kept in the BioTool "
        "and Parquet files (column `calls` has every call with its observation), but no natural-language "
        "answer to the question was written or reviewed, so none is included.",
        "- BioTool's record holds one call: `biotool/<split>.json` and BioTool's own files hold the single "
        "items; the other kinds are in the extension `biotool/item_kinds/<split>.json` (records `user_query`, "
        "`kind`, `calls` (each a BioTool record's `function_calling`, `observation`, `database`, `tool`, and "
        "`depends_on`), `answer`), which BioTool's scripts do not read.",
        "- Distractor tools in the ShareGPT/OpenAI records are drawn deterministically, from the same "
        "database first; they are plausible alternatives, not proven wrong answers.",
        "- Questions from the offline template generator are less varied than human or LLM questions.",
        "- Upstream databases change every release; an observation reflects the release it was fetched "
        'from ("not reported" when the API did not say). Responses replayed from a snapshot may be '
        "illustrative bodies (`response_provenance = 'illustrative'`; the snapshot's index says what each "
        "is based on).",
        "- Coverage follows the sampling quotas and seed lists, not the real-world frequency of questions.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("json", data_files={"train": "biotool/train.json"})',
        'pq = load_dataset("parquet", data_files={"test": "parquet/test.parquet"})',
        "```",
        "",
        "LLaMA-Factory: copy `sharegpt/` into your `dataset_dir` (or point `dataset_dir` at it) and use "
        f"`dataset: biocurate_{m['version_id']}_train`. OpenAI: upload `openai/train.jsonl` as a fine-tuning file.",
    ]
    return "\n".join(lines) + "\n"
