"""Drift watch: the loopback API starts answering differently for some published calls; the drift
job flags exactly those, holds their items out of publishing until they are reviewed again."""

from __future__ import annotations

import gzip
import json
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from biocurate.catalog import load_catalog
from biocurate.cli import app
from biocurate.config import load_config
from biocurate.drift import check_drift
from biocurate.observations import build_observation
from biocurate.publish import publish
from biocurate.snapshot import Snapshot
from biocurate.stages import run_stage
from biocurate.store import PRIMARY_KEYS, Store
from tests.conftest import ROOT
from tests.pipeline_helpers import accept_survivors, standin_settings, write_config
from tests.standins.api import ApiStandIn, Fault

DRIFT_REASON = "changed upstream since published (drift check): awaiting a new review"


def bump(value):
    """Every string and number changed: what a new upstream release might do to a record."""
    if isinstance(value, dict):
        return {k: bump(v) for k, v in value.items()}
    if isinstance(value, list):
        return [bump(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value + 1
    return f"{value}-r2"


@pytest.fixture
def published(tmp_path):
    """The demo rebuilt against the loopback API, every survivor accepted, v0001 published."""
    api = ApiStandIn(Snapshot(ROOT / "data/demo_snapshot")).start()
    config = load_config(write_config(tmp_path / "c.toml", standin_settings(tmp_path, api)))
    for name in ("sample", "execute", "synthesize", "judge", "quality"):
        run_stage(name, config, "r1")
    accept_survivors(config.store.path)
    with Store(config.store.path).open() as con:
        first = publish(config, con)
        calls = con.execute(
            """
            select d.call_id, c.function, r.method, r.url, r.fingerprint, r.body, r.content_type,
                   list(d.item_id order by d.item_id) as items, any_value(d.observation) as observation
            from dataset_items d join queries q on q.query_id = d.item_id
            join candidate_calls c on c.call_id = d.call_id
            join observations o on o.observation_id = q.observation_id
            join api_responses r on r.response_id = o.response_id
            where d.version_id = ? group by all order by d.call_id
            """,
            [first.version_id],
        ).fetchall()
    assert first.version_id == "v0001" and len(calls) > 20
    yield api, config, calls
    api.stop()


def unique_path(url: str, urls: list[str]) -> str | None:
    path = urlsplit(url).path
    return path if sum(path in urlsplit(u).path for u in urls) == 1 else None


def test_drift_flags_exactly_the_changed_calls_and_holds_their_items(prefect_harness, published):
    from flows.drift import drift

    api, config, calls = published
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    urls = [c[3] for c in calls]
    changed, body_only, gone, failing = [], None, None, None
    for call_id, function, method, url, fp, body, ctype, items, observation in calls:
        if "json" not in (ctype or "") or method != "GET" or not unique_path(url, urls):
            continue
        raw = gzip.decompress(body)
        tool = catalog[function]
        new = json.dumps(bump(json.loads(raw))).encode()
        _, new_text = build_observation(
            tool.function.observation, tool.function.response, new, config.execute.observation_max_chars
        )
        if len(changed) < 3 and new_text != observation:
            api.overrides[fp] = new
            changed.append((call_id, items))
        elif body_only is None:
            api.overrides[fp] = json.dumps(json.loads(raw), indent=3).encode()  # same data, other bytes
            body_only = call_id
        elif gone is None:
            api.faults.append(Fault("empty", unique_path(url, urls)))
            gone = (call_id, items)
        elif failing is None:
            api.faults.append(Fault("503", unique_path(url, urls)))
            failing = call_id
    assert len(changed) == 3 and body_only and gone and failing

    config_file = config.store.path.parent / "c.toml"  # the file the fixture wrote
    run = drift(config_path=str(config_file))

    with Store(config.store.path).open(read_only=True) as con:
        status = dict(
            con.execute("select call_id, status from drift_results where check_id = ?", [run["run_id"]]).fetchall()
        )
        holds = con.execute("select query_id, reason from drift_holds").fetchall()
        check = con.execute(
            "select calls_in_version, calls_checked, changed, gone, failed, finished_at from drift_checks"
        ).fetchall()[0]
        rejudged = con.execute("select count(*) from judgments where run_id = ?", [run["run_id"]]).fetchall()[0][0]
        # each item's current version: for a changed call, the new version bound to the new observation
        new_observations = dict(
            con.execute(
                "select c.item_id, o.text from current_items c join observations o using (observation_id)"
            ).fetchall()
        )
    assert len(status) == len(calls) == check[0] == check[1]
    assert {c for c, s in status.items() if s == "changed"} == {c for c, _ in changed}
    assert status[body_only] == "body_changed", drift_detail(config, body_only)
    assert {c for c, s in status.items() if s == "body_changed"} == {body_only}
    assert {c for c, s in status.items() if s == "gone"} == {gone[0]}
    assert {c for c, s in status.items() if s == "failed"} == {failing}
    assert sum(s == "unchanged" for s in status.values()) == len(calls) - 6
    assert check[2:5] == (3, 1, 1) and check[5] is not None
    held_changed = {q for _, items in changed for q in items}
    assert holds and {q for q, r in holds if r == "changed"} == held_changed
    assert {q for q, r in holds if r == "gone"} == set(gone[1])
    assert rejudged == len(held_changed)  # the changed items' new versions were judged on the new observation
    drift_report = next(r for r in run["reports"] if r["stage"] == "drift_check")
    assert drift_report["rows_new"] == 4 and drift_report["rows_in"] == len(calls)

    out = CliRunner().invoke(app, ["drift", "report", "--config", str(config_file), "--format", "json"])
    assert out.exit_code == 0, out.output
    for call_id, _ in changed:
        assert call_id in out.output

    # The next publish leaves the held items out, saying why.
    with Store(config.store.path).open() as con:
        second = publish(config, con)
        exported = {
            r[0]
            for r in con.execute(
                "select item_id from dataset_items where version_id = ?", [second.version_id]
            ).fetchall()
        }
    assert second.refused.get(DRIFT_REASON) == len(held_changed) + len(gone[1])
    assert not exported & (held_changed | set(gone[1]))

    # A reviewer looks at the changed items' new versions and accepts them: the items come back
    # (under their first ids), with the new data.
    assert accept_survivors(config.store.path) == len(held_changed)
    with Store(config.store.path).open() as con:
        third = publish(config, con)
        back = dict(
            con.execute(
                "select item_id, observation from dataset_items where version_id = ?", [third.version_id]
            ).fetchall()
        )
    assert held_changed <= back.keys() and not set(gone[1]) & back.keys()
    for item in held_changed:
        assert back[item] == new_observations[item] and "-r2" in back[item]


def test_a_sample_goes_round_the_version_longest_unchecked_first(published):
    api, config, calls = published
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    seen = []
    with Store(config.store.path).open() as con:
        for check in ("d1", "d2"):
            summary = check_drift(config, con, catalog, check, sample_size=5)
            assert summary.checked == 5 and summary.statuses["unchanged"] == 5
            seen.append(
                {r[0] for r in con.execute("select call_id from drift_results where check_id = ?", [check]).fetchall()}
            )
        assert con.execute("select count(*) from drift_holds").fetchall()[0][0] == 0
    assert len(seen[0]) == len(seen[1]) == 5 and not seen[0] & seen[1]


def test_drift_appends_new_versions_and_deletes_or_updates_nothing(published):
    """The drift job without Prefect (biocurate.jobs): one published call now answers differently.
    Every row the store held before is still there, unchanged; the call's questions get new
    versions bound to the new observation, and those are what review and publish see."""
    from biocurate.jobs import run_job

    api, config, calls = published
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    urls = [c[3] for c in calls]
    for call_id, function, method, url, fp, body, ctype, items, observation in calls:
        if "json" in (ctype or "") and method == "GET" and unique_path(url, urls):
            tool = catalog[function]
            new = json.dumps(bump(json.loads(gzip.decompress(body)))).encode()
            _, new_text = build_observation(
                tool.function.observation, tool.function.response, new, config.execute.observation_max_chars
            )
            if new_text != observation:
                api.overrides[fp] = new
                changed = (call_id, items)
                break
    else:
        pytest.fail("no call whose observation a new upstream release would change")
    call_id, items = changed

    def snapshot() -> dict[str, set[tuple]]:
        with Store(config.store.path).open(read_only=True) as con:
            return {
                t: {tuple(map(repr, r)) for r in con.execute(f"select * from {t}").fetchall()} for t in PRIMARY_KEYS
            }

    before = snapshot()
    with Store(config.store.path).open(read_only=True) as con:
        old = dict(con.execute("select query_id, observation_id from queries where call_id = ?", [call_id]).fetchall())
    run = run_job(config, "drift")
    after = snapshot()
    for table, rows in before.items():
        assert rows <= after[table], f"{table}: {len(rows - after[table])} rows deleted or updated in place"
    assert len(after["queries"]) - len(before["queries"]) == len(old) == len(items)

    with Store(config.store.path).open(read_only=True) as con:
        links = con.execute("select query_id, replacement_query_id, item_id, run_id from query_replacements").fetchall()
        new_versions = {
            r[0]: r[1:]
            for r in con.execute(
                "select n.query_id, n.call_id, n.observation_id, n.text = o.text, n.parent_query_id "
                "from query_replacements x join queries n on n.query_id = x.replacement_query_id "
                "join queries o on o.query_id = x.query_id"
            ).fetchall()
        }
        holds = dict(con.execute("select query_id, replacement_query_id from drift_holds").fetchall())
        current = dict(
            con.execute("select item_id, query_id from current_items where call_id = ?", [call_id]).fetchall()
        )
        survivors = {q for (q,) in con.execute("select query_id from survivors").fetchall()}
        judged = {
            q for (q,) in con.execute("select query_id from judgments where run_id = ?", [run["run_id"]]).fetchall()
        }
        status = con.execute("select flow, status from runs where run_id = ?", [run["run_id"]]).fetchall()
    assert status == [("drift", "completed")]
    # The old questions: kept as they were, marked superseded by a new version of each.
    assert {q for q, *_ in links} == set(old) and {i for *_, i, _ in links} == set(items)
    assert {r for *_, r in links} == {run["run_id"]}
    replacement = {q: r for q, r, *_ in links}
    for query_id, observation_id in old.items():
        call, new_observation, same_text, parent = new_versions[replacement[query_id]]
        assert (call, same_text, parent) == (call_id, True, None) and new_observation != observation_id
    # The published items are held, each naming its new version; review and publish see that one.
    assert holds == {q: replacement[q] for q in items}
    assert current == {q: replacement[q] for q in items}
    assert judged == set(replacement.values())
    assert set(replacement.values()) <= survivors and not set(old) & survivors


def drift_detail(config, call_id):
    """What the drift check recorded for one call (for assertion messages)."""
    with Store(config.store.path).open(read_only=True) as con:
        return con.execute("select new_outcome, detail from drift_results where call_id = ?", [call_id]).fetchall()
