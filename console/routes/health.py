"""设备健康: offline devices, devices never seen, stale sensors, low battery; liveness probe."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request

from console.auth import PUBLIC, access
from console.pool import acquire
from console.routes._common import (
    Conn,
    CurrentScope,
    DomainFilter,
    IdFilter,
    PageParams,
    equal,
    fetch_page,
    in_township,
    page_of,
)
from console.routes.registry import DEVICE_READERS
from console.scope import Params

__all__ = ["router", "STALE_FACTOR", "LOW_BATTERY_PCT"]

router = APIRouter(prefix="/api", tags=["health"])

#: a sensor is stale when its newest reading is older than this many expected intervals
STALE_FACTOR = 3
LOW_BATTERY_PCT = 20.0


@router.get(
    "/healthz",
    summary="liveness: the console and its database answer",
    responses={503: {"description": "the database does not answer (数据库暂时不可用)"}},
    **access(PUBLIC),
)
async def healthz(request: Request) -> dict:
    # a borrowed connection with a deadline: a busy pool or a database down answers 503 quickly
    async with acquire(request.app) as conn:
        await conn.fetchval("SELECT 1")
    return {"ok": True}


@router.get("/health/devices", summary="设备健康 (counts + problem devices)", **access(*DEVICE_READERS))
async def device_health(
    request: Request,
    conn: Conn,
    scope: CurrentScope,
    paging: PageParams,
    problem: Literal["offline", "never_seen", "stale", "low_battery"] | None = None,
    township_id: IdFilter = None,
    domain: DomainFilter = None,
) -> dict:
    now = request.app.state.clock()
    p = Params()
    where = [scope.devices_sql(p), "d.active", "NOT d.is_canary", *in_township(p, "d.site_id", township_id),
             *equal(p, ("d.domain", domain))]
    now_p = p(now)
    stale_p = p(STALE_FACTOR)
    battery_p = p(LOW_BATTERY_PCT)
    base = f"""
        WITH dev AS (
            SELECT d.id, d.site_id, d.domain, d.vendor_id, d.model, d.expected_interval_s,
                   (SELECT s.name FROM sites s WHERE s.id = d.site_id) AS site_name,
                   (SELECT v.name FROM vendors v WHERE v.id = d.vendor_id) AS vendor_name,
                   pr.state AS presence, pr.since, pr.last_seen,
                   (SELECT max(lr.ts) FROM latest_readings lr WHERE lr.device_id = d.id) AS last_reading,
                   (SELECT lr.value FROM latest_readings lr WHERE lr.device_id = d.id AND lr.metric = 'battery_pct') AS battery
            FROM devices d LEFT JOIN device_presence pr ON pr.device_id = d.id
            WHERE {' AND '.join(where)}
        ), cls AS (
            SELECT dev.*,
                   CASE WHEN presence IS NULL AND last_reading IS NULL THEN 'never_seen'
                        WHEN presence = 'offline' THEN 'offline'
                        WHEN last_reading IS NOT NULL
                             AND last_reading < {now_p}::timestamptz - make_interval(secs => expected_interval_s * {stale_p}::int)
                             THEN 'stale'
                        WHEN battery IS NOT NULL AND battery < {battery_p}::float8 THEN 'low_battery'
                        ELSE 'ok' END AS problem
            FROM dev
        )"""
    counts = await conn.fetchrow(
        f"""{base} SELECT count(*) AS total,
                   count(*) FILTER (WHERE presence = 'online') AS online,
                   count(*) FILTER (WHERE problem = 'offline') AS offline,
                   count(*) FILTER (WHERE problem = 'never_seen') AS never_seen,
                   count(*) FILTER (WHERE problem = 'stale') AS stale,
                   count(*) FILTER (WHERE problem = 'low_battery') AS low_battery
            FROM cls""",
        *p.values,
    )
    filt = f"problem = {p(problem)}" if problem else "problem <> 'ok'"
    total, rows = await fetch_page(
        conn, p, paging, with_=base, source=f"cls WHERE {filt}", order_by="problem, id",
        columns="id, site_id, site_name, domain, vendor_id, vendor_name, model, presence, since, last_seen,"
                " last_reading, battery,"
                " problem",
    )
    c = dict(counts)
    c["online_rate"] = round(c["online"] / c["total"], 4) if c["total"] else None
    out = page_of([dict(r) for r in rows], total, paging)
    out["counts"] = c
    out["as_of"] = now.isoformat()
    out["stale_factor"] = STALE_FACTOR
    return out
