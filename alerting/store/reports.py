"""The 报备 columns of ``silences`` (migration 032) and the alarms a silence held: the rows
behind :mod:`alerting.report`."""

from __future__ import annotations

from datetime import datetime

import asyncpg

__all__ = ["mark_report", "report_rows", "any_due_reminder", "lock_due_reminders", "held_alarms",
           "mark_reminded"]


async def mark_report(conn: asyncpg.Connection, silence_id: str, *, kind: str, site_id: str, notify_name: str,
                      notify_phone: str | None) -> None:
    await conn.execute(
        "UPDATE silences SET report_kind=$2, site_id=$3, notify_name=$4, notify_phone=$5 WHERE id=$1",
        silence_id, kind, site_id, notify_name, notify_phone)


async def report_rows(conn: asyncpg.Connection, *, created_by: str | None, site_ids: list[str] | None,
                      limit: int = 200) -> list[asyncpg.Record]:
    """报备 (silences with a kind), newest first: every one, or those ``created_by`` one actor
    or at ``site_ids``; with the site's name."""
    return list(await conn.fetch(
        """SELECT s.*, st.name AS site_name FROM silences s LEFT JOIN sites st ON st.id = s.site_id
           WHERE s.report_kind <> '' AND ($1::text IS NULL OR s.created_by = $1)
             AND ($2::text[] IS NULL OR s.site_id = ANY($2::text[]))
           ORDER BY s.created_at DESC, s.id LIMIT $3""", created_by, site_ids, limit))


async def any_due_reminder(conn: asyncpg.Connection, now: datetime) -> bool:
    """Whether a 报备's reminder is due (one statement on the partial index, no transaction: the
    timers loop asks every tick)."""
    return bool(await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM silences WHERE report_kind <> '' AND reminded_at IS NULL
                           AND LEAST(ends_at, COALESCE(expired_at, ends_at)) <= $1)""", now))


async def lock_due_reminders(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """报备 whose window has ended (or was ended early) and whose reminder is not queued yet,
    locked (skipping those another pass holds); with the site's name."""
    return list(await conn.fetch(
        """SELECT s.*, st.name AS site_name FROM silences s LEFT JOIN sites st ON st.id = s.site_id
           WHERE s.report_kind <> '' AND s.reminded_at IS NULL
             AND LEAST(s.ends_at, COALESCE(s.expired_at, s.ends_at)) <= $1
           ORDER BY s.ends_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED""", now, limit))


async def held_alarms(conn: asyncpg.Connection, silence_id: str) -> list[asyncpg.Record]:
    """The alarms the silence muted (the flush's ``suppress`` transitions naming it), oldest
    first, with their kind, state and summary."""
    return list(await conn.fetch(
        """SELECT a.id, a.kind, a.state, a.summary, a.device_id, min(t.at) AS held_at
             FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id
            WHERE t.action = 'suppress' AND t.reason = $1
            GROUP BY a.id ORDER BY held_at, a.id""", f"silence:{silence_id}"))


async def mark_reminded(conn: asyncpg.Connection, silence_id: str, now: datetime) -> None:
    await conn.execute("UPDATE silences SET reminded_at=$2 WHERE id=$1", silence_id, now)
