"""Dead-letter retention and per-vendor quota (issue 17 item 15) on real PostgreSQL, through the
detectors' own :class:`~detectors.storage.Storage` (the sink the dead-letter topic feeds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from detectors.deadletter_retention import DeadLetterPolicy
from detectors.storage import Storage
from hazmon.contracts import DeadLetter, DeadLetterReason

pytestmark = pytest.mark.timeout(60)


def letter(i: int, vendor: str, raw: bytes = b"x" * 1000, age: timedelta = timedelta(0)) -> DeadLetter:
    return DeadLetter(id=f"{vendor}-{i}-{age.days}", stage="ingest", source=f"hazmon/v1/{vendor}/D{i}/telemetry", vendor=vendor,
                      device_id=f"D{i}", reason=DeadLetterReason.MALFORMED, detail="not JSON", raw=raw,
                      received_at=datetime.now(UTC) - age)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_quota_per_vendor_counts_the_rest_and_retention_prunes(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        storage = Storage(conn)
        storage.deadletter_policy = DeadLetterPolicy(retention_s=7 * 86400, quota_rows=5, quota_raw_bytes=3500, usage_ttl_s=0)
        # stored now: counted and kept, however old the message (a replay must not vanish)
        await storage.write_deadletters([letter(99, "late", age=timedelta(days=400))])
        assert await conn.fetchval("SELECT count(*) FROM deadletters WHERE vendor = 'late'") == 1
        dropped0 = metric("hazmon_deadletters_dropped_total", vendor="flooder", reason="malformed", cause="quota")
        raw0 = metric("hazmon_deadletters_raw_dropped_total", vendor="flooder")
        await storage.write_deadletters([letter(i, "flooder") for i in range(8)] + [letter(i, "quiet") for i in range(2)])
        rows = await conn.fetch("SELECT vendor, count(*) AS n, count(*) FILTER (WHERE raw = ''::bytea) AS bare "
                                "FROM deadletters GROUP BY vendor ORDER BY vendor")
        assert [(r["vendor"], r["n"], r["bare"]) for r in rows] == [("flooder", 5, 2), ("late", 1, 0), ("quiet", 2, 0)]
        bare = await conn.fetchval("SELECT detail FROM deadletters WHERE vendor = 'flooder' AND raw = ''::bytea LIMIT 1")
        assert "原始报文未保存" in bare
        over = await conn.fetch("SELECT vendor, reason, cause, letters, raw_bytes FROM deadletter_overflow")
        assert [tuple(r) for r in over] == [("flooder", "malformed", "quota", 3, 3000)]
        assert metric("hazmon_deadletters_dropped_total", vendor="flooder", reason="malformed", cause="quota") - dropped0 == 3
        assert metric("hazmon_deadletters_raw_dropped_total", vendor="flooder") - raw0 == 2
        # a second batch: the quota is counted from the table, not per batch
        await storage.write_deadletters([letter(i, "flooder") for i in range(8, 10)])
        assert await conn.fetchval("SELECT count(*) FROM deadletters WHERE vendor = 'flooder'") == 5
        assert await conn.fetchval("SELECT letters FROM deadletter_overflow WHERE vendor = 'flooder'") == 5
        # retention: letters older than 7 days go at the next sweep, and free the quota
        await conn.execute("UPDATE deadletters SET stored_at = stored_at - interval '8 days' WHERE vendor = 'flooder'")
        pruned0 = metric("hazmon_deadletters_pruned_total")
        assert await storage.deadletter_policy.prune(conn) == 5
        assert metric("hazmon_deadletters_pruned_total") - pruned0 == 5
        await storage.write_deadletters([letter(i, "flooder") for i in range(10, 12)])
        assert await conn.fetchval("SELECT count(*) FROM deadletters WHERE vendor = 'flooder'") == 2
    finally:
        await conn.close()


async def test_full_disk_degrades_to_counting_and_the_rest_of_the_write_commits(pg_dsn: str) -> None:
    """PostgreSQL's own disk_full (SQLSTATE 53100), raised by a trigger on the real table."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("""
            CREATE FUNCTION deadletters_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$;
            CREATE TRIGGER deadletters_disk_full BEFORE INSERT ON deadletters FOR EACH ROW EXECUTE FUNCTION deadletters_disk_full();
        """)
        storage = Storage(conn)
        storage.deadletter_policy = DeadLetterPolicy()
        before = metric("hazmon_deadletters_dropped_total", vendor="acme", reason="malformed", cause="disk_full")
        async with conn.transaction():  # the detector's write transaction
            await conn.execute("INSERT INTO deadletter_overflow (vendor, reason, cause, day) VALUES ('other', 'x', 'quota', current_date)")
            await storage.write_deadletters([letter(i, "acme") for i in range(3)])
        assert await conn.fetchval("SELECT count(*) FROM deadletters") == 0
        assert await conn.fetchval("SELECT letters FROM deadletter_overflow WHERE vendor = 'acme' AND cause = 'disk_full'") == 3
        assert await conn.fetchval("SELECT count(*) FROM deadletter_overflow WHERE vendor = 'other'") == 1  # committed
        assert metric("hazmon_deadletters_dropped_total", vendor="acme", reason="malformed", cause="disk_full") - before == 3
    finally:
        await conn.close()
