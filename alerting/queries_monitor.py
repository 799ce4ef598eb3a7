"""Reads of the monitor's own tables for the console's 监测系统运行状态 page (issue 20).

``stage_heartbeats`` (every stage with a database connection, and the bridges through the
canaries they carry), ``canary_state`` (alerting's record of each canary's hops) and
``watchdog_state`` (what ``hazmon watchdog`` found last): deploy/sql/020_monitoring.sql. Their
writers stamp times with the database's clock, so every age here is ``now()`` minus a stamp in
the same statement, never the console host's clock against the database's.

One round trip per table, each a handful of rows (one per process, canary device, watchdog):
the page refreshes every few seconds, and the console caches the answer (console/routes/system.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["MonitorRows", "monitor_rows", "HEARTBEATS", "CANARIES", "WATCHDOGS"]

HEARTBEATS = """SELECT stage, instance, started_at, beat_at, detail,
       extract(epoch FROM now() - beat_at)::float8 AS age_s
FROM stage_heartbeats ORDER BY stage, started_at, instance"""

#: every active canary device (devices.is_canary), with its row of canary_state when one has
#: arrived yet; its family is the adapter of its vendor until alerting has written one
CANARIES = """SELECT d.id AS device_id, coalesce(c.family, v.adapter) AS family, d.domain,
       coalesce(dm.name_zh, d.domain) AS domain_zh, c.seq, c.published_at, c.bridged_at,
       coalesce(c.bridge, '') AS bridge, c.detected_at, c.arrived_at, c.broken_since,
       coalesce(c.broken_hop, '') AS broken_hop,
       extract(epoch FROM now() - c.arrived_at)::float8 AS age_s
FROM devices d JOIN vendors v ON v.id = d.vendor_id
     LEFT JOIN canary_state c ON c.device_id = d.id
     LEFT JOIN domains dm ON dm.name = d.domain
WHERE d.is_canary AND d.active
ORDER BY d.domain, family, d.id"""

WATCHDOGS = """SELECT instance, checked_at, verdict, findings, paging_since, paged_about,
       extract(epoch FROM now() - checked_at)::float8 AS age_s
FROM watchdog_state ORDER BY instance"""


@dataclass(frozen=True, slots=True)
class MonitorRows:
    """What the three tables hold now (``now``: the database's clock)."""

    now: datetime
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    canaries: list[dict[str, Any]] = field(default_factory=list)
    watchdogs: list[dict[str, Any]] = field(default_factory=list)


def _json(value: Any, empty: Any) -> Any:
    if value is None:
        return empty
    return json.loads(value) if isinstance(value, str) else value


async def monitor_rows(conn: Any) -> MonitorRows:
    """The heartbeats, canaries and watchdogs, jsonb columns decoded (``detail`` a dict,
    ``findings`` a list)."""
    now = await conn.fetchval("SELECT now()")
    beats = [{**dict(r), "detail": _json(r["detail"], {})} for r in await conn.fetch(HEARTBEATS)]
    canaries = [dict(r) for r in await conn.fetch(CANARIES)]
    dogs = [{**dict(r), "findings": _json(r["findings"], [])} for r in await conn.fetch(WATCHDOGS)]
    return MonitorRows(now=now, heartbeats=beats, canaries=canaries, watchdogs=dogs)
