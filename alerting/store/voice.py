"""The voice escalation's reads (alerting/notices.py :func:`~alerting.notices.voice_escalate_due`):
red alarms of the ``voice_after`` routes still unacknowledged, with the SMS recipients not yet
called, and calls given up ("未接通") whose alert is still open and unacknowledged."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

__all__ = ["unacked_red_recipients", "given_up_calls"]


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
