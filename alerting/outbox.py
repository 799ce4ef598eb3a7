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
* **Within the providers' per-number limits** (频率限制, :mod:`alerting.budget`): an SMS that
  阿里云 or 腾讯云 would refuse is not sent; an ordinary one waits for the window (a
  ``rate_limited`` attempt says which limit, until when), a priority one waits at most the 30 s
  same-text rule, and over a daily budget becomes ``undeliverable`` with the reason — the duty
  operator is told, as below.
* **Audited**: every attempt is a row in ``notification_attempts``.
* **Loud when undeliverable** (未送达): a row on a channel without a configured notifier (a voice
  call where no voice provider is set up) becomes ``undeliverable`` with the reason, and the
  centre's duty operator gets an SMS saying who was not reached (:mod:`alerting.reach`); so
  does a recipient no channel reaches, at enqueue.

A row is claimed with ``FOR UPDATE SKIP LOCKED`` (status ``sending``), so two senders never send
the same row; rows left ``sending`` by a crash go back to ``pending`` on start (at-least-once:
the provider may see that one message twice; the webhook gateway can dedup on ``id``).

The SQL is :mod:`alerting.store.outbox`'s; what a channel can do (batches, its in-flight limit)
is declared by :class:`alerting.notify.base.Notifier`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import asyncpg

from alerting import budget, metrics
from alerting.acks import personalize, record_grants
from alerting.errors import ProviderError
from alerting.notify.base import Notifier, OutgoingMessage, SendResult
from alerting.store import outbox as store
from alerting.store.outbox import SendOutcome
from alerting.templates import TPL_KEY, registered_name
from hazmon.contracts import NotificationRequest, Recipient
from hazmon.logs import kv
from hazmon.settings_budget import SmsBudgetSettings

__all__ = [
    "OutboxPolicy",
    "NewNotification",
    "notification_id",
    "backoff",
    "enqueue",
    "OutboxSender",
]

log = logging.getLogger(__name__)

#: the outbox status and attempt outcome of a row no channel can deliver (未送达)
UNDELIVERABLE = "undeliverable"
_CHANNEL_ZH = {"sms": "短信", "voice": "语音通知", "wecom": "企业微信群机器人", "dingtalk": "钉钉群机器人",
               "webhook": "webhook", "console": "控制台"}


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
    #: the SMS providers' per-number frequency limits (alerting/budget.py, ``sms.budget``)
    sms_budget: SmsBudgetSettings = field(default_factory=SmsBudgetSettings)
    #: a row ``sending`` this long is its sender's no longer (it died): any instance frees it.
    #: Longer than any send takes (the notifiers' timeouts are seconds), so a live peer's is safe
    claim_lease: timedelta = timedelta(seconds=30)
    #: this instance's name in ``claimed_by`` (``alerting.instance``; "" = host:pid)
    owner: str = ""


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
    #: "pending", "undeliverable" (未送达) with ``error`` the reason (alerting.reach), or "held"
    #: (夜间免扰) with ``error`` saying until when
    status: str = "pending"
    error: str = ""
    #: when the row is first due (None: now); a ``held`` row (夜间免扰, alerting/quiet.py) is
    #: due at the end of quiet hours, for the morning digest
    due_at: datetime | None = None


async def enqueue(conn: asyncpg.Connection, items: Sequence[NewNotification], *, now: datetime) -> list[str]:
    """Insert rows (``pending``, due now) in one statement; returns the ids actually inserted
    (new ones), in the order of ``items``."""
    if not items:
        return []
    items, grants = await personalize(conn, items, now=now)  # each recipient's own 回复码 and link token
    new = await store.insert_notifications(conn, items, now=now)
    out: list[str] = []
    for it in items:  # a list naming one id twice inserts it once
        if it.request.id in new:
            new.discard(it.request.id)
            out.append(it.request.id)
    await record_grants(conn, grants, out, now=now)
    return out


