"""Quality stage speed: run_quality on N synthetic questions, against N/10 in the same process.

Questions are spread over a few Ensembl, NCBI and UniProt functions with distinct identifiers,
about 2% break a rule and about 1% are paraphrases of another question. Prints the seconds of
the whole stage (GX suites, duplicates, balance, qc_results, Data Docs) and of the duplicate
search alone at both sizes, and their ratios: linear work gives a ratio near 10, all-pairs
work near 100. Runs with nothing new, and with 200 new questions, show the cost of idle and small rebuilds.

    .venv/bin/python bench/quality.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from biocurate.config import load_config  # noqa: E402
from biocurate.hashing import content_hash  # noqa: E402
from biocurate.quality import run_quality  # noqa: E402
from biocurate.stages import catalog_for  # noqa: E402
from biocurate.store import Store, insert_new, utcnow  # noqa: E402

CALLS = [  # function, database, category, arguments(i), question templates
    (
        "lookup_by_symbol",
        "Ensembl",
        "genomics",
        lambda i: {"species": "homo_sapiens", "symbol": f"GENE{i}"},
        ["Which Ensembl gene has the human symbol {x}?", "Where is the human gene {x} annotated?"],
    ),
    (
        "get_taxonomy_id",
        "Ensembl",
        "general_biology",
        lambda i: {"id": str(9000 + i)},
        ["Which organism has the taxon ID {x}?", "What is the lineage of taxon {x}?"],
    ),
    (
        "get_uniprotkb_entry",
        "UniProt",
        "proteomics",
        lambda i: {"accession": f"Q{i:05d}"},
        ["What protein is the UniProt entry {x}?", "Is {x} a reviewed protein entry, and what is its name?"],
    ),
]
BREAKS = [
    lambda t, x: t.replace(x, x.lower()),
    lambda t, x: t + " Use the API.",
    lambda t, x: "{gene} " + t,
    lambda t, x: x,
]


def synthesize(con, n: int, seed: int = 7, start: int = 0) -> None:
    rng = random.Random(seed + start)
    t0 = utcnow() - timedelta(days=1)
    calls, responses, observations, queries, judgments = [], [], [], [], []
    for c in range(start, start + n // 2):
        function, database, category, make, templates = CALLS[c % len(CALLS)]
        args = make(c)
        x = next(iter(v for k, v in args.items() if k != "species"))
        call_id = content_hash("bench", function, args)
        calls.append(
            {
                "call_id": call_id,
                "function": function,
                "arguments": json.dumps(args),
                "template": "t",
                "database": database,
                "tool_group": "g",
                "category": category,
                "valid": True,
            }
        )
        responses.append(
            {
                "response_id": call_id,
                "call_id": call_id,
                "fingerprint": call_id,
                "method": "GET",
                "url": "u",
                "status_code": 200,
                "outcome": "ok",
                "transport": "replay",
                "fetched_at": t0,
            }
        )
        text = json.dumps({"id": x, "name": f"record {c}", "length": rng.randint(10, 9999)})
        observations.append(
            {
                "observation_id": call_id,
                "call_id": call_id,
                "response_id": call_id,
                "text": text,
                "builder": "json",
                "chars": len(text),
            }
        )
        for k, template in enumerate(templates):
            q = template.format(x=x)
            roll = rng.random()
            if roll < 0.02:
                q = BREAKS[rng.randrange(len(BREAKS))](q, x)
            elif roll < 0.03:
                q = " ".join(reversed(q.rstrip("?").split())) + "?"
            query_id = content_hash("bench", call_id, k, q)
            queries.append(
                {
                    "query_id": query_id,
                    "call_id": call_id,
                    "observation_id": call_id,
                    "text": q,
                    "style": "specific",
                    "generator": "template",
                    "model": "t",
                    "prompt_version": "v1",
                    "created_at": t0 + timedelta(microseconds=len(queries)),
                }
            )
            judgments.append(
                {
                    "judgment_id": query_id,
                    "query_id": query_id,
                    "judge": "rules",
                    "model": "rules-v1",
                    "prompt_version": "v1",
                    "verdict": "accept",
                    "score": 0.4 + 0.6 * rng.random(),
                    "reason": "r",
                    "created_at": t0,
                }
            )
    for table, rows in (
        ("candidate_calls", calls),
        ("api_responses", responses),
        ("observations", observations),
        ("queries", queries),
        ("judgments", judgments),
    ):
        insert_new(con, table, pl.DataFrame(rows, infer_schema_length=None))


def measure(n: int, tmp: Path) -> dict:
    config = load_config(
        ROOT / "biocurate.toml",
        overrides={"store.path": str(tmp / f"q{n}.duckdb"), "quality.data_docs_dir": str(tmp / f"docs{n}")},
    )
    catalog = catalog_for(config)
    with Store(config.store.path).open() as con:
        synthesize(con, n)
        started = time.perf_counter()
        summary = run_quality(config, con, catalog, "bench")
        stage_seconds = time.perf_counter() - started
        # the duplicate search: its keys (made with each chunk) and the search itself
        dup_seconds = summary.seconds.get("duplicate keys", 0.0) + summary.seconds["duplicate search"]
        started = time.perf_counter()
        run_quality(config, con, catalog, "bench-idle")
        idle_seconds = time.perf_counter() - started
        synthesize(con, 200, start=n)  # a small rebuild: 200 new questions against the store
        started = time.perf_counter()
        run_quality(config, con, catalog, "bench-small")
        small_seconds = time.perf_counter() - started
        qc_rows = con.execute("select count(*) from qc_results").fetchall()[0][0]
    return {
        "rows": n,
        "stage": stage_seconds,
        "duplicates": dup_seconds,
        "idle": idle_seconds,
        "small": small_seconds,
        "phases": summary.seconds,
        "survivors": summary.survivors,
        "qc_rows": qc_rows,
        "blocking failures": sum(summary.failing.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        import great_expectations  # noqa: F401  (import once, outside the timings: ~3 s)

        small = measure(args.rows // 10, Path(tmp))
        large = measure(args.rows, Path(tmp))
    for r in (small, large):
        print(
            f"{r['rows']:>7} questions: quality stage {r['stage']:.2f} s (duplicate search {r['duplicates']:.2f} s), "
            f"idle re-run {r['idle']:.2f} s, 200 new questions {r['small']:.2f} s; "
            f"{r['qc_rows']} qc_results rows, {r['survivors']} survivors, "
            f"{r['blocking failures']} blocking failures"
        )
        print("   phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items()))
    print(
        f"ratio x{args.rows // (args.rows // 10)} rows: stage {large['stage'] / small['stage']:.1f}x, "
        f"duplicate search {large['duplicates'] / small['duplicates']:.1f}x (linear ~10x, all pairs ~100x)"
    )


if __name__ == "__main__":
    main()
