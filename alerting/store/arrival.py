"""``lift_arrivals``: the 维保单位's 到场 timer of a trapped-passenger alarm (alerting/arrival.py).

One row per alert (migration 023). The timer lives here, not in memory: ``due_at`` is fixed when
it starts, so a restart of alerting — or a changed ``lift.arrival_limit_min`` — neither loses nor
moves a running timer, and what fell due while alerting was down escalates at its first tick.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

__all__ = ["start_arrival_timers", "overdue_arrivals", "mark_arrival_escalated", "lock_arrival",
           "mark_arrived", "arrival_of", "timed_grants_of_phone", "latest_grant_of_phone"]

_KIND = "elevator.trapped"


async def start_arrival_timers(conn: asyncpg.Connection, limit: timedelta) -> int:
    """Start the timer of every firing trapped-passenger alarm whose lift's 维保单位 has been
    told (its first ``maintainer`` notification is the start: 接到困人报告); the firing ones are
    found by their partial index (``alerts_trapped_firing``, migration 023); idempotent. Returns
    timers started."""
    status = await conn.execute(
        """INSERT INTO lift_arrivals (alert_id, device_id, maintainer_id, started_at, due_at)
           SELECT a.id, a.device_id, d.maintainer_id, min(n.created_at), min(n.created_at) + $2::interval
             FROM alerts a
             JOIN devices d ON d.id = a.device_id AND d.maintainer_id IS NOT NULL
             JOIN notifications n ON n.alert_id = a.id AND n.recipient_role = 'maintainer'
            WHERE a.kind = $1 AND a.state = 'firing' AND a.phase <> 'closed'
              AND NOT EXISTS (SELECT 1 FROM lift_arrivals l WHERE l.alert_id = a.id)
            GROUP BY a.id, a.device_id, d.maintainer_id
           ON CONFLICT (alert_id) DO NOTHING""",
        _KIND, limit)
    return int(status.split()[-1])


async def overdue_arrivals(conn: asyncpg.Connection, now: datetime, limit: int = 100) -> list[asyncpg.Record]:
    """The timers past due with no 到场 and no escalation yet, of alarms still firing, locked
    (another alerting process skips them), with their alert's row."""
    return list(await conn.fetch(
        """SELECT l.alert_id, l.maintainer_id, l.started_at, l.due_at, a.*
             FROM lift_arrivals l JOIN alerts a ON a.id = l.alert_id
            WHERE l.arrived_at IS NULL AND l.escalated_at IS NULL AND l.due_at <= $1
              AND a.state = 'firing' AND a.phase <> 'closed'
            ORDER BY l.due_at LIMIT $2
              FOR UPDATE OF l SKIP LOCKED""",
        now, limit))


async def mark_arrival_escalated(conn: asyncpg.Connection, alert_id: str, now: datetime) -> None:
    await conn.execute("UPDATE lift_arrivals SET escalated_at = $2 WHERE alert_id = $1", alert_id, now)


async def lock_arrival(conn: asyncpg.Connection, alert_id: str) -> asyncpg.Record | None:
    """The alert's timer row, locked for a decision (inside the caller's transaction)."""
    return await conn.fetchrow("SELECT * FROM lift_arrivals WHERE alert_id = $1 FOR UPDATE", alert_id)


async def mark_arrived(conn: asyncpg.Connection, alert_id: str, now: datetime, actor: str) -> None:
    await conn.execute("UPDATE lift_arrivals SET arrived_at = $2, arrived_by = $3 WHERE alert_id = $1",
                       alert_id, now, actor)


async def arrival_of(conn: asyncpg.Connection, alert_id: str) -> asyncpg.Record | None:
    """The alert's timer (the console's alert page shows it), or None."""
    return await conn.fetchrow("SELECT * FROM lift_arrivals WHERE alert_id = $1", alert_id)


async def timed_grants_of_phone(conn: asyncpg.Connection, phone: str) -> list[asyncpg.Record]:
    """One grant per open (not closed) alert with a 到场 timer whose SMS went to ``phone`` — the
    number's own grant (``recipient_role`` says whether as the 维保单位), the timer's
    ``arrived_at``/``arrived_by``, the site's name, the lift's location — the most recently sent
    first (``sent``: that alert's latest SMS to the number, queued or left)."""
    return list(await conn.fetch(
        """SELECT * FROM (
             SELECT DISTINCT ON (g.alert_id) g.*, a.kind, a.phase, a.starts_at,
                    coalesce(s.name, a.site_id) AS site,
                    coalesce(nullif(d.location, ''), '电梯 ' || a.device_id) AS loc,
                    l.started_at, l.arrived_at, l.arrived_by, coalesce(n.sent_at, n.created_at) AS sent
               FROM alert_ack_grants g JOIN alerts a ON a.id = g.alert_id
               JOIN lift_arrivals l ON l.alert_id = g.alert_id
               JOIN notifications n ON n.id = g.notification_id
               LEFT JOIN sites s ON s.id = a.site_id LEFT JOIN devices d ON d.id = a.device_id
              WHERE g.phone = $1 AND a.phase <> 'closed'
              ORDER BY g.alert_id, (g.recipient_role = 'maintainer') DESC,
                       coalesce(n.sent_at, n.created_at) DESC) t
           ORDER BY sent DESC, alert_id""", phone))


async def latest_grant_of_phone(conn: asyncpg.Connection, phone: str) -> asyncpg.Record | None:
    """The latest grant ``phone`` holds (hazmon sent it an SMS with a 回复码), or None: only such a
    number is answered by SMS when its 到场 is refused — a stranger's number is not."""
    return await conn.fetchrow(
        "SELECT * FROM alert_ack_grants WHERE phone = $1 ORDER BY created_at DESC LIMIT 1", phone)
