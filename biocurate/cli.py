"""The `biocurate` command line: a thin layer over the library; each docstring is its --help.

One module (over 400 lines) on purpose: it is the table of commands, each a few lines that load
the config, call the library and print. Commands that write the store run as jobs (job lock,
a recorded run: ``biocurate.jobs``); every command prints the errors a person can act on as one
line (``one_line_errors``).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from biocurate.config import load_config, mask_secrets, masked
from biocurate.errors import BiocurateError
from biocurate.log import output_console
from biocurate.prefect_env import prefect_env

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Build and keep rebuilding a human-verified biomedical tool-calling dataset.",
)
review_app = typer.Typer(no_args_is_help=True, help="Human verification in Label Studio: push, pull, status.")
app.add_typer(review_app, name="review")
console = output_console()
ConfigOpt = typer.Option(None, "--config", "-c", help="Config file (default: biocurate.toml or $BIOCURATE_CONFIG).")


def fail(exc: Exception) -> None:
    """The error as one line (however long), secrets masked, brackets printed as they are."""
    console.print(f"[bold red]error:[/bold red] {escape(mask_secrets(str(exc)))}", soft_wrap=True)
    raise typer.Exit(2)


def one_line_errors(command):
    """A command's errors a person can act on (a bad config, a missing file, a busy store) as one
    line, not a traceback; installed on every command at the end of this module."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (BiocurateError, OSError) as exc:
            fail(exc)

    return wrapper


def preflight(cfg) -> None:
    """Check what a job's first stage would trip over, before Prefect starts a flow run."""
    from biocurate.catalog import load_catalog

    load_catalog(cfg.folder("sample.catalog_dir"))


def run_command_job(cfg, job: str, **options):
    """A CLI job of one registered stage: under the job lock, recorded in ``runs``; its report."""
    from biocurate.jobs import job_run
    from biocurate.stages import run_stage

    preflight(cfg)
    # Waits a little for a job on the same resource (a review push for the rebuild's review stage).
    with job_run(cfg, job, lock_wait=cfg.store.lock_wait_seconds) as run:
        report = run_stage(job, cfg, run.run_id, **options)
        run.reports.append(report.as_dict())
    if run.stale_note():
        console.print(run.stale_note())
    exit_unless_completed(run.run_id, run.status, run.fixes)
    return report


def exit_unless_completed(run_id: str, status: str, fixes: list[str]) -> None:
    """A run that ended degraded or failed exits 1, after saying what to fix (a job's summary
    already printed it; a one-stage CLI job prints it here)."""
    if status == "completed":
        return
    for fix in fixes:
        console.print(f"[bold red]run {run_id} {status}:[/bold red] {escape(fix)}", soft_wrap=True)
    raise typer.Exit(1)


def exit_for_run(state) -> None:
    """The exit of a job run through Prefect (``flows``, its final state): 1 unless its run completed."""
    from flows.run import job_result

    if job_result(state).get("status", "completed") != "completed":
        raise typer.Exit(1)


def print_rows(columns: list[str], rows: list, fmt: str = "table", title: str | None = None) -> None:
    if fmt == "json":
        typer.echo(json.dumps([dict(zip(columns, r, strict=False)) for r in rows], default=str, indent=1))
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        table = Table(title=title)
        for c in columns:
            table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*("" if v is None else str(v) for v in r))
        console.print(table)


@app.command()
def rebuild(
    config: Path | None = ConfigOpt,
    transport: str | None = typer.Option(None, help="Override [execute] transport: live, record or replay."),
    stage: list[str] | None = typer.Option(None, "--stage", help="Run only these stages (repeatable)."),
) -> None:
    """Run the rebuild flow (sample, execute, discover, synthesize, judge, quality, review push) as a Prefect run."""
    prefect_env()
    overrides = {"execute.transport": transport} if transport else None
    from biocurate.lock import refuse_if_busy
    from biocurate.stages import job_stages

    # Fail fast, before Prefect starts: a bad config or stage, or another job holding the store.
    cfg = load_config(config, overrides)
    job_stages("rebuild", stage)
    preflight(cfg)
    refuse_if_busy(cfg, "rebuild")
    from flows.rebuild import rebuild as rebuild_flow

    path = str(config) if config else None
    exit_for_run(rebuild_flow(config_path=path, overrides=overrides, stages=stage, return_state=True))


