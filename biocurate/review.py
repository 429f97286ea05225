"""Human review in Label Studio: push survivors as tasks, pull annotations back, resolve verdicts.

Label Studio runs in its own virtualenv (``scripts/label_studio.sh``) and is reached only through
label-studio-sdk over HTTP. The server is the truth about which tasks exist: re-importing the
same task duplicates it, so every task carries ``data.ext_id = query_id`` and ``push`` reads the
server's ext_ids before importing. That also heals a crash between an import and its record in
``review_tasks``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import duckdb
import httpx
import polars as pl

from biocurate.config import SECRET_ENV, Config, secret
from biocurate.errors import ReviewError
from biocurate.hashing import content_hash
from biocurate.review_view import instructions_html, task_data
from biocurate.store import insert_new, release, upsert, utcnow

VERDICTS = ("accept", "reject", "accept_with_edit")
STATE_OF_VERDICT = {"accept": "accepted", "reject": "rejected", "accept_with_edit": "edited"}
START_HINT = "start it with scripts/label_studio.sh start (or set review.url in biocurate.toml)"

# Survivors with their call, observation and latest judgment, and the review priority: the judge's
# least-sure items (score near 0.5, or verdict unsure/missing) and the least covered tools first.
# A question about a call set (issue 18) has no call of its own (function null): its calls are
# added from item_steps (``_with_steps``), and it competes for priority with the items of its kind.
ITEMS_SQL = """
with items as (
    select x.query_id, x.text, x.function, x.arguments, x.database, x.tool_group, x.category,
           x.observation, x.kind, x.call_id, j.verdict, j.score, j.model, j.reason
    from query_context x
    join survivors s on s.query_id = x.query_id
    left join latest_judgments j on j.query_id = x.query_id
    -- a reviewer's own edit is human-written already: it is checked, not reviewed again
    where x.generator <> 'human_edit'
)
select *,
       round(case when verdict is null or verdict = 'unsure' or score is null then 1.0
                  else 1.0 - 2 * abs(score - 0.5) end
             + 1.0 / count(*) over (partition by coalesce(function, kind)), 4) as priority
