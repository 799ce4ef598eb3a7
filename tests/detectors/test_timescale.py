"""The TimescaleDB path: hypertables, compression/retention policies and the per-minute
continuous aggregate, exercised where the extension is installed (docs/timescaledb.md: how to
run this file on a TimescaleDB built from source); the replay paths of the storage writer that
TimescaleDB needs are checked on any PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from detectors.engine import Engine, Message
from detectors.storage import Storage
from hazmon.contracts import ReadingBatch, Sample
from hazmon.db import migrate, timescale_decision
from hazmon.stack.postgres import with_database


def _gas(t0: datetime, n: int, offset_s: int = 0, value: float | None = None) -> ReadingBatch:
    """``n`` gas readings 10 s apart from ``t0`` + ``offset_s`` (values 0, 1, … unless ``value``)."""
    return ReadingBatch(device_id="gas-1", site_id="s1", domain="gas", vendor="v", received_at=t0,
                        samples=tuple(Sample(metric="gas_lel", value=float(i) if value is None else value,
                                             ts=t0 + timedelta(seconds=10 * i + offset_s)) for i in range(n)))


def _msg(batch: ReadingBatch, offset: int) -> Message:
    return Message(batch.model_dump_json().encode(), f"t:0:{offset}")


async def _timescale_unusable(dsn: str) -> str:
    """Why the TimescaleDB steps cannot run on this server (``""``: they can)."""
    conn = await asyncpg.connect(dsn)
    try:
        ok, why = timescale_decision(
            available=bool(await conn.fetchval(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")),
            installed=False, preload=await conn.fetchval("SHOW shared_preload_libraries"))
        return "" if ok else why
    finally:
        await conn.close()


async def test_timescale_hypertables_and_rollup(pg_server_dsn: str) -> None:
    why = await _timescale_unusable(pg_server_dsn)
    if why:
        pytest.skip(f"{why}; the plain-table path is what every other test exercises, and "
                    "docs/timescaledb.md runs this one on a TimescaleDB built from source")
    name = f"test_ts_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = with_database(pg_server_dsn, name)
    try:
        report = await migrate(dsn, timescale=True)
        assert report.timescale, report.timescale_reason
        conn = await asyncpg.connect(dsn)
        try:
            hyper = {r[0] for r in await conn.fetch(
                "SELECT hypertable_name FROM timescaledb_information.hypertables")}
            assert {"readings", "device_status", "device_events"} <= hyper
            jobs = {r[0] for r in await conn.fetch("SELECT proc_name FROM timescaledb_information.jobs")}
            assert {"policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"} <= jobs
            t0 = datetime(2026, 5, 1, tzinfo=UTC)
            batch = _gas(t0, 12)
            out = Engine().process([_msg(batch, 0)])
            storage = Storage(conn)
            await storage.prepare()
            await storage.write(out)
            await storage.write(out)  # replay: merged, nothing added
            assert await conn.fetchval("SELECT count(*) FROM readings") == 12
            # real-time aggregation: the rollup answers before any refresh (migration 041)
            rows = await conn.fetch("SELECT bucket, n, max_value FROM readings_1m ORDER BY bucket")
            assert [(r["n"], r["max_value"]) for r in rows] == [(6, 5.0), (6, 11.0)]
            await conn.execute("CALL refresh_continuous_aggregate('readings_1m', NULL, NULL)")
            rows = await conn.fetch("SELECT bucket, n, max_value FROM readings_1m ORDER BY bucket")
            assert [(r["n"], r["max_value"]) for r in rows] == [(6, 5.0), (6, 11.0)]
            offset = await conn.fetchval("SELECT config->>'start_offset' FROM timescaledb_information.jobs"
                                         " WHERE proc_name = 'policy_refresh_continuous_aggregate'")
            assert offset == "30 days"
            # a replay of duplicates mixed with new rows into a compressed chunk keeps the new rows
            # (2.17 dropped every row after the first conflict: timescale/timescaledb#7672)
            assert await conn.fetchval("SELECT count(compress_chunk(c)) FROM show_chunks('readings') c") == 1
            both = Engine().process([_msg(batch, 1), _msg(_gas(t0, 12, offset_s=5, value=20.0), 2)])
            stats = await storage.write(both)
            assert stats.merged and not stats.refused
            assert await conn.fetchval("SELECT count(*) FROM readings") == 24
            await conn.execute("CALL refresh_continuous_aggregate('readings_1m', NULL, NULL)")
            rows = await conn.fetch("SELECT n, max_value FROM readings_1m ORDER BY bucket")
            assert [(r["n"], r["max_value"]) for r in rows] == [(12, 20.0), (12, 20.0)]
        finally:
            await conn.close()
    finally:
        admin = await asyncpg.connect(pg_server_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_plain_rollup_view(pg_dsn: str) -> None:
    """Without the extension readings_1m is a plain view with the same columns."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        t0 = datetime(2026, 5, 1, tzinfo=UTC)
        out = Engine().process([_msg(_gas(t0, 12), 0)])
        storage = Storage(conn)
        await storage.prepare()
        await storage.write(out)
        rows = await conn.fetch("SELECT n, min_value, max_value, avg_value FROM readings_1m ORDER BY bucket")
        assert [tuple(r) for r in rows] == [(6, 0.0, 5.0, 2.5), (6, 6.0, 11.0, 8.5)]
    finally:
        await conn.close()


