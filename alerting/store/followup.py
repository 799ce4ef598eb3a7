"""The SQL of the follow-up passes: the morning digest of held rows (alerting/digest.py) and the
outcome SMS of closed alarms (alerting/outcome.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import asyncpg

from alerting.store.outbox import insert_attempts

__all__ = ["due", "lock_due_held", "mark_digested", "closed_without_outcome"]


async def due(conn: asyncpg.Connection, now: datetime, closed_since: datetime) -> tuple[bool, bool]:
    """(a held row due by ``now``, an alarm closed after ``closed_since`` without its outcome): one
    statement, no transaction, on the partial indexes ``notifications_held`` and
    ``alerts_closed_at`` (migration 022) — what the timers loop asks every second."""
    row = await conn.fetchrow(
        """SELECT EXISTS (SELECT 1 FROM notifications
                           WHERE status = 'held' AND next_attempt_at <= $1) AS held,
                  EXISTS (SELECT 1 FROM alerts a
                           WHERE a.closed_at > $2 AND a.phase = 'closed' AND a.domain <> 'system'
                             AND NOT EXISTS (SELECT 1 FROM notifications n
                                              WHERE n.alert_id = a.id AND n.template = 'outcome'))
                    AS closed""",
        now, closed_since)
    return bool(row["held"]), bool(row["closed"])


async def lock_due_held(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Up to ``limit`` ``held`` rows whose quiet hours ended by ``now``, oldest first, locked
    (``SKIP LOCKED``: two alerting instances never digest one row), with their alert's state."""
    return list(await conn.fetch(
        """SELECT n.id, n.alert_id, n.channel, n.recipient_role, n.recipient_name, n.recipient_unit,
                  n.recipient_phone, n.rule, n.params, n.attempts, n.next_attempt_at, n.created_at,
                  a.state AS alert_state
             FROM notifications n LEFT JOIN alerts a ON a.id = n.alert_id
            WHERE n.status = 'held' AND n.next_attempt_at <= $1
            ORDER BY n.next_attempt_at, n.created_at, n.id LIMIT $2
              FOR UPDATE OF n SKIP LOCKED""", now, limit))


async def mark_digested(conn: asyncpg.Connection, now: datetime, into: Mapping[str, str]) -> None:
    """Held rows (id → the digest row they went into) ``suppressed``, each with an attempt row
    saying so (the alert's timeline shows where its message went)."""
    if not into:
        return
    ids, digests = list(into), [into[i] for i in into]
    rows = await conn.fetch(
        """UPDATE notifications n SET status = 'suppressed', updated_at = $3,
                  last_error = '夜间免扰，已并入晨间汇总（' || d.digest || '）'
             FROM unnest($1::text[], $2::text[]) AS d(id, digest)
            WHERE n.id = d.id AND n.status = 'held'
        RETURNING n.id, n.attempts, n.channel""", ids, digests, now)
    await insert_attempts(conn, [(r["id"], r["attempts"], now, r["channel"], "digested", None,
                                  f"夜间免扰，已并入晨间汇总（{into[r['id']]}）", "", None) for r in rows])


async def closed_without_outcome(conn: asyncpg.Connection, since: datetime, limit: int) -> list[str]:
    """Ids of alarms closed (办结) after ``since`` whose outcome SMS is not queued yet, oldest first."""
    rows = await conn.fetch(
        """SELECT a.id FROM alerts a
            WHERE a.closed_at > $1 AND a.phase = 'closed' AND a.domain <> 'system'
              AND NOT EXISTS (SELECT 1 FROM notifications n
                               WHERE n.alert_id = a.id AND n.template = 'outcome')
            ORDER BY a.closed_at, a.id LIMIT $2""", since, limit)
    return [r["id"] for r in rows]