from items
order by priority desc, query_id
"""


@contextmanager
def _talking_to(config: Config) -> Iterator[None]:
    """Turn transport and HTTP failures into a ReviewError that says what to do."""
    from label_studio_sdk.core.api_error import ApiError

    url = config.review.url
    try:
        yield
    except httpx.TransportError as exc:
        raise ReviewError(
            f"Label Studio at {url} is not reachable ({type(exc).__name__}: {exc}); {START_HINT}"
        ) from exc
    except ApiError as exc:
        if exc.status_code in (401, 403):
            raise ReviewError(
                f"Label Studio at {url} rejected the token (HTTP {exc.status_code}): set "
                f"{SECRET_ENV['label_studio_token']} to the token that scripts/label_studio.sh "
                "start prints (the server must run with LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true)"
            ) from exc
        raise ReviewError(f"Label Studio at {url} answered HTTP {exc.status_code}: {exc.body}") from exc


def connect(config: Config) -> Any:
    """A LabelStudio client for config.review.url, checked by one authenticated call."""
    token = secret("label_studio_token")
    if not token:
        raise ReviewError(
            f"{SECRET_ENV['label_studio_token']} is not set: {START_HINT}, then export the token line it prints"
        )
    from label_studio_sdk import LabelStudio  # 1.6 s import: only when review is used

    client = LabelStudio(base_url=config.review.url, api_key=token, timeout=30)
    with _talking_to(config):
        client.users.whoami()
    return client


def _settings(config: Config) -> dict[str, Any]:
    """Project settings biocurate owns: the form, the guide shown before the first task, predictions."""
    return {
        "label_config": config.path(config.review.label_config).read_text(),
        "expert_instruction": instructions_html(config),
        "show_instruction": True,
        "show_collab_predictions": config.review.prefill_judge_verdict,
    }


def _differs(wanted: Any, current: Any) -> bool:
    # The server drops a trailing newline, so text is compared stripped.
    if isinstance(wanted, str):
        return wanted.strip() != (current or "").strip()
    return bool(wanted != current)


def _project(client: Any, config: Config, create: bool = True) -> Any:
    """Find the review project by title (creating it if asked), with the current settings."""
    title = config.review.project_title
    settings = _settings(config)
    with _talking_to(config):
        found = sorted((p for p in client.projects.list(title=title) if p.title == title), key=lambda p: p.id)
        if not found:
            if not create:
                raise ReviewError(f"no Label Studio project titled {title!r}: run review push first")
            return client.projects.create(title=title, **settings)
        project = found[0]
        changed = {key: value for key, value in settings.items() if _differs(value, getattr(project, key, None))}
        if changed:
            project = client.projects.update(id=project.id, **changed)
        return project


def _data_hash(data: dict) -> str:
    # Priority moves whenever other items arrive; only the reviewed content decides an update.
    return content_hash({k: v for k, v in data.items() if k != "priority"})


def _prediction(row: dict, prefill: bool) -> dict:
    """The judge's score as a prediction (sortable in the data manager); its verdict is pre-selected
    in the form only with review.prefill_judge_verdict ("unsure" is no choice in the form)."""
    result = []
    if prefill and row["verdict"] in VERDICTS:
        result = [
            {"from_name": "verdict", "to_name": "query", "type": "choices", "value": {"choices": [row["verdict"]]}}
        ]
    return {"model_version": row["model"] or "none", "score": row["score"] or 0.0, "result": result}


def _server_tasks(client: Any, project_id: int) -> dict[str, Any]:
    """ext_id -> task (the oldest one, should a duplicate ever exist)."""
    tasks: dict[str, Any] = {}
    for task in client.tasks.list(project=project_id, page_size=500):
        ext_id = (task.data or {}).get("ext_id")
        if ext_id and (ext_id not in tasks or task.id < tasks[ext_id].id):
            tasks[ext_id] = task
    return tasks


def push(config: Config, con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> dict:
    """Send survivors to Label Studio as tasks; re-running creates no duplicates.

    New items are imported in batches and recorded in ``review_tasks`` right after each batch,
    so a failure mid-way keeps everything done so far; an item whose content changed gets its
    task updated in place. Returns counts {pushed, updated, unchanged}.
    """
    counts = {"pushed": 0, "updated": 0, "unchanged": 0}
    if not config.review.enabled:
        return counts | {"disabled": True}
    client = connect(config)
    project = _project(client, config)
    rows = _with_steps(con, con.sql(ITEMS_SQL).pl().to_dicts())
    release(con)  # the store is free while Label Studio answers (the review lock keeps pushes apart)
    prefill = config.review.prefill_judge_verdict
    try:
        with _talking_to(config):
            existing = _server_tasks(client, project.id)
            new, seen = [], []
            try:
                for row in rows:
                    data = task_data(row)
                    task = existing.get(row["query_id"])
                    if task is None:
                        new.append((row, data))
                        continue
                    if _data_hash(task.data) != _data_hash(data):
                        client.tasks.update(id=str(task.id), data=data)
                        client.predictions.create(task=task.id, **_prediction(row, prefill))
                        counts["updated"] += 1
                    else:
                        counts["unchanged"] += 1
                    seen.append((row, data, task.id))
            finally:
                # Also records tasks the server has but review_tasks lacks (a crash after import).
                _record(con, project.id, seen, run_id)
            size = config.review.batch_size
            for start in range(0, len(new), size):
                batch = new[start : start + size]
                reply = client.projects.import_tasks(
                    id=project.id,
                    return_task_ids=True,
                    request=[{"data": d, "predictions": [_prediction(r, prefill)]} for r, d in batch],
                )
                _record(con, project.id, [(r, d, t) for (r, d), t in zip(batch, reply.task_ids, strict=True)], run_id)
                release(con)
                counts["pushed"] += len(batch)
    except ReviewError as exc:
        raise ReviewError(
            f"{exc}. Done before the failure and recorded: {counts}; run review push again to "
            "resume (no task is duplicated)."
        ) from exc
    return counts


def _with_steps(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> list[dict]:
    """Call-set rows get ``steps`` (their calls in order, from item_steps: function, arguments,
    depends_on, fed_by, observation) and ``spec`` (the set's sampling record: a no_tool's reason)."""
    sets = [r["query_id"] for r in rows if r["kind"] != "single"]
    if not sets:
        return rows
    con.register("_review_sets", pl.DataFrame({"query_id": sets}, schema={"query_id": pl.String}))
    try:
        steps = con.execute(
            "select s.query_id, s.function, s.arguments::varchar, s.depends_on, s.fed_by::varchar, s.observation "
            "from item_steps s join _review_sets using (query_id) order by s.query_id, s.position"
        ).fetchall()
        specs = dict(
            con.execute(
                "select q.query_id, c.spec::varchar from queries q join _review_sets using (query_id) "
                "join call_sets c on c.set_id = q.call_id"
            ).fetchall()
        )
    finally:
        con.unregister("_review_sets")
    by_query: dict[str, list[dict]] = {}
    for query_id, function, arguments, depends_on, fed_by, observation in steps:
        by_query.setdefault(query_id, []).append(
            {
                "function": function,
                "arguments": arguments,
                "depends_on": depends_on,
                "fed_by": json.loads(fed_by) if fed_by else None,
                "observation": observation,
            }
        )
    for row in rows:
        if row["kind"] != "single":
            row["steps"] = by_query.get(row["query_id"], [])
            row["spec"] = json.loads(specs.get(row["query_id"]) or "{}")
    return rows


def _record(con: duckdb.DuckDBPyConnection, project_id: int, items: list, run_id: str | None) -> None:
    """Upsert review_tasks rows; pushed_at keeps the first push, updated_at moves."""
    now = utcnow()
    rows = [
        {
            "query_id": row["query_id"],
            "content_hash": _data_hash(data),
            "project_id": project_id,
            "task_id": task_id,
            "priority": row["priority"],
            "pushed_at": now,
            "updated_at": now,
            "run_id": run_id,
        }
        for row, data, task_id in items
    ]
    known = {
        (q, h, p, t)
        for q, h, p, t in con.execute("select query_id, content_hash, project_id, task_id from review_tasks").fetchall()
    }
    changed = [r for r in rows if (r["query_id"], r["content_hash"], project_id, r["task_id"]) not in known]
    upsert(
        con,
        "review_tasks",
        changed,
        update=["content_hash", "project_id", "task_id", "priority", "updated_at", "run_id"],
    )


def _timestamp(value: Any) -> datetime | None:
    """Label Studio ISO timestamps (with Z) -> naive UTC, as the store keeps them."""
    if value is None or isinstance(value, datetime):
        return value.replace(tzinfo=None) if value else None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)


def _parse_result(result: list[dict] | None) -> dict:
    """The form's answers by control name (see annotations/label_config.xml)."""
    answers: dict[str, Any] = {}
    for item in result or []:
        value = item.get("value", {})
        if "choices" in value and value["choices"]:
            answers[item["from_name"]] = value["choices"][0]
        elif "text" in value:
            text = "\n".join(value["text"]).strip()
            answers[item["from_name"]] = text or None
    edited_call = answers.get("edited_call")
    if edited_call is not None:
        # Keep what the reviewer typed even when it is not JSON: a later check flags it.
        try:
            edited_call = json.dumps(json.loads(edited_call))
        except json.JSONDecodeError:
            edited_call = json.dumps(edited_call)
    return {
        "verdict": answers.get("verdict"),
        "reject_reason": answers.get("reject_reason"),
        "edited_query": answers.get("edited_query"),
        "edited_call": edited_call,
    }


