"""The alerting service: events topic → alerts → route → group → inhibit/silence → outbox → notifiers,
plus the escalation timers (四单).

Two loops share one PostgreSQL pool and one clock:

* **consume** (:meth:`AlertingService.poll_once`): a batch of :class:`~hazmon.contracts.Event`
  from Kafka; each becomes (or updates) its alert — alert id = event id, so a replay changes
  nothing — and joins its aggregation group; offsets are committed after the database write
  (at-least-once; an undecodable record goes to the dead-letter topic);
* **tick** (:meth:`AlertingService.tick`): flush the groups that are due (silences and
  inhibition decided at flush time), issue the escalation notices that fell due (also those
  that fell due while the service was down: the timers are columns of ``alerts``), and send
  what is due in the outbox.

Latency (:meth:`AlertingService.run`): the tick's work runs as two loops, *timers* (flush +
escalate) and *sender* (outbox), each woken at once by an :class:`asyncio.Event` — timers when
a stored event made a group due (a ``group_wait: 0s`` route flushes immediately), sender when a
flush or a notice queued rows — and otherwise every ``tick_s`` (restart-safe: every timer is a
column, the tick only finds what is due). The consumer asks the broker to hold a fetch at most
``fetch_max_wait_ms`` (25 ms, not aiokafka's 500 ms), so an event is handled as soon as it lands.

All decisions are the pure functions of :mod:`alerting.route`, :mod:`alerting.group`,
:mod:`alerting.inhibit`, :mod:`alerting.silence`, :mod:`alerting.escalation` and
:mod:`alerting.matrix`; this module does the I/O around them. ``clock.now()`` is the only
time source, so tests drive the timers with a :class:`~alerting.clock.ManualClock`.

An alert's own group (``alerts.group_key``, its escalation ladder) is that of the first route
it reaches; with ``continue: true`` it is also in the group of every later route it reaches
(created when it is stored, its members found by :meth:`AlertingService._later_members`), whose
receiver is told as that route says.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from alerting import metrics
from alerting.clock import Clock, SystemClock
from alerting.escalation import EscalationState, KeyPeriod, decide, first_due_at, timer_factor
from alerting.group import FlushPlan, GroupMember, GroupState, plan_flush
from alerting.inhibit import Candidate, inhibitor, site_local
from alerting.matrix import Responsibility, registry_warnings, resolve
from alerting.notify.sms import Notifier
from alerting.outbox import NewNotification, OutboxPolicy, OutboxSender, enqueue, notification_id
from alerting.route import AlertingConfig, Receiver, Route, group_key, group_labels
from alerting.silence import Silence, active_silences, silencing
from alerting.store import AlertRecord, Placement, record_events
from alerting.templates import ack_link, format_when, render, what_happened, what_to_do
from hazmon.contracts import (
    DeadLetter,
    DeadLetterReason,
    Event,
    NoticeLevel,
    NotificationRequest,
    Recipient,
    Severity,
)
from hazmon.logs import kv
from hazmon.pgerrors import classify, refusal_detail
from hazmon.registry import Registry, load_registry
from hazmon.topics import Topics

__all__ = ["AlertingService", "TickReport", "alert_labels"]

log = logging.getLogger(__name__)

#: a resolved alert pulls its group's next flush forward (never pushes it back)
_PULL_FLUSH = "DO UPDATE SET next_flush_at = LEAST(alert_groups.next_flush_at, EXCLUDED.next_flush_at)"

_SEP = "\x1f"  # joins id lists sent as one text per row (ids never hold a control character)
_UNMET = {"acknowledged": "未确认", "handling": "未处置", "closed": "未办结"}


def alert_labels(event: Event, registry: Registry) -> dict[str, str]:
    """The routing labels of an event (see :mod:`alerting.route` for the list)."""
    dev = registry.devices.get(event.device_id)
    site = registry.sites.get(event.site_id)
    labels = {str(k): str(v) for k, v in event.labels.items()}
    labels.update({
        "domain": event.domain,
        "severity": event.severity.value,
        "kind": event.kind,
        "device_id": event.device_id,
        "site_id": event.site_id,
        "component": event.component,
        "zone": event.zone,
        "panel": (dev.parent_id if dev and dev.parent_id else event.device_id),
        "hub": "true" if event.device_id in registry.children else "false",
        "township_id": site.township_id if site else "",
        "village_id": (site.village_id or "") if site else "",
        "industry": site.industry if site else "",
        "critical": "true" if site and site.critical else "false",
    })
    return labels


def _first_error(exc: BaseException) -> str:
    """A decoding error in one line: pydantic's first error with its field, else the exception."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            errs = errors()
            if errs:
                loc = ".".join(str(p) for p in errs[0].get("loc", ()))
                return f"{loc}: {errs[0].get('msg', '')} ({len(errs)} error(s))"
    return f"{type(exc).__name__}: {exc}"


def _group_message_choice(
    plan: FlushPlan, alerts: Sequence[AlertRecord], now: datetime
) -> tuple[AlertRecord, str, str, int]:
    """What a group's notification is about: its lead alert, template, dedup key and count.

    A repeat carries the flush time in its key, so each repeat interval sends anew while a
    replay of the same flush stays one message."""
    by_id = {a.id: a for a in alerts}
    if plan.reason == "new":
        return by_id[plan.new_firing[0]], "alarm", "alarm", len(plan.new_firing)
    if plan.reason == "repeat":
        return by_id[plan.firing[0]], "alarm_repeat", f"alarm_repeat@{now.isoformat()}", len(plan.firing)
    return by_id[plan.resolved[0]], "resolved", "resolved", len(plan.resolved)


