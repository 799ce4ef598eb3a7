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
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from alerting import metrics
from alerting.acks import personalize, record_grants
from alerting.errors import ProviderError
from alerting.notify.sms import Notifier, OutgoingMessage, SendResult
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
    "Receipt",
    "record_receipts",
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
    #: rows claimed per pass (also the most a kill -9 mid-pass can make the provider see twice)
    batch: int = 200
    #: sends under way at once, all channels (a notifier's ``max_in_flight`` caps its own)
    concurrency: int = 32


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
    """Insert rows (``pending``, due now) in one statement; returns the ids actually inserted
    (new ones), in the order of ``items``."""
    if not items:
        return []
    items, grants = await personalize(conn, items, now=now)  # each recipient's own 回复码 and link token
    cols: list[list[object]] = [[] for _ in range(15)]
    for it in items:
        r = it.request
        params = dict(it.params)
        if it.webhook_url:
            params["_url"] = it.webhook_url
        for col, v in zip(cols, (
                r.id, r.alert_id or None, it.group_key, it.notice_id, it.broadcast_id, r.channel,
                r.recipient.role.value, r.recipient.name, r.recipient.unit, r.recipient.phone, r.recipient.rule,
                r.notice_level.value if r.notice_level else None, r.template, r.body,
                json.dumps(params, ensure_ascii=False)), strict=True):
            col.append(v)
    got = await conn.fetch(
        """INSERT INTO notifications (id, alert_id, group_key, notice_id, broadcast_id, channel, recipient_role,
               recipient_name, recipient_unit, recipient_phone, rule, notice_level, template, body, params,
               priority, status, next_attempt_at, created_at, updated_at)
           SELECT u.id, u.alert_id, u.group_key, u.notice_id, u.broadcast_id, u.channel, u.role, u.name, u.unit,
                  u.phone, u.rule, u.level, u.template, u.body, u.params::jsonb, u.priority, 'pending', $17, $17, $17
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
                         $15::text[], $16::int[])
                  WITH ORDINALITY AS u(id, alert_id, group_key, notice_id, broadcast_id, channel, role, name, unit,
                                       phone, rule, level, template, body, params, priority, ord)
            ORDER BY u.ord
           ON CONFLICT (id) DO NOTHING RETURNING id""",
        *cols, [it.priority for it in items], now,
    )
    new = {r["id"] for r in got}
    out: list[str] = []
    for it in items:  # a list naming one id twice inserts it once
        if it.request.id in new:
            new.discard(it.request.id)
            out.append(it.request.id)
    await record_grants(conn, grants, out, now=now)
    return out


@dataclass(slots=True)
class _Outcome:
    """What one send did, written with its neighbours in one transaction (:meth:`OutboxSender._record`)."""

    row: asyncpg.Record
    outcome: str  # "sent" | "retrying" | "failed" | "crashed"
    attempt: int
    provider: str = ""
    http_status: int | None = None
    message_id: str = ""
    error: str = ""
    latency_ms: float | None = None
    next_attempt_at: datetime | None = None