def pull(config: Config, con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> dict:
    """Store annotations created or updated since the last pull; edits become new queries.

    Every version of an annotation is kept (key: hash of server id and updated_at); the latest
    one counts. An accept_with_edit with a changed question inserts a new ``queries`` row
    (generator 'human_edit') that goes back through quality checks.
    """
    if not config.review.enabled:
        return {"fetched": 0, "new": 0, "edits": 0, "disabled": True}
    from label_studio_sdk.data_manager import Column, Filters, Operator, Type

    client = connect(config)
    project = _project(client, config, create=False)
    since = con.execute(
        "select max(a.updated_at) from annotations a join review_tasks t using (task_id) where t.project_id = ?",
        [project.id],
    ).fetchall()[0][0]
    release(con)  # the store is free while Label Studio answers
    # tasks.list(only_annotated=True) is ignored by the server: filter through the data manager.
    annotated = Filters.create(
        Filters.AND, [Filters.item(Column.total_annotations, Operator.GREATER, Type.Number, Filters.value(0))]
    )
    now = utcnow()
    rows = []
    with _talking_to(config):
        emails = {u.id: u.email for u in client.users.list()}
        for task in client.tasks.list(
            project=project.id, fields="all", page_size=500, query=json.dumps({"filters": annotated})
        ):
            query_id = (task.data or {}).get("ext_id")
            for ann in task.annotations or []:
                ann = ann if isinstance(ann, dict) else ann.dict()
                updated = _timestamp(ann.get("updated_at"))
                if ann.get("was_cancelled") or not query_id or (since and updated and updated < since):
                    continue
                answers = _parse_result(ann.get("result"))
                if answers["verdict"] not in VERDICTS:
                    continue  # a draft-like annotation without a verdict: nothing to resolve yet
                rows.append(
                    {
                        "annotation_id": content_hash(ann["id"], ann.get("updated_at")),
                        "ls_annotation_id": ann["id"],
                        "task_id": task.id,
                        "query_id": query_id,
                        "annotator": emails.get(ann.get("completed_by"))
                        or (ann.get("created_username") or "").split(",")[0].strip()
                        or None,
                        **answers,
                        "created_at": _timestamp(ann.get("created_at")),
                        "updated_at": updated,
                        "pulled_at": now,
                        "run_id": run_id,
                    }
                )
    new = insert_new(con, "annotations", rows)
    edits = _insert_edits(con, rows, run_id)
    return {"fetched": len(rows), "new": new, "edits": edits, **_agreement(con, project.id)}


def _insert_edits(con: duckdb.DuckDBPyConnection, rows: list[dict], run_id: str | None) -> int:
    edits = []
    for row in rows:
        if row["verdict"] != "accept_with_edit" or not row["edited_query"]:
            continue
        original = con.execute(
            "select call_id, observation_id, style, text from queries where query_id = ?",
            [row["query_id"]],
        ).fetchall()
        if not original or original[0][3].strip() == row["edited_query"]:
            continue
        call_id, observation_id, style, _ = original[0]
        model = row["annotator"] or "unknown"
        edits.append(
            {
                "query_id": content_hash(call_id, row["edited_query"], "human_edit", model, "review"),
                "call_id": call_id,
                "observation_id": observation_id,
                "text": row["edited_query"],
                "style": style,
                "generator": "human_edit",
                "model": model,
                "prompt_version": "review",
                "parent_query_id": row["query_id"],
                "run_id": run_id,
            }
        )
    return insert_new(con, "queries", edits)


def _agreement(con: duckdb.DuckDBPyConnection, project_id: int) -> dict:
    """Share of tasks with two or more annotations whose (latest) verdicts all agree."""
    multi, agreeing = con.execute(
        "select count(*), count(*) filter (where not conflicting) from review_resolution "
        "where project_id = ? and annotations >= 2",
        [project_id],
    ).fetchall()[0]
    return {"multi_annotated": multi, "agreement": (agreeing / multi) if multi else None}


# The column of the review_resolution view (sql/views) holding each rule's state: both rules are
# defined there, side by side; the config only picks one.
RULE_COLUMNS = {"any_reject": "any_reject_state", "majority": "majority_state"}


def state_column(config: Config) -> str:
    """The review_resolution column of config.review.resolve."""
    return RULE_COLUMNS[config.review.resolve]


def resolved_verdicts(config: Config, con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The final state per pushed query under config.review.resolve, with its vote counts.

    any_reject: one reject rejects. majority: the most common verdict wins; a tie between the top
    verdicts is 'conflicting' (the review_resolution view).
    """
    return con.sql(
        f"select * exclude (any_reject_state, majority_state), {state_column(config)} as state from review_resolution"
    ).pl()


def status(config: Config, con: duckdb.DuckDBPyConnection) -> dict:
    """Review progress from the store (no server needed): by state, per annotator, per tool."""
    resolved = resolved_verdicts(config, con)
    con.register("_resolved", resolved)
    try:
        by_tool = con.sql(
            "select coalesce(c.function, s.kind) as function, r.state, count(*) as n from _resolved r "
            "join queries q using (query_id) left join candidate_calls c using (call_id) "
            "left join call_sets s on s.set_id = q.call_id "
            "where c.call_id is not null or s.set_id is not null "
            "group by all order by all"
        ).pl()
    finally:
        con.unregister("_resolved")
    not_pushed = con.execute(
        "select count(*) from survivors where generator <> 'human_edit' "
        "and query_id not in (select query_id from review_tasks)"
    ).fetchall()[0][0]
    annotators = con.sql(
        "select annotator, count(*) as annotations,"
        " count(*) filter (where verdict = 'accept') as accepts,"
        " count(*) filter (where verdict = 'reject') as rejects,"
        " count(*) filter (where verdict = 'accept_with_edit') as edits "
        "from latest_annotations group by annotator order by annotator"
    ).pl()
    by_state = dict(resolved.group_by("state").len().iter_rows())
    tools = (
        by_tool.pivot(on="state", index="function", values="n").fill_null(0).to_dicts()
        if not by_tool.is_empty()
        else []
    )
    return {
        "rule": config.review.resolve,
        "states": {"not_pushed": not_pushed, **by_state},
        "annotators": annotators.to_dicts(),
        "tools": tools,
    }
