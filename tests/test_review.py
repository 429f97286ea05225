"""biocurate.review against a real Label Studio server (tests/labelstudio.py starts it), and the
review resolution rules on the store alone."""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from biocurate import review, review_view
from biocurate.config import Config, ReviewConfig
from biocurate.errors import ReviewError
from biocurate.hashing import content_hash
from biocurate.store import Store, insert_new, utcnow

ROOT = Path(__file__).resolve().parent.parent


def make_config(url: str, **review_settings) -> Config:
    title = f"test {uuid.uuid4().hex[:8]}"  # one project per test: tests share the server
    return Config(review=ReviewConfig(url=url, project_title=title, **review_settings))


@pytest.fixture
def cfg(label_studio, monkeypatch) -> Config:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    return make_config(label_studio.url, batch_size=2)


@pytest.fixture
def con(tmp_path):
    with Store(tmp_path / "t.duckdb").open() as con:
        yield con


@pytest.fixture
def client(cfg):
    return review.connect(cfg)


def add_items(con, specs: list[tuple[str, str, float, str]], observation: str | None = None) -> list[str]:
    """Insert one surviving query per (function, text, judge score, judge verdict); return ids.
    Every observation is ``observation`` when given."""
    calls, observations, queries, judgments, qc = [], [], [], [], []
    for function, text, score, verdict in specs:
        arguments = {"identifier": text.split()[-1].strip("?")}
        call_id = content_hash(function, arguments)
        observation_id = content_hash(call_id, "obs")
        query_id = content_hash(call_id, text, "template", "t1", "v1")
        calls.append(
            {
                "call_id": call_id,
                "function": function,
                "arguments": json.dumps(arguments),
                "template": "t",
                "database": "NCBI",
                "tool_group": "esummary",
                "category": "gene",
                "valid": True,
            }
        )
        observations.append(
            {
                "observation_id": observation_id,
                "call_id": call_id,
                "response_id": "r",
                "text": observation or f"{function}: 3 records",
                "builder": "b",
                "chars": 20,
            }
        )
        queries.append(
            {
                "query_id": query_id,
                "call_id": call_id,
                "observation_id": observation_id,
                "text": text,
                "style": "specific",
                "generator": "template",
                "model": "t1",
                "prompt_version": "v1",
            }
        )
        judgments.append(judgment(query_id, verdict, score))
        qc.append(
            {
                "qc_id": content_hash(query_id, "qc"),
                "item_kind": "query",
                "item_id": query_id,
                "suite": "queries",
                "expectation": "length",
                "passed": True,
                "severity": "blocking",
                "qc_config_hash": "h",
            }
        )
    for table, rows in [
        ("candidate_calls", calls),
        ("observations", observations),
        ("queries", queries),
        ("judgments", judgments),
        ("qc_results", qc),
    ]:
        insert_new(con, table, rows)
    return [q["query_id"] for q in queries]


def judgment(query_id: str, verdict: str, score: float, model: str = "rules-v1", later: int = 0) -> dict:
    return {
        "judgment_id": content_hash(query_id, model, verdict, score),
        "query_id": query_id,
        "judge": "rules",
        "model": model,
        "prompt_version": "v1",
        "verdict": verdict,
        "score": score,
        "reason": "looks fine",
        "created_at": utcnow() + timedelta(seconds=later),
    }


SPECS = [
    ("gene_summary", "What is known about the gene BRCA1?", 0.95, "accept"),
    ("gene_summary", "Summarise what the literature says about TP53?", 0.9, "accept"),
    ("gene_summary", "Give me an overview of EGFR?", 0.55, "accept"),
    ("protein_lookup", "Which protein is encoded by P04637?", 0.8, "accept"),
    ("protein_lookup", "Tell me about protein Q9Y6K9?", 0.5, "unsure"),
]


def server_tasks(client, cfg) -> list:
    project = review._project(client, cfg, create=False)
    return list(client.tasks.list(project=project.id, fields="all"))