async def test_replay_with_new_rows_keeps_the_new_rows(pg_dsn: str) -> None:
    """The staging path leaves out what is stored and adds the rest (on TimescaleDB 2.17 an
    INSERT … ON CONFLICT DO NOTHING that meets a row of a compressed chunk dropped the rows after
    it; docs/timescaledb.md checks it there by hand)."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        t0 = datetime(2026, 5, 1, tzinfo=UTC)
        storage = Storage(conn)
        await storage.prepare()
        stored = _gas(t0, 12)
        await storage.write(Engine().process([_msg(stored, 0)]))
        both = Engine().process([_msg(stored, 1), _msg(_gas(t0, 12, offset_s=5, value=99.0), 2)])
        stats = await storage.write(both)
        assert stats.merged
        assert await conn.fetchval("SELECT count(*) FROM readings") == 24
        assert await conn.fetchval("SELECT count(*) FROM readings WHERE value = 99.0") == 12
    finally:
        await conn.close()


_LIMIT_TRIGGER = """
CREATE FUNCTION emulate_decompression_limit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('timescaledb.max_tuples_decompressed_per_dml_transaction', true), '')
       <> '0' THEN
        RAISE EXCEPTION 'tuple decompression limit exceeded by operation' USING ERRCODE = '53400';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER emulate_decompression_limit BEFORE INSERT ON readings
    FOR EACH ROW EXECUTE FUNCTION emulate_decompression_limit();
"""


async def test_decompression_limit_goes_through_staging(pg_dsn: str) -> None:
    """A COPY that hits TimescaleDB's decompression limit (SQLSTATE 53400, which classify()
    would retry for ever) is written through the staging path with the limit lifted for that one
    statement, then restored. TimescaleDB's limit is played by a trigger raising the same error
    unless the setting is 0: a stand-in, since CI has no TimescaleDB (docs/timescaledb.md shows the
    real one)."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(_LIMIT_TRIGGER)
        await conn.execute("SET timescaledb.max_tuples_decompressed_per_dml_transaction = 100000")
        storage = Storage(conn)
        await storage.prepare()
        out = Engine().process([_msg(_gas(datetime(2026, 5, 1, tzinfo=UTC), 12), 0)])
        stats = await storage.write(out)
        assert stats.merged and not stats.refused
        assert await conn.fetchval("SELECT count(*) FROM readings") == 12
        assert await conn.fetchval("SHOW timescaledb.max_tuples_decompressed_per_dml_transaction") == "100000"
    finally:
        await conn.close()