@app.command()
def status(config: Path | None = ConfigOpt) -> None:
    """Show row counts per stage table and per run, and the latest runs."""
    from biocurate.store import STAGE_TABLES, Store

    cfg = load_config(config)
    with Store.of(cfg).open(read_only=True) as con:
        rows = [(t, con.execute(f"select count(*) from {t}").fetchall()[0][0]) for t in STAGE_TABLES]
        print_rows(["table", "rows"], rows, title=f"store {cfg.path(cfg.store.path)}")
        per_run = con.execute("select run_id, stage, rows from stage_counts order by run_id desc, stage").fetchall()
        print_rows(["run", "stage", "rows first written"], per_run, title="rows by the run that wrote them")
        runs = con.execute(
            "select run_id, flow, status, started_at, finished_at, config_hash, code_version "
            "from runs order by started_at desc limit 10"
        ).fetchall()
        print_rows(["run", "flow", "status", "started", "finished", "config", "code"], runs, title="latest runs")


@app.command()
def sql(
    query: str = typer.Argument(..., help="SQL text, or a path to a .sql file."),
    config: Path | None = ConfigOpt,
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    parquet: Path | None = typer.Option(None, help="Query an exported version's Parquet files instead of the store."),
) -> None:
    """Run a read-only SQL query (or .sql file) against the store: no writes, no other files, no extensions."""
    from biocurate.readonly_sql import console as sql_console
    from biocurate.readonly_sql import run

    text = Path(query).read_text() if query.endswith(".sql") and Path(query).exists() else query
    if parquet:  # one version's Parquet files; the store is not opened
        store, memory_limit = None, None
    else:
        cfg = load_config(config)
        store, memory_limit = cfg.path(cfg.store.path), cfg.store.memory_limit
    with sql_console(store, parquet, memory_limit) as con:
        result = run(con, text)
    if result is not None:
        print_rows(*result, fmt)


seeds_app = typer.Typer(no_args_is_help=True, help="Seed entity lists in data/seeds/: check them.")
app.add_typer(seeds_app, name="seeds")


@seeds_app.command("validate")
def seeds_validate(config: Path | None = ConfigOpt) -> None:
    """Check every seed file against its entity type's schema; report bad rows as file:line: reason."""
    from biocurate.seeds import load_seeds

    cfg = load_config(config)
    result = load_seeds(cfg.folder("sample.seeds_dir"), cfg.folder("sample.catalog_dir"))
    counts: dict[str, int] = {}
    for entity in result.entities:
        counts[entity["entity_type"]] = counts.get(entity["entity_type"], 0) + 1
    print_rows(["entity type", "valid rows"], sorted(counts.items()), title="seed entities")
    for problem in result.problems:
        console.print(f"[red]{escape(str(problem))}[/red]", soft_wrap=True)
    if result.problems:
        console.print(f"{len(result.problems)} bad row(s); the valid rows are still used by rebuilds")
        raise typer.Exit(1)


@app.command()
def sample(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print the planned distribution; write nothing."),
    config: Path | None = ConfigOpt,
) -> None:
    """Plan candidate calls from seeds and the quota config; print the distribution per database, tool, function and
    category.
    """
    import polars as pl

    from biocurate.catalog import load_catalog
    from biocurate.sampling import sample_calls
    from biocurate.seeds import load_seeds, species_table

    cfg = load_config(config)
    catalog_dir = cfg.folder("sample.catalog_dir")
    seeds = load_seeds(cfg.folder("sample.seeds_dir"), catalog_dir)
    entities = seeds.entities
    if cfg.sample.use_discovered and cfg.path(cfg.store.path).exists():
        from biocurate.discovery import discovered_entities, merge_entities
        from biocurate.store import Store

        with Store.of(cfg).open(read_only=True) as con:
            entities = merge_entities(entities, discovered_entities(con))
    result = sample_calls(load_catalog(catalog_dir), entities, species_table(catalog_dir), cfg.sample)
    frame = pl.DataFrame(
        [{k: c[k] for k in ("database", "tool_group", "category", "function", "valid")} for c in result.calls]
    )
    for by in (["database"], ["category"], ["database", "tool_group"], ["database", "tool_group", "function"]):
        table = frame.group_by(by).agg(pl.len().alias("calls"), pl.col("valid").sum().alias("valid")).sort(by)
        print_rows(table.columns, table.rows(), title=f"planned calls by {', '.join(by)}")
    for problem in seeds.problems:
        console.print(f"[yellow]bad seed row[/yellow] {escape(str(problem))}", soft_wrap=True)
    if not dry_run:
        from biocurate.lock import refuse_if_busy

        refuse_if_busy(cfg, "rebuild")
        prefect_env()
        from flows.rebuild import rebuild as rebuild_flow

        exit_for_run(rebuild_flow(config_path=str(config) if config else None, stages=["sample"], return_state=True))


