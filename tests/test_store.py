"""Migrations (fresh and upgrade) and idempotent inserts."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from biocurate.errors import StoreLockedError
from biocurate.store import (
    SQL_DIR,
    STAGE_TABLES,
    MigrationChangedError,
    Store,
    StoreDamagedError,
    check_migrations,
    insert_new,
    migrate,
    owned,
)
from tests.store_rows import Rows


def test_fresh_database_gets_every_stage_table(tmp_path):
    with Store(tmp_path / "s.duckdb").open() as con:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        applied = con.execute("select name from schema_migrations order by version").fetchall()
    assert set(STAGE_TABLES) <= tables
    assert applied[0][0] == "001_core.sql"
    assert {"survivors", "rejection_reasons", "tool_coverage", "stage_counts", "review_status"} <= tables


def test_rerunning_migrations_applies_nothing(tmp_path):
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    first = migrate(con)
    assert first  # something was applied the first time
    assert migrate(con) == []
    assert con.execute("select count(*) from schema_migrations").fetchall()[0][0] == len(first)


def test_newer_schema_file_migrates_an_old_database(tmp_path):
    old_sql = tmp_path / "old"
    shutil.copytree(SQL_DIR, old_sql)
    newer = sorted((old_sql / "schema").glob("*.sql"))[-1]
    number = int(newer.name[:3])
    path = tmp_path / "s.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, old_sql)
    con.execute(
        "insert into runs (run_id, flow, started_at, status, config_hash, code_version) "
        "values ('r1', 'rebuild', now(), 'completed', 'c', 'v')"
    )
    (old_sql / "schema" / f"{number + 1:03d}_add_note.sql").write_text("alter table runs add column note varchar;")
    assert migrate(con, old_sql) == [f"{number + 1:03d}_add_note.sql"]
    assert con.execute("select run_id, note from runs").fetchall() == [("r1", None)]


def test_an_applied_migration_file_that_changed_is_refused(tmp_path):
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    migrate(con, sql)
    check_migrations(con, sql)  # unchanged: fine
    core = sql / "schema" / "001_core.sql"
    core.write_text(core.read_text().replace("create table if not exists runs", "create table if not exists runz"))
    for again in (migrate, check_migrations):
        with pytest.raises(MigrationChangedError, match=r"001_core\.sql was changed after this store applied it"):
            again(con, sql)


def test_failed_migration_leaves_previous_version(tmp_path):
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    (sql / "schema" / "900_broken.sql").write_text("create table half (x int); select * from no_such_table;")
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    with pytest.raises(duckdb.Error):
        migrate(con, sql)
    assert con.execute("select count(*) from schema_migrations where version = 900").fetchall()[0][0] == 0
    assert not con.execute("select * from information_schema.tables where table_name = 'half'").fetchall()


def test_insert_new_is_idempotent(tmp_path):
    rows = [
        {"entity_id": "e1", "entity_type": "gene", "label": "TP53", "fields": "{}", "source": "test"},
        {"entity_id": "e2", "entity_type": "gene", "label": "BRCA2", "fields": "{}", "source": "test"},
    ]
    with Store(tmp_path / "s.duckdb").open() as con:
        assert insert_new(con, "entities", rows) == 2
        assert insert_new(con, "entities", rows) == 0
        assert insert_new(con, "entities", rows + [{**rows[0], "entity_id": "e3"}]) == 1
        # the same key twice within one batch is one row
        assert insert_new(con, "entities", [{**rows[0], "entity_id": "e4"}] * 2) == 1
        assert con.execute("select count(*) from entities").fetchall()[0][0] == 4


def test_locked_store_says_who_holds_it(tmp_path):
    import subprocess
    import sys
    import time

    path = tmp_path / "s.duckdb"
    Store(path).open().__enter__().close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ready', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        with pytest.raises(StoreLockedError, match=rf"locked by process {holder.pid} for 1s"):
            with Store(path, wait_seconds=1.0).open(read_only=True):
                pass
        assert time.monotonic() - started >= 1.0  # it tried again for the wait it was given
    finally:
        holder.kill()
        time.sleep(0.1)


# A damaged store file is refused with the file named and what to do, never answered from.


def store_with_rows(path, n=5000):
    with Store(path).open() as con:
        insert_new(
            con,
            "entities",
            [
                {
                    "entity_id": f"e{i}",
                    "entity_type": "gene",
                    "label": f"GENE{i}" * 20,
                    "fields": "{}",
                    "source": "test",
                }
                for i in range(n)
            ],
        )
        con.execute("checkpoint")
        block_size = con.execute(
            "select block_size from pragma_database_size() where database_name = current_database()"
        ).fetchall()[0][0]
        blocks = [
            b
            for (b,) in con.execute(
                "select distinct block_id from pragma_storage_info('entities') "
                "where persistent and block_id >= 0 and column_name = 'label'"
            ).fetchall()
        ]
    return block_size, blocks


def assert_damaged_error(exc_info, path, what):
    message = str(exc_info.value)
    assert f"the store {path} is damaged" in message and what in message
    assert "Restore the file from a backup" in message and "biocurate rebuild" in message


@pytest.mark.parametrize(
    ("cut", "what"),
    [
        (1000, "is not a whole number of"),  # stopped inside a block
        ("blocks", "but it uses"),  # whole blocks missing: fewer than it uses
    ],
)
def test_a_truncated_store_is_refused_at_open(tmp_path, cut, what):
    path = tmp_path / "s.duckdb"
    block_size, _ = store_with_rows(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - (1000 if cut == 1000 else 2 * block_size)])
    for read_only in (True, False):
        with pytest.raises(StoreDamagedError) as exc_info:
            with Store(path).open(read_only=read_only):
                pytest.fail("a truncated store was opened")
        assert_damaged_error(exc_info, path, what)


@pytest.mark.parametrize("content", [b"", b"not a database\n", b"\0" * 5000])
def test_a_file_that_is_not_a_store_is_refused(tmp_path, content):
    path = tmp_path / "s.duckdb"
    path.write_bytes(content)
    with pytest.raises(StoreDamagedError) as exc_info:
        with Store(path).open(read_only=True):
            pytest.fail("not a store, opened")
    assert_damaged_error(exc_info, path, "not a valid DuckDB database file")


def test_a_corrupt_block_is_an_error_naming_the_store_never_an_answer(tmp_path):
    path = tmp_path / "s.duckdb"
    block_size, blocks = store_with_rows(path)
    assert blocks
    data = bytearray(path.read_bytes())
    start = 3 * 4096 + blocks[0] * block_size + 1000  # inside a data block of entities.label
    # Bytes changed unevenly: DuckDB's block checksum XORs a hash of each 8-byte word, so changing
    # an even number of identical words the same way (zeros over zeros, a repeated pattern flipped)
    # would cancel out and go unnoticed by DuckDB itself.
    data[start : start + 64] = bytes(b ^ (i + 1) for i, b in enumerate(data[start : start + 64]))
    path.write_bytes(bytes(data))
    with pytest.raises(StoreDamagedError) as exc_info:  # at open, or when a query reaches the block
        with Store(path).open(read_only=True) as con:
            con.execute("select label from entities").fetchall()
            pytest.fail("a corrupt block was read")
    assert_damaged_error(exc_info, path, "checksum")


def test_an_intact_store_after_deletes_and_checkpoints_opens(tmp_path):
    """Free blocks cut off the end by DuckDB are not taken for truncation."""
    path = tmp_path / "s.duckdb"
    store_with_rows(path, 20000)
    with Store(path).open() as con:
        con.execute("delete from entities where entity_id > 'e1'")
        con.execute("checkpoint")
    with Store(path).open(read_only=True) as con:
        assert con.execute("select count(*) from entities").fetchall()[0][0] > 0


def test_call_set_rows_follow_the_contract(tmp_path):
    with Store(tmp_path / "s.duckdb").open() as con:
        rows = Rows(con)
        single = rows.call(
            "lookup_by_symbol", {"species": "homo_sapiens", "symbol": "BRCA2"}, observation='{"id": "ENSG00000139618"}'
        )
        q1 = rows.query(single, "Where is BRCA2?")
        par = rows.call_set(
            "parallel",
            [
                ("lookup_by_symbol", {"species": "homo_sapiens", "symbol": "BRCA1"}, '{"id": "ENSG00000012048"}'),
                ("lookup_by_symbol", {"species": "homo_sapiens", "symbol": "TP53"}, '{"id": "ENSG00000141510"}'),
            ],
        )
        q2 = rows.query(par, "Compare BRCA1 and TP53.")
        nt = rows.call_set("no_tool", [], template="dosage", spec={"topic": "dose"})
        q3 = rows.query(nt, "What dose of metformin?")
        kinds = dict(con.execute("select query_id, kind from query_context").fetchall())
        assert kinds == {q1: "single", q2: "parallel", q3: "no_tool"}
        steps = con.execute(
            "select query_id, position, function, observation from item_steps order by query_id, position"
        ).fetchall()
        assert [s for s in steps if s[0] == q2] == [
            (q2, 0, "lookup_by_symbol", '{"id": "ENSG00000012048"}'),
            (q2, 1, "lookup_by_symbol", '{"id": "ENSG00000141510"}'),
        ]
        assert [s for s in steps if s[0] == q3] == []
        obs = con.execute("select observation from query_context where query_id = ?", [q2]).fetchall()[0][0]
        assert json.loads(obs) == ['{"id": "ENSG00000012048"}', '{"id": "ENSG00000141510"}']


def test_owned_copies_a_result_out_of_duckdbs_buffers():
    """store.owned: the same frame (values, nulls, types), none of its buffers DuckDB's."""
    with duckdb.connect() as con:
        result = con.sql(
            "select i, 'text ' || i as s, case when i % 3 = 0 then null else i end as n from range(1000) t(i)"
        ).pl()
    copy = owned(result)
    assert copy.equals(result) and copy.schema == result.schema and copy["n"].null_count() == 334

    def addresses(frame) -> set[int]:
        return {
            buffer.address
            for column in frame.to_arrow().columns
            for chunk in column.chunks
            for buffer in chunk.buffers()
            if buffer is not None
        }

    assert addresses(result) and not addresses(copy) & addresses(result)