class OutboxSender:
    """Sends due rows through the channel notifiers. ``run_once(now)`` is one pass.

    A pass costs a handful of round trips whatever its size: one ``UPDATE … RETURNING`` claims
    up to ``policy.batch`` rows, one query finds the duplicates and one the per-phone counts of
    the whole batch, then the sends run ``policy.concurrency`` requests at a time (a notifier
    with a ``max_in_flight`` attribute — its provider's limit — is held to that too) while their
    results are written as they arrive, many per transaction (``UPDATE … FROM unnest``). Rows of
    one text go in one request when the notifier takes several numbers (``max_batch`` and
    ``send_batch``, see :meth:`_units`); each row still gets its own outcome. So a row is marked
    ``sent`` within about one write after its request returned: a kill -9 re-sends at most what
    was in flight plus one write's worth, never more than the batch.
    """

    def __init__(self, pool: asyncpg.Pool, notifiers: Mapping[str, Notifier], policy: OutboxPolicy | None = None) -> None:
        self.pool, self.notifiers, self.policy = pool, dict(notifiers), policy or OutboxPolicy()
        self._limits: dict[str, asyncio.Semaphore] = {}
        for ch, n in self.notifiers.items():
            cap = getattr(n, "max_in_flight", None)
            if isinstance(cap, int) and cap > 0:
                self._limits[ch] = asyncio.Semaphore(cap)

    async def recover(self, now: datetime) -> int:
        """Rows a crashed sender left ``sending`` go back to ``pending``."""
        res = await self.pool.execute(
            "UPDATE notifications SET status='pending', updated_at=$1 WHERE status='sending'", now)
        n = int(res.split()[-1])
        if n:
            log.warning("outbox recovered rows left sending %s", kv(rows=n))
        return n

    async def run_once(self, now: datetime) -> int:
        """Claim up to ``policy.batch`` due rows, send them, record the outcomes; returns rows claimed."""
        rows = await self.pool.fetch(
            """UPDATE notifications SET status='sending', updated_at=$1 WHERE id IN (
                   SELECT id FROM notifications WHERE status='pending' AND next_attempt_at <= $1
                   ORDER BY priority DESC, next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            now, self.policy.batch,
        )
        if not rows:
            return 0
        rows = sorted(rows, key=lambda r: (-r["priority"], r["next_attempt_at"], r["id"]))
        to_send = await self._screen(rows, now)
        sem = asyncio.Semaphore(self.policy.concurrency)
        results: asyncio.Queue[_Outcome | None] = asyncio.Queue()

        async def one(unit: list[asyncpg.Record]) -> None:
            limit = self._limits.get(unit[0]["channel"])
            async with sem, (limit if limit is not None else contextlib.nullcontext()):
                try:
                    outs = await self._send_unit(unit, now)
                except Exception:  # a bug must not leave the rows stuck in 'sending'
                    metrics.ERRORS.labels("outbox").inc()
                    log.exception("outbox send crashed %s", kv(ids=",".join(r["id"] for r in unit)[:300]))
                    outs = [_Outcome(r, "crashed", r["attempts"], next_attempt_at=now + self.policy.base_delay)
                            for r in unit]
            for out in outs:
                results.put_nowait(out)

        writer = asyncio.create_task(self._writer(results, now))
        try:
            await asyncio.gather(*(one(u) for u in self._units(to_send)))
        finally:
            results.put_nowait(None)
            await writer
        return len(rows)

    # --- before sending: dedup window and per-phone limit, decided for the whole batch ---------

    async def _screen(self, rows: Sequence[asyncpg.Record], now: datetime) -> list[asyncpg.Record]:
        """Suppress duplicates and defer rows over the per-phone limit (one transaction for the
        batch); returns the rows to send, in claim order."""
        sms = [r for r in rows if r["channel"] == "sms" and r["recipient_phone"]]
        if not sms:
            return list(rows)
        dup_rows = await self.pool.fetch(
            """SELECT DISTINCT ON (c.id) c.id, n.id AS dup
                 FROM unnest($1::text[], $2::text[], $3::text[]) AS c(id, phone, body)
                 JOIN notifications n ON n.channel='sms' AND n.recipient_phone=c.phone AND n.body=c.body
                      AND n.id<>c.id AND n.status IN ('sent','delivered') AND n.sent_at > $4""",
            [r["id"] for r in sms], [r["recipient_phone"] for r in sms], [r["body"] for r in sms],
            now - self.policy.dedup_window)
        dups = {r["id"]: r["dup"] for r in dup_rows}
        ordinary = [r for r in sms if r["id"] not in dups and r["priority"] <= 0]
        deferred: dict[str, datetime] = {}
        if ordinary:
            window = timedelta(hours=1)
            limit = self.policy.per_phone_per_hour
            counted = await self.pool.fetch(
                """SELECT recipient_phone, array_agg(sent_at ORDER BY sent_at) AS sent FROM notifications
                   WHERE channel='sms' AND recipient_phone = ANY($1::text[]) AND sent_at > $2 AND priority <= 0
                   GROUP BY recipient_phone""",
                list({r["recipient_phone"] for r in ordinary}), now - window)
            sent: dict[str, list[datetime]] = {r["recipient_phone"]: list(r["sent"]) for r in counted}
            for r in ordinary:  # rows of this batch count against the limit as they are let through
                past = sent.setdefault(r["recipient_phone"], [])
                if len(past) < limit:
                    past.append(now)
                else:
                    deferred[r["id"]] = past[len(past) - limit] + window
        if dups or deferred:
            async with self.pool.acquire() as conn, conn.transaction():
                if dups:
                    await conn.execute(
                        """UPDATE notifications n SET status='suppressed', last_error=u.err, updated_at=$1
                           FROM unnest($2::text[], $3::text[]) AS u(id, err) WHERE n.id=u.id""",
                        now, list(dups), [f"identical message already sent as {d}" for d in dups.values()])
                if deferred:
                    ids = list(deferred)
                    await conn.execute(
                        """UPDATE notifications n SET status='pending', next_attempt_at=u.at, updated_at=$1,
                               last_error=$4 FROM unnest($2::text[], $3::timestamptz[]) AS u(id, at) WHERE n.id=u.id""",
                        now, ids, list(deferred.values()), f"per-phone limit {self.policy.per_phone_per_hour}/h reached")
                    by_id = {r["id"]: r for r in ordinary}
                    await self._attempts(conn, [
                        (i, by_id[i]["attempts"], now, "sms", "rate_limited", None, "per-phone rate limit", "", None)
                        for i in ids])
            if dups:
                metrics.NOTIFICATIONS.labels("sms", "suppressed").inc(len(dups))
            if deferred:
                metrics.NOTIFICATIONS.labels("sms", "rate_limited").inc(len(deferred))
        return [r for r in rows if r["id"] not in dups and r["id"] not in deferred]

    # --- sending ------------------------------------------------------------------------------

    def _units(self, rows: Sequence[asyncpg.Record]) -> list[list[asyncpg.Record]]:
        """What goes out together: rows of one text (channel, body, template, parameters) to a
        notifier that sends one text to many numbers (``max_batch`` > 1) form one unit of up
        to ``max_batch`` rows (a notifier with ``per_message_text`` takes each number's own text:
        then rows of one template, alert and group do); every other row is a unit of its own. Claim order is kept (a
        unit sits where its first row was)."""
        units: list[list[asyncpg.Record]] = []
        open_units: dict[tuple[str, str, str, str], tuple[list[asyncpg.Record], set[str]]] = {}
        for r in rows:
            size = int(getattr(self.notifiers.get(r["channel"]), "max_batch", 1) or 1)
            if size <= 1:
                units.append([r])
                continue
            if getattr(self.notifiers.get(r["channel"]), "per_message_text", False):
                # a notifier that takes each number's own text (the recipients' own 回复码 and
                # link): the rows of one message to several recipients go together
                key = (r["channel"], r["template"], r["alert_id"] or "", r["group_key"])
            else:
                key = (r["channel"], r["body"], r["template"], str(r["params"]))
            unit, phones = open_units.get(key, (None, set()))
            # a number at most once per request: providers answer per number
            if unit is None or len(unit) >= size or r["recipient_phone"] in phones:
                unit, phones = open_units[key] = ([], set())
                units.append(unit)
            unit.append(r)
            phones.add(r["recipient_phone"])
        return units

    @staticmethod
    def _message(row: asyncpg.Record) -> OutgoingMessage:
        params = json.loads(row["params"]) if isinstance(row["params"], str) else dict(row["params"])
        url = params.pop("_url", "")
        return OutgoingMessage(
            id=row["id"], channel=row["channel"], body=row["body"], template=row["template"], params=params,
            phone=row["recipient_phone"], alert_id=row["alert_id"], notice_level=row["notice_level"], webhook_url=url,
            recipient={"role": row["recipient_role"], "name": row["recipient_name"], "unit": row["recipient_unit"],
                       "rule": row["rule"]},
        )

    async def _send_unit(self, unit: Sequence[asyncpg.Record], now: datetime) -> list[_Outcome]:
        """One request (or one per row, for a notifier without batches); an outcome per row."""
        channel = unit[0]["channel"]
        notifier = self.notifiers.get(channel)
        t0 = time.perf_counter()
        answers: list[SendResult | ProviderError]
        if notifier is None:
            answers = [ProviderError(f"no notifier for channel {channel!r}", retryable=False)] * len(unit)
        elif len(unit) > 1:
            answers = await notifier.send_batch([self._message(r) for r in unit])  # type: ignore[attr-defined]
        else:
            try:
                answers = [await notifier.send(self._message(unit[0]))]
            except ProviderError as exc:
                answers = [exc]
        latency = (time.perf_counter() - t0) * 1000
        provider = getattr(getattr(notifier, "provider", None), "name", channel)
        return [self._outcome(r, a, latency, provider, now) for r, a in zip(unit, answers, strict=True)]

    def _outcome(self, row: asyncpg.Record, answer: SendResult | ProviderError, latency: float, provider: str,
                 now: datetime) -> _Outcome:
        attempt = row["attempts"] + 1
        if isinstance(answer, SendResult):
            return _Outcome(row, "sent", attempt, answer.provider, answer.status, answer.message_id, "", latency)
        give_up = not answer.retryable or now - row["created_at"] >= self.policy.max_age
        delay = backoff(attempt, self.policy, row["id"])
        if answer.retry_after_s:
            delay = max(delay, timedelta(seconds=answer.retry_after_s))
        outcome = "failed" if give_up else "retrying"
        log.warning("notification %s %s", outcome, kv(id=row["id"], attempt=attempt, error=str(answer)[:120],
                                                       retry_in_s=int(delay.total_seconds())))
        return _Outcome(row, outcome, attempt, provider, answer.status, "", str(answer), latency, now + delay)

    # --- after sending: outcomes written as they arrive, many per transaction ------------------

    async def _writer(self, results: asyncio.Queue[_Outcome | None], now: datetime) -> None:
        """Drain whatever outcomes are ready, write them in one transaction, repeat until the
        end marker. A send already made is written even through a short database outage (the
        write is retried); if that fails for good the rows stay ``sending`` and :meth:`recover`
        returns them to ``pending`` at the next start (at-least-once, the gateway dedups ``id``)."""
        finished = False
        while not finished:
            batch = [await results.get()]
            while not results.empty():
                batch.append(results.get_nowait())
            finished = None in batch
            outs = [o for o in batch if o is not None]
            if not outs:
                continue
            for attempt in range(8):
                try:
                    await self._record(outs, now)
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    metrics.ERRORS.labels("outbox").inc()
                    log.warning("outbox result write failed; retrying %s", kv(rows=len(outs), error=repr(exc)[:200]))
                    if attempt == 7:
                        log.error("outbox results not written; rows stay 'sending' until restart %s",
                                  kv(ids=",".join(o.row["id"] for o in outs)[:500]))
                        break
                    await asyncio.sleep(min(0.1 * 2 ** attempt, 2.0))
            for o in outs:
                if o.outcome != "crashed":
                    metrics.NOTIFICATIONS.labels(o.row["channel"], o.outcome).inc()

    async def _record(self, outs: Sequence[_Outcome], now: datetime) -> None:
        sent = [o for o in outs if o.outcome == "sent"]
        bad = [o for o in outs if o.outcome in ("retrying", "failed")]
        crashed = [o for o in outs if o.outcome == "crashed"]
        async with self.pool.acquire() as conn, conn.transaction():
            if sent:
                await conn.execute(
                    """UPDATE notifications n SET status='sent', attempts=u.attempt, sent_at=$1, updated_at=$1,
                           provider=u.provider, provider_message_id=u.mid, last_error=''
                       FROM unnest($2::text[], $3::int[], $4::text[], $5::text[]) AS u(id, attempt, provider, mid)
                       WHERE n.id=u.id""",
                    now, [o.row["id"] for o in sent], [o.attempt for o in sent], [o.provider for o in sent],
                    [o.message_id for o in sent])
            if bad:
                await conn.execute(
                    """UPDATE notifications n SET status=u.status, attempts=u.attempt, last_error=u.err,
                           next_attempt_at=u.next_at, updated_at=$1, provider=u.provider
                       FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::timestamptz[], $7::text[])
                            AS u(id, status, attempt, err, next_at, provider)
                       WHERE n.id=u.id""",
                    now, [o.row["id"] for o in bad], ["failed" if o.outcome == "failed" else "pending" for o in bad],
                    [o.attempt for o in bad], [o.error[:500] for o in bad], [o.next_attempt_at for o in bad],
                    [o.provider for o in bad])
            if crashed:
                await conn.execute(
                    """UPDATE notifications n SET status='pending', next_attempt_at=u.next_at, updated_at=$1
                       FROM unnest($2::text[], $3::timestamptz[]) AS u(id, next_at) WHERE n.id=u.id""",
                    now, [o.row["id"] for o in crashed], [o.next_attempt_at for o in crashed])
            await self._attempts(conn, [(o.row["id"], o.attempt, now, o.provider, o.outcome, o.http_status, o.error,
                                         o.message_id, o.latency_ms) for o in sent + bad])

    @staticmethod
    async def _attempts(conn: asyncpg.Connection,
                        rows: Sequence[tuple[str, int, datetime, str, str, int | None, str, str, float | None]]) -> None:
        """Audit rows (``notification_attempts``), one INSERT for the lot."""
        if not rows:
            return
        cols = list(zip(*rows, strict=True))
        await conn.execute(
            """INSERT INTO notification_attempts (notification_id, attempt, at, provider, outcome, http_status, error,
                   provider_message_id, latency_ms)
               SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::text[], $6::int[],
                                    $7::text[], $8::text[], $9::float8[])""",
            list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4]), list(cols[5]),
            [e[:500] for e in cols[6]], list(cols[7]), list(cols[8]))


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt (回执) as parsed from a provider's callback."""

    provider: str
    message_id: str
    delivered: bool
    error: str = ""
    notification: str = ""  # our id, when the provider echoes it (阿里云 ``out_id``, the webhook's ``id``)


