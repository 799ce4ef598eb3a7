"""The daily KPI snapshot (migration 035): once per day, the state at the day's end, refused for a
day not ended; alerting's timers take yesterday's at their first tick of a day; `hazmon kpi
snapshot` backfills a range; a past period reads its own days, not today's presence."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from alerting_helpers import ServiceFactory

from alerting.clock import ManualClock
from alerting.errors import InvalidAction
from alerting.kpi import bulletin, period_bounds
from alerting.kpi_snapshot import take
from detectors.batch import BatchOutput
from detectors.storage import Storage

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOV = period_bounds("2026-11")


def cst_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC) - timedelta(hours=8)


async def test_a_day_is_taken_once_as_it_stood_at_its_end(pool: asyncpg.Pool) -> None:
    day = date(2026, 11, 10)
    end = cst_midnight(day + timedelta(days=1))
    async with pool.acquire() as c:
        # S1-GAS1 online since the 1st; S4-GAS1 online, then offline only after the day ended
        await Storage(c).write(BatchOutput(presence={"S1-GAS1": ("online", cst_midnight(date(2026, 11, 1))),
                                                     "S4-GAS1": ("online", cst_midnight(date(2026, 11, 1)))}))
        await Storage(c).write(BatchOutput(presence={"S4-GAS1": ("offline", end + timedelta(hours=3))}))
        with pytest.raises(InvalidAction, match="尚未结束"):
            await take(c, day, now=end - timedelta(seconds=1))
        first = await take(c, day, now=end + timedelta(hours=5))
        assert first.taken and first.devices == 30 and first.sites == 6
        states = dict(await c.fetch("SELECT device_id, state FROM kpi_device_days WHERE day = $1", day))
        # at the day's end S4-GAS1 was still online; S5-GAS1 never heard from
        assert states["S1-GAS1"] == "online" and states["S4-GAS1"] == "online"
        assert states["S5-GAS1"] == "never_seen"
        await Storage(c).write(BatchOutput(presence={"S1-GAS1": ("offline", end + timedelta(hours=6))}))
        again = await take(c, day, now=end + timedelta(hours=7))
        assert not again.taken  # idempotent: the first snapshot of a day is the record
        assert await c.fetchval("SELECT state FROM kpi_device_days WHERE day = $1 AND device_id = 'S1-GAS1'",
                                day) == "online"
        assert await c.fetchval("SELECT count(*) FROM kpi_snapshot_days") == 1


async def test_the_timers_take_yesterday_once(pool: asyncpg.Pool, clock: ManualClock,
                                              make_service: ServiceFactory) -> None:
    svc = await make_service()
    clock.set(cst_midnight(date(2026, 11, 4)) + timedelta(minutes=1))  # 00:01 on the 4th, China time
    await svc.tick()
    await svc.tick()
    clock.advance(timedelta(hours=12))
    await svc.tick()
    async with pool.acquire() as c:
        rows = await c.fetch("SELECT day, source FROM kpi_snapshot_days ORDER BY day")
    assert [(r["day"], r["source"]) for r in rows] == [(date(2026, 11, 3), "pass")]
    clock.advance(timedelta(hours=12))  # the 5th
    await svc.tick()
    async with pool.acquire() as c:
        assert await c.fetchval("SELECT max(day) FROM kpi_snapshot_days") == date(2026, 11, 4)


async def test_a_past_month_reads_its_own_days(pool: asyncpg.Pool) -> None:
    """Coverage and online rate of November from November's snapshots, whatever happens after."""
    async with pool.acquire() as c:
        await Storage(c).write(BatchOutput(presence={
            d: ("online", cst_midnight(date(2026, 10, 1)))
            for d in await c.fetch("SELECT id FROM devices") for d in [d["id"]]}))
        day = date(2026, 11, 1)
        while day <= date(2026, 11, 30):
            await take(c, day, now=cst_midnight(day + timedelta(days=1)))
            day += timedelta(days=1)
        before = (await bulletin(c, start=NOV[0], end=NOV[1], now=datetime(2026, 12, 1, tzinfo=UTC))).row(
            "total", "all")
        # December: every gas detector goes offline; November's figures must not move
        await Storage(c).write(BatchOutput(presence={
            d: ("offline", datetime(2026, 12, 2, tzinfo=UTC))
            for d in await c.fetch("SELECT id FROM devices WHERE domain = 'gas'") for d in [d["id"]]}))
        after = (await bulletin(c, start=NOV[0], end=NOV[1], now=datetime(2026, 12, 5, tzinfo=UTC))).row(
            "total", "all")
    assert before.online_rate == after.online_rate == 1.0
    assert before.coverage_rate == after.coverage_rate == 1.0


async def test_the_command_backfills_a_range(pool: asyncpg.Pool, pg_dsn: str) -> None:
    env = {**os.environ, "HAZMON_POSTGRES__DSN": pg_dsn}

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "hazmon.cli", "kpi", "snapshot", *args]
        return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, env=env,
                                       timeout=60, check=False)

    ok = await cli("--date", "2026-11-01", "--to", "2026-11-03")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [f"2026-11-0{i} 快照：场所 6 个，设备 30 台" for i in (1, 2, 3)]
    again = await cli("--date", "2026-11-02")
    assert again.returncode == 0 and again.stdout.strip() == "2026-11-02 已有快照，未改动"
    for args, words in ((["--date", "2099-01-01"], "尚未结束"),
                        (["--date", "2026-13-01"], "日期须写成 YYYY-MM-DD"),
                        (["--date", "2026-11-05", "--to", "2026-11-01"], "--to 须不早于 --date")):
        bad = await cli(*args)
        assert bad.returncode == 2 and words in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    async with pool.acquire() as c:
        assert await c.fetchval("SELECT count(*) FROM kpi_snapshot_days") == 3