def test_a_memory_cap_holds_at_every_reopening_never_raises_the_limit_and_ends_with_its_block(tmp_path):
    from biocurate.config import memory_bytes
    from biocurate.store import Store, memory_capped, release

    def limit(con) -> float:
        return memory_bytes(con.execute("select current_setting('memory_limit')").fetchall()[0][0])

    with Store(tmp_path / "s.duckdb", "1GB").access() as con:
        store_limit = limit(con)
        with memory_capped(con, "128MB"):
            assert limit(con) == pytest.approx(128e6, rel=0.05)
            release(con)
            assert limit(con) == pytest.approx(128e6, rel=0.05)  # reopened: capped again
            with memory_capped(con, "4GB"):  # above the store's: not raised
                assert limit(con) == pytest.approx(128e6, rel=0.05)
            assert limit(con) == pytest.approx(128e6, rel=0.05)  # the outer block's cap stays
            release(con)
            assert limit(con) == pytest.approx(128e6, rel=0.05)
        assert limit(con) == store_limit
        with memory_capped(con, "128MB"):
            release(con)  # closed when the block ends: the next opening is the store's own
        assert limit(con) == store_limit
    plain = duckdb.connect()
    plain.execute("set memory_limit = '700MB'")
    with memory_capped(plain, "100MB"):
        assert limit(plain) == pytest.approx(100e6, rel=0.05)
    assert limit(plain) == pytest.approx(700e6, rel=0.05)


