"""``notifications`` (the persisted outbox) and ``notification_attempts`` (its audit): every
read and write :mod:`alerting.outbox` does. Each statement takes a whole batch (``unnest`` of
arrays), so a pass costs a handful of round trips whatever its size. The decisions — backoff,
the dedup window, the per-phone limit, what goes out together — stay in :mod:`alerting.outbox`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from alerting.outbox import NewNotification
    from alerting.receipts import Receipt

__all__ = [
    "SendOutcome",
    "AttemptRow",
    "insert_notifications",
    "reset_sending",
    "claim_due",
    "sent_duplicates",
    "sent_sms_per_phone",
    "suppress_duplicates",
    "defer_rows",
    "insert_attempts",
    "record_outcomes",
    "match_receipts",
]



@dataclass(slots=True)
class SendOutcome:
    """What one send did to its row, written with its neighbours in one transaction."""

    row: asyncpg.Record
    outcome: str  # "sent" | "retrying" | "failed" | "undeliverable" (未送达) | "crashed"
    attempt: int
    provider: str = ""
    http_status: int | None = None
    message_id: str = ""
    error: str = ""
    latency_ms: float | None = None
    next_attempt_at: datetime | None = None
    #: when the provider answered (the drain's time plus the time since its claim): the row's
    #: ``sent_at`` and its attempt's ``at``; None: the drain's time
    answered_at: datetime | None = None


#: one ``notification_attempts`` row: (notification id, attempt, at, provider, outcome,
#: http status, error, provider message id, latency ms)
AttemptRow = tuple[str, int, datetime, str, str, int | None, str, str, float | None]


async def insert_notifications(conn: asyncpg.Connection, items: Sequence[NewNotification], *, now: datetime
                               ) -> set[str]:
    """Rows ``pending`` (or ``undeliverable`` with their reason: 未送达; ``held`` until their
    ``due_at``: 夜间免扰), due now unless they say otherwise, in one
    statement (``ON CONFLICT DO NOTHING``: the ids are deterministic); returns the ids inserted."""
    cols: list[list[object]] = [[] for _ in range(15)]
    for it in items:
        r = it.request
        params = dict(it.params)
        if it.webhook_url:
            params["_url"] = it.webhook_url

        for col, v in zip(cols, (
                r.id, r.alert_id or None, it.group_key, it.notice_id, it.broadcast_id, r.channel,
                r.recipient.role.value, r.recipient.name, r.recipient.unit, r.recipient.phone,
                r.recipient.rule,
                r.notice_level.value if r.notice_level else None, r.template, r.body,
                json.dumps(params, ensure_ascii=False)), strict=True):
            col.append(v)
    got = await conn.fetch(
        """INSERT INTO notifications (id, alert_id, group_key, notice_id, broadcast_id, channel,
               recipient_role, recipient_name, recipient_unit, recipient_phone, rule, notice_level, template,
               body, params, priority, status, next_attempt_at, created_at, updated_at, last_error)
           SELECT u.id, u.alert_id, u.group_key, u.notice_id, u.broadcast_id, u.channel, u.role, u.name,
                  u.unit, u.phone, u.rule, u.level, u.template, u.body, u.params::jsonb, u.priority,
                  u.status, coalesce(u.due, $17), $17, $17, u.err
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                         $13::text[], $14::text[], $15::text[], $16::int[], $18::text[], $19::text[],
                         $20::timestamptz[])
                  WITH ORDINALITY AS u(id, alert_id, group_key, notice_id, broadcast_id, channel, role, name,
                                       unit, phone, rule, level, template, body, params, priority, status,
                                       err, due, ord)
            ORDER BY u.ord
           ON CONFLICT (id) DO NOTHING RETURNING id""",
        *cols, [it.priority for it in items], now, [it.status for it in items],
        [it.error[:500] for it in items], [it.due_at for it in items],
    )
    return {r["id"] for r in got}


async def reset_sending(db: asyncpg.Connection | asyncpg.Pool, now: datetime, *, owner: str | None,
                        stale_before: datetime) -> int:
    """Rows left ``sending`` back to ``pending``: those claimed by ``owner`` (a restarted named
    instance: its previous run died with them) and anyone's claimed before ``stale_before``;
    returns how many."""
    res = await db.execute(
        """UPDATE notifications SET status='pending', updated_at=$1, claimed_by=NULL
            WHERE status='sending'
              AND (claimed_by = $2 OR updated_at < $3 OR claimed_by IS NULL AND $2 IS NOT NULL)""",
        now, owner, stale_before)
    return int(res.split()[-1])


async def claim_due(db: asyncpg.Connection | asyncpg.Pool, now: datetime, limit: int, *,
                    owner: str) -> list[asyncpg.Record]:
    """Up to ``limit`` due rows, highest priority first, marked ``sending`` by ``owner``
    (``SKIP LOCKED``: two senders never claim one row). An alarm's message also carries
    ``alarm_at``, when hazmon received the record that opened its alert
    (``hazmon_alerting_alarm_sent_seconds``)."""
    return list(await db.fetch(
        """UPDATE notifications SET status='sending', updated_at=$1, claimed_by=$3 WHERE id IN (
               SELECT id FROM notifications WHERE status='pending' AND next_attempt_at <= $1
               ORDER BY priority DESC, next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING *, (SELECT coalesce(a.reported_at, a.received_at) FROM alerts a
                          WHERE a.id = notifications.alert_id
                            AND notifications.template IN ('alarm', 'voice_alarm')) AS alarm_at""",
        now, limit, owner))


async def sent_duplicates(db: asyncpg.Connection | asyncpg.Pool, rows: Sequence[asyncpg.Record], *,
                          since: datetime) -> dict[str, str]:
    """Row id → the id of an identical SMS (phone, body) sent to that phone after ``since``."""
    found = await db.fetch(
        """SELECT DISTINCT ON (c.id) c.id, n.id AS dup
             FROM unnest($1::text[], $2::text[], $3::text[]) AS c(id, phone, body)
             JOIN notifications n ON n.channel='sms' AND n.recipient_phone=c.phone AND n.body=c.body
                  AND n.id<>c.id AND n.status IN ('sent','delivered') AND n.sent_at > $4""",
        [r["id"] for r in rows], [r["recipient_phone"] for r in rows], [r["body"] for r in rows], since)
    return {r["id"]: r["dup"] for r in found}


async def sent_sms_per_phone(db: asyncpg.Connection | asyncpg.Pool, phones: Sequence[str], *,
                             since: datetime) -> list[asyncpg.Record]:
    """Every SMS sent to ``phones`` after ``since``, oldest first: ``recipient_phone, sent_at,
    provider, template, tpl`` (its registered template's ``_tpl`` parameter, or NULL), ``body,
    priority`` — what the providers' per-number budgets count (alerting/budget.py)."""
    return list(await db.fetch(
        """SELECT recipient_phone, sent_at, provider, template, params->>'_tpl' AS tpl, body, priority
             FROM notifications
            WHERE channel='sms' AND recipient_phone = ANY($1::text[]) AND sent_at > $2
            ORDER BY sent_at""",
        list(phones), since))


async def suppress_duplicates(conn: asyncpg.Connection, now: datetime, dups: dict[str, str]) -> None:
    """Rows ``suppressed``, each naming the identical message already sent."""
    await conn.execute(
        """UPDATE notifications n SET status='suppressed', last_error=u.err, updated_at=$1
           FROM unnest($2::text[], $3::text[]) AS u(id, err) WHERE n.id=u.id""",
        now, list(dups), [f"identical message already sent as {d}" for d in dups.values()])


async def defer_rows(conn: asyncpg.Connection, now: datetime, until: dict[str, datetime],
                     reason: str | Mapping[str, str]) -> None:
    """Rows back to ``pending``, each due at its own time, with one reason or each its own."""
    reasons = [reason if isinstance(reason, str) else reason.get(i, "") for i in until]
    await conn.execute(
        """UPDATE notifications n SET status='pending', next_attempt_at=u.at, updated_at=$1,
               last_error=u.why FROM unnest($2::text[], $3::timestamptz[], $4::text[]) AS u(id, at, why)
            WHERE n.id=u.id""",
        now, list(until), list(until.values()), [r[:500] for r in reasons])


async def insert_attempts(conn: asyncpg.Connection, rows: Sequence[AttemptRow]) -> None:
    """Audit rows (``notification_attempts``), one INSERT for the lot."""
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    await conn.execute(
        """INSERT INTO notification_attempts (notification_id, attempt, at, provider, outcome, http_status,
               error, provider_message_id, latency_ms)
           SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::text[], $6::int[],
                                $7::text[], $8::text[], $9::float8[])""",
        list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4]), list(cols[5]),
        [e[:500] for e in cols[6]], list(cols[7]), list(cols[8]))


