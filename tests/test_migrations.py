"""Schema migrations on real PostgreSQL: applied twice is a no-op, edited files are caught,
the TimescaleDB step runs when the extension exists and is skipped with a reason when not."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from hazmon.db import MIGRATIONS_DIR, discover, migrate
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


async def _timescale_available(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"))
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
    available = await _timescale_available(scratch_dsn)
    assert report.timescale is available
    conn = await asyncpg.connect(scratch_dsn)
    try:
        if available:
            n = await conn.fetchval("SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name='readings'")
            assert n == 1
            assert any("timescale" in a for a in report.applied)
        else:
            assert "timescaledb" in report.timescale_reason and "failed" in report.timescale_reason
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