def test_a_read_that_outgrows_a_memory_cap_is_read_again_at_the_stores_limit_and_the_cap_stays(tmp_path):
    from biocurate.config import memory_bytes
    from biocurate.store import Store, memory_capped, past_the_cap

    def limit(con) -> float:
        return memory_bytes(con.execute("select current_setting('memory_limit')").fetchall()[0][0])

    big = "select length(string_agg(range::varchar, ',')) from range(3000000)"  # 22 MB of text in one state
    with Store(tmp_path / "s.duckdb", "1GB").access() as con:
        with memory_capped(con, "4MB"):
            with pytest.raises(duckdb.OutOfMemoryException):
                con.execute(big).fetchall()  # the cap holds for a read as it is
            assert past_the_cap(con, lambda: con.execute(big).fetchall()) == [(22888889,)]
            assert limit(con) == pytest.approx(4e6, rel=0.05)  # capped again for what follows
    plain = duckdb.connect()
    plain.execute("set memory_limit = '4MB'")
    with pytest.raises(duckdb.OutOfMemoryException):  # no store limit to go back to
        past_the_cap(plain, lambda: plain.execute(big).fetchall())


def test_a_query_that_outgrows_the_stores_own_limit_says_which_setting_to_raise(tmp_path):
    """Run again at [store] memory_limit and out of memory there too, or out of memory there at
    once: an error a person can act on (the setting and its value), still a DuckDB out-of-memory
    error, and the cap set again."""
    from biocurate.config import memory_bytes
    from biocurate.errors import BiocurateError
    from biocurate.store import Store, memory_capped, past_the_cap

    big = "select length(string_agg(range::varchar, ',')) from range(3000000)"  # 22 MB of text in one state
    with Store(tmp_path / "s.duckdb", "12MB").access() as con:
        with memory_capped(con, "4MB"):
            with pytest.raises(BiocurateError) as raised:
                past_the_cap(con, lambda: con.execute(big).fetchall())
            setting = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
            assert memory_bytes(setting) == pytest.approx(4e6, rel=0.05)  # capped again
    assert isinstance(raised.value, duckdb.OutOfMemoryException)
    message = str(raised.value)
    assert "[store] memory_limit = 12MB" in message and "Raise [store] memory_limit" in message
    assert "Out of Memory" in message  # DuckDB's own first line, for what it was doing
    with Store(tmp_path / "s.duckdb", "12MB").access() as con:  # no cap: at the store's limit at once
        with pytest.raises(BiocurateError, match=r"\[store\] memory_limit = 12MB"):
            past_the_cap(con, lambda: con.execute(big).fetchall())


