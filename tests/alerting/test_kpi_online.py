"""在线全时段: the KPI online rate and the console's device health agree on the same data.

The sample district as `hazmon registry import data/sample` loads it, its detectors heard from in
part: some devices online, some offline since before the period, the rest never heard from (no
presence row). Nothing changes during the period, so the time-weighted KPI must equal device
health's instantaneous online share — before the fix the KPI read 100.0 % here (a device never
heard from has no offline alarm) while device health showed well under half online.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from alerting.kpi import CST, bulletin, period_bounds
from alerting.kpi.periods import day_start
from alerting.kpi_snapshot import take
from console.app import create_app
from console.users import create_demo_accounts
from hazmon.registry import import_registry
from hazmon.settings import PostgresSettings, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
START, END = period_bounds("2026-11")
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
BEFORE = datetime(2026, 10, 15, tzinfo=UTC)


async def _health(pg_dsn: str, password: str, **params: str) -> dict:
    app = create_app(Settings(postgres=PostgresSettings(dsn=pg_dsn)), clock=lambda: NOW)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as c:
            r = await c.post("/api/auth/login", json={"username": "demo-centre", "password": password})
            assert r.status_code == 200, r.text
            r = await c.get("/api/health/devices", params=params,
                            headers={"Authorization": f"Bearer {r.json()['token']}"})
            assert r.status_code == 200, r.text
            return r.json()["counts"]


async def test_online_rate_agrees_with_device_health(pg_dsn: str) -> None:
    await import_registry(pg_dsn, ROOT / "data" / "sample")
    conn = await asyncpg.connect(pg_dsn)
    try:
        await create_demo_accounts(conn, password="kpi-test-pw")
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM devices WHERE active ORDER BY id")]
        online, offline = ids[0::7] + ids[1::7] + ids[2::7], ids[3::7]  # the other 3/7 never heard from
        await conn.execute("INSERT INTO device_presence (device_id, state, since, last_seen)"
                           " SELECT unnest($1::text[]), 'online', $2, $3", online, BEFORE, NOW)
        await conn.execute("INSERT INTO device_presence (device_id, state, since, last_seen)"
                           " SELECT unnest($1::text[]), 'offline', $2, $2", offline, BEFORE)
        # the daily snapshots of November, backfilled on 1 December (hazmon kpi snapshot)
        day = START.astimezone(CST).date()
        while day_start(day) < END:
            assert (await take(conn, day, now=NOW)).taken
            day += timedelta(days=1)
        b = await bulletin(conn, start=START, end=END, now=NOW)
    finally:
        await conn.close()

    counts = await _health(pg_dsn, "kpi-test-pw")
    assert counts["total"] == len(ids) > 1000 and counts["online"] == len(online)
    assert counts["never_seen"] == len(ids) - len(online) - len(offline)
    total = b.row("total", "all")
    assert total.devices == counts["total"]
    assert total.online_rate == pytest.approx(counts["online"] / counts["total"])
    assert total.online_rate == pytest.approx(counts["online_rate"], abs=5e-5) and total.online_rate < 0.5
    assert "设备在线率 100.0%" not in b.text()
    for domain in ("gas", "elevator", "fire"):
        c = await _health(pg_dsn, "kpi-test-pw", domain=domain)
        row = b.row("domain", domain)
        assert row.devices == c["total"] and row.online_rate == pytest.approx(c["online"] / c["total"]), domain