async def record_outcomes(conn: asyncpg.Connection, outs: Sequence[SendOutcome], now: datetime) -> None:
    """Sent rows ``sent``; retried ones ``pending`` at their next attempt, abandoned ones
    ``failed``; rows whose send crashed ``pending`` again; an attempt row for each sent or
    refused one. Run it in the caller's transaction."""
    sent = [o for o in outs if o.outcome == "sent"]
    bad = [o for o in outs if o.outcome in ("retrying", "failed", "undeliverable")]
    crashed = [o for o in outs if o.outcome == "crashed"]
    if sent:
        await conn.execute(
            """UPDATE notifications n SET status='sent', attempts=u.attempt, sent_at=u.at, updated_at=$1,
                   provider=u.provider, provider_message_id=u.mid, last_error=''
               FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::timestamptz[])
                    AS u(id, attempt, provider, mid, at)
               WHERE n.id=u.id""",
            now, [o.row["id"] for o in sent], [o.attempt for o in sent], [o.provider for o in sent],
            [o.message_id for o in sent], [o.answered_at or now for o in sent])
    if bad:
        await conn.execute(
            """UPDATE notifications n SET status=u.status, attempts=u.attempt, last_error=u.err,
                   next_attempt_at=u.next_at, updated_at=$1, provider=u.provider
               FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::timestamptz[], $7::text[])
                    AS u(id, status, attempt, err, next_at, provider)
               WHERE n.id=u.id""",
            now, [o.row["id"] for o in bad],
            [o.outcome if o.outcome in ("failed", "undeliverable") else "pending" for o in bad],
            [o.attempt for o in bad], [o.error[:500] for o in bad], [o.next_attempt_at for o in bad],
            [o.provider for o in bad])
    if crashed:
        await conn.execute(
            """UPDATE notifications n SET status='pending', next_attempt_at=u.next_at, updated_at=$1
               FROM unnest($2::text[], $3::timestamptz[]) AS u(id, next_at) WHERE n.id=u.id""",
            now, [o.row["id"] for o in crashed], [o.next_attempt_at for o in crashed])
    await insert_attempts(conn, [(o.row["id"], o.attempt, o.answered_at or now, o.provider, o.outcome,
                                  o.http_status, o.error, o.message_id, o.latency_ms) for o in sent + bad])