@app.command("config")
def show_config(config: Path | None = ConfigOpt) -> None:
    """Show the effective configuration (file + defaults + environment), secrets masked."""
    cfg = load_config(config)
    typer.echo(json.dumps(masked(cfg), indent=2, default=str))


@app.command()
def tools(
    source: str | None = typer.Option(None, help="Only this source: ncbi, ensembl or uniprot."),
    group: str | None = typer.Option(None, help="Only this tool group."),
    show: str | None = typer.Option(None, help="Print one function's JSON schema."),
    coverage: bool = typer.Option(False, help="Report coverage against the published BioTool function list."),
    config: Path | None = ConfigOpt,
) -> None:
    """List the tool catalog, show a function's schema, or report coverage of the published functions."""
    from biocurate.catalog import load_catalog, published_functions

    cfg = load_config(config)
    catalog = load_catalog(cfg.folder("sample.catalog_dir"))
    if show:
        typer.echo(json.dumps(catalog[show].schema(), indent=2))
        return
    if coverage:
        published = published_functions(cfg.path(cfg.sample.catalog_dir))
        missing = sorted(set(published) - set(catalog.tools))
        typer.echo(f"{len(published) - len(missing)}/{len(published)} published functions present")
        for name in missing:
            typer.echo(f"  missing: {name} ({published[name]})")
        published_items_report(cfg, sorted(catalog.tools))
        if missing:
            raise typer.Exit(1)
        return
    rows = [
        (t.source, t.group, t.name, t.function.method, t.category, t.function.description)
        for t in sorted(catalog, key=lambda t: (t.source, t.group, t.name))
        if (not source or t.source == source) and (not group or t.group == group)
    ]
    print_rows(
        ["source", "group", "function", "method", "category", "description"], rows, title=f"{len(rows)} functions"
    )


def published_items_report(cfg, functions: list[str]) -> None:
    """Items per catalog function in the latest published version (view published_coverage), naming those with none."""
    from biocurate.store import Store

    store = Store.of(cfg)
    if not store.path.exists():
        typer.echo(f"no store at {store.path}: no published version to report items for")
        return
    import duckdb

    with store.open(read_only=True) as con:
        try:
            rows = con.execute(
                "select version_id, function, items, calls, test_items from published_coverage"
            ).fetchall()
        except duckdb.CatalogException:
            typer.echo(
                f"{store.path} predates the published_coverage view: a writing command (rebuild, publish) adds it"
            )
            return
    if not rows:
        typer.echo("no published version yet: run `biocurate publish`")
        return
    counts = {function: (items, calls, test) for _, function, items, calls, test in rows}
    print_rows(
        ["function", "items", "calls", "test items"],
        [(f, *counts.get(f, (0, 0, 0))) for f in functions],
        title=f"items per function in published version {rows[0][0]}",
    )
    none = [f for f in functions if f not in counts]
    typer.echo(f"{len(functions) - len(none)}/{len(functions)} functions have items in version {rows[0][0]}")
    for name in none:
        typer.echo(f"  no published items: {name}")


def sync_review(config: Path | None, direction: str) -> None:
    """`review push` or `review pull` as a job (job lock, a recorded run); print its counts."""
    cfg = load_config(config)
    counts = run_command_job(cfg, f"review_{direction}", strict=True).detail
    print_rows(list(counts), [list(counts.values())], title=f"review {direction}")


@review_app.command("push")
def review_push(config: Path | None = ConfigOpt) -> None:
    """Push quality-checked survivors to Label Studio (idempotent: no duplicate tasks)."""
    sync_review(config, "push")