def annotate(client, task_id: int, verdict: str, user_id: int | None = None, **answers) -> None:
    result = [{"from_name": "verdict", "to_name": "query", "type": "choices", "value": {"choices": [verdict]}}]
    if "reject_reason" in answers:
        result.append(
            {
                "from_name": "reject_reason",
                "to_name": "query",
                "type": "choices",
                "value": {"choices": [answers["reject_reason"]]},
            }
        )
    for name in ("edited_query", "edited_call"):
        if name in answers:
            result.append(
                {
                    "from_name": name,
                    "to_name": "query" if name == "edited_query" else "call",
                    "type": "textarea",
                    "value": {"text": [answers[name]]},
                }
            )
    extra = {"completed_by": user_id} if user_id else {}
    client.annotations.create(id=task_id, result=result, **extra)


def task_of(con, query_id: str) -> int:
    return con.execute("select task_id from review_tasks where query_id = ?", [query_id]).fetchall()[0][0]


@pytest.mark.labelstudio
def test_push_is_prioritised_and_idempotent(cfg, con, client):
    ids = add_items(con, SPECS)
    assert review.push(cfg, con, run_id="r1") == {"pushed": 5, "updated": 0, "unchanged": 0}
    tasks = sorted(server_tasks(client, cfg), key=lambda t: t.id)
    assert sorted(t.data["ext_id"] for t in tasks) == sorted(ids)
    # Least-sure judge verdicts on the least covered tool come first.
    assert tasks[0].data["query"] == "Tell me about protein Q9Y6K9?"
    assert [t.data["priority"] for t in tasks] == sorted((t.data["priority"] for t in tasks), reverse=True)
    # The judge's score is a prediction, but its verdict is not pre-selected (prefill is off).
    assert tasks[1].predictions[0].model_version == "rules-v1" and tasks[1].predictions[0].score == 0.55
    assert all(t.predictions[0].result == [] for t in tasks)
    assert tasks[1].data["judge"] == "Automatic judge (rules-v1): accept, score 0.55. Reason: looks fine"
    recorded = con.execute("select count(*), count(distinct task_id), min(run_id) from review_tasks").fetchall()[0]
    assert recorded == (5, 5, "r1")

    assert review.push(cfg, con) == {"pushed": 0, "updated": 0, "unchanged": 5}
    assert len(server_tasks(client, cfg)) == 5


@pytest.mark.labelstudio
def test_push_heals_a_crash_between_import_and_record(cfg, con, client):
    add_items(con, SPECS[:3])
    review.push(cfg, con)
    con.execute("delete from review_tasks")  # as if the process died right after importing
    assert review.push(cfg, con) == {"pushed": 0, "updated": 0, "unchanged": 3}
    assert con.execute("select count(*) from review_tasks").fetchall()[0][0] == 3
    assert len(server_tasks(client, cfg)) == 3


@pytest.mark.labelstudio
def test_changed_item_updates_its_task(cfg, con, client):
    first, *_ = add_items(con, SPECS[:2])
    review.push(cfg, con)
    task_id = task_of(con, first)
    before = con.execute("select content_hash from review_tasks where query_id = ?", [first]).fetchall()
    insert_new(con, "judgments", [judgment(first, "reject", 0.2, model="judge-v2", later=60)])

    assert review.push(cfg, con) == {"pushed": 0, "updated": 1, "unchanged": 1}
    tasks = {t.data["ext_id"]: t for t in server_tasks(client, cfg)}
    assert len(tasks) == 2 and tasks[first].id == task_id
    assert "Automatic judge (judge-v2): reject, score 0.20" in tasks[first].data["judge"]
    assert "judge-v2" in [p.model_version for p in tasks[first].predictions]
    after = con.execute("select content_hash from review_tasks where query_id = ?", [first]).fetchall()
    assert after != before


