"""Reading a period and its 环比/同比 periods in one read-only snapshot, then computing."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg

from alerting.errors import InvalidAction
from alerting.kpi.compute import compute, vendor_league
from alerting.kpi.model import DIMENSIONS, Bulletin, Dimension, KpiRow
from alerting.kpi.periods import check_period, days_of, previous_period, year_ago_period
from alerting.queries_kpi import KpiInputs, kpi_inputs

__all__ = ["bulletin", "official_bulletin", "compute_kpis", "NO_DATA"]

NO_DATA = "所选时段内没有任何监测数据"


def _has_data(inputs: KpiInputs, end: datetime, now: datetime) -> bool:
    """A period has data when a day of it was snapshotted, an alarm or a hazard falls in it, or
    it reaches the present (read live) with devices registered."""
    live = end > now and bool(inputs.device_runs)
    return bool(inputs.snapshot_days or inputs.alerts or inputs.hazards or live)


async def _one(conn: asyncpg.Connection, start: datetime, end: datetime, now: datetime,
               dims: tuple[Dimension, ...]) -> Bulletin | None:
    as_of = min(end, now)
    first, last = days_of(start, as_of)
    inputs = await kpi_inputs(conn, start=start, end=end, as_of=as_of, first_day=first, last_day=last)
    if start >= now or not _has_data(inputs, end, now):
        return None
    rows = tuple(compute(inputs, start, end, now, dims))
    return Bulletin(start, end, now, rows, vendor_league(rows))


async def bulletin(conn: asyncpg.Connection, *, start: datetime, end: datetime, now: datetime,
                   dimensions: Iterable[Dimension] = DIMENSIONS, compare: bool = True) -> Bulletin:
    """Every KPI of [start, end) as of ``now`` with its 环比 (``previous``) and 同比
    (``year_ago``) periods, in one read-only snapshot. A period not begun yet or without any
    data is refused (InvalidAction, in Chinese); a comparison period without data is None."""
    check_period(start, end, now)
    dims = tuple(dimensions)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        b = await _one(conn, start, end, now, dims)
        if b is None:
            raise InvalidAction(NO_DATA)
        if not compare:
            return b
        ps, pe = previous_period(start, end)
        ys, ye = year_ago_period(start, end)
        previous = await _one(conn, ps, pe, now, dims)
        # a year's 环比 is its 同比 (the year before): read once
        year_ago = previous if (ys, ye) == (ps, pe) else await _one(conn, ys, ye, now, dims)
        return Bulletin(b.start, b.end, b.generated_at, b.rows, b.vendors, previous=previous,
                        year_ago=year_ago)


async def official_bulletin(conn: asyncpg.Connection, *, start: datetime, end: datetime,
                            now: datetime) -> Bulletin:
    """The 通报's figures: every dimension, with ``previous`` (环比) and ``year_ago`` (同比)."""
    return await bulletin(conn, start=start, end=end, now=now)


async def compute_kpis(conn: asyncpg.Connection, *, start: datetime, end: datetime, now: datetime,
                       dimension: Dimension) -> list[KpiRow]:
    """KPI rows of one dimension (``total`` gives the single row keyed ``all``)."""
    if dimension not in DIMENSIONS:
        raise InvalidAction(f"维度须为 {'、'.join(DIMENSIONS)} 之一")
    b = await bulletin(conn, start=start, end=end, now=now, dimensions=(dimension,), compare=False)
    return b.by(dimension)