@review_app.command("pull")
def review_pull(config: Path | None = ConfigOpt) -> None:
    """Pull new and updated annotations from Label Studio into the store."""
    sync_review(config, "pull")


@review_app.command("status")
def review_status(config: Path | None = ConfigOpt) -> None:
    """Review counts by state (pending, accepted, rejected, edited, conflicting), annotator and tool."""
    from biocurate import review
    from biocurate.store import Store

    cfg = load_config(config)
    with Store.of(cfg).open(read_only=True) as con:
        tables = review.status(cfg, con)
    for title, table in tables.items():
        if isinstance(table, str):  # the resolution rule
            console.print(f"{title}: {table}")
            continue
        rows = table if isinstance(table, list) else list(table.items())
        if rows and isinstance(rows[0], dict):
            print_rows(list(rows[0]), [list(r.values()) for r in rows], title=title)
        else:
            print_rows(["key", "count"], rows, title=title)


@app.command()
def publish(
    config: Path | None = ConfigOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report what would be published; write nothing."),
) -> None:
    """Publish human-accepted items as a new immutable dataset version (splits, formats, manifest, card)."""
    from biocurate.publish import publish as publish_version
    from biocurate.store import Store

    cfg = load_config(config)
    if dry_run:  # writes nothing: no lock, no run
        preflight(cfg)
        with Store.of(cfg).open() as con:
            result = publish_version(cfg, con, dry_run=True)
    else:
        result = run_command_job(cfg, "publish").detail
    console.print(result.message)
    if result.counts:
        print_rows(["split", "items"], list(result.counts["splits"].items()), title="items per split")
    if result.changes:
        print_rows(list(result.changes), [list(result.changes.values())], title="since the parent version")
    if result.refused:
        print_rows(["reason", "queries"], list(result.refused.items()), title="not exported")


@app.command()
def diff(
    a: str = typer.Argument(..., help="The older version: an id such as v0001, or a version folder."),
    b: str = typer.Argument(..., help="The newer version: an id, or a version folder."),
    config: Path | None = ConfigOpt,
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    limit: int = typer.Option(20, help="Rows shown per table (json shows all)."),
) -> None:
    """Show the items added, removed and changed between two dataset versions."""
    from biocurate.publish import diff_versions
    from biocurate.publish.diff import names_a_stored_version
    from biocurate.store import Store

    if not (names_a_stored_version(a) or names_a_stored_version(b)):
        result = diff_versions(None, a, b)  # two paths: no store needed
    else:
        cfg = load_config(config)
        with Store.of(cfg).open(read_only=True) as con:
            result = diff_versions(con, a, b)
    if fmt == "json":
        typer.echo(
            json.dumps(
                {
                    "a": a,
                    "b": b,
                    **result.summary(),
                    "items": {"added": result.added, "removed": result.removed, "changed": result.changed},
                },
                indent=1,
                default=str,
            )
        )
        return
    print_rows(["added", "removed", "changed"], [list(result.summary().values())], title=f"{a} -> {b}")
    for title, rows in (("added", result.added), ("removed", result.removed)):
        if rows:
            print_rows(
                ["item", "split", "tool", "user_query"],
                [(r["item_id"], r["split"], r["tool"], r["user_query"]) for r in rows[:limit]],
                title=f"{title} ({len(rows)}, first {min(limit, len(rows))})",
            )
    if result.changed:
        print_rows(
            ["item", "field", "before", "after"],
            [
                (c["item_id"], f, str(c["before"][f])[:80], str(c["after"][f])[:80])
                for c in result.changed[:limit]
                for f in c["fields"]
            ],
            title=f"changed ({len(result.changed)}, first {min(limit, len(result.changed))})",
        )


qc_app = typer.Typer(
    no_args_is_help=True, help="Quality checks (Great Expectations): what passed, what failed and why."
)
app.add_typer(qc_app, name="qc")