@pytest.mark.labelstudio
def test_pull_stores_annotations_and_their_updates(cfg, con, client):
    first, second = add_items(con, SPECS[:2])
    review.push(cfg, con)
    annotate(client, task_of(con, first), "reject", reject_reason="unnatural_phrasing")

    counts = review.pull(cfg, con, run_id="p1")
    assert counts["new"] == 1 and counts["edits"] == 0
    row = con.sql("select * from annotations").pl().to_dicts()[0]
    assert row["query_id"] == first and row["verdict"] == "reject"
    assert row["reject_reason"] == "unnatural_phrasing"
    assert row["annotator"] == "admin@biocurate.local" and row["run_id"] == "p1"
    assert review.pull(cfg, con)["new"] == 0  # nothing new since the last pull

    # An annotation changed in Label Studio arrives as a new version; the latest one counts.
    client.annotations.update(
        id=row["ls_annotation_id"],
        result=[{"from_name": "verdict", "to_name": "query", "type": "choices", "value": {"choices": ["accept"]}}],
    )
    assert review.pull(cfg, con)["new"] == 1
    states = dict(con.execute("select query_id, state from review_status").fetchall())
    assert states == {first: "accepted", second: "pending"}


@pytest.mark.labelstudio
def test_edit_round_trip_creates_a_child_query(cfg, con, client):
    (first,) = add_items(con, SPECS[:1])
    review.push(cfg, con)
    annotate(
        client,
        task_of(con, first),
        "accept_with_edit",
        edited_query="What does the literature say about BRCA1?",
        edited_call='{"name": "gene_summary", "arguments": {"identifier": "BRCA1"}}',
    )

    assert review.pull(cfg, con)["edits"] == 1
    stored = con.sql("select edited_query, edited_call from annotations").pl().to_dicts()[0]
    assert json.loads(stored["edited_call"])["arguments"] == {"identifier": "BRCA1"}
    child = con.sql("select * from queries where parent_query_id is not null").pl().to_dicts()
    original = con.sql(f"select * from queries where query_id = '{first}'").pl().to_dicts()[0]
    assert len(child) == 1
    child = child[0]
    assert child["parent_query_id"] == first and child["text"] == stored["edited_query"]
    assert (child["generator"], child["model"], child["prompt_version"]) == (
        "human_edit",
        "admin@biocurate.local",
        "review",
    )
    for column in ("call_id", "observation_id", "style"):
        assert child[column] == original[column]
    assert review.pull(cfg, con)["edits"] == 0


@pytest.mark.labelstudio
def test_conflicts_resolve_by_the_configured_rule(cfg, con, client):
    split, outvoted, agreed = add_items(con, SPECS[:3])
    review.push(cfg, con)
    users = [
        client.users.create(
            email=f"rev{i}-{uuid.uuid4().hex[:6]}@biocurate.local", username=f"rev{i}-{uuid.uuid4().hex[:6]}"
        )
        for i in range(3)
    ]
    votes = {split: ["accept", "reject"], outvoted: ["accept", "accept", "reject"], agreed: ["accept", "accept"]}
    for query_id, verdicts in votes.items():
        for user, verdict in zip(users, verdicts, strict=False):
            annotate(client, task_of(con, query_id), verdict, user_id=user.id)

    counts = review.pull(cfg, con)
    assert counts["multi_annotated"] == 3 and counts["agreement"] == pytest.approx(1 / 3)

    any_reject = review.resolved_verdicts(cfg, con)
    assert dict(any_reject.select("query_id", "state").iter_rows()) == {
        split: "rejected",
        outvoted: "rejected",
        agreed: "accepted",
    }
    assert dict(any_reject.select("query_id", "conflicting").iter_rows()) == {
        split: True,
        outvoted: True,
        agreed: False,
    }

    majority = cfg.model_copy(update={"review": cfg.review.model_copy(update={"resolve": "majority"})})
    assert dict(review.resolved_verdicts(majority, con).select("query_id", "state").iter_rows()) == {
        split: "conflicting",
        outvoted: "accepted",
        agreed: "accepted",
    }

    report = review.status(majority, con)
    assert report["states"] == {"not_pushed": 0, "conflicting": 1, "accepted": 2}
    assert sorted(a["annotations"] for a in report["annotators"]) == [1, 3, 3]
    assert report["tools"] == [{"function": "gene_summary", "accepted": 2, "conflicting": 1}]


