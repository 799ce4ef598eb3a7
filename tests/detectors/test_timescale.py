"""The TimescaleDB path: hypertables, compression/retention policies and the per-minute
continuous aggregate, exercised where the extension is installed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from detectors.engine import Engine, Message
from detectors.storage import Storage
from hazmon.contracts import ReadingBatch, Sample
from hazmon.db import migrate
from hazmon.stack.postgres import with_database


async def _has_timescale(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"))
    finally:
        await conn.close()


async def test_timescale_hypertables_and_rollup(pg_server_dsn: str) -> None:
    if not await _has_timescale(pg_server_dsn):
        pytest.skip("timescaledb is not installed on this PostgreSQL server (the local PG 15 has no "
                    "timescaledb package); the plain-table path is what every other test exercises, and "
                    "deploy/sql/timescale/ runs in the docker-compose image (timescale/timescaledb)")
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
            hyper = {r[0] for r in await conn.fetch("SELECT hypertable_name FROM timescaledb_information.hypertables")}
            assert {"readings", "device_status", "device_events"} <= hyper
            jobs = {r[0] for r in await conn.fetch("SELECT proc_name FROM timescaledb_information.jobs")}
            assert {"policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"} <= jobs
            t0 = datetime(2026, 5, 1, tzinfo=UTC)
            batch = ReadingBatch(device_id="gas-1", site_id="s1", domain="gas", vendor="v", received_at=t0,
                                 samples=tuple(Sample(metric="gas_lel", value=float(i), ts=t0 + timedelta(seconds=10 * i))
                                               for i in range(12)))
            out = Engine().process([Message(batch.model_dump_json().encode(), "t:0:0")])
            storage = Storage(conn)
            await storage.prepare()
            await storage.write(out)
            await storage.write(out)  # replay: merged, nothing added
            assert await conn.fetchval("SELECT count(*) FROM readings") == 12
            await conn.execute("CALL refresh_continuous_aggregate('readings_1m', NULL, NULL)")
            rows = await conn.fetch("SELECT bucket, n, max_value FROM readings_1m ORDER BY bucket")
            assert [(r["n"], r["max_value"]) for r in rows] == [(6, 5.0), (6, 11.0)]
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
        batch = ReadingBatch(device_id="gas-1", site_id="s1", domain="gas", vendor="v", received_at=t0,
                             samples=tuple(Sample(metric="gas_lel", value=float(i), ts=t0 + timedelta(seconds=10 * i))
                                           for i in range(12)))
        out = Engine().process([Message(batch.model_dump_json().encode(), "t:0:0")])
        storage = Storage(conn)
        await storage.prepare()
        await storage.write(out)
        rows = await conn.fetch("SELECT n, min_value, max_value, avg_value FROM readings_1m ORDER BY bucket")
        assert [tuple(r) for r in rows] == [(6, 0.0, 5.0, 2.5), (6, 6.0, 11.0, 8.5)]
    finally:
        await conn.close()
