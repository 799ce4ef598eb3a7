"""The acknowledgement tables: ``alert_ack_grants`` (each SMS recipient's own 回复码 and link
token hash), ``inbound_limits`` (fixed-window attempt counters), ``inbound_audit`` and
``sms_replies``: every read and write :mod:`alerting.acks` does. The rules — who may
acknowledge, which limit applies, what is masked — stay in :mod:`alerting.acks`; numbers reach
this module already masked where they are stored masked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from alerting.acks import Grant

__all__ = [
    "held_codes",
    "insert_grants",
    "grant_by_code",
    "other_holder",
    "grant_by_token_hash",
    "open_grants_of_phone",
    "mark_grants_acked",
    "recipient_acks",
    "alert_kind_site",
    "alert_brief",
    "take_window",
    "give_back_window",
    "delete_limits_before",
    "insert_inbound_audit",
    "insert_sms_reply",
]


async def held_codes(conn: asyncpg.Connection, phones: Sequence[str]) -> list[asyncpg.Record]:
    """``(alert_id, phone, code)`` of every grant these numbers hold for alerts not closed."""
    return list(await conn.fetch(
        """SELECT g.alert_id, g.phone, g.code FROM alert_ack_grants g JOIN alerts a ON a.id = g.alert_id
           WHERE g.phone = ANY($1::text[]) AND a.phase <> 'closed'""", list(phones)))


async def insert_grants(conn: asyncpg.Connection, grants: Sequence[Grant], *, now: datetime) -> None:
    """One statement; a notification that already has its grant keeps it."""
    cols = list(zip(*[(g.notification_id, g.alert_id, g.recipient_id, g.role, g.name, g.unit, g.phone, g.code,
                       g.token_hash) for g in grants], strict=True))
    await conn.execute(
        """INSERT INTO alert_ack_grants (notification_id, alert_id, recipient_id, recipient_role,
               recipient_name, recipient_unit, phone, code, token_hash, created_at)
           SELECT u.*, $10 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                       $7::text[], $8::text[], $9::text[]) AS u
           ON CONFLICT (notification_id) DO NOTHING""",
        *[list(c) for c in cols], now)


async def grant_by_code(conn: asyncpg.Connection, phone: str, code: str) -> asyncpg.Record | None:
    """The grant of ``code`` held by ``phone`` (with its alert's ``phase``), an open alert's first."""
    return await conn.fetchrow(
        """SELECT g.*, a.phase FROM alert_ack_grants g JOIN alerts a ON a.id = g.alert_id
           WHERE g.phone = $1 AND g.code = $2 ORDER BY (a.phase = 'closed'), g.created_at DESC LIMIT 1""",
        phone, code)


async def other_holder(conn: asyncpg.Connection, code: str, phone: str) -> str | None:
    """An open alert whose recipients hold ``code`` and that ``phone`` was never told of (a
    non-recipient trying a code that is someone else's)."""
    got = await conn.fetchval(
        """SELECT g.alert_id FROM alert_ack_grants g JOIN alerts a ON a.id = g.alert_id
           WHERE g.code = $1 AND a.phase <> 'closed' AND g.phone <> $2
             AND NOT EXISTS (SELECT 1 FROM alert_ack_grants h WHERE h.alert_id = g.alert_id AND h.phone = $2)
           ORDER BY g.created_at DESC LIMIT 1""", code, phone)
    return None if got is None else str(got)


async def grant_by_token_hash(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """The grant whose link token hashes to ``token_hash``, with its alert's ``phase``."""
    return await conn.fetchrow(
        "SELECT g.*, a.phase FROM alert_ack_grants g JOIN alerts a ON a.id = g.alert_id"
        " WHERE g.token_hash = $1",
        token_hash)


async def open_grants_of_phone(conn: asyncpg.Connection, phone: str) -> list[asyncpg.Record]:
    """One grant per open alert (firing, not closed) whose SMS went to ``phone``, the most
    recently sent first (``sent``: when that alert's latest SMS to the number left)."""
    rows = await conn.fetch(
        """SELECT * FROM (
             SELECT DISTINCT ON (g.alert_id) g.*, a.phase, n.sent_at AS sent
               FROM alert_ack_grants g JOIN alerts a ON a.id = g.alert_id
               JOIN notifications n ON n.id = g.notification_id
              WHERE g.phone = $1 AND a.phase <> 'closed' AND a.state = 'firing' AND n.sent_at IS NOT NULL
              ORDER BY g.alert_id, n.sent_at DESC) t
           ORDER BY sent DESC, alert_id""", phone)
    return list(rows)


async def mark_grants_acked(conn: asyncpg.Connection, alert_id: str, phone: str, *, via: str, at: datetime
                            ) -> None:
    """The number acknowledged the alert: every grant it holds for it (the alarm, its reminders,
    its notices) says so; the first acknowledgement's time and way are kept."""
    await conn.execute(
        """UPDATE alert_ack_grants SET acked_at = $3, acked_via = $4
           WHERE alert_id = $1 AND phone = $2 AND acked_at IS NULL""", alert_id, phone, at, via)


async def recipient_acks(conn: asyncpg.Connection, alert_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Who acknowledged which of ``alert_ids``: one row per alert and number (``alert_id``,
    ``recipient_id``, ``recipient_role``, ``recipient_unit``, ``phone``, ``acked_at``, ``acked_via``)
    — from the SMS grants (回复码, 收到, link) and from the audited key presses of calls (按1确认,
    ``voice_key``: a landline has no grant; ``phone`` is then the number dialled)."""
    if not alert_ids:
        return []
    return list(await conn.fetch(
        """SELECT DISTINCT ON (alert_id, phone) alert_id, recipient_id, recipient_role, recipient_unit, phone,
                  acked_at, acked_via
             FROM alert_ack_grants WHERE alert_id = ANY($1::text[]) AND acked_at IS NOT NULL
         UNION ALL
           SELECT DISTINCT ON (u.alert_id, n.recipient_phone) u.alert_id, n.rule, n.recipient_role,
                  n.recipient_unit, n.recipient_phone, u.at, 'voice'
             FROM inbound_audit u JOIN notifications n ON n.alert_id = u.alert_id AND n.channel = 'voice'
                  AND n.rule = u.recipient_id
            WHERE u.alert_id = ANY($1::text[]) AND u.channel = 'voice_key'
              AND u.outcome IN ('acknowledged', 'already_acknowledged')
         ORDER BY alert_id, phone, acked_at""", list(alert_ids)))


async def alert_kind_site(conn: asyncpg.Connection, alert_id: str) -> tuple[str, str] | None:
    """``(kind, site name)`` of an alert (the site id when the site has no name)."""
    row = await alert_brief(conn, alert_id)
    return None if row is None else (str(row["kind"]), str(row["site"]))


async def alert_brief(conn: asyncpg.Connection, alert_id: str) -> asyncpg.Record | None:
    """``kind``, ``site`` (its name, else its id) and ``starts_at`` of an alert."""
    return await conn.fetchrow(
        "SELECT a.kind, coalesce(s.name, a.site_id) AS site, a.starts_at FROM alerts a"
        " LEFT JOIN sites s ON s.id = a.site_id WHERE a.id = $1", alert_id)


async def take_window(conn: asyncpg.Connection, key: str, window_start: datetime, limit: int) -> bool:
    """Take one attempt of ``key``'s window; False when ``limit`` are already taken. One
    statement: concurrent callers cannot both take the last one."""
    n = await conn.fetchval(
        """INSERT INTO inbound_limits (key, window_start, n) VALUES ($1, $2, 1)
           ON CONFLICT (key, window_start) DO UPDATE SET n = inbound_limits.n + 1 WHERE inbound_limits.n < $3
           RETURNING n""", key, window_start, limit)
    return n is not None


async def give_back_window(conn: asyncpg.Connection, key: str, window_start: datetime) -> None:
    await conn.execute("UPDATE inbound_limits SET n = greatest(n - 1, 0) WHERE key=$1 AND window_start=$2",
                       key, window_start)


async def delete_limits_before(conn: asyncpg.Connection, before: datetime) -> int:
    res = await conn.execute("DELETE FROM inbound_limits WHERE window_start < $1", before)
    return int(res.split()[-1])


async def insert_inbound_audit(conn: asyncpg.Connection, *, at: datetime, channel: str, provider: str,
                               outcome: str, ip: str, phone_masked: str, recipient: str, alert_id: str | None,
                               detail: dict[str, object]) -> None:
    await conn.execute(
        """INSERT INTO inbound_audit (at, channel, provider, outcome, ip, phone_masked, recipient_id,
               alert_id, detail)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9::jsonb)""",
        at, channel, provider, outcome, ip[:100], phone_masked, recipient, alert_id,
        json.dumps(detail, ensure_ascii=False, default=str))


async def insert_sms_reply(conn: asyncpg.Connection, *, provider: str, phone_masked: str, text_masked: str,
                           at: datetime, alert_id: str | None, outcome: str, recipient: str) -> None:
    await conn.execute(
        """INSERT INTO sms_replies (provider, phone, text, received_at, alert_id, outcome, recipient_id)
           VALUES ($1,$2,$3,$4,$5,$6,$7)""",
        provider, phone_masked, text_masked, at, alert_id, outcome, recipient)
