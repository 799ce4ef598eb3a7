"""``broadcasts``: the audit record of each 安全公益短信, and the audience it is sent to.

The outbox rows themselves go through :func:`alerting.outbox.enqueue`; :mod:`alerting.broadcast`
decides the text and the recipients.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

__all__ = ["broadcast_audience", "insert_broadcast", "insert_draft", "lock_broadcast", "set_status",
           "mark_sent", "insert_audit", "broadcast_rows", "audit_rows", "audience_count"]


async def broadcast_audience(conn: asyncpg.Connection, *, township_ids: Sequence[str],
                             industries: Sequence[str], domains: Sequence[str]) -> list[asyncpg.Record]:
    """Site contacts (site id and name, contact name, phone as registered) of the sites in
    ``township_ids``, of ``industries`` and with a device of ``domains`` (an empty list: any)."""
    return list(await conn.fetch(
        """SELECT DISTINCT s.id, s.name, c.name AS contact, c.phone
             FROM sites s JOIN site_contacts c ON c.site_id = s.id
           WHERE (cardinality($1::text[]) = 0 OR s.township_id = ANY($1::text[]))
             AND (cardinality($2::text[]) = 0 OR s.industry = ANY($2::text[]))
             AND (cardinality($3::text[]) = 0 OR EXISTS (SELECT 1 FROM devices d WHERE d.site_id = s.id
                                                        AND d.domain = ANY($3::text[])))
           ORDER BY s.id, c.phone""",
        list(township_ids), list(industries), list(domains)))


async def insert_broadcast(conn: asyncpg.Connection, broadcast_id: str, *, key_period_id: str | None,
                           body: str, township_ids: Sequence[str], industries: Sequence[str],
                           domains: Sequence[str],
                           actor: str, now: datetime, reason: str, recipients: int) -> None:
    """The broadcast's audit row (a re-run with the same id keeps the first)."""
    await conn.execute(
        """INSERT INTO broadcasts (id, key_period_id, body, audience, created_by, created_at, reason,
                                   recipients)
           VALUES ($1,$2,$3,$4::jsonb,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING""",
        broadcast_id, key_period_id, body,
        json.dumps({"township_ids": list(township_ids), "industries": list(industries),
                    "domains": list(domains)}, ensure_ascii=False), actor, now, reason, recipients)


async def insert_draft(conn: asyncpg.Connection, broadcast_id: str, *, raw_body: str, body: str,
                       township_ids: Sequence[str], industries: Sequence[str], actor: str, now: datetime,
                       reason: str, recipients: int) -> None:
    """A draft broadcast (status ``draft``, migration 032)."""
    await conn.execute(
        """INSERT INTO broadcasts (id, body, raw_body, audience, created_by, created_at, reason, recipients,
                                   status) VALUES ($1,$2,$3,$4::jsonb,$5,$6,$7,$8,'draft')""",
        broadcast_id, body, raw_body,
        json.dumps({"township_ids": list(township_ids), "industries": list(industries), "domains": []},
                   ensure_ascii=False), actor, now, reason, recipients)


async def lock_broadcast(conn: asyncpg.Connection, broadcast_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM broadcasts WHERE id=$1 FOR UPDATE", broadcast_id)


async def set_status(conn: asyncpg.Connection, broadcast_id: str, status: str, *, actor: str, now: datetime
                     ) -> None:
    """Approved or rejected: who decided and when (``approved_by``/``approved_at`` either way)."""
    await conn.execute("UPDATE broadcasts SET status=$2, approved_by=$3, approved_at=$4 WHERE id=$1",
                       broadcast_id, status, actor, now)


async def mark_sent(conn: asyncpg.Connection, broadcast_id: str, *, actor: str, now: datetime, recipients: int
                    ) -> None:
    await conn.execute(
        "UPDATE broadcasts SET status='sent', sent_by=$2, sent_at=$3, recipients=$4 WHERE id=$1",
        broadcast_id, actor, now, recipients)


async def insert_audit(conn: asyncpg.Connection, broadcast_id: str, action: str, actor: str, at: datetime,
                       reason: str, detail: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO broadcast_audit (broadcast_id, action, actor, at, reason, detail)"
        " VALUES ($1,$2,$3,$4,$5,$6::jsonb)",
        broadcast_id, action, actor, at, reason, json.dumps(detail, ensure_ascii=False))


async def broadcast_rows(conn: asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    """Broadcasts, newest first."""
    return list(await conn.fetch("SELECT * FROM broadcasts ORDER BY created_at DESC, id LIMIT $1", limit))


async def audit_rows(conn: asyncpg.Connection, broadcast_ids: Sequence[str]) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT broadcast_id, action, actor, at, reason, detail FROM broadcast_audit"
        " WHERE broadcast_id = ANY($1::text[]) ORDER BY id", list(broadcast_ids)))


async def audience_count(conn: asyncpg.Connection, *, township_ids: Sequence[str], industries: Sequence[str]
                         ) -> int:
    """How many contacts (distinct phones) a broadcast to this audience reaches."""
    rows = await broadcast_audience(conn, township_ids=township_ids, industries=industries, domains=())
    return len({r["phone"] for r in rows})