async def record_receipts(conn: asyncpg.Connection, receipts: Sequence[Receipt], *, at: datetime) -> list[bool]:
    """Receipts in one statement: mark each matched row delivered (or record the failure) and
    write its attempt. Returns, per receipt, whether a row matched (one may not have yet: a
    receipt can overtake the write of the send result)."""
    if not receipts:
        return []
    rows = await conn.fetch(
        """WITH r AS (
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::int[])
                        AS r(provider, mid, ours, ok, err, ord)),
           m AS (
               SELECT DISTINCT ON (r.ord) r.ord, n.id, n.attempts, n.channel, r.provider, r.mid, r.ok, r.err
                 FROM r JOIN notifications n
                   ON (r.mid <> '' AND n.provider_message_id = r.mid AND n.provider = r.provider)
                   OR (r.ours <> '' AND n.id = r.ours)
                ORDER BY r.ord),
           u AS (
               UPDATE notifications n SET
                      status = CASE WHEN m.ok THEN 'delivered' ELSE n.status END,
                      delivered_at = CASE WHEN m.ok THEN $7 ELSE n.delivered_at END,
                      last_error = CASE WHEN m.ok THEN n.last_error ELSE left('undelivered: ' || m.err, 500) END,
                      updated_at = $7
                 FROM (SELECT DISTINCT ON (id) * FROM m ORDER BY id, ok DESC) m WHERE n.id = m.id RETURNING n.id),
           a AS (
               INSERT INTO notification_attempts (notification_id, attempt, at, provider, outcome, error,
                                                  provider_message_id)
               SELECT m.id, m.attempts, $7, m.provider, CASE WHEN m.ok THEN 'delivered' ELSE 'undelivered' END,
                      left(m.err, 500), m.mid FROM m RETURNING 1)
           SELECT m.ord, m.channel, m.ok FROM m""",
        [r.provider for r in receipts], [r.message_id for r in receipts], [r.notification for r in receipts],
        [r.delivered for r in receipts], [r.error for r in receipts], list(range(len(receipts))), at)
    matched = [False] * len(receipts)
    for row in rows:
        matched[row["ord"]] = True
        metrics.NOTIFICATIONS.labels(row["channel"], "delivered" if row["ok"] else "undelivered").inc()
    return matched


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
