"""The 重点时段 calendar as the console edits it (``key_periods``): list, the active ones, add, and
end or cancel one. The sync from routes.yaml (``created_by = 'config'``) is
:func:`alerting.store.escalations.sync_key_periods`; what a period does to the timers is
:mod:`alerting.escalation`'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

__all__ = [
    "active_key_periods",
    "cancel_key_period",
    "end_key_period",
    "insert_key_period",
    "list_key_periods",
    "lock_key_period",
]


async def list_key_periods(conn: asyncpg.Connection, *, limit: int = 200) -> list[asyncpg.Record]:
    """The latest periods first."""
    return list(await conn.fetch("SELECT * FROM key_periods ORDER BY starts_at DESC, id LIMIT $1", limit))


async def active_key_periods(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """The periods in force at ``now``, the soonest to end first."""
    return list(await conn.fetch(
        "SELECT * FROM key_periods WHERE starts_at <= $1 AND ends_at > $1 ORDER BY ends_at", now))


async def insert_key_period(conn: asyncpg.Connection, *, period_id: str, name: str, kind: str,
                            starts_at: datetime, ends_at: datetime, timer_factor: float,
                            domains: Sequence[str], township_ids: Sequence[str], note: str,
                            created_by: str, now: datetime) -> asyncpg.Record:
    row = await conn.fetchrow(
        """INSERT INTO key_periods (id, name, kind, starts_at, ends_at, timer_factor, domains,
               township_ids, note, created_by, created_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING *""",
        period_id, name, kind, starts_at, ends_at, timer_factor, list(domains), list(township_ids), note,
        created_by, now)
    assert row is not None
    return row


async def lock_key_period(conn: asyncpg.Connection, period_id: str) -> asyncpg.Record | None:
    """The period, locked for the caller's transaction (None: no such period)."""
    return await conn.fetchrow("SELECT * FROM key_periods WHERE id = $1 FOR UPDATE", period_id)


async def cancel_key_period(conn: asyncpg.Connection, period_id: str) -> None:
    """A period not started yet is cancelled: gone (its end may not precede its start)."""
    await conn.execute("DELETE FROM key_periods WHERE id = $1", period_id)


async def end_key_period(conn: asyncpg.Connection, period_id: str, *, now: datetime,
                         actor: str) -> Any:
    """A running period ends at ``now`` and becomes the console's (the routes.yaml sync leaves a
    period it did not create alone, so it stays ended)."""
    return await conn.fetchrow(
        "UPDATE key_periods SET ends_at = $2, created_by = $3 WHERE id = $1 RETURNING *", period_id, now, actor)
