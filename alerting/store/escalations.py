"""The escalation timers' rows: ``alerts.escalation_step``/``next_escalation_at``, ``notices``
(one per alert and level: 工作提醒单 … 问责建议单) and the ``key_periods`` calendar.

The ladder's decisions are :mod:`alerting.escalation`'s; the timers are columns, so a
restart finds every step that fell due while the service was down.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from alerting.escalation import KeyPeriod
from alerting.store.alerts import AlertRecord
from hazmon.contracts import NoticeLevel, Recipient

__all__ = [
    "due_escalations",
    "lock_due_escalation",
    "group_lead_timer",
    "set_next_escalation",
    "insert_notice",
    "open_firing_in_group",
    "insert_escalate_transition",
    "set_escalation",
    "sync_key_periods",
]

_PERIOD_KINDS = ("holiday", "meeting", "flood", "heat", "freezing", "resumption", "weather")


async def due_escalations(conn: asyncpg.Connection | asyncpg.Pool, now: datetime, limit: int = 500
                          ) -> list[str]:
    """Ids of open, unmuted alerts whose escalation timer fell due by ``now``, soonest first."""
    return [r["id"] for r in await conn.fetch(
        """SELECT id FROM alerts WHERE next_escalation_at <= $1 AND phase <> 'closed' AND suppressed_by = ''
           ORDER BY next_escalation_at LIMIT $2""", now, limit)]


async def lock_due_escalation(conn: asyncpg.Connection, alert_id: str, now: datetime) -> AlertRecord | None:
    """The alert, locked, if its timer is (still) due; None when another worker has it or did it."""
    row = await conn.fetchrow(
        "SELECT * FROM alerts WHERE id=$1 AND next_escalation_at <= $2 FOR UPDATE SKIP LOCKED", alert_id, now)
    return None if row is None else AlertRecord.from_row(row)


async def group_lead_timer(conn: asyncpg.Connection, alert: AlertRecord) -> tuple[bool, datetime | None]:
    """Whether an older open, unmuted alert leads ``alert``'s group, and that lead's timer."""
    lead = await conn.fetchrow(
        """SELECT id, next_escalation_at FROM alerts WHERE group_key=$1 AND id<>$2 AND phase<>'closed'
               AND suppressed_by='' AND (starts_at, id) < ($3, $2) ORDER BY starts_at, id LIMIT 1""",
        alert.group_key, alert.id, alert.starts_at)
    return (False, None) if lead is None else (True, lead["next_escalation_at"])


async def set_next_escalation(conn: asyncpg.Connection, alert_id: str, at: datetime | None) -> None:
    await conn.execute("UPDATE alerts SET next_escalation_at=$2 WHERE id=$1", alert_id, at)


async def insert_notice(conn: asyncpg.Connection, alert_id: str, level: NoticeLevel, *, now: datetime,
                        deadline: datetime, recipients: Sequence[Recipient], reason: str,
                        issued_by: str = "区安委办") -> int | None:
    """Issue the alert's notice of ``level`` in the name of ``issued_by`` (routes.yaml
    notice_issuer), superseding its open one; None if it was issued before (a replayed timer)."""
    nid = await conn.fetchval(
        """INSERT INTO notices (alert_id, level, step, issued_at, deadline, recipients, reason, issued_by)
           VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7,$8) ON CONFLICT (alert_id, level) DO NOTHING RETURNING id""",
        alert_id, level.value, level.step, now, deadline,
        json.dumps([r.model_dump(mode="json") for r in recipients], ensure_ascii=False), reason, issued_by)
    if nid is None:
        return None
    await conn.execute(
        "UPDATE notices SET status='superseded' WHERE alert_id=$1 AND status='open' AND id<>$2",
        alert_id, nid)
    return int(nid)


async def open_firing_in_group(conn: asyncpg.Connection, group_key: str) -> int:
    """Open firing alerts of a group (a notice names "…等N处"); 1 for an alert without a group."""
    if not group_key:
        return 1
    n = await conn.fetchval(
        "SELECT count(*) FROM alerts WHERE group_key=$1 AND phase<>'closed' AND state='firing'", group_key)
    return int(n or 1)


async def insert_escalate_transition(conn: asyncpg.Connection, alert: AlertRecord, level: NoticeLevel, *,
                                     now: datetime, notice_id: int, deadline: datetime,
                                     inserted: Sequence[str], recipients: Sequence[Recipient]) -> None:
    detail: dict[str, Any] = {"level": level.value, "notice_id": notice_id, "deadline": deadline.isoformat(),
                              "notifications": list(inserted),
                              "recipients": [r.model_dump(mode="json") for r in recipients]}
    await conn.execute(
        """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, actor, at, reason, detail,
                                          version)
           VALUES ($1,'escalate',$2,$2,'system',$3,$4,$5::jsonb,$6)""",
        alert.id, alert.phase.value, now, level.zh, json.dumps(detail, ensure_ascii=False), alert.version)


async def set_escalation(conn: asyncpg.Connection, alert_id: str, step: int, next_at: datetime | None,
                         now: datetime) -> None:
    """Where the alert's ladder stands: steps passed and the next timer."""
    await conn.execute(
        "UPDATE alerts SET escalation_step=$2, next_escalation_at=$3, updated_at=$4 WHERE id=$1",
        alert_id, step, next_at, now)


async def sync_key_periods(conn: asyncpg.Connection, configured: Sequence[KeyPeriod]
                           ) -> tuple[KeyPeriod, ...]:
    """Write the configured key periods (rows created from the console are left alone) and
    read back the whole calendar, by start."""
    for p in configured:
        await conn.execute(
            """INSERT INTO key_periods (id, name, kind, starts_at, ends_at, timer_factor, domains,
                   township_ids, created_by) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'config')
               ON CONFLICT (id) DO UPDATE SET name=EXCLUDED.name, starts_at=EXCLUDED.starts_at,
                   ends_at=EXCLUDED.ends_at, timer_factor=EXCLUDED.timer_factor, domains=EXCLUDED.domains,
                   township_ids=EXCLUDED.township_ids WHERE key_periods.created_by='config'""",
            p.id, p.name, p.kind if p.kind in _PERIOD_KINDS else "other",
            p.starts_at, p.ends_at, p.timer_factor, list(p.domains), list(p.township_ids))
    rows = await conn.fetch("SELECT * FROM key_periods ORDER BY starts_at")
    return tuple(KeyPeriod(r["id"], r["name"], r["starts_at"], r["ends_at"], r["timer_factor"], r["kind"],
                           tuple(r["domains"]), tuple(r["township_ids"])) for r in rows)
