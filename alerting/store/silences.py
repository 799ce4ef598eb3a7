"""``silences`` and ``silence_audit``: the rows behind :mod:`alerting.silence`.

Rows come back as stored; :class:`alerting.silence.Silence` reads them (and skips one whose
matchers no longer parse), so this module knows nothing of matchers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

__all__ = [
    "insert_silence",
    "silence_row",
    "lock_silence",
    "expire_silence_row",
    "silence_rows",
    "active_silence_rows",
    "insert_silence_audit",
    "silence_audit_rows",
]


async def insert_silence(conn: asyncpg.Connection, silence_id: str, *, matchers: Sequence[Any],
                         starts_at: datetime, ends_at: datetime, actor: str, reason: str, now: datetime
                         ) -> asyncpg.Record:
    """The new silence (``matchers``: their JSON forms)."""
    row = await conn.fetchrow(
        """INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, reason, created_at)
           VALUES ($1,$2::jsonb,$3,$4,$5,$6,$7) RETURNING *""",
        silence_id, json.dumps(list(matchers), ensure_ascii=False), starts_at, ends_at, actor, reason, now,
    )
    assert row is not None
    return row


async def silence_row(conn: asyncpg.Connection, silence_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM silences WHERE id=$1", silence_id)


async def lock_silence(conn: asyncpg.Connection, silence_id: str) -> asyncpg.Record | None:
    """The silence's row, locked (inside the caller's transaction)."""
    return await conn.fetchrow("SELECT * FROM silences WHERE id=$1 FOR UPDATE", silence_id)


async def expire_silence_row(conn: asyncpg.Connection, silence_id: str, *, actor: str, now: datetime
                             ) -> asyncpg.Record:
    row = await conn.fetchrow(
        "UPDATE silences SET expired_at=$2, expired_by=$3 WHERE id=$1 RETURNING *", silence_id, now, actor)
    assert row is not None
    return row


async def silence_rows(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every silence, newest first."""
    return list(await conn.fetch("SELECT * FROM silences ORDER BY created_at DESC, id"))


async def active_silence_rows(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """The silences in force at ``now``."""
    return list(await conn.fetch(
        "SELECT * FROM silences WHERE starts_at <= $1 AND ends_at > $1"
        " AND (expired_at IS NULL OR expired_at > $1) ORDER BY id", now,
    ))


async def insert_silence_audit(conn: asyncpg.Connection, silence_id: str, action: str, actor: str,
                               at: datetime, reason: str, detail: Mapping[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO silence_audit (silence_id, action, actor, at, reason, detail)"
        " VALUES ($1,$2,$3,$4,$5,$6::jsonb)",
        silence_id, action, actor, at, reason, json.dumps(dict(detail), ensure_ascii=False),
    )


async def silence_audit_rows(conn: asyncpg.Connection, silence_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT action, actor, at, reason, detail FROM silence_audit WHERE silence_id=$1 ORDER BY id",
        silence_id))