def test_a_commit_runs_at_the_stores_limit_since_one_out_of_memory_takes_the_database_with_it(tmp_path):
    """A transaction's rows inserted under a lowered cap can need more to commit (publish's 3.8M
    dataset_items rows at a million calls: inserted within 256 MB, not committed): at the cap the
    commit fails and DuckDB invalidates the database; ``commit_at_store_limit`` commits at the
    store's limit and lowers the cap again."""
    from biocurate.config import memory_bytes
    from biocurate.store import commit_at_store_limit, lower_memory

    insert = "insert into t select md5(range::varchar), repeat('x', 50) from range(300000)"

    def inserted_under_cap(path) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(path))
        con.execute("create table t (k varchar primary key, v varchar)")
        lower_memory(con, "32MB")
        con.execute("begin")
        con.execute(insert)  # fits under the cap
        return con

    at_cap = inserted_under_cap(tmp_path / "at_cap.duckdb")
    with pytest.raises(duckdb.TransactionException, match="Failed to commit"):
        at_cap.execute("commit")
    with pytest.raises(duckdb.FatalException, match="invalidated"):  # nothing more on this store
        at_cap.execute("select count(*) from t").fetchall()

    con = inserted_under_cap(tmp_path / "s.duckdb")
    commit_at_store_limit(con, "256MB", "32MB")
    assert con.execute("select count(*) from t").fetchall() == [(300000,)]
    setting = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    assert memory_bytes(setting) == pytest.approx(32e6, rel=0.05)  # capped again


def test_a_memory_cap_ending_on_a_failed_transaction_leaves_that_error_to_be_seen(tmp_path):
    from biocurate.store import memory_capped

    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    con.execute("create table t (k integer primary key)")
    con.execute("begin")
    with pytest.raises(duckdb.ConstraintException):  # not the failed transaction's refusal to set the limit
        with memory_capped(con, "100MB"):
            con.execute("insert into t values (1), (1)")


def test_stages_list_their_work_a_part_of_the_calls_at_a_time_and_make_the_same_rows(tmp_path, monkeypatch):
    """Past WORK_PART_CALLS calls, execute, synthesis and the rules judge read their lists of work
    a part of the calls at a time (each list smaller than the whole), and store what they store
    with the calls unsplit."""
    from biocurate import execute, judge, store, synthesis
    from biocurate.stages import run_stage
    from biocurate.store import Store
    from tests.pipeline_helpers import demo_config_at

    base = demo_config_at(tmp_path / "base")
    run_stage("sample", base, "r0")
    with Store(base.store.path).open(read_only=True) as con:
        (calls,) = con.execute("select count(*) from candidate_calls").fetchall()[0]
    listed: dict[str, list[int]] = {}

    def counted(name, function):
        def listing(*args, **kwargs):
            work = function(*args, **kwargs)
            listed.setdefault(name, []).append(len(work))
            return work

        return listing

    monkeypatch.setattr(execute, "pending_calls", counted("execute", execute.pending_calls))
    monkeypatch.setattr(
        synthesis, "observed_calls_without_queries", counted("synthesize", synthesis.observed_calls_without_queries)
    )
    monkeypatch.setattr(judge, "unjudged_ids", counted("judge", judge.unjudged_ids))
    rows = {}
    for name, per_part in (("whole", calls), ("parts", calls // 4)):
        (tmp_path / name).mkdir()
        shutil.copyfile(base.store.path, tmp_path / name / "store.duckdb")
        monkeypatch.setattr(store, "WORK_PART_CALLS", per_part)
        listed.clear()
        config = demo_config_at(tmp_path / name)
        for stage in ("execute", "synthesize", "judge"):
            run_stage(stage, config, "r1")
        with Store(config.store.path).open(read_only=True) as con:
            rows[name] = {
                table: con.execute(f"select * exclude ({skip}) from {table} order by 1").fetchall()
                for table, skip in (
                    ("api_responses", "run_id, fetched_at, latency_ms"),
                    ("observations", "run_id, created_at"),
                    ("queries", "run_id, created_at"),
                    ("judgments", "run_id, created_at"),
                )
            }
        work = {stage: sum(sizes) for stage, sizes in listed.items()}
        if name == "whole":
            whole = work
            assert all(len(sizes) == 1 for sizes in listed.values()), listed
        else:  # the parts (four or five) share the work out: each smaller than the whole, together all of it
            assert work == whole
            assert all(len(sizes) >= 4 and max(sizes) < work[stage] for stage, sizes in listed.items()), listed
    assert whole["execute"] > 100 and whole["judge"] > 100
    assert rows["whole"] == rows["parts"]
