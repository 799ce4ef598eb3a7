"""The reads of :mod:`alerting.selfwatch`: the watchdog's heartbeats (``stage_heartbeats``, stage
``watchdog``, written by ``hazmon watchdog``) and the alerts selfwatch has open about them."""

from __future__ import annotations

from typing import Any

import asyncpg

__all__ = ["watchdog_beats", "open_watchdog_alerts"]


async def watchdog_beats(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every watchdog instance's last beat: ``instance``, ``beat_at``, ``age_s`` (by the
    database's clock, as the watchdog wrote it), ``detail`` (its ``alarm_after_s``)."""
    rows = await conn.fetch(
        """SELECT instance, beat_at, extract(epoch FROM now() - beat_at)::float8 AS age_s, detail::text AS detail
           FROM stage_heartbeats WHERE stage = 'watchdog' ORDER BY instance""")
    return [dict(r) for r in rows]


async def open_watchdog_alerts(conn: asyncpg.Connection, kind: str) -> list[dict[str, Any]]:
    """The firing alerts of ``kind`` (one per silent watchdog instance): ``id``, ``starts_at``,
    ``instance`` (its label)."""
    rows = await conn.fetch(
        """SELECT id, starts_at, labels->>'instance' AS instance FROM alerts
           WHERE kind = $1 AND state = 'firing' ORDER BY starts_at""", kind)
    return [dict(r) for r in rows]