async def match_receipts(conn: asyncpg.Connection, receipts: Sequence[Receipt], *, at: datetime
                         ) -> list[asyncpg.Record]:
    """Receipts in one statement: each matched row marked delivered (or the failure recorded)
    and its attempt written. Returns ``(ord, channel, ok)`` per receipt that matched a row
    (``ord``: its index in ``receipts``)."""
    return list(await conn.fetch(
        """WITH r AS (
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::int[])
                        AS r(provider, mid, ours, ok, err, ord)),
           m AS (
               SELECT DISTINCT ON (r.ord) r.ord, n.id, n.attempts, n.channel, r.provider, r.mid, r.ok, r.err
                 FROM r JOIN notifications n
                   ON (r.mid <> '' AND n.provider_message_id = r.mid AND n.provider = r.provider)
                   OR (r.ours <> '' AND n.id = r.ours)
                -- our own id first; else the newest row with that provider id (a provider id is
                -- unique at a real provider, but a restarted simulator counts from 1 again)
                ORDER BY r.ord, (n.id = r.ours) DESC, n.created_at DESC),
           u AS (
               UPDATE notifications n SET
                      status = CASE WHEN m.ok THEN 'delivered' ELSE n.status END,
                      delivered_at = CASE WHEN m.ok THEN $7 ELSE n.delivered_at END,
                      last_error = CASE WHEN m.ok THEN n.last_error
                                        ELSE left('undelivered: ' || m.err, 500) END,
                      updated_at = $7
                 FROM (SELECT DISTINCT ON (id) * FROM m ORDER BY id, ok DESC) m
                WHERE n.id = m.id RETURNING n.id),
           a AS (
               INSERT INTO notification_attempts (notification_id, attempt, at, provider, outcome, error,
                                                  provider_message_id)
               SELECT m.id, m.attempts, $7, m.provider,
                      CASE WHEN m.ok THEN 'delivered' ELSE 'undelivered' END, left(m.err, 500), m.mid
                 FROM m RETURNING 1)
           SELECT m.ord, m.channel, m.ok FROM m""",
        [r.provider for r in receipts], [r.message_id for r in receipts], [r.notification for r in receipts],
        [r.delivered for r in receipts], [r.error for r in receipts], list(range(len(receipts))), at))