@pytest.mark.labelstudio
def test_server_stopping_mid_push_resumes_without_duplicates(cfg, con, client, label_studio, monkeypatch):
    add_items(con, SPECS)  # 5 items, batch_size 2: three imports
    real_record = review._record
    batches = []

    def record_then_stop(con_, project_id, items, run_id):
        real_record(con_, project_id, items, run_id)
        if items:
            batches.append(len(items))
            if len(batches) == 1:
                label_studio.stop()  # the server goes away after the first batch

    monkeypatch.setattr(review, "_record", record_then_stop)
    try:
        with pytest.raises(ReviewError, match="not reachable.*label_studio.sh start.*push again"):
            review.push(cfg, con)
    finally:
        label_studio.start()
    assert con.execute("select count(*) from review_tasks").fetchall()[0][0] == 2

    monkeypatch.setattr(review, "_record", real_record)
    assert review.push(cfg, con) == {"pushed": 3, "updated": 0, "unchanged": 2}
    tasks = server_tasks(client, cfg)
    assert len(tasks) == 5 and len({t.data["ext_id"] for t in tasks}) == 5


@pytest.mark.labelstudio
def test_unreachable_server_and_wrong_token_say_what_to_do(label_studio, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(ReviewError, match="not reachable.*scripts/label_studio.sh start"):
        review.connect(make_config(f"http://127.0.0.1:{closed}"))
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "0" * 40)
    with pytest.raises(ReviewError, match="rejected the token.*LABEL_STUDIO_API_KEY"):
        review.connect(make_config(label_studio.url))
    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    with pytest.raises(ReviewError, match="LABEL_STUDIO_API_KEY is not set"):
        review.connect(make_config(label_studio.url))


def qc_result(query_id: str, passed: bool, config_hash: str) -> dict:
    return {
        "qc_id": content_hash(query_id, config_hash, passed),
        "item_kind": "query",
        "item_id": query_id,
        "suite": "queries",
        "expectation": "query_reads_naturally",
        "passed": passed,
        "severity": "blocking",
        "qc_config_hash": config_hash,
        "created_at": utcnow(),
    }


@pytest.mark.labelstudio
def test_an_edit_is_checked_again_and_published_without_a_second_review(cfg, con, client):
    """What the reviewer guide says under "Editing": pull stores the edit as a new question linked
    to the original, by its author; it is not pushed for review again; it is published with the
    edited text once it passed the quality checks, and not while unchecked or failing."""
    from biocurate.publish.selection import EDIT_FAILED_QC, EDIT_NOT_CHECKED, select_items

    guide = " ".join((ROOT / "annotations" / "reviewer_guide.md").read_text().split())
    assert "It does **not** come back to review" in guide and "edited question failed quality checks" in guide
    [query_id] = add_items(con, [("esummary", "What is gene 672?", 0.9, "accept")])
    review.push(cfg, con)
    annotate(client, task_of(con, query_id), "accept_with_edit", edited_query="Which gene has the NCBI id 672?")
    assert review.pull(cfg, con)["edits"] == 1
    [(edit_id, author, text)] = con.execute(
        "select query_id, model, text from queries where parent_query_id = ?", [query_id]
    ).fetchall()
    assert (author, text) == ("admin@biocurate.local", "Which gene has the NCBI id 672?")

    items, refused = select_items(cfg, con)
    assert items.is_empty() and refused == {EDIT_NOT_CHECKED: 1}
    insert_new(con, "qc_results", [qc_result(edit_id, False, "qc-1")])
    items, refused = select_items(cfg, con)
    assert items.is_empty() and refused == {EDIT_FAILED_QC: 1}

    # Checked again (a later QC config) and passing: published with the reviewer's text ...
    insert_new(con, "qc_results", [qc_result(edit_id, True, "qc-2")])
    assert con.execute("select count(*) from survivors where query_id = ?", [edit_id]).fetchall()[0][0] == 1
    items, refused = select_items(cfg, con)
    assert refused == {} and items.select("item_id", "user_query").rows() == [
        (query_id, "Which gene has the NCBI id 672?")
    ]
    # ... without coming back to review.
    assert review.push(cfg, con) == {"pushed": 0, "updated": 0, "unchanged": 1}
    assert [t.data["ext_id"] for t in server_tasks(client, cfg)] == [query_id]