class OutboxSender:
    """Sends due rows through the channel notifiers. ``run_once(now)`` is one pass.

    A pass costs a handful of round trips whatever its size: one ``UPDATE … RETURNING`` claims
    up to ``policy.batch`` rows, one query finds the duplicates and one the per-phone counts of
    the whole batch, then the sends run ``policy.concurrency`` requests at a time (a notifier
    with a ``max_in_flight`` — its provider's limit — is held to that too) while their
    results are written as they arrive, many per transaction (``UPDATE … FROM unnest``). Rows of
    one text go in one request when the notifier takes several numbers (``max_batch`` and
    ``send_batch``, see :meth:`_units`); each row still gets its own outcome. So a row is marked
    ``sent`` within about one write after its request returned: a kill -9 re-sends at most what
    was in flight plus one write's worth, never more than the batch.
    """

    def __init__(self, pool: asyncpg.Pool, notifiers: Mapping[str, Notifier],
                 policy: OutboxPolicy | None = None, *, duty: Recipient | None = None, owner: str = "") -> None:
        self.pool, self.notifiers, self.policy = pool, dict(notifiers), policy or OutboxPolicy()
        #: who claims rows (``claimed_by``): ``alerting.instance`` when named, else this process
        owner = owner or self.policy.owner
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._named, self._reclaimed_at = bool(owner), 0.0
        #: told (by SMS) of every row that turns out undeliverable (routes.yaml duty_operator)
        self.duty = duty
        self._limits: dict[str, asyncio.Semaphore] = {}
        for ch, n in self.notifiers.items():
            if n.max_in_flight > 0:
                self._limits[ch] = asyncio.Semaphore(n.max_in_flight)

    async def recover(self, now: datetime) -> int:
        """Rows a crashed sender left ``sending`` go back to ``pending``: at start, this
        instance's own (a named instance restarting: its last run died) and, then every third
        of the lease, anyone's held past ``claim_lease``. Never a live peer's (two alerting
        instances on one database: the peer is still sending them, docs/operations.md)."""
        self._reclaimed_at = time.monotonic()
        n = await store.reset_sending(self.pool, now, owner=self.owner if self._named else None,
                                      stale_before=now - self.policy.claim_lease)
        if n:
            log.warning("outbox recovered rows left sending %s", kv(rows=n, owner=self.owner))
        return n

    async def run_once(self, now: datetime) -> int:
        """Claim up to ``policy.batch`` due rows, send them, record the outcomes; returns rows claimed."""
        if time.monotonic() - self._reclaimed_at > self.policy.claim_lease.total_seconds() / 3:
            await self.recover(now)
        claimed = time.perf_counter()
        rows = await store.claim_due(self.pool, now, self.policy.batch, owner=self.owner)
        if not rows:
            return 0
        rows = sorted(rows, key=lambda r: (-r["priority"], r["next_attempt_at"], r["id"]))
        to_send = await self._screen(rows, now)
        sem = asyncio.Semaphore(self.policy.concurrency)
        results: asyncio.Queue[SendOutcome | None] = asyncio.Queue()

        async def one(unit: list[asyncpg.Record]) -> None:
            limit = self._limits.get(unit[0]["channel"])
            async with sem, (limit if limit is not None else contextlib.nullcontext()):
                try:
                    outs = await self._send_unit(unit, now)
                    answered = now + timedelta(seconds=time.perf_counter() - claimed)
                    outs = [replace(o, answered_at=answered) for o in outs]
                except Exception:  # a bug must not leave the rows stuck in 'sending'
                    metrics.ERRORS.labels("outbox").inc()
                    log.exception("outbox send crashed %s", kv(ids=",".join(r["id"] for r in unit)[:300]))
                    retry_at = now + self.policy.base_delay
                    outs = [SendOutcome(r, "crashed", r["attempts"], next_attempt_at=retry_at) for r in unit]
            for out in outs:
                results.put_nowait(out)

        writer = asyncio.create_task(self._writer(results, now))
        try:
            await asyncio.gather(*(one(u) for u in self._units(to_send)))
        finally:
            results.put_nowait(None)
            await writer
        return len(rows)

    # --- before sending: dedup window, providers' budgets, per-phone limit, for the whole batch -

    async def _screen(self, rows: Sequence[asyncpg.Record], now: datetime) -> list[asyncpg.Record]:
        """Suppress duplicates; hold SMS to the provider's per-number budgets and the per-phone
        hourly limit (:mod:`alerting.budget`): defer what must wait, and mark 未送达 — the duty
        operator told — a priority row a daily budget would refuse. One transaction for the
        batch; returns the rows to send, in claim order."""
        sms = [r for r in rows if r["channel"] == "sms" and r["recipient_phone"]]
        if not sms:
            return list(rows)
        dups = await store.sent_duplicates(self.pool, sms, since=now - self.policy.dedup_window)
        live = [r for r in sms if r["id"] not in dups]
        deferred, refused = await self._budget(live, now)
        if dups or deferred or refused:
            async with self.pool.acquire() as conn, conn.transaction():
                if dups:
                    await store.suppress_duplicates(conn, now, dups)
                if deferred:
                    await store.defer_rows(conn, now, {i: d.until for i, d in deferred.items()},
                                           {i: d.reason for i, d in deferred.items()})
                    by_id = {r["id"]: r for r in live}
                    await store.insert_attempts(conn, [
                        (i, by_id[i]["attempts"], now, self._sms_provider(), "rate_limited", None, d.reason,
                         "", None) for i, d in deferred.items()])
                if refused:  # as a send found undeliverable: its outcome, and the duty operator's SMS
                    await store.record_outcomes(conn, refused, now)
                    notes = self._duty_notes(refused, now)
                    if notes:
                        await enqueue(conn, notes, now=now)
            if dups:
                metrics.NOTIFICATIONS.labels("sms", "suppressed").inc(len(dups))
            if deferred:
                metrics.NOTIFICATIONS.labels("sms", "rate_limited").inc(len(deferred))
            if refused:
                metrics.NOTIFICATIONS.labels("sms", UNDELIVERABLE).inc(len(refused))
                for o in refused:
                    log.warning("notification not sent: over the provider's daily budget %s",
                                kv(id=o.row["id"], phone=o.row["recipient_phone"], error=o.error))
        skip = set(dups) | set(deferred) | {o.row["id"] for o in refused}
        return [r for r in rows if r["id"] not in skip]

    def _sms_provider(self) -> str:
        notifier = self.notifiers.get("sms")
        return notifier.provider_name if notifier is not None else "sms"

    async def _budget(self, rows: Sequence[asyncpg.Record], now: datetime
                      ) -> tuple[dict[str, budget.Defer], list[SendOutcome]]:
        """The rows that must wait (id → until when, why) and those refused (未送达) under the
        provider's budgets and the hourly limit; one query for the phones' SMS of the last 24 h."""
        provider = self._sms_provider()
        limited = self.policy.sms_budget.enabled and provider in budget.PROVIDER_LIMITED
        if not rows or (not limited and all(r["priority"] > 0 for r in rows)):
            return {}, []
        past = await store.sent_sms_per_phone(self.pool, list({r["recipient_phone"] for r in rows}),
                                              since=now - timedelta(hours=24))
        sent = [budget.SentSms(p["recipient_phone"], p["sent_at"], p["provider"],
                               registered_name(p["template"], {TPL_KEY: p["tpl"] or ""}), p["body"],
                               p["priority"]) for p in past]
        todo = [budget.QueuedSms(r["id"], r["recipient_phone"],
                                 registered_name(r["template"], self._row_params(r)),
                                 r["body"], r["priority"], r["last_error"] or "") for r in rows]
        decided = budget.decide(provider, self.policy.sms_budget, self.policy.per_phone_per_hour, sent, todo,
                                now)
        by_id = {r["id"]: r for r in rows}
        deferred = {i: d for i, d in decided.items() if isinstance(d, budget.Defer)}
        refused = [SendOutcome(by_id[i], UNDELIVERABLE, by_id[i]["attempts"] + 1, provider, None, "",
                               d.reason, None, now)
                   for i, d in decided.items() if isinstance(d, budget.Refuse)]
        return deferred, refused

    @staticmethod
    def _row_params(row: asyncpg.Record) -> dict[str, str]:
        return json.loads(row["params"]) if isinstance(row["params"], str) else dict(row["params"])

    # --- sending ------------------------------------------------------------------------------

    def _units(self, rows: Sequence[asyncpg.Record]) -> list[list[asyncpg.Record]]:
        """What goes out together: rows of one text (channel, body, template, parameters) to a
        notifier that sends one text to many numbers (``max_batch`` > 1) form one unit of up
        to ``max_batch`` rows (a notifier with ``per_message_text`` takes each number's own text:
        then rows of one template, alert and group do); every other row is a unit of its own.
        Claim order is kept (a unit sits where its first row was)."""
        units: list[list[asyncpg.Record]] = []
        open_units: dict[tuple[str, str, str, str], tuple[list[asyncpg.Record], set[str]]] = {}
        for r in rows:
            notifier = self.notifiers.get(r["channel"])
            size = notifier.max_batch if notifier is not None else 1
            if notifier is None or size <= 1:
                units.append([r])
                continue
            if notifier.per_message_text:
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
            phone=row["recipient_phone"], alert_id=row["alert_id"], notice_level=row["notice_level"],
            webhook_url=url,
            recipient={"role": row["recipient_role"], "name": row["recipient_name"],
                       "unit": row["recipient_unit"], "rule": row["rule"]},
        )

    async def _send_unit(self, unit: Sequence[asyncpg.Record], now: datetime) -> list[SendOutcome]:
        """One request (or one per row, for a notifier without batches); an outcome per row."""
        channel = unit[0]["channel"]
        notifier = self.notifiers.get(channel)
        t0 = time.perf_counter()
        answers: list[SendResult | ProviderError]
        if notifier is None:  # 未送达: the channel is not set up here (the duty operator is told)
            why = f"未配置{_CHANNEL_ZH.get(channel, channel)}渠道"
            return [SendOutcome(r, UNDELIVERABLE, r["attempts"] + 1, channel, None, "", why, 0.0, now)
                    for r in unit]
        if len(unit) > 1:
            answers = await notifier.send_batch([self._message(r) for r in unit])
        else:
            try:
                answers = [await notifier.send(self._message(unit[0]))]
            except ProviderError as exc:
                answers = [exc]
        latency = (time.perf_counter() - t0) * 1000
        provider = notifier.provider_name if notifier is not None else channel
        return [self._outcome(r, a, latency, provider, now) for r, a in zip(unit, answers, strict=True)]

    def _outcome(self, row: asyncpg.Record, answer: SendResult | ProviderError, latency: float, provider: str,
                 now: datetime) -> SendOutcome:
        attempt = row["attempts"] + 1
        if isinstance(answer, SendResult):
            return SendOutcome(row, "sent", attempt, answer.provider, answer.status, answer.message_id, "",
                               latency)
        give_up = not answer.retryable or now - row["created_at"] >= self.policy.max_age
        delay = backoff(attempt, self.policy, row["id"])
        if answer.retry_after_s:
            delay = max(delay, timedelta(seconds=answer.retry_after_s))
        outcome = "failed" if give_up else "retrying"
        log.warning("notification %s %s", outcome, kv(id=row["id"], attempt=attempt, error=str(answer)[:120],
                                                       retry_in_s=int(delay.total_seconds())))
        return SendOutcome(row, outcome, attempt, provider, answer.status, "", str(answer), latency,
                           now + delay)

    # --- after sending: outcomes written as they arrive, many per transaction ------------------

    async def _writer(self, results: asyncio.Queue[SendOutcome | None], now: datetime) -> None:
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
                    log.warning("outbox result write failed; retrying %s",
                                kv(rows=len(outs), error=repr(exc)[:200]))
                    if attempt == 7:
                        log.error("outbox results not written; rows stay 'sending' until restart %s",
                                  kv(ids=",".join(o.row["id"] for o in outs)[:500]))
                        break
                    await asyncio.sleep(min(0.1 * 2 ** attempt, 2.0))
            for o in outs:
                if o.outcome != "crashed":
                    metrics.NOTIFICATIONS.labels(o.row["channel"], o.outcome).inc()
                    metrics.PROVIDER_OUTCOMES.labels(o.row["channel"], o.provider, o.outcome).inc()
                    metrics.alarm_sent(o.row, o.outcome, o.answered_at)

    async def _record(self, outs: Sequence[SendOutcome], now: datetime) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await store.record_outcomes(conn, outs, now)
            notes = self._duty_notes(outs, now)
            if notes:
                await enqueue(conn, notes, now=now)

    def _duty_notes(self, outs: Sequence[SendOutcome], now: datetime) -> list[NewNotification]:
        """The duty operator's SMS for each row found undeliverable (not about its own rows)."""
        from alerting.reach import DUTY_TEMPLATE, duty_note  # reach builds on this module

        if self.duty is None:
            return []
        notes = []
        for o in outs:
            r = o.row
            if (o.outcome != UNDELIVERABLE or r["template"] == DUTY_TEMPLATE
                    or r["recipient_role"] == "duty_operator"):
                continue
            who = Recipient(role=r["recipient_role"], name=r["recipient_name"], unit=r["recipient_unit"],
                            phone=r["recipient_phone"], rule=r["rule"])
            params = json.loads(r["params"]) if isinstance(r["params"], str) else dict(r["params"])
            about = str(params.get("unit") or params.get("site") or "")
            notes.append(duty_note(self.duty, who, o.error, alert_id=r["alert_id"], about=about, key=r["id"],
                                   now=now, group_key=r["group_key"] or "", notice_id=r["notice_id"]))
        return notes