@qc_app.command("report")
def qc_report(
    config: Path | None = ConfigOpt,
    top: int = typer.Option(10, help="How many rejection reasons to show."),
    examples: int = typer.Option(3, help="Example rows per rejection reason."),
) -> None:
    """Print pass/fail per expectation (latest QC configuration) and the top rejection reasons with examples."""
    from biocurate.quality_report import expectation_table, top_rejections
    from biocurate.store import Store

    cfg = load_config(config)
    with Store.of(cfg).open(read_only=True) as con:
        table = expectation_table(con)
        reasons = top_rejections(con, limit=top, examples=examples)
    if not table:
        console.print("no quality results yet: run `biocurate rebuild` first")
        return
    print_rows(list(table[0]), [list(r.values()) for r in table], title="quality checks: pass/fail per expectation")
    rows = [
        (
            f"{r['suite']}.{r['expectation']}",
            r["severity"],
            r["items_failing"],
            e["item_id"],
            e["text"] or "",
            e["reason"],
        )
        for r in reasons
        for e in r["examples"]
    ]
    print_rows(
        ["expectation", "severity", "failing", "example item", "question", "reason"],
        rows,
        title="top rejection reasons, with examples",
    )
    console.print(f"Data Docs: {cfg.path(cfg.quality.data_docs_dir) / 'index.html'}")


import_app = typer.Typer(no_args_is_help=True, help="Bring datasets made elsewhere into the store: BioTool's.")
app.add_typer(import_app, name="import")


@import_app.command("biotool")
def import_biotool(
    paths: list[Path] = typer.Argument(
        ...,
        help="BioTool.json, BioTool_train.json, BioTool_test.json, any file in "
        "their formats (.json or .jsonl), or a folder of them.",
    ),
    config: Path | None = ConfigOpt,
) -> None:
    """Import BioTool's dataset (its record and ShareGPT files) into the store: each record becomes a candidate call, a
    question (generator biotool-import, with its split) and the observation BioTool published, with its provenance;
    malformed records are reported by file and record number; importing again adds nothing.
    """
    from biocurate.biotool_files import dataset_files

    cfg = load_config(config)
    preflight(cfg)
    dataset_files(paths)  # a missing path is an error before the job starts
    result = run_command_job(cfg, "biotool_import", paths=tuple(str(p) for p in paths)).detail
    for problem in result.problems:
        console.print(f"[yellow]malformed[/yellow] {problem}", soft_wrap=True)
    for skipped in (f for f in result.files if f.skipped):
        console.print(f"skipped {skipped.file}: {skipped.skipped}", soft_wrap=True)
    print_rows(
        ["file", "format", "split", "records", "new", "malformed", "call rejected", "no observation"],
        [
            (f.file, f.format, f.split or "", f.records, f.new, f.malformed, f.rejected, f.without_observation)
            for f in result.files
            if not f.skipped
        ],
        title="BioTool import",
    )
    print_rows(["table", "rows added"], list(result.new_rows.items()), title="rows added to the store")
    if result.revalidated:
        console.print(f"{result.revalidated} imported calls re-validated against the current catalog")
    console.print(
        "next: `biocurate rebuild` executes the imported calls and compares our answers with "
        "BioTool's; then `biocurate audit`"
    )


@app.command()
def audit(
    config: Path | None = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the whole audit as JSON (every row, not examples)."),
    examples: int = typer.Option(3, help="Example questions per quality rule in the tables."),
) -> None:
    """Audit imported BioTool data: records per file and the malformed ones, calls the catalog rejects, calls that no
    longer answer or whose answer changed, questions failing each quality rule, and calls shared between BioTool's
    train and test split.
    """
    from biocurate.audit import audit_report, render
    from biocurate.store import Store

    cfg = load_config(config)
    with Store.of(cfg).open(read_only=True) as con:
        report = audit_report(con)
    if as_json:
        typer.echo(json.dumps(report, indent=1, default=str))
        return
    render(report, console, examples)


eval_app = typer.Typer(
    no_args_is_help=True, help="Score tool-calling models, or the retrieval baseline, on a published version."
)
app.add_typer(eval_app, name="eval")