@pytest.mark.labelstudio
def test_the_project_shows_the_guide_and_prefills_only_when_asked(cfg, con, client, tmp_path):
    add_items(con, SPECS[:2])
    review.push(cfg, con)
    project = client.projects.get(id=review._project(client, cfg, create=False).id)
    assert project.show_instruction is True and project.show_collab_predictions is False
    assert "<h1>Reviewer guide</h1>" in project.expert_instruction
    assert "<td><code>identifier_mismatch</code></td>" in project.expert_instruction

    # A changed guide reaches the project on the next push.
    guide = tmp_path / "guide.md"
    guide.write_text("# Our guide\n\n- accept when it is right\n")
    changed = cfg.model_copy(update={"review": cfg.review.model_copy(update={"instructions": guide})})
    review.push(changed, con)
    assert "<li>accept when it is right</li>" in client.projects.get(id=project.id).expert_instruction

    # With prefill on (another project), the judge's verdict is a pre-selected prediction.
    prefill = make_config(cfg.review.url, prefill_judge_verdict=True)
    review.push(prefill, con)
    tasks = server_tasks(client, prefill)
    assert all(t.predictions[0].result[0]["value"]["choices"] == ["accept"] for t in tasks)
    assert client.projects.get(id=tasks[0].project).show_collab_predictions is True


@pytest.mark.labelstudio
def test_the_demo_reviewer_is_a_named_script_and_pull_stores_its_email(cfg, con, client, tmp_path):
    import subprocess
    import sys

    from tests.pipeline_helpers import write_config

    ids = add_items(con, SPECS)
    review.push(cfg, con)
    config_file = write_config(
        tmp_path / "c.toml", {"review": {"url": cfg.review.url, "project_title": cfg.review.project_title}}
    )
    env = {**os.environ, "BIOCURATE_CONFIG": str(config_file)}
    for _ in range(2):  # a second run finds the user and annotates nothing again
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "demo_review.py")], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    assert "demo-reviewer@biocurate.local" in done.stdout and "annotated 0 tasks" in done.stdout
    [user] = [u for u in client.users.list() if u.email == "demo-reviewer@biocurate.local"]
    assert (user.first_name, user.last_name) == ("Demo", "script (not a human)")

    assert review.pull(cfg, con)["new"] == len(ids)
    annotators = con.execute("select distinct annotator from annotations").fetchall()
    assert annotators == [("demo-reviewer@biocurate.local",)]


# ---------------------------------------------------------------------------------------------
# Resolution rules (review_resolution view), on the store alone


def reference_state(rule: str, votes: list[str]) -> str:
    """The rules as written before they moved into SQL (majority: a tie between the top verdicts
    is 'conflicting')."""
    state_of = {"accept": "accepted", "reject": "rejected", "accept_with_edit": "edited"}
    if not votes:
        return "pending"
    if rule == "any_reject":
        return "rejected" if "reject" in votes else "edited" if "accept_with_edit" in votes else "accepted"
    counts = {v: votes.count(v) for v in state_of}
    winners = [v for v, n in counts.items() if n == max(counts.values())]
    return "conflicting" if len(winners) > 1 else state_of[winners[0]]


def add_votes(con, query_id: str, task_id: int, votes: list[str]) -> None:
    insert_new(
        con,
        "review_tasks",
        [
            {
                "query_id": query_id,
                "content_hash": "h",
                "project_id": 1,
                "task_id": task_id,
                "priority": 1.0,
                "pushed_at": utcnow(),
                "updated_at": utcnow(),
            }
        ],
    )
    insert_new(
        con,
        "annotations",
        [
            {
                "annotation_id": f"{query_id}-{i}",
                "ls_annotation_id": task_id * 10 + i,
                "task_id": task_id,
                "query_id": query_id,
                "annotator": f"rev{i}",
                "verdict": verdict,
                "updated_at": utcnow(),
                "pulled_at": utcnow(),
            }
            for i, verdict in enumerate(votes)
        ],
    )


