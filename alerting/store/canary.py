"""The SQL of :mod:`alerting.canary`: ``canary_state`` (one row per canary device), the stages'
``stage_heartbeats`` it judges the hop from, and the bridges' rows it writes for them (a bridge
has no database: the canary readings it carries are its heartbeat). Tables: deploy/sql/020."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

__all__ = ["sync_devices", "record_arrivals", "state", "beats", "set_broken", "clear_broken", "open_alerts"]

_SYNC_ADD = """
INSERT INTO canary_state (device_id, family)
SELECT d.id, v.adapter FROM devices d JOIN vendors v ON v.id = d.vendor_id
WHERE d.is_canary AND d.active
ON CONFLICT (device_id) DO UPDATE SET family = EXCLUDED.family WHERE canary_state.family <> EXCLUDED.family"""

_SYNC_DROP = """
DELETE FROM canary_state c WHERE NOT EXISTS (
    SELECT 1 FROM devices d WHERE d.id = c.device_id AND d.is_canary AND d.active)"""

_ARRIVAL = """
UPDATE canary_state SET seq = $2, published_at = $3, bridged_at = $4, bridge = $5, detected_at = $6,
    arrived_at = $7, updated_at = now()
WHERE device_id = $1 AND (arrived_at IS NULL OR published_at IS NULL OR published_at <= $3)"""

_BRIDGE_BEAT = """
INSERT INTO stage_heartbeats (stage, instance, started_at, beat_at, detail)
VALUES ('bridge', $1, $2, $2, $3::jsonb)
ON CONFLICT (stage, instance) DO UPDATE SET beat_at = greatest(stage_heartbeats.beat_at, EXCLUDED.beat_at),
    detail = EXCLUDED.detail"""


async def sync_devices(conn: asyncpg.Connection) -> None:
    """A row for every active canary of the registry (its ``updated_at`` is the time since which
    one that never arrived is waited for); none for a device no longer a canary."""
    await conn.execute(_SYNC_ADD)
    await conn.execute(_SYNC_DROP)


async def record_arrivals(conn: asyncpg.Connection, rows: list[tuple[Any, ...]],
                          bridges: dict[str, datetime]) -> None:
    """``rows``: (device_id, seq, published_at, bridged_at, bridge, detected_at, arrived_at); a
    replayed, older canary does not move a row back. ``bridges``: bridge instance → the newest
    time it carried a canary (its ``stage_heartbeats`` row, ``detail.via = canary``)."""
    async with conn.transaction():
        await conn.executemany(_ARRIVAL, rows)
        if bridges:
            detail = json.dumps({"via": "canary"})
            await conn.executemany(_BRIDGE_BEAT, [(b, at, detail) for b, at in sorted(bridges.items())])


async def state(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every canary with its stamps, its site and how long since it last arrived (``age_s``: by
    the database's clock; never arrived: since its row was made)."""
    rows = await conn.fetch(
        """SELECT c.device_id, c.family, c.seq, c.published_at, c.bridged_at, c.bridge, c.detected_at,
                  c.arrived_at, c.broken_since, c.broken_hop, d.site_id, d.domain, d.location,
                  extract(epoch FROM now() - coalesce(c.arrived_at, c.updated_at))::float8 AS age_s
           FROM canary_state c JOIN devices d ON d.id = c.device_id ORDER BY c.device_id""")
    return [dict(r) for r in rows]


async def beats(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every stage's heartbeat rows: ``stage``, ``instance``, ``started_at``, ``beat_at``, ``age_s``
    (since the beat), ``started_s`` (since the start), ``detail`` (a dict)."""
    rows = await conn.fetch(
        """SELECT stage, instance, started_at, beat_at, detail::text AS detail,
                  extract(epoch FROM now() - beat_at)::float8 AS age_s,
                  extract(epoch FROM now() - started_at)::float8 AS started_s
           FROM stage_heartbeats ORDER BY stage, instance""")
    out = []
    for r in rows:
        d = dict(r)
        try:
            d["detail"] = json.loads(d["detail"] or "{}")
        except ValueError:
            d["detail"] = {}
        out.append(d)
    return out


async def set_broken(conn: asyncpg.Connection, device_id: str, since: datetime, hop: str) -> None:
    # updated_at stays: for a canary that never arrived it is the time it is waited for since
    await conn.execute("UPDATE canary_state SET broken_since = $2, broken_hop = $3 WHERE device_id = $1",
                       device_id, since, hop)


async def clear_broken(conn: asyncpg.Connection, device_id: str) -> None:
    await conn.execute("UPDATE canary_state SET broken_since = NULL, broken_hop = '' WHERE device_id = $1",
                       device_id)


async def open_alerts(conn: asyncpg.Connection, kinds: list[str]) -> list[dict[str, Any]]:
    """The firing alerts of ``kinds``: ``id``, ``kind``, ``device_id``, ``starts_at``, ``labels``."""
    rows = await conn.fetch(
        """SELECT id, kind, device_id, starts_at, labels::text AS labels FROM alerts
           WHERE kind = ANY($1::text[]) AND state = 'firing' ORDER BY starts_at""", kinds)
    out = []
    for r in rows:
        d = dict(r)
        d["labels"] = json.loads(d["labels"] or "{}")
        out.append(d)
    return out
