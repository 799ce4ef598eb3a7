"""The persisted outbox: every message is a row before any provider is called.

* **Idempotent**: the row id is deterministic — :func:`notification_id` of (alert, recipient,
  notice step, template) — and inserts are ``ON CONFLICT DO NOTHING``, so a replayed event or a
  restarted flush never queues a second SMS (Alertmanager's notification log plays this part).
* **Nothing lost**: a provider outage leaves rows ``pending`` with ``next_attempt_at`` pushed
  back by exponential :func:`backoff` (or the provider's Retry-After); they go out when it
  recovers. Rows are abandoned (``failed``) only on a permanent refusal (bad number, bad
  template, signature refused) or after ``max_age``.
* **No spam**: an identical text to the same phone within ``dedup_window`` is suppressed; a
  phone receives at most ``per_phone_per_hour`` ordinary messages, the rest wait (alarms with
  priority — red alarms and 四单 notices — are exempt and not counted: a limit must never delay
  a fire alarm, nor let urgent traffic starve the ordinary queue).
* **Audited**: every attempt is a row in ``notification_attempts``.

A row is claimed with ``FOR UPDATE SKIP LOCKED`` (status ``sending``), so two senders never send
the same row; rows left ``sending`` by a crash go back to ``pending`` on start (at-least-once:
the provider may see that one message twice; the webhook gateway can dedup on ``id``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from alerting import metrics
from alerting.errors import ProviderError
from alerting.notify.sms import Notifier, OutgoingMessage
from hazmon.contracts import NotificationRequest, Recipient
from hazmon.logs import kv

__all__ = [
    "OutboxPolicy",
    "NewNotification",
    "notification_id",
    "backoff",
    "enqueue",
    "OutboxSender",
    "record_receipt",
]

log = logging.getLogger(__name__)


def notification_id(alert_id: str | None, recipient: Recipient, step: int, template: str) -> str:
    """The dedup key of (alert, recipient, notice step, template): same inputs, same id."""
    who = f"{recipient.role.value}|{recipient.phone or ''}|{recipient.name}|{recipient.unit}"
    key = f"{alert_id or ''}|{who}|{step}|{template}"
    return "n-" + hashlib.sha256(key.encode()).hexdigest()[:30]


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    base_delay: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(minutes=15)
    max_age: timedelta = timedelta(hours=24)
    per_phone_per_hour: int = 20
    dedup_window: timedelta = timedelta(minutes=10)
    batch: int = 50
    concurrency: int = 8


def backoff(attempt: int, policy: OutboxPolicy, key: str = "") -> timedelta:
    """Delay before attempt ``attempt + 1``: base × 2^(attempt−1), capped, with a deterministic
    ±20 % jitter from ``key`` so a burst of failures does not retry in lock-step."""
    raw = policy.base_delay * (2 ** max(attempt - 1, 0))
    capped = min(raw, policy.max_delay)
    h = int(hashlib.sha256(f"{key}|{attempt}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return capped * (0.8 + 0.4 * h)


@dataclass(frozen=True)
class NewNotification:
    request: NotificationRequest
    params: Mapping[str, str] = field(default_factory=dict)
    group_key: str = ""
    notice_id: int | None = None
    broadcast_id: str | None = None
    priority: int = 0
    webhook_url: str = ""


async def enqueue(conn: asyncpg.Connection, items: Sequence[NewNotification], *, now: datetime) -> list[str]:
    """Insert rows (``pending``, due now); returns the ids actually inserted (new ones)."""
    inserted: list[str] = []
    for it in items:
        r = it.request
        params = dict(it.params)
        if it.webhook_url:
            params["_url"] = it.webhook_url
        got = await conn.fetchval(
            """INSERT INTO notifications (id, alert_id, group_key, notice_id, broadcast_id, channel, recipient_role,
                   recipient_name, recipient_unit, recipient_phone, rule, notice_level, template, body, params,
                   priority, status, next_attempt_at, created_at, updated_at)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15::jsonb,$16,'pending',$17,$17,$17)
               ON CONFLICT (id) DO NOTHING RETURNING id""",
            r.id, r.alert_id or None, it.group_key, it.notice_id, it.broadcast_id, r.channel, r.recipient.role.value,
            r.recipient.name, r.recipient.unit, r.recipient.phone, r.recipient.rule,
            r.notice_level.value if r.notice_level else None, r.template, r.body,
            json.dumps(params, ensure_ascii=False), it.priority, now,
        )
        if got:
            inserted.append(got)
    return inserted


class OutboxSender:
    """Sends due rows through the channel notifiers. ``run_once(now)`` is one pass."""

    def __init__(self, pool: asyncpg.Pool, notifiers: Mapping[str, Notifier], policy: OutboxPolicy | None = None) -> None:
        self.pool, self.notifiers, self.policy = pool, dict(notifiers), policy or OutboxPolicy()

    async def recover(self, now: datetime) -> int:
        """Rows a crashed sender left ``sending`` go back to ``pending``."""
        res = await self.pool.execute(
            "UPDATE notifications SET status='pending', updated_at=$1 WHERE status='sending'", now)
        n = int(res.split()[-1])
        if n:
            log.warning("outbox recovered rows left sending %s", kv(rows=n))
        return n

    async def run_once(self, now: datetime) -> int:
        rows = await self.pool.fetch(
            """UPDATE notifications SET status='sending', updated_at=$1 WHERE id IN (
                   SELECT id FROM notifications WHERE status='pending' AND next_attempt_at <= $1
                   ORDER BY priority DESC, next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            now, self.policy.batch,
        )
        if not rows:
            return 0
        sem = asyncio.Semaphore(self.policy.concurrency)

        async def one(row: asyncpg.Record) -> None:
            async with sem:
                try:
                    await self._send(row, now)
                except Exception:  # a bug must not leave the row stuck in 'sending'
                    metrics.ERRORS.labels("outbox").inc()
                    log.exception("outbox send crashed %s", kv(id=row["id"]))
                    await self.pool.execute(
                        "UPDATE notifications SET status='pending', next_attempt_at=$2, updated_at=$2 WHERE id=$1",
                        row["id"], now + self.policy.base_delay)

        await asyncio.gather(*(one(r) for r in rows))
        return len(rows)

    async def _send(self, row: asyncpg.Record, now: datetime) -> None:
        channel = row["channel"]
        params = json.loads(row["params"]) if isinstance(row["params"], str) else dict(row["params"])
        url = params.pop("_url", "")
        if channel == "sms" and row["recipient_phone"]:
            if await self._duplicate(row, now):
                return
            if row["priority"] <= 0 and await self._rate_limited(row, now):
                return
        notifier = self.notifiers.get(channel)
        msg = OutgoingMessage(
            id=row["id"], channel=channel, body=row["body"], template=row["template"], params=params,
            phone=row["recipient_phone"], alert_id=row["alert_id"], notice_level=row["notice_level"], webhook_url=url,
            recipient={"role": row["recipient_role"], "name": row["recipient_name"], "unit": row["recipient_unit"],
                       "rule": row["rule"]},
        )
        attempt = row["attempts"] + 1
        t0 = time.perf_counter()
        try:
            if notifier is None:
                raise ProviderError(f"no notifier for channel {channel!r}", retryable=False)
            result = await notifier.send(msg)
        except ProviderError as exc:
            latency = (time.perf_counter() - t0) * 1000
            give_up = not exc.retryable or now - row["created_at"] >= self.policy.max_age
            status = "failed" if give_up else "pending"
            delay = backoff(attempt, self.policy, row["id"])
            if exc.retry_after_s:
                delay = max(delay, timedelta(seconds=exc.retry_after_s))
            outcome = "failed" if give_up else "retrying"
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    """UPDATE notifications SET status=$2, attempts=$3, last_error=$4, next_attempt_at=$5, updated_at=$6,
                           provider=$7 WHERE id=$1""",
                    row["id"], status, attempt, str(exc)[:500], now + delay, now,
                    getattr(getattr(notifier, "provider", None), "name", channel))
                await self._attempt(conn, row["id"], attempt, now, channel, outcome, exc.status, str(exc), "", latency)
            metrics.NOTIFICATIONS.labels(channel, outcome).inc()
            log.warning("notification %s %s", outcome, kv(id=row["id"], attempt=attempt, error=str(exc)[:120],
                                                           retry_in_s=int(delay.total_seconds())))
            return
        latency = (time.perf_counter() - t0) * 1000
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """UPDATE notifications SET status='sent', attempts=$2, sent_at=$3, updated_at=$3, provider=$4,
                       provider_message_id=$5, last_error='' WHERE id=$1""",
                row["id"], attempt, now, result.provider, result.message_id)
            await self._attempt(conn, row["id"], attempt, now, result.provider, "sent", result.status, "",
                                result.message_id, latency)
        metrics.NOTIFICATIONS.labels(channel, "sent").inc()

    async def _duplicate(self, row: asyncpg.Record, now: datetime) -> bool:
        dup = await self.pool.fetchval(
            """SELECT id FROM notifications WHERE channel='sms' AND recipient_phone=$1 AND body=$2 AND id<>$3
                   AND status IN ('sent','delivered') AND sent_at > $4 LIMIT 1""",
            row["recipient_phone"], row["body"], row["id"], now - self.policy.dedup_window)
        if dup is None:
            return False
        await self.pool.execute(
            "UPDATE notifications SET status='suppressed', last_error=$2, updated_at=$3 WHERE id=$1",
            row["id"], f"identical message already sent as {dup}", now)
        metrics.NOTIFICATIONS.labels("sms", "suppressed").inc()
        return True

    async def _rate_limited(self, row: asyncpg.Record, now: datetime) -> bool:
        window = timedelta(hours=1)
        sent = await self.pool.fetch(
            "SELECT sent_at FROM notifications WHERE channel='sms' AND recipient_phone=$1 AND sent_at > $2"
            " AND priority <= 0 ORDER BY sent_at",
            row["recipient_phone"], now - window)
        if len(sent) < self.policy.per_phone_per_hour:
            return False
        free_at = sent[len(sent) - self.policy.per_phone_per_hour]["sent_at"] + window
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE notifications SET status='pending', next_attempt_at=$2, updated_at=$3, last_error=$4 WHERE id=$1",
                row["id"], free_at, now, f"per-phone limit {self.policy.per_phone_per_hour}/h reached")
            await self._attempt(conn, row["id"], row["attempts"], now, "sms", "rate_limited", None,
                                "per-phone rate limit", "", None)
        metrics.NOTIFICATIONS.labels("sms", "rate_limited").inc()
        return True

    @staticmethod
    async def _attempt(conn: asyncpg.Connection, nid: str, attempt: int, at: datetime, provider: str, outcome: str,
                       status: int | None, error: str, message_id: str, latency_ms: float | None) -> None:
        await conn.execute(
            """INSERT INTO notification_attempts (notification_id, attempt, at, provider, outcome, http_status, error,
                   provider_message_id, latency_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)""",
            nid, attempt, at, provider, outcome, status, error[:500], message_id, latency_ms)