@eval_app.command("run")
def eval_run(
    version: str = typer.Option(..., "--version", help="The published version: an id such as v0001, or its folder."),
    model: str | None = typer.Option(None, help="Model name sent to the OpenAI-compatible endpoint."),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="Chat completions endpoint root, e.g. http://127.0.0.1:8000/v1 (default: https://api.openai.com/v1).",
    ),
    baseline: str | None = typer.Option(None, help="Score a baseline instead of a model: retrieval (offline)."),
    all_tools: bool = typer.Option(
        False, "--all-tools", help="Offer every catalog tool, not the export's gold tool plus distractors."
    ),
    split: str = typer.Option("test", help="The split scored: test or validation."),
    label: str | None = typer.Option(None, help="A name for the run in reports (default: the model)."),
    embedder: str = typer.Option(
        "minilm", help="Response similarity: minilm (all-MiniLM-L6-v2, the eval extra) or lexical."
    ),
    temperature: float = typer.Option(0.0, help="Sampling temperature sent to the model."),
    max_concurrency: int = typer.Option(4, help="Requests to the model in flight at once."),
    requests_per_second: float = typer.Option(5.0, help="Request rate limit towards the model."),
    limit: int | None = typer.Option(None, help="Score only the first N items (by item id)."),
    transport: str | None = typer.Option(
        None, help="Override [execute] transport for predicted calls: live, record or replay."
    ),
    config: Path | None = ConfigOpt,
) -> None:
    """Score a model (OpenAI-compatible chat completions with tools) or the retrieval baseline on a published version's
    test split; every prediction and score goes to the store.
    """
    from biocurate.evaluate import EvalSettings, eval_api_key, model_config

    try:
        cfg = load_config(config, {"execute.transport": transport} if transport else None)
        settings = EvalSettings(
            split=split, tools_mode="catalog" if all_tools else "export", embedder=embedder, limit=limit
        )
        llm = (
            model_config(
                model,
                base_url,
                temperature=temperature,
                max_concurrency=max_concurrency,
                requests_per_second=requests_per_second,
            )
            if model
            else None
        )
        result = run_command_job(
            cfg,
            "eval",
            version_ref=version,
            settings=settings,
            llm=llm,
            api_key=eval_api_key(),
            baseline=baseline,
            label=label,
        ).detail
    except (BiocurateError, ValueError) as exc:
        fail(exc)
    print_rows(
        ["metric", "value", "ci low", "ci high", "n"],
        [
            (s["metric"], *(None if s[k] is None else round(s[k], 4) for k in ("value", "ci_low", "ci_high")), s["n"])
            for s in result.overall
        ],
        title=f"{result.label}: {result.items} items (run {result.run_id})",
    )
    by_db: dict[str, dict[str, dict]] = {}
    for s in result.by_database:
        by_db.setdefault(s["key"], {})[s["metric"]] = s
    print_rows(
        ["database", "items", "exact match", "name accuracy", "API success", "similarity"],
        [
            (
                db,
                m["exact_match"]["n"],
                *(
                    None if m[k]["value"] is None else round(m[k]["value"], 4)  # no_tool items: per-call metrics n/a
                    for k in ("exact_match", "name_accuracy", "api_success", "similarity")
                ),
            )
            for db, m in sorted(by_db.items())
        ],
        title="by database",
    )
    by_kind: dict[str, dict[str, dict]] = {}
    for s in result.by_kind:
        by_kind.setdefault(s["key"], {})[s["metric"]] = s
    print_rows(
        ["kind", "items", "exact match", "partial (call F1)", "call precision", "call recall"],
        [
            (
                kind,
                m["exact_match"]["n"],
                *(
                    None if m[k]["value"] is None else round(m[k]["value"], 4)
                    for k in ("exact_match", "call_f1", "call_precision", "call_recall")
                ),
            )
            for kind, m in sorted(by_kind.items())
        ],
        title="by item kind",
    )
    console.print(f"compare runs: biocurate eval report {result.run_id} [RUN...]")


@eval_app.command("report")
def eval_report(
    runs: list[str] = typer.Argument(..., help="Evaluation run ids (or unique prefixes) to compare."),
    out: Path | None = typer.Option(None, help="Folder for report.md and the plots (default: data/out/eval/<runs>)."),
    by: list[str] | None = typer.Option(
        None,
        "--by",
        help="Breakdowns shown (repeatable): database, category, tool, function (default: database and category).",
    ),
    config: Path | None = ConfigOpt,
) -> None:
    """Compare evaluation runs: print their scores side by side and write a Markdown report with PNG plots."""
    from biocurate.eval_report import default_report_dir, report
    from biocurate.store import Store

    cfg = load_config(config)
    with Store.of(cfg).open(read_only=True) as con:
        result = report(con, runs, out or default_report_dir(cfg, runs), tuple(by or ("database", "category")))
    labels = [r["label"] for r in result.runs]
    print_rows(["metric", *labels], result.overall, title="overall (value [confidence interval])")
    from biocurate.eval_report import KIND_HEADER

    print_rows(KIND_HEADER, result.by_kind, title="by item kind")
    for level, rows in result.by_level.items():
        print_rows(
            [level, "run", "exact match", "name accuracy", "API success", "similarity", "items"],
            rows,
            title=f"by {level}",
        )
    console.print(f"report: {result.path}")