def with_rule(rule: str) -> Config:
    return Config(review=ReviewConfig(resolve=rule))


def test_both_rules_resolve_every_vote_count_as_before(con):
    """Every count of 0-2 accepts, rejects and edits: ties, outvoted rejects, conflicting votes."""
    verdicts = ("accept", "reject", "accept_with_edit")
    cases = {}
    for n, counts in enumerate((a, r, e) for a in range(3) for r in range(3) for e in range(3)):
        votes = [v for v, k in zip(verdicts, counts, strict=True) for _ in range(k)]
        cases[f"q{n}"] = votes
        add_votes(con, f"q{n}", n + 1, votes)
    for rule in ("any_reject", "majority"):
        frame = review.resolved_verdicts(with_rule(rule), con)
        got = dict(frame.select("query_id", "state").iter_rows())
        assert got == {q: reference_state(rule, votes) for q, votes in cases.items()}, rule
        assert dict(frame.select("query_id", "conflicting").iter_rows()) == {
            q: len(set(votes)) > 1 for q, votes in cases.items()
        }
    # Named cases, for the reader: a tie, an outvoted reject, three ways.
    by_votes = {tuple(v): q for q, v in cases.items()}
    states = {
        rule: dict(review.resolved_verdicts(with_rule(rule), con).select("query_id", "state").iter_rows())
        for rule in ("any_reject", "majority")
    }
    for votes, any_reject, majority in [
        ((), "pending", "pending"),
        (("accept", "reject"), "rejected", "conflicting"),
        (("accept", "accept", "reject"), "rejected", "accepted"),
        (("accept", "accept_with_edit"), "edited", "conflicting"),
        (("reject", "accept_with_edit", "accept_with_edit"), "rejected", "edited"),
        (("accept", "reject", "accept_with_edit"), "rejected", "conflicting"),
    ]:
        q = by_votes[votes]
        assert (states["any_reject"][q], states["majority"][q]) == (any_reject, majority), votes
    # The exploration view's `state` is the default rule's.
    assert dict(con.execute("select query_id, state from review_status").fetchall()) == states["any_reject"]


def test_only_the_latest_version_of_an_annotation_votes(con):
    add_votes(con, "q", 1, ["reject", "accept"])
    # The first reviewer changes their mind: a newer copy of the same server annotation.
    insert_new(
        con,
        "annotations",
        [
            {
                "annotation_id": "q-0-v2",
                "ls_annotation_id": 10,
                "task_id": 1,
                "query_id": "q",
                "annotator": "rev0",
                "verdict": "accept",
                "updated_at": utcnow() + timedelta(minutes=1),
                "pulled_at": utcnow(),
            }
        ],
    )
    for rule in ("any_reject", "majority"):
        [row] = review.resolved_verdicts(with_rule(rule), con).to_dicts()
        assert (row["state"], row["annotations"], row["conflicting"]) == ("accepted", 2, False)


def test_review_status_command_on_a_store_with_annotations(tmp_path, monkeypatch):
    """`biocurate review status` (the CLI command, as a user runs it) counts states, annotators and tools."""
    from typer.testing import CliRunner

    from biocurate.cli import app

    path = tmp_path / "s.duckdb"
    with Store(path).open() as con:
        accepted, rejected, pending, _unpushed = add_items(con, SPECS[:4])
        add_votes(con, accepted, 1, ["accept", "accept"])
        add_votes(con, rejected, 2, ["accept", "reject"])
        add_votes(con, pending, 3, [])
    monkeypatch.setenv("BIOCURATE_STORE", str(path))
    out = CliRunner().invoke(app, ["review", "status"], terminal_width=200)
    assert out.exit_code == 0, out.output
    rows = {
        cells[0]: cells[1:]
        for line in out.output.splitlines()
        if len(cells := [c.strip() for c in line.strip(" │┃|").split("│") if c.strip()]) > 1
    }
    assert "rule: any_reject" in out.output
    assert rows["not_pushed"] == ["1"] and rows["accepted"] == ["1"]
    assert rows["rejected"] == ["1"] and rows["pending"] == ["1"]
    # rev0 voted twice (accept, accept), rev1 once (accept then reject: the reject is rev1's).
    assert rows["rev0"] == ["2", "2", "0", "0"] and rows["rev1"] == ["2", "1", "1", "0"]
    assert rows["gene_summary"] == ["1", "1", "1"]


