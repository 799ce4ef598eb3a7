"""Schema migrations on real PostgreSQL: applied twice is a no-op, edited files are caught,
the TimescaleDB step runs when the extension is usable and is skipped with a reason when not
(absent, or listed but not preloaded: docs/timescaledb.md); the timescale steps re-run."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from hazmon.db import (
    MIGRATIONS_DIR,
    _create_extension,
    _locked,
    _statements,
    discover,
    migrate,
    timescale_decision,
)
from hazmon.errors import MigrationError


def _dsn_for(server_dsn: str, dbname: str) -> str:
    return server_dsn.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture
async def scratch_dsn(pg_server_dsn: str):
    name = f"mig_{uuid.uuid4().hex[:10]}"
    yield _dsn_for(pg_server_dsn, name)  # migrate() creates it
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _timescale_usable(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        listed = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
        preload = await conn.fetchval("SHOW shared_preload_libraries")
        return bool(listed) and "timescaledb" in preload
    finally:
        await conn.close()


async def test_migrate_twice_is_a_noop(scratch_dsn: str) -> None:
    first = await migrate(scratch_dsn)
    expected = [f"{m.version:03d}_{m.name}" for m in discover()]
    assert [a for a in first.applied if "timescale" not in a] == expected
    second = await migrate(scratch_dsn)
    assert second.applied == []
    assert second.already == expected
    conn = await asyncpg.connect(scratch_dsn)
    try:
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        for table in ("sites", "devices", "matrix_rules", "readings", "events", "deadletters", "schema_migrations"):
            assert table in tables
        # the per-minute rollup answers whichever way it was built (view or continuous aggregate)
        assert await conn.fetchval("SELECT count(*) FROM readings_1m") == 0
        # primary keys make writers idempotent
        pk = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid='readings'::regclass AND contype='p'"
        )
        assert pk == "PRIMARY KEY (device_id, metric, ts)"
    finally:
        await conn.close()


async def test_timescale_step_matches_availability(scratch_dsn: str) -> None:
    report = await migrate(scratch_dsn)
    available = await _timescale_usable(scratch_dsn)
    assert report.timescale is available
    conn = await asyncpg.connect(scratch_dsn)
    try:
        if available:
            n = await conn.fetchval("SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name='readings'")
            assert n == 1
            assert any("timescale" in a for a in report.applied)
        else:
            # absent, or listed but not preloaded (where CREATE EXTENSION would end the session)
            assert "timescaledb" in report.timescale_reason
            assert "not available" in report.timescale_reason or "shared_preload_libraries" in report.timescale_reason
            kind = await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname='readings_1m'")
            assert kind == "v"  # plain view stands in for the continuous aggregate
    finally:
        await conn.close()


async def test_timescale_disabled_by_setting(scratch_dsn: str) -> None:
    report = await migrate(scratch_dsn, timescale=False)
    assert not report.timescale
    assert "disabled" in report.timescale_reason


async def test_edited_migration_is_reported(scratch_dsn: str, tmp_path: Path) -> None:
    copy = tmp_path / "sql"
    shutil.copytree(MIGRATIONS_DIR, copy)
    await migrate(scratch_dsn, directory=copy)
    first = sorted(copy.glob("*.sql"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n-- edited after release\n", encoding="utf-8")
    with pytest.raises(MigrationError, match="checksum changed"):
        await migrate(scratch_dsn, directory=copy)


async def test_failed_migration_leaves_nothing_half_applied(scratch_dsn: str, tmp_path: Path) -> None:
    copy = tmp_path / "sql"
    shutil.copytree(MIGRATIONS_DIR, copy)
    (copy / "999_broken.sql").write_text(
        "CREATE TABLE half_done (x int);\nSELECT no_such_function();\n", encoding="utf-8"
    )
    with pytest.raises(MigrationError, match="999_broken.sql"):
        await migrate(scratch_dsn, directory=copy)
    conn = await asyncpg.connect(scratch_dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version=999") == 0
    finally:
        await conn.close()


def test_bad_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_oops.sql").write_text("SELECT 1;", encoding="utf-8")
    with pytest.raises(MigrationError, match="001_name.sql"):
        discover(tmp_path)


@pytest.mark.parametrize(("available", "installed", "preload", "usable"), [
    (False, False, "", False),
    (True, False, "", False),  # listed, not preloaded: CREATE EXTENSION would be FATAL
    (True, False, "pg_stat_statements", False),
    (True, True, "", False),  # created earlier, preload removed since
    (True, False, "timescaledb", True),
    (True, False, "pg_stat_statements, $libdir/timescaledb", True),
    (True, False, '"timescaledb.so",auto_explain', True),
    (True, False, "timescaledb_toolkit", False),
])
def test_timescale_decision(available: bool, installed: bool, preload: str, usable: bool) -> None:
    ok, reason = timescale_decision(available=available, installed=installed, preload=preload)
    assert ok is usable
    if not available:
        assert "not available" in reason
    elif not usable:
        assert "shared_preload_libraries" in reason and "restart" in reason


async def test_closed_connection_on_create_extension_reconnects(scratch_dsn: str) -> None:
    """What a server that lists timescaledb without preloading it does on CREATE EXTENSION (a
    FATAL that ends the session), played by ending our own backend: the migrator gets a new,
    locked connection and the reason, not a dead connection."""
    await migrate(scratch_dsn, timescale=False)
    conn = await _locked(scratch_dsn)
    try:
        fatal = "SELECT pg_terminate_backend(pg_backend_pid())"
        new, reason = await _create_extension(conn, scratch_dsn, fatal)
        assert conn.is_closed() and not new.is_closed()
        assert "CREATE EXTENSION timescaledb failed" in reason and "reconnected" in reason
        locks = await new.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert locks == 1
        await new.close()
        again, reason = await _create_extension(await _locked(scratch_dsn), scratch_dsn, "SELECT 1")
        assert reason == ""
        await again.close()
    finally:
        await conn.close()


def test_statements_keep_do_blocks_whole() -> None:
    sql = "SELECT 1;\n-- a; comment\nDO $$\nBEGIN\n  PERFORM 1;\n  PERFORM ';';\nEND\n$$;\nSELECT 'a;b'  ;\n"
    do_block = "DO $$\nBEGIN\n  PERFORM 1;\n  PERFORM ';';\nEND\n$$"
    assert _statements(sql) == ["SELECT 1", do_block, "SELECT 'a;b'"]


_RERUNNABLE = (
    "if_not_exists => true", "if_exists => true", "create materialized view if not exists",
    "alter materialized view", "call refresh_continuous_aggregate(",
)


def test_timescale_steps_are_rerunnable_by_construction() -> None:
    """A timescale step runs statement by statement and is recorded last, so an interrupted one
    runs again from the top: every statement must be a no-op the second time. Checked here on the
    text (CI has no TimescaleDB; docs/timescaledb.md runs them twice on a real one): a DO block
    guards what has no IF [NOT] EXISTS form (DROP VIEW refuses a continuous aggregate)."""
    steps = sorted((MIGRATIONS_DIR / "timescale").glob("*.sql"))
    assert steps
    for step in steps:
        for stmt in _statements(step.read_text(encoding="utf-8")):
            low = " ".join(stmt.lower().split())
            if low.startswith("do $$"):
                assert " if " in low and (" exists" in low), f"{step.name}: unguarded DO block: {stmt[:80]}"
                continue
            assert any(k in low for k in _RERUNNABLE), f"{step.name}: not re-runnable: {stmt[:120]}"
            assert "drop view" not in low, f"{step.name}: DROP VIEW outside a guard: {stmt[:80]}"