@dataclass
class TickReport:
    flushed: int = 0
    notified: int = 0
    escalated: int = 0
    sent: int = 0
    notes: list[str] = field(default_factory=list)


class AlertingService:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        config: AlertingConfig,
        notifiers: Mapping[str, Notifier],
        clock: Clock | None = None,
        topics: Topics | None = None,
        bootstrap: str | None = None,
        group_id: str = "hazmon-alerting",
        sign_name: str = "区应急指挥中心",
        ack_base_url: str = "",
        outbox_policy: OutboxPolicy | None = None,
        registry_refresh_s: float = 60.0,
        concurrency: int = 4,
        fetch_max_wait_ms: int = 25,
        slow_pass_s: float = 0.5,
    ) -> None:
        self.pool, self.config, self.clock = pool, config, clock or SystemClock()
        self.topics, self.bootstrap, self.group_id = topics, bootstrap, group_id
        self.sign_name, self.ack_base_url = sign_name, ack_base_url.rstrip("/")
        self.outbox = OutboxSender(pool, notifiers, outbox_policy)
        self.registry = Registry()
        self.key_periods: tuple[KeyPeriod, ...] = config.key_periods
        self.warnings: list[str] = list(config.warnings)
        self.registry_refresh_s = registry_refresh_s
        self.concurrency = concurrency
        self.fetch_max_wait_ms = fetch_max_wait_ms
        #: a loop pass taking this long is logged (with what it did); all are in PASS_SECONDS
        self.slow_pass_s = slow_pass_s
        #: set when a stored event made a group due / when rows were queued in the outbox
        self.flush_wake = asyncio.Event()
        self.send_wake = asyncio.Event()
        self._consumer: Any = None
        self._producer: Any = None
        self._routes: dict[str, Route] = {r.id: r for r in config.route.walk()}

    # --- start / stop / reload --------------------------------------------------------------

    async def start(self) -> None:
        """Load the registry and key periods, report configuration warnings, put rows a crash
        left ``sending`` back to ``pending``, and join the consumer group (when Kafka is set)."""
        await self.reload()
        await self.outbox.recover(self.clock.now())
        for w in self.warnings:
            log.warning("alerting configuration %s", kv(problem=w))
        if self.topics is not None and self.bootstrap:
            from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

            self._consumer = AIOKafkaConsumer(
                self.topics.events, bootstrap_servers=self.bootstrap, group_id=self.group_id,
                enable_auto_commit=False, auto_offset_reset="earliest", client_id="hazmon-alerting",
                fetch_max_wait_ms=self.fetch_max_wait_ms,
            )
            await self._consumer.start()
            self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, client_id="hazmon-alerting-dlq")
            await self._producer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    async def reload(self) -> None:
        """Re-read the registry (责任矩阵 changes at runtime) and the key-period calendar."""
        async with self.pool.acquire() as conn:
            self.registry = await load_registry(conn)
            for p in self.config.key_periods:
                await conn.execute(
                    """INSERT INTO key_periods (id, name, kind, starts_at, ends_at, timer_factor, domains, township_ids,
                           created_by) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'config')
                       ON CONFLICT (id) DO UPDATE SET name=EXCLUDED.name, starts_at=EXCLUDED.starts_at,
                           ends_at=EXCLUDED.ends_at, timer_factor=EXCLUDED.timer_factor, domains=EXCLUDED.domains,
                           township_ids=EXCLUDED.township_ids WHERE key_periods.created_by='config'""",
                    p.id, p.name, p.kind if p.kind in ("holiday", "meeting", "flood", "heat", "freezing", "resumption",
                                                       "weather") else "other",
                    p.starts_at, p.ends_at, p.timer_factor, list(p.domains), list(p.township_ids))
            rows = await conn.fetch("SELECT * FROM key_periods ORDER BY starts_at")
        self.key_periods = tuple(
            KeyPeriod(r["id"], r["name"], r["starts_at"], r["ends_at"], r["timer_factor"], r["kind"],
                      tuple(r["domains"]), tuple(r["township_ids"])) for r in rows)
        self.warnings = list(self.config.warnings) + registry_warnings(self.registry) + self._route_warnings()

    def _route_warnings(self) -> list[str]:
        """Routes naming a domain, site or township the registry does not have match nothing."""
        known = {"domain": set(self.registry.domains), "site_id": set(self.registry.sites),
                 "township_id": set(self.registry.townships)}
        out = []
        for r in self.config.route.walk():
            for m in r.matchers:
                if m.op == "=" and m.name in known and known[m.name] and m.value not in known[m.name]:
                    out.append(f"{self.config.file}: route {r.id!r}: {m} names no {m.name} in the registry "
                               "(the route matches nothing)")
        return out

    # --- consume ----------------------------------------------------------------------------

    async def poll_once(self, timeout_ms: int = 500, max_records: int = 500) -> int:
        """Consume one batch from the events topic, store it, then commit. Returns records seen."""
        if self._consumer is None:
            raise RuntimeError("service started without Kafka")
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        t0 = time.perf_counter()  # the pass is the handling, not the wait for records
        n = 0
        events: list[Event] = []
        sources: list[tuple[str, bytes]] = []
        try:
            for tp, records in batches.items():
                for rec in records:
                    n += 1
                    source = f"{tp.topic}:{tp.partition}:{rec.offset}"
                    try:
                        events.append(Event.model_validate_json(rec.value or b""))
                        sources.append((source, rec.value or b""))
                    except (ValueError, OverflowError, RecursionError) as exc:  # ValidationError is a ValueError
                        metrics.EVENTS.labels("bad").inc()
                        await self._dead_letter(source, rec.value or b"", _first_error(exc))
            if events:
                await self.handle_events(events, sources)
        except BaseException:
            # not stored (the database is down, the dead-letter topic unreachable…): fetch the
            # batch again on the next pass; nothing is committed past it
            for tp, records in batches.items():
                if records:
                    with contextlib.suppress(Exception):
                        self._consumer.seek(tp, records[0].offset)
            raise
        if n:
            await self._consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items() if records})
            self._timed("consume", time.perf_counter() - t0, records=n)
        return n

    def _timed(self, loop: str, seconds: float, **what: object) -> None:
        """One pass of an alerting loop: into ``hazmon_alerting_pass_seconds``, logged when slow."""
        metrics.PASS_SECONDS.labels(loop).observe(seconds)
        if seconds >= self.slow_pass_s:
            log.warning("slow alerting pass %s", kv(loop=loop, seconds=round(seconds, 3), **what))

    async def _dead_letter(self, source: str, raw: bytes, detail: str,
                           reason: DeadLetterReason = DeadLetterReason.SCHEMA, device_id: str = "") -> None:
        log.warning("event dead-lettered %s", kv(source=source, reason=reason.value, detail=detail[:200]))
        if self._producer is None or self.topics is None:
            return
        # the id is the record's: a batch fetched again after a crash dead-letters it once
        dl = DeadLetter(id=hashlib.sha256(f"alerting|{source}|{reason.value}".encode()).hexdigest()[:32],
                        stage="alerting", source=source, device_id=device_id[:64], reason=reason,
                        detail=detail[:2000], raw=raw[:65536], received_at=self.clock.now())
        await self._producer.send_and_wait(self.topics.deadletter, dl.model_dump_json().encode(), key=b"alerting")

    async def handle_events(self, events: Sequence[Event], sources: Sequence[tuple[str, bytes]] | None = None
                            ) -> list[str]:
        """Store events as alerts and put them in their groups; returns what each did
        (``new``/``resolved``/``replay``, ``refused``). A batch is one transaction of a few
        statements (:func:`~alerting.lifecycle.record_events`); records repeating an alert id go
        in later rounds, so the records of one alert are applied in order.

        Poison-proof (issue 17): an event the database refuses for a data reason
        (:func:`hazmon.pgerrors.classify`) is isolated by bisecting its round; the others are
        stored and it goes to the dead-letter topic with the SQLSTATE and PostgreSQL's message
        (``sources``: each event's ``topic:partition:offset`` and raw bytes). Any other error is
        raised: nothing of the batch is committed, the caller fetches it again."""
        now = self.clock.now()
        refused: dict[int, BaseException] = {}
        placed: list[Any] = []
        for i, ev in enumerate(events):
            try:
                placed.append(self._place(ev))
            except Exception as exc:  # noqa: BLE001 - a bug in routing must not drop the batch
                log.exception("routing failed %s", kv(alert=ev.id))
                placed.append(None)
                refused[i] = exc
        rounds: list[list[int]] = []
        seen_in: dict[str, int] = {}
        for i, ev in enumerate(events):
            if i in refused:
                continue
            k = seen_in.get(ev.id, -1) + 1
            seen_in[ev.id] = k
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(i)
        out = [""] * len(events)
        for idx in rounds:
            stored = await self._store_isolating(idx, placed, now, refused)
            for i, (_alert, what) in stored:
                out[i] = what
                metrics.EVENTS.labels(what).inc()
                ev = events[i]
                resp = placed[i][2]
                if what == "new" and not resp.recipients:
                    log.warning("nobody configured for alarm, duty operator takes it %s",
                                kv(alert=ev.id, site=ev.site_id, domain=ev.domain, why="; ".join(resp.warnings)[:300]))
            if any(what != "replay" for _i, (_a, what) in stored):
                self.flush_wake.set()  # their groups may be due now (group_wait 0s, or resolved alerts)
        for i, why in sorted(refused.items()):
            out[i] = "refused"
            metrics.EVENTS.labels("bad").inc()
            source, raw = sources[i] if sources is not None else (f"events:{events[i].id}", events[i].model_dump_json().encode())
            reason = DeadLetterReason.REFUSED if classify(why) == "data" else DeadLetterReason.INTERNAL
            await self._dead_letter(source, raw, refusal_detail(why) if reason is DeadLetterReason.REFUSED
                                    else f"{type(why).__name__}: {why}", reason, device_id=events[i].device_id)
        return out

    async def _store_isolating(self, idx: list[int], placed: Sequence[Any], now: datetime,
                               refused: dict[int, BaseException]) -> list[tuple[int, tuple[AlertRecord, str]]]:
        """:meth:`_store_round`; when the database refuses the round for a data reason, its
        halves, down to the one event it refuses (added to ``refused``)."""
        try:
            return list(zip(idx, await self._store_round(idx, placed, now), strict=True))
        except Exception as exc:
            if classify(exc) != "data":
                raise
            if len(idx) == 1:
                log.error("event refused by the database %s", kv(detail=refusal_detail(exc)[:300]))
                refused[idx[0]] = exc
                return []
        mid = len(idx) // 2
        return (await self._store_isolating(idx[:mid], placed, now, refused)
                + await self._store_isolating(idx[mid:], placed, now, refused))

    async def _store_round(self, idx: list[int], placed: Sequence[Any], now: datetime) -> list[tuple[AlertRecord, str]]:
        """One transaction: the round's alerts (:func:`record_events`) and their groups."""
        for attempt in range(3):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    results = await record_events(conn, [placed[i][0] for i in idx], now=now)
                    groups = []
                    resolved_groups = []
                    for i, (alert, what) in zip(idx, results, strict=True):
                        pl, route, _resp = placed[i]
                        if what == "new":
                            groups.append((pl.group_key, route.id, json.dumps(
                                {n: pl.labels.get(n, "") for n in route.group_by}, ensure_ascii=False),
                                now + route.group_wait))
                            for r2, k2 in self.config.later_groups(pl.labels):  # continue: true
                                groups.append((k2, r2.id, json.dumps(group_labels(r2, pl.labels), ensure_ascii=False),
                                               now + r2.group_wait))
                        elif what == "resolved":
                            # 恢复 is told within group_wait, not at the next group_interval (up to
                            # 5 min later): the group's flush is pulled forward; a group dropped
                            # meanwhile is recreated so send_resolved receivers still hear it
                            resolved_groups.append((alert.group_key or pl.group_key, alert.route_id or route.id,
                                                    "{}", now + route.group_wait))
                            for r2, k2 in self.config.later_groups(alert.labels):  # continue: true
                                resolved_groups.append((k2, r2.id, json.dumps(group_labels(r2, alert.labels),
                                                                              ensure_ascii=False), now + r2.group_wait))
                    for rows, on_conflict in ((groups, "DO NOTHING"), (resolved_groups, _PULL_FLUSH)):
                        # one row per group: two alerts of a group resolved in one round would make
                        # ON CONFLICT DO UPDATE touch the row twice (CardinalityViolationError)
                        rows = list({g[0]: g for g in rows}.values())
                        if not rows:
                            continue
                        await conn.execute(
                            """INSERT INTO alert_groups (key, route_id, labels, created_at, next_flush_at)
                               SELECT u.key, u.route_id, u.labels::jsonb, $1, u.due
                                 FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[])
                                      AS u(key, route_id, labels, due)
                               ON CONFLICT (key) """ + on_conflict,
                            now, [g[0] for g in rows], [g[1] for g in rows], [g[2] for g in rows],
                            [g[3] for g in rows])
                return results
            except asyncpg.UniqueViolationError:  # a 回复码 drawn at once by another writer: draw again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _place(self, ev: Event) -> tuple[Placement, Route, Responsibility]:
        """Routing of one event (pure: registry, routes and key periods in memory)."""
        labels = alert_labels(ev, self.registry)
        resp = resolve(self.registry, site_id=ev.site_id, domain=ev.domain)
        route = self.config.routes_for(labels)[0]
        factor = timer_factor(self.key_periods, ev.starts_at, ev.domain, resp.township_id)
        due = first_due_at(self.config.policy(ev.severity), ev.starts_at, factor)
        return (Placement(ev, resp.township_id, tuple(resp.department_ids), labels, route.id, group_key(route, labels),
                          factor, due), route, resp)

    # --- tick -------------------------------------------------------------------------------

    async def tick(self) -> TickReport:
        """One pass of the timers at ``clock.now()``: flush due groups, escalate, send."""
        now = self.clock.now()
        rep = TickReport()
        await self.flush_and_escalate(now, rep)
        await self.send_due(now, rep)
        return rep

    async def flush_and_escalate(self, now: datetime, rep: TickReport) -> None:
        """Flush the groups due at ``now`` and issue the escalation notices due; each that
        queued rows wakes the sender (``send_wake``) as soon as its transaction committed."""
        async with self.pool.acquire() as conn:
            silences = await active_silences(conn, now)
        sem = asyncio.Semaphore(self.concurrency)

        async def flush(key: str) -> None:
            async with sem:
                try:
                    queued = await self._flush(key, now, silences)
                    rep.notified += queued
                    rep.flushed += 1
                    if queued:
                        self.send_wake.set()
                except Exception:
                    metrics.ERRORS.labels("flush").inc()
                    log.exception("group flush failed %s", kv(group=key))

        async def escalate(alert_id: str) -> None:
            async with sem:
                try:
                    issued = await self._escalate(alert_id, now)
                    rep.escalated += issued
                    if issued:
                        self.send_wake.set()
                except Exception:
                    metrics.ERRORS.labels("escalate").inc()
                    log.exception("escalation failed %s", kv(alert=alert_id))

        seen: set[str] = set()
        for _ in range(50):  # drain everything due, in bounded batches: one transaction per batch
            try:
                keys, queued = await self._flush_batch(now, silences, seen)
            except Exception:
                metrics.ERRORS.labels("flush").inc()
                log.exception("batch flush failed; flushing the due groups one by one")
                break
            if not keys:
                break
            seen.update(keys)
            rep.flushed += len(keys)
            rep.notified += queued
            if queued:
                self.send_wake.set()
        for _ in range(50):  # what the batch could not take (or a batch that failed), group by group
            keys = [r["key"] for r in await self.pool.fetch(
                "SELECT key FROM alert_groups WHERE next_flush_at <= $1 ORDER BY next_flush_at LIMIT 500", now)
                if r["key"] not in seen]
            if not keys:
                break
            seen.update(keys)
            await asyncio.gather(*(flush(k) for k in keys))
        seen.clear()
        for _ in range(50):
            ids = [r["id"] for r in await self.pool.fetch(
                """SELECT id FROM alerts WHERE next_escalation_at <= $1 AND phase <> 'closed' AND suppressed_by = ''
                   ORDER BY next_escalation_at LIMIT 500""", now) if r["id"] not in seen]
            if not ids:
                break
            seen.update(ids)
            await asyncio.gather(*(escalate(i) for i in ids))

    async def send_due(self, now: datetime, rep: TickReport) -> None:
        """Send what is due in the outbox at ``now``, batch after batch until a short one."""
        while True:
            n = await self.outbox.run_once(now)
            rep.sent += n
            if n < self.outbox.policy.batch:
                break

    async def run(self, stop: asyncio.Event, *, tick_s: float = 1.0) -> None:
        """Consume, run the timers and send until ``stop`` is set (the CLI's ``hazmon alerting``).

        Four loops: consume; timers (flush + escalate), woken by ``flush_wake`` or every
        ``tick_s``; sender (outbox), woken by ``send_wake`` or every ``tick_s`` (retries and
        rate-limited rows fall due with time alone); reload (registry, every
        ``registry_refresh_s``, apart so it never holds up a flush). An event set while its
        loop is busy makes the loop go round again at once, so nothing waits for a tick it does
        not need. Each pass's duration is in ``hazmon_alerting_pass_seconds``; a pass slower than
        ``slow_pass_s`` is logged with what it did."""
        async def nap(wake: asyncio.Event, at_most_s: float = tick_s) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=at_most_s)

        async def consume() -> None:
            while not stop.is_set():
                try:
                    await self.poll_once(timeout_ms=500)
                except Exception:
                    metrics.ERRORS.labels("consume").inc()
                    log.exception("consume failed; retrying")
                    await asyncio.sleep(1.0)

        async def woken(name: str, wake: asyncio.Event, work: Any, error: str, failed: str) -> None:
            """Run ``work`` (a pass filling a TickReport) whenever ``wake`` is set, or every tick."""
            while not stop.is_set():
                wake.clear()
                t0 = time.perf_counter()
                rep = TickReport()
                try:
                    await work(self.clock.now(), rep)
                    self._timed(name, time.perf_counter() - t0, flushed=rep.flushed, escalated=rep.escalated,
                                queued=rep.notified, claimed=rep.sent)
                except Exception:
                    metrics.ERRORS.labels(error).inc()
                    log.exception(failed)
                await nap(wake)

        async def reloader() -> None:
            # its own loop: re-reading the registry (10k devices: ~0.1 s) never delays a flush
            while not stop.is_set():
                await nap(stop, self.registry_refresh_s)
                if stop.is_set():
                    break
                t0 = time.perf_counter()
                try:
                    await self.reload()
                    self._timed("reload", time.perf_counter() - t0, devices=len(self.registry.devices))
                except Exception:
                    metrics.ERRORS.labels("reload").inc()
                    log.exception("registry reload failed; keeping the previous one")

        async def on_stop() -> None:
            await stop.wait()
            self.flush_wake.set()
            self.send_wake.set()

        background = [asyncio.create_task(on_stop()), asyncio.create_task(reloader())]
        if self._consumer is not None:
            background.append(asyncio.create_task(consume()))
        try:
            await asyncio.gather(woken("timers", self.flush_wake, self.flush_and_escalate, "tick", "tick failed"),
                                 woken("sender", self.send_wake, self.send_due, "send", "outbox pass failed"))
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # --- flush ------------------------------------------------------------------------------

    async def _suppression(self, conn: asyncpg.Connection, alert: AlertRecord, silences: Sequence[Silence],
                           site_firing: Sequence[Candidate], now: datetime) -> str:
        if alert.state != "firing":
            return alert.suppressed_by  # a resolved alert keeps what muted it (KPIs exclude it)
        s = silencing(alert.labels, silences, now)
        if s is not None:
            return f"silence:{s.id}"
        hit = inhibitor(alert.id, alert.labels, site_firing, self.config.inhibit_rules)
        if hit is not None:
            return f"inhibit:{hit[0]}:{hit[1]}"
        return ""

    async def _later_members(self, conn: asyncpg.Connection, groups: Sequence[asyncpg.Record]
                             ) -> dict[str, list[AlertRecord]]:
        """Members of ``groups`` that are there as a later route after a ``continue: true`` one
        (their own ``group_key`` is their first route's group): looked up by the group's labels,
        confirmed by routing them again. Nothing to do (no query) without ``continue: true``."""
        out: dict[str, list[AlertRecord]] = {}
        later = self.config.later_route_ids() if self.config.has_continue else frozenset()
        for g in groups:
            if g["route_id"] not in later:
                continue
            labels = json.loads(g["labels"]) if isinstance(g["labels"], str) else g["labels"]
            rows = await conn.fetch(
                """SELECT * FROM alerts WHERE group_key <> $1 AND labels @> $2::jsonb
                     AND (state='firing' OR id = ANY($3::text[])) ORDER BY starts_at, id""",
                g["key"], json.dumps({n: v for n, v in (labels or {}).items() if v}, ensure_ascii=False),
                list(g["notified_ids"]))
            for r in rows:
                a = AlertRecord.from_row(r)
                if any(k == g["key"] for _r, k in self.config.later_groups(a.labels)):
                    out.setdefault(g["key"], []).append(a)
        return out

    async def _flush_batch(self, now: datetime, silences: Sequence[Silence], done: Collection[str] = (),
                           limit: int = 25) -> tuple[list[str], int]:
        """Flush every due group (up to ``limit``) in one transaction, a fixed handful of round
        trips whatever their number — under a storm, per-group transactions of ~10 round trips
        each were most of the time to the first SMS. Same decisions as :meth:`_flush` (which
        stays as the fallback when a batch fails, so one bad group cannot hold up the others).
        Returns (keys flushed, rows queued)."""
        async with self.pool.acquire() as conn, conn.transaction():
            groups = await conn.fetch(
                """SELECT * FROM alert_groups WHERE next_flush_at <= $1 AND NOT (key = ANY($3::text[]))
                   ORDER BY next_flush_at, key LIMIT $2 FOR UPDATE SKIP LOCKED""", now, limit, list(done))
            if not groups:
                return [], 0
            keys = [g["key"] for g in groups]
            members_of: dict[str, list[AlertRecord]] = {k: [] for k in keys}
            for r in await conn.fetch("SELECT * FROM alerts WHERE group_key = ANY($1::text[]) ORDER BY starts_at, id",
                                      keys):
                members_of[r["group_key"]].append(AlertRecord.from_row(r))
            for k, extra in (await self._later_members(conn, groups)).items():
                members_of[k] = sorted(members_of[k] + extra, key=lambda a: (a.starts_at, a.id))
            sites = sorted({a.site_id for alerts in members_of.values() for a in alerts})
            firing_by_site: dict[str, list[Candidate]] = {}
            local = site_local(self.config.inhibit_rules)  # else a rule's equal spans sites (township_id)
            for r in await conn.fetch(
                    "SELECT id, site_id, labels FROM alerts WHERE state='firing' AND ($2 OR site_id = ANY($1::text[]))",
                    sites, not local):
                firing_by_site.setdefault(r["site_id"], []).append(
                    Candidate(r["id"], json.loads(r["labels"]) if isinstance(r["labels"], str) else r["labels"]))
            sup_rows: list[tuple[str, str]] = []
            sup_audit: list[tuple[Any, ...]] = []
            items: list[NewNotification] = []
            messages: list[tuple[AlertRecord, str, int, list[NewNotification], list[Recipient]]] = []
            told: list[str] = []
            drop: list[str] = []
            keep: list[tuple[Any, ...]] = []
            for g in groups:
                key = g["key"]
                alerts = members_of[key]
                candidates = [c for site in ({a.site_id for a in alerts} if local else firing_by_site)
                              for c in firing_by_site.get(site, [])]
                members = []
                for a in alerts:
                    sup = await self._suppression(conn, a, silences, candidates, now)
                    if sup != a.suppressed_by:
                        sup_rows.append((a.id, sup))
                        sup_audit.append((a.id, "suppress" if sup else "unsuppress", a.phase.value, now,
                                          sup or a.suppressed_by, a.version))
                        if sup:
                            metrics.SUPPRESSED.labels(sup.split(":", 1)[0]).inc()
                    members.append(GroupMember(a.id, a.state == "firing", bool(sup), a.starts_at))
                plan, receiver = self._plan(g, members, now)
                if plan.notify:
                    lead, template, tkey, count = _group_message_choice(plan, alerts, now)
                    its, recipients = self._group_message(lead, count, template, tkey, receiver, key, now)
                    items.extend(its)
                    messages.append((lead, template, count, its, recipients))
                    told.extend(plan.new_firing)
                if plan.next_flush_at is None:
                    drop.append(key)
                else:
                    keep.append((key, plan.next_flush_at, plan.notify, sorted(plan.notified_ids),
                                 sorted(plan.resolved_ids)))
            if sup_rows:
                await conn.execute(
                    """UPDATE alerts a SET suppressed_by=u.sup, updated_at=$1
                       FROM unnest($2::text[], $3::text[]) AS u(id, sup) WHERE a.id=u.id""",
                    now, [i for i, _ in sup_rows], [x for _, x in sup_rows])
                await conn.executemany(
                    """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, actor, at, reason, version)
                       VALUES ($1,$2,$3,$3,'system',$4,$5,$6)""", sup_audit)
            inserted = set(await enqueue(conn, items, now=now))
            audit = []
            for lead, template, count, its, recipients in messages:
                mine = [it.request.id for it in its if it.request.id in inserted]
                if mine:
                    audit.append(self._notify_transition(lead, template, count, mine, recipients, now))
            if audit:
                await conn.executemany(self._NOTIFY_SQL, audit)
            if told:
                await conn.execute("UPDATE alerts SET notified_at=$2 WHERE id = ANY($1::text[]) AND notified_at IS NULL",
                                   told, now)
            if drop:
                await conn.execute("DELETE FROM alert_groups WHERE key = ANY($1::text[])", drop)
            if keep:
                await conn.execute(
                    """UPDATE alert_groups g SET next_flush_at=u.next_at, last_flush_at=$1, flushes=g.flushes+1,
                           last_notify_at=CASE WHEN u.notify THEN $1 ELSE g.last_notify_at END,
                           notified_ids=string_to_array(u.notified, $7), resolved_ids=string_to_array(u.resolved, $7)
                       FROM unnest($2::text[], $3::timestamptz[], $4::bool[], $5::text[], $6::text[])
                            AS u(key, next_at, notify, notified, resolved)
                       WHERE g.key=u.key""",
                    now, [k[0] for k in keep], [k[1] for k in keep], [k[2] for k in keep],
                    [_SEP.join(k[3]) for k in keep], [_SEP.join(k[4]) for k in keep], _SEP)
            return keys, len(inserted)

    def _plan(self, g: asyncpg.Record, members: Sequence[GroupMember], now: datetime) -> tuple[FlushPlan, Receiver]:
        """What a flush of the ``alert_groups`` row ``g`` does, and its route's receiver."""
        state = GroupState(g["key"], g["route_id"], g["created_at"], g["next_flush_at"], g["last_flush_at"],
                           g["last_notify_at"], frozenset(g["notified_ids"]), frozenset(g["resolved_ids"]),
                           g["flushes"])
        route = self._routes.get(g["route_id"], self.config.route)
        receiver = self.config.receivers[route.receiver]
        return plan_flush(state, members, now=now, group_interval=route.group_interval,
                          repeat_interval=route.repeat_interval, send_resolved=receiver.send_resolved), receiver

    async def _flush(self, key: str, now: datetime, silences: Sequence[Silence]) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            g = await conn.fetchrow("SELECT * FROM alert_groups WHERE key=$1 AND next_flush_at <= $2 FOR UPDATE SKIP LOCKED",
                                    key, now)
            if g is None:
                return 0
            rows = await conn.fetch("SELECT * FROM alerts WHERE group_key=$1 ORDER BY starts_at, id", key)
            alerts = [AlertRecord.from_row(r) for r in rows]
            alerts = sorted(alerts + (await self._later_members(conn, [g])).get(key, []),
                            key=lambda a: (a.starts_at, a.id))
            sites = {a.site_id for a in alerts}
            firing_rows = await conn.fetch(
                "SELECT id, labels FROM alerts WHERE state='firing' AND ($2 OR site_id = ANY($1::text[]))", list(sites),
                not site_local(self.config.inhibit_rules))
            candidates = [Candidate(r["id"], json.loads(r["labels"]) if isinstance(r["labels"], str) else r["labels"])
                          for r in firing_rows]
            members = []
            for a in alerts:
                sup = await self._suppression(conn, a, silences, candidates, now)
                if sup != a.suppressed_by:
                    await conn.execute("UPDATE alerts SET suppressed_by=$2, updated_at=$3 WHERE id=$1", a.id, sup, now)
                    await conn.execute(
                        """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, actor, at, reason, version)
                           VALUES ($1,$2,$3,$3,'system',$4,$5,$6)""",
                        a.id, "suppress" if sup else "unsuppress", a.phase.value, now, sup or a.suppressed_by, a.version)
                    if sup:
                        metrics.SUPPRESSED.labels(sup.split(":", 1)[0]).inc()
                members.append(GroupMember(a.id, a.state == "firing", bool(sup), a.starts_at))
            plan, receiver = self._plan(g, members, now)
            queued = 0
            if plan.notify:
                lead, template, tkey, count = _group_message_choice(plan, alerts, now)
                queued = await self._notify_group(conn, lead, count, template, tkey, receiver, key, now)
                if plan.new_firing:
                    await conn.execute("UPDATE alerts SET notified_at=$2 WHERE id = ANY($1::text[]) AND notified_at IS NULL",
                                       list(plan.new_firing), now)
            if plan.next_flush_at is None:
                await conn.execute("DELETE FROM alert_groups WHERE key=$1", key)
            else:
                await conn.execute(
                    """UPDATE alert_groups SET next_flush_at=$2, last_flush_at=$3, flushes=flushes+1,
                           last_notify_at=CASE WHEN $4 THEN $3 ELSE last_notify_at END,
                           notified_ids=$5, resolved_ids=$6 WHERE key=$1""",
                    key, plan.next_flush_at, now, plan.notify, sorted(plan.notified_ids), sorted(plan.resolved_ids))
            return queued

    def _params(self, alert: AlertRecord, count: int) -> dict[str, str]:
        site = self.registry.sites.get(alert.site_id)
        dev = self.registry.devices.get(alert.device_id)
        device = (dev.model if dev and dev.model else alert.device_id)
        if alert.component:
            device += alert.component
        if count > 1:
            device += f"等{count}处"
        return {
            "site": site.name if site else alert.site_id,
            "device": device,
            "what": what_happened(alert.kind, alert.summary),
            "sev": Severity(alert.severity).zh,
            "when": format_when(alert.starts_at),
            "todo": what_to_do(alert.kind),
            "code": alert.ack_code,
            "link": ack_link(self.ack_base_url),  # per-recipient token put in by the outbox (alerting/acks.py)
        }

    def _group_message(self, lead: AlertRecord, count: int, template: str, tkey: str, receiver: Receiver, gkey: str,
                       now: datetime) -> tuple[list[NewNotification], list[Recipient]]:
        """The outbox rows of one group message (and who they go to)."""
        resp = resolve(self.registry, site_id=lead.site_id, domain=lead.domain)
        recipients = resp.for_roles(receiver.roles, duty_operator=self.config.duty_operator)
        params = self._params(lead, count)
        if template == "resolved":
            params["when"] = format_when(lead.ends_at or now)
        body, params = render(template, params, sign_name=self.sign_name, max_segments=self.config.sms_max_segments)
        priority = 1 if lead.severity == Severity.RED.value else 0
        items = self._items(lead.id, recipients, receiver.channels, 0, template, tkey, body, params, None, gkey,
                            priority, now, receiver.webhook_url)
        return items, list(recipients)

    @staticmethod
    def _notify_transition(lead: AlertRecord, template: str, count: int, inserted: Sequence[str],
                           recipients: Sequence[Recipient], now: datetime) -> tuple[Any, ...]:
        return (lead.id, lead.phase.value, now, template,
                json.dumps({"notifications": list(inserted), "count": count,
                            "recipients": [r.model_dump(mode="json") for r in recipients]}, ensure_ascii=False),
                lead.version)

    _NOTIFY_SQL = """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, actor, at, reason, detail,
                         version) VALUES ($1,'notify',$2,$2,'system',$3,$4,$5::jsonb,$6)"""

    async def _notify_group(self, conn: asyncpg.Connection, lead: AlertRecord, count: int, template: str, tkey: str,
                            receiver: Receiver, gkey: str, now: datetime) -> int:
        items, recipients = self._group_message(lead, count, template, tkey, receiver, gkey, now)
        inserted = await enqueue(conn, items, now=now)
        if inserted:
            await conn.execute(self._NOTIFY_SQL, *self._notify_transition(lead, template, count, inserted, recipients, now))
        return len(inserted)

    def _items(self, alert_id: str, recipients: Sequence[Recipient], channels: Sequence[str], step: int,
               template: str, tkey: str, body: str, params: Mapping[str, str], level: NoticeLevel | None, gkey: str,
               priority: int, now: datetime, webhook_url: str = "", notice_id: int | None = None) -> list[NewNotification]:
        items: list[NewNotification] = []
        for ch in channels:
            targets: Sequence[Recipient]
            if ch == "sms":
                targets = [r for r in recipients if r.phone]
            else:  # one console/webhook entry per message, addressed to the duty desk
                targets = [self.config.duty_operator.model_copy(update={"rule": ";".join(sorted({r.rule for r in recipients}))[:500] or self.config.duty_operator.rule})]
            for r in targets:
                req = NotificationRequest(
                    id=notification_id(alert_id, r, step, f"{ch}:{tkey}"), alert_id=alert_id, channel=ch,  # type: ignore[arg-type]
                    recipient=r, notice_level=level, template=template, body=body, created_at=now)
                items.append(NewNotification(req, params, gkey, notice_id, None, priority, webhook_url))
        return items

    # --- escalation -------------------------------------------------------------------------

    async def _escalate(self, alert_id: str, now: datetime) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM alerts WHERE id=$1 AND next_escalation_at <= $2 FOR UPDATE SKIP LOCKED", alert_id, now)
            if row is None:
                return 0
            a = AlertRecord.from_row(row)
            # one ladder per group: twenty detectors of one fire are one incident, escalated once
            # (by the group's first open alert; the others follow its timer)
            lead = await conn.fetchrow(
                """SELECT id, next_escalation_at FROM alerts WHERE group_key=$1 AND id<>$2 AND phase<>'closed'
                       AND suppressed_by='' AND (starts_at, id) < ($3, $2) ORDER BY starts_at, id LIMIT 1""",
                a.group_key, a.id, a.starts_at)
            if lead is not None and a.group_key:
                await conn.execute("UPDATE alerts SET next_escalation_at=$2 WHERE id=$1", a.id,
                                   max(lead["next_escalation_at"], now + timedelta(minutes=1))
                                   if lead["next_escalation_at"] else None)
                return 0
            policy = self.config.policy(a.severity)
            state = EscalationState(a.starts_at, a.phase, a.acknowledged, a.verdict, a.escalation_step, a.timer_factor)
            d = decide(state, policy, now)
            issued = 0
            for _idx, step, deadline in d.issue:
                resp: Responsibility = resolve(self.registry, site_id=a.site_id, domain=a.domain)
                recipients = resp.for_roles(step.roles, duty_operator=self.config.duty_operator)
                nid = await conn.fetchval(
                    """INSERT INTO notices (alert_id, level, step, issued_at, deadline, recipients, reason)
                       VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7) ON CONFLICT (alert_id, level) DO NOTHING RETURNING id""",
                    a.id, step.level.value, step.level.step, now, deadline,
                    json.dumps([r.model_dump(mode="json") for r in recipients], ensure_ascii=False),
                    f"{format_when(a.starts_at)}起{_UNMET[step.stop_when]}（{step.after * a.timer_factor}）")
                if nid is None:
                    continue  # already issued (a replayed timer)
                await conn.execute(
                    "UPDATE notices SET status='superseded' WHERE alert_id=$1 AND status='open' AND id<>$2", a.id, nid)
                open_in_group = await conn.fetchval(
                    "SELECT count(*) FROM alerts WHERE group_key=$1 AND phase<>'closed' AND state='firing'",
                    a.group_key) if a.group_key else 1
                params = self._params(a, max(int(open_in_group or 1), 1))
                params.update(level=step.level.zh, unmet=_UNMET[step.stop_when], deadline=format_when(deadline))
                body, params = render("notice", params, sign_name=self.sign_name,
                                      max_segments=self.config.sms_max_segments)
                items = self._items(a.id, recipients, ("sms", "console"), step.level.step, "notice",
                                    f"notice:{step.level.value}", body, params, step.level, a.group_key, 1, now,
                                    notice_id=nid)
                inserted = await enqueue(conn, items, now=now)
                await conn.execute(
                    """INSERT INTO alert_transitions (alert_id, action, from_phase, to_phase, actor, at, reason, detail, version)
                       VALUES ($1,'escalate',$2,$2,'system',$3,$4,$5::jsonb,$6)""",
                    a.id, a.phase.value, now, step.level.zh,
                    json.dumps({"level": step.level.value, "notice_id": nid, "deadline": deadline.isoformat(),
                                "notifications": inserted,
                                "recipients": [r.model_dump(mode="json") for r in recipients]}, ensure_ascii=False),
                    a.version)
                metrics.ESCALATIONS.labels(step.level.value).inc()
                log.info("escalated %s", kv(alert=a.id, level=step.level.value, recipients=len(recipients)))
                issued += 1
            await conn.execute(
                "UPDATE alerts SET escalation_step=$2, next_escalation_at=$3, updated_at=$4 WHERE id=$1",
                a.id, d.escalation_step, d.next_at, now)
            return issued