@app.command()
def serve(
    config: Path | None = ConfigOpt,
    ephemeral: bool = typer.Option(
        False, help="Serve without a Prefect server: runs can be triggered by hand, but no schedule fires."
    ),
) -> None:
    """Serve the scheduled deployments (rebuild, review sync, drift check, publish) with the crons and parameters of
    the config's schedule section; schedules need a Prefect server (scripts/prefect_server.sh start).
    """
    import os

    prefect_env()
    load_config(config)  # fail fast on a bad config or schedule
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value() and not ephemeral:
        raise BiocurateError(
            "no Prefect server: PREFECT_API_URL is not set, and the ephemeral server Prefect would "
            "start creates no scheduled runs. Start one with scripts/prefect_server.sh start, export the "
            "PREFECT_API_URL line it prints, and run biocurate serve again (or pass --ephemeral to "
            "trigger runs by hand only)."
        )
    # `serve` must run under a __main__ guard (each flow run imports its flow's module afresh).
    os.execv(sys.executable, [sys.executable, "-m", "flows.serve", *(["--config", str(config)] if config else [])])


drift_app = typer.Typer(
    no_args_is_help=True, help="Drift watch: ask the published calls again, compare, send changes back to review."
)
app.add_typer(drift_app, name="drift")


@drift_app.command("check")
def drift_check(
    config: Path | None = ConfigOpt,
    sample_size: int | None = typer.Option(
        None, help="Calls to re-execute (default: drift.sample_size in the config; 0 = all)."
    ),
) -> None:
    """Re-execute the calls of the latest published version now (within the rate limits), record what changed, hold
    changed items out of publishing and send them back to review.
    """
    prefect_env()
    overrides = {"drift.sample_size": sample_size} if sample_size is not None else None
    from biocurate.lock import refuse_if_busy

    cfg = load_config(config, overrides)
    preflight(cfg)
    refuse_if_busy(cfg, "drift check")
    from flows.drift import drift as drift_flow

    exit_for_run(drift_flow(config_path=str(config) if config else None, overrides=overrides, return_state=True))


@drift_app.command("report")
def drift_report(
    config: Path | None = ConfigOpt,
    check: str | None = typer.Option(None, help="A check id (default: the latest check)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
) -> None:
    """Show a drift check: calls per status, the calls that changed or went away, and the published items held until
    they are reviewed again.
    """
    from biocurate import drift
    from biocurate.store import Store

    try:
        cfg = load_config(config)
        with Store.of(cfg).open(read_only=True) as con:
            found = drift.report(con, check)
    except KeyError:
        fail(BiocurateError(f"no drift check {check!r}: `biocurate drift report` lists the checks"))
    except (BiocurateError, FileNotFoundError) as exc:
        fail(exc)
    checks = found["checks"]
    columns = [
        "check_id",
        "version_id",
        "started_at",
        "finished_at",
        "calls_checked",
        "calls_in_version",
        "unchanged",
        "body_changed",
        "changed",
        "gone",
        "failed",
    ]
    if checks.is_empty():
        console.print("no drift check yet: run `biocurate drift check` (or serve the drift schedule)")
        return
    print_rows(columns, checks.select(columns).head(10).rows(), fmt, title="drift checks (latest first)")
    results = found["results"]
    print_rows(
        results.columns,
        results.rows(),
        fmt,
        title=f"check {found['check']['check_id']}: calls that did not answer as published",
    )
    holds = found["holds"]
    shown = ["query_id", "call_id", "reason", "check_id", "created_at"]
    print_rows(
        shown,
        holds.select(shown).rows() if not holds.is_empty() else [],
        fmt,
        title=f"{holds.height} published items held out of publishing until reviewed again",
    )


for _typer in (app, review_app, seeds_app, qc_app, eval_app, drift_app, import_app):
    for _command in _typer.registered_commands:
        _command.callback = one_line_errors(_command.callback)