async def record_receipt(conn: asyncpg.Connection, *, provider: str, message_id: str, delivered: bool,
                         at: datetime, error: str = "", notification: str = "") -> str | None:
    """A delivery receipt (回执): mark the row delivered (or record the failure). ``notification``
    is our id when the provider echoes it (阿里云 ``out_id``). Returns the notification id, None
    when no row matches (yet: a receipt can overtake the write of the send result)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """SELECT id, attempts, channel FROM notifications
               WHERE (provider_message_id=$1 AND provider=$2) OR (id=$3 AND $3 <> '') LIMIT 1 FOR UPDATE""",
            message_id, provider, notification)
        if row is None:
            return None
        if delivered:
            await conn.execute("UPDATE notifications SET status='delivered', delivered_at=$2, updated_at=$2 WHERE id=$1",
                               row["id"], at)
        else:
            await conn.execute("UPDATE notifications SET last_error=$2, updated_at=$3 WHERE id=$1",
                               row["id"], f"undelivered: {error}"[:500], at)
        await conn.execute(
            """INSERT INTO notification_attempts (notification_id, attempt, at, provider, outcome, error,
                   provider_message_id) VALUES ($1,$2,$3,$4,$5,$6,$7)""",
            row["id"], row["attempts"], at, provider, "delivered" if delivered else "undelivered", error[:500], message_id)
    metrics.NOTIFICATIONS.labels(row["channel"], "delivered" if delivered else "undelivered").inc()
    return str(row["id"])
