"""``broadcasts``: the audit record of each 安全公益短信, and the audience it is sent to.

The outbox rows themselves go through :func:`alerting.outbox.enqueue`; :mod:`alerting.broadcast`
decides the text and the recipients.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

__all__ = ["broadcast_audience", "insert_broadcast"]


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
