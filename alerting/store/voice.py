"""Voice calls' SQL on the outbox's tables (``notifications``, ``notification_attempts``).

The voice escalation's reads (alerting/notices.py :func:`~alerting.notices.voice_escalate_due`):
red alarms of the ``voice_after`` routes still unacknowledged, with the SMS recipients not yet
called, and calls given up ("未接通") whose alert is still open and unacknowledged. And what a
call receipt (alerting/voice_inbound.py) does to its row: found and locked by its call id, then
delivered, redialled, stopped or given up, each with its attempt row on the alert's timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg

__all__ = ["unacked_red_recipients", "given_up_calls", "lock_call", "call_attempt", "call_delivered",
           "call_redial", "call_ended"]


async def unacked_red_recipients(conn: asyncpg.Connection, route_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Per open, unacknowledged, firing red alert of ``route_ids``: each phone its SMS went to
    and no call has (the latest SMS row's recipient and parameters)."""
    return list(await conn.fetch(
        """SELECT DISTINCT ON (n.alert_id, n.recipient_phone)
                  n.alert_id, a.route_id, a.starts_at, a.severity, a.phase, a.acked_at, n.recipient_role,
                  n.recipient_name, n.recipient_unit, n.recipient_phone, n.rule, n.params
             FROM alerts a JOIN notifications n ON n.alert_id = a.id AND n.channel = 'sms'
                  AND n.recipient_phone IS NOT NULL AND n.recipient_phone <> ''
            WHERE a.route_id = ANY($1::text[]) AND a.severity = 'red' AND a.state = 'firing'
              AND a.acked_at IS NULL AND a.phase <> 'closed'
              AND NOT EXISTS (SELECT 1 FROM notifications v WHERE v.alert_id = a.id AND v.channel = 'voice'
                                 AND v.recipient_phone = n.recipient_phone)
            ORDER BY n.alert_id, n.recipient_phone, n.created_at DESC""", list(route_ids)))


async def given_up_calls(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Calls ``failed`` (never answered after every redial, or refused for good) of open,
    unacknowledged alerts that the duty operator was not yet called about."""
    return list(await conn.fetch(
        """SELECT n.id, n.alert_id, n.recipient_name, n.recipient_unit, n.params, n.last_error
             FROM notifications n JOIN alerts a ON a.id = n.alert_id
            WHERE n.channel = 'voice' AND n.status = 'failed' AND n.template <> 'voice_unanswered'
              AND a.acked_at IS NULL AND a.phase <> 'closed'
              AND NOT EXISTS (SELECT 1 FROM notifications d WHERE d.alert_id = n.alert_id
                                 AND d.template = 'voice_unanswered' AND d.params->>'_after' = n.id)"""))


async def lock_call(conn: asyncpg.Connection, provider: str, call_id: str) -> asyncpg.Record | None:
    """The voice row of ``call_id`` at ``provider`` (the newest of that id: see match_receipts),
    locked, with its alert's phase and acknowledgement."""
    return await conn.fetchrow(
        """SELECT n.id, n.alert_id, n.status, n.attempts, n.recipient_role, n.recipient_name, n.recipient_unit,
                  n.recipient_phone, n.rule, a.phase, a.acked_at
             FROM notifications n LEFT JOIN alerts a ON a.id = n.alert_id
            WHERE n.channel = 'voice' AND n.provider = $1 AND n.provider_message_id = $2
            ORDER BY n.created_at DESC LIMIT 1
              FOR UPDATE OF n""", provider, call_id)


async def call_attempt(conn: asyncpg.Connection, row: asyncpg.Record, now: datetime, provider: str,
                       outcome: str, error: str, call_id: str) -> None:
    """The receipt's ``notification_attempts`` row (the alert's timeline)."""
    await conn.execute(
        """INSERT INTO notification_attempts (notification_id, attempt, at, provider, outcome, error,
               provider_message_id) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        row["id"], row["attempts"], now, provider, outcome, error[:500], call_id)


async def call_delivered(conn: asyncpg.Connection, notification_id: str, now: datetime) -> None:
    await conn.execute("""UPDATE notifications SET status='delivered', delivered_at=$2, updated_at=$2,
                              last_error='' WHERE id=$1""", notification_id, now)


async def call_redial(conn: asyncpg.Connection, notification_id: str, at: datetime, now: datetime,
                      error: str) -> None:
    """Back to ``pending``: the outbox calls again at ``at``."""
    await conn.execute(
        """UPDATE notifications SET status='pending', next_attempt_at=$2, updated_at=$3, last_error=$4
            WHERE id=$1""", notification_id, at, now, error)


async def call_ended(conn: asyncpg.Connection, notification_id: str, status: Literal["suppressed", "failed"],
                     now: datetime, error: str) -> None:
    """No more calls: ``suppressed`` (the alert was acknowledged or closed) or ``failed`` (未接通,
    escalated by the voice escalation)."""
    await conn.execute("""UPDATE notifications SET status=$2, updated_at=$3, last_error=$4 WHERE id=$1""",
                       notification_id, status, now, error)
