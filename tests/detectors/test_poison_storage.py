"""The storage writer on a real PostgreSQL (issue 17): a record the database refuses for a data
reason is isolated and returned as a dead letter, the rest of its batch is stored; an error that
is the same for every record (a missing table) is raised for the service to retry, nothing
dead-lettered; hazmon.pgerrors classifies what the server and the driver really raise."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from detectors.engine import Engine, Message
from detectors.storage import Storage
from hazmon.pgerrors import classify


def _batch(device: str, n: int, unit: str = "%LEL") -> bytes:
    now = datetime.now(UTC)
    return json.dumps({
        "v": 1, "device_id": device, "site_id": "S1", "domain": "gas", "vendor": "v", "received_at": now.isoformat(),
        "samples": [{"metric": "gas_lel", "value": 1.0 + i, "unit": unit, "ts": (now - timedelta(seconds=60 - i)).isoformat()}
                    for i in range(n)],
    }).encode()


#: TimescaleDB refuses ADD CONSTRAINT on a hypertable with compression enabled (docs/timescaledb.md)
_NO_COMPRESSION = """
DO $$
BEGIN
    IF to_regclass('timescaledb_information.hypertables') IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'readings' AND compression_enabled) THEN
            PERFORM remove_compression_policy('readings', if_exists => true);
            ALTER TABLE readings SET (timescaledb.compress = false);
        END IF;
    END IF;
END
$$
"""


async def test_refused_message_is_isolated_and_the_rest_stored(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(_NO_COMPRESSION)
        await conn.execute("ALTER TABLE readings ADD CONSTRAINT unit_known CHECK (unit IN ('%LEL', '%', ''))")
        storage = Storage(conn)
        await storage.prepare()
        engine = Engine()
        msgs = [Message(_batch(f"G-{i}", 3, "%LEL" if i != 5 else "LEL"), f"readings:0:{i}") for i in range(9)]
        out = engine.process(msgs)
        stats = await storage.write(out)
        assert [d.source for d in stats.refused] == ["readings:0:5"]
        letter = stats.refused[0]
        assert letter.reason.value == "refused" and letter.device_id == "G-5" and letter.raw == msgs[5].value
        assert "SQLSTATE 23514" in letter.detail and "unit_known" in letter.detail
        rows = await conn.fetch("SELECT device_id, count(*) FROM readings GROUP BY device_id ORDER BY device_id")
        assert {r[0]: r[1] for r in rows} == {f"G-{i}": 3 for i in range(9) if i != 5}
        await storage.flush()
        latest = {r[0] for r in await conn.fetch("SELECT device_id FROM latest_readings")}
        assert latest == {f"G-{i}" for i in range(9) if i != 5}  # the refused reading is not a latest value

        # the same batch again (a replay after a crash): nothing new, the same refusal, same id
        again = await storage.write(engine.process(msgs))
        assert [d.id for d in again.refused] == [letter.id]
    finally:
        await conn.close()


async def test_an_error_that_is_not_the_records_is_raised_not_dead_lettered(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("ALTER TABLE readings RENAME TO readings_moved")
        storage = Storage(conn)
        out = Engine().process([Message(_batch(f"G-{i}", 2), f"readings:0:{i}") for i in range(4)])
        with pytest.raises(asyncpg.PostgresError) as err:
            await storage.write(out)
        assert classify(err.value) == "bug"  # 42P01: the same for every record: retried, not dead-lettered
        assert await conn.fetchval("SELECT count(*) FROM deadletters") == 0
    finally:
        await conn.close()


async def test_classification_of_what_postgres_and_asyncpg_raise(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        cases = {
            "SELECT 'a' || chr(0)": None,
            "SELECT $1::text": "a\x00b",
            "SELECT '{\"a\": \"\\u0000\"}'::jsonb": None,
            "SELECT 1/0": None,
            "SELECT $1::bigint": 2**64 - 1,
        }
        for sql, arg in cases.items():
            with pytest.raises(Exception) as err:
                await (conn.fetchval(sql, arg) if arg is not None else conn.fetchval(sql))
            assert classify(err.value) == "data", (sql, type(err.value), err.value)
        await conn.execute("CREATE TEMP TABLE twice (k int PRIMARY KEY, v int)")
        with pytest.raises(asyncpg.CardinalityViolationError) as card:  # one upsert naming a key twice
            await conn.execute("INSERT INTO twice VALUES (1, 1), (1, 2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v")
        assert classify(card.value) == "data"  # the batch's records collide: bisection separates them
        with pytest.raises(asyncpg.PostgresError) as err:
            await conn.fetchval("SELECT * FROM no_such_table")
        assert classify(err.value) == "bug"
    finally:
        await conn.close()
    with pytest.raises(OSError) as down:
        await asyncpg.connect("postgresql://postgres@127.0.0.1:1/x", timeout=2)
    assert classify(down.value) == "retry"