def load_demo_review():
    import importlib.util

    path = ROOT / "scripts" / "demo_review.py"
    spec = importlib.util.spec_from_file_location("demo_review", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Questions as the demo's generators write them, one per rewording rule (and some that no rule fits).
DEMO_QUESTIONS = [
    "What is the amino-acid sequence of ENSP00000269305?",
    "Which organism is the assembly GCA_000001635.9?",
    "Can you find the PubMed article for the citation Biochem J 2002;368:377?",
    "Could you list the orthologues of human BRCA2?",
    "Tell me about protein keyword KW-0111.",
    "Give me every ancestor of taxon 7227 with its rank.",
    "List the UPIs, organisms and lengths for P07612.",
    "I need the NCBI taxonomy entry for Danio rerio.",
    "How many proteins carry keyword KW-0021?",
]


def test_demo_reviewer_edits_read_naturally_and_keep_identifiers():
    from biocurate.naturalness import problems

    demo = load_demo_review()
    edits = {q: demo.reworded(q) for q in DEMO_QUESTIONS}
    assert sum(e is not None for e in edits.values()) == 7  # the last two: no rule applies
    for question, edit in edits.items():
        if edit is None:
            continue
        assert edit != question and edit[0].isupper() and edit.endswith("?"), edit
        assert problems(edit) == [], (question, edit, problems(edit))
        # Identifiers, symbols and names are kept as written.
        kept = [w for w in question.rstrip(".?").split() if any(c.isdigit() or c.isupper() for c in w[1:])]
        assert all(w in edit for w in kept), (question, edit)
    assert edits["Give me every ancestor of taxon 7227 with its rank."] == (
        "Could you give me every ancestor of taxon 7227 with its rank?"
    )


def test_task_data_shows_every_call_in_order_and_a_wrapped_observation():
    row = {
        "query_id": "q1",
        "text": "Which gene is 672, and where is it?",
        "function": "esummary",
        "arguments": '{"db": "gene", "id": "672"}',
        "calls": json.dumps(
            [
                {"name": "esearch", "arguments": {"db": "gene", "term": "BRCA1[sym]"}},
                {"name": "esummary", "arguments": {"db": "gene", "id": "672"}},
            ]
        ),
        "observation": '{"records":{"672":{"name":"BRCA1","summary":"' + "word " * 80 + '"}}}',
        "verdict": "unsure",
        "score": 0.5,
        "model": "rules-v1",
        "reason": "x" * 400,
        "database": "NCBI",
        "tool_group": "eutils",
        "category": "gene",
        "priority": 1.0,
    }
    data = review_view.task_data(row)
    first, second = data["call"].index("Call 1 of 2:"), data["call"].index("Call 2 of 2:")
    assert first < data["call"].index('"esearch"') < second < data["call"].index('"esummary"')
    # One key a line: pretty-printed, and the same JSON.
    assert json.loads(data["observation"]) == json.loads(row["observation"])
    assert '\n      "name": "BRCA1",\n' in data["observation"]
    # The judge: one short line, the long reason cut.
    assert "\n" not in data["judge"] and len(data["judge"]) < 220
    assert data["judge"].startswith("Automatic judge (rules-v1): unsure, score 0.50. Reason: xxx")
    single = review_view.task_data({**row, "calls": None})
    assert json.loads(single["call"]) == {"name": "esummary", "arguments": {"db": "gene", "id": "672"}}
