"""The daily KPI snapshot (migration 035): each China-time day's sites, devices and presence as
they stood at its end, so a past period's coverage and online rate read that period's state.

Taken once per day: by alerting's timers after the day ends (:func:`daily`, a query only at the
first tick of a day), or by ``hazmon kpi snapshot [--date D]`` to
backfill. A day already taken is left as it is (the first snapshot of a day is the record);
a day not ended yet is refused. The state "at the day's end" of a day taken later is read back
from the live presence (alerting/store/kpi_snapshot.py STATE_AT).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from alerting.errors import InvalidAction
from alerting.kpi.periods import CST, day_start
from alerting.store import kpi_snapshot as store
from hazmon.logs import kv

__all__ = ["Snapshot", "take", "daily"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    day: date
    taken: bool  # False: the day had been taken already (nothing changed)
    sites: int = 0
    devices: int = 0


async def take(conn: asyncpg.Connection, day: date, *, now: datetime, source: str = "backfill") -> Snapshot:
    """Snapshot CST day ``day`` as of its end; InvalidAction when the day has not ended."""
    end = day_start(day + timedelta(days=1))
    if end > now:
        raise InvalidAction(f"{day:%Y-%m-%d} 尚未结束，不能生成当日快照")
    async with conn.transaction():
        done = await store.take_snapshot(conn, day, at=end, taken_at=now, source=source)
    if done is None:
        return Snapshot(day, False)
    log.info("kpi snapshot taken %s", kv(day=day.isoformat(), sites=done[0], devices=done[1], source=source))
    return Snapshot(day, True, *done)


#: the pool → the last day its daily pass took (the pool is held, so its id is never reused)
_DONE: dict[int, tuple[asyncpg.Pool, date]] = {}


async def daily(pool: asyncpg.Pool, now: datetime) -> int:
    """The timers' pass: yesterday's snapshot, once, at the first tick of each CST day (a tick
    after that costs no query). Returns 1 when it took one."""
    yesterday = now.astimezone(CST).date() - timedelta(days=1)
    done = _DONE.get(id(pool))
    if done is not None and done[0] is pool and done[1] >= yesterday:
        return 0
    try:
        async with pool.acquire() as conn:
            snap = await take(conn, yesterday, now=now, source="pass")
    except (OSError, asyncpg.PostgresError) as exc:  # tried again at the next tick
        log.warning("kpi snapshot failed %s", kv(day=yesterday.isoformat(), error=exc))
        return 0
    _DONE[id(pool)] = (pool, yesterday)
    return int(snap.taken)
