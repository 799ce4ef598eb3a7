"""The alerting service: events topic → alerts → route → group → inhibit/silence → outbox → notifiers,
plus the escalation timers (四单).

Two loops share one PostgreSQL pool and one clock:

* **consume** (:meth:`AlertingService.poll_once`): a batch of :class:`~hazmon.contracts.Event`
  from Kafka; each becomes (or updates) its alert — alert id = event id, so a replay changes
  nothing — and joins its aggregation group (:mod:`alerting.intake`); offsets are committed
  after the database write (at-least-once; an undecodable record goes to the dead-letter topic);
* **tick** (:meth:`AlertingService.tick`): flush the groups that are due (:mod:`alerting.flush`: mute →
  plan → compose → enqueue → audit), issue the escalation notices that fell due (also those that fell
  due while the service was down: the timers are columns of ``alerts``), and send what is due.

Latency (:meth:`AlertingService.run`): the tick's work runs as two loops, *timers* (flush +
escalate) and *sender* (outbox), each woken at once by an :class:`asyncio.Event` — timers when
a stored event made a group due (a ``group_wait: 0s`` route flushes immediately), sender when a
flush or a notice queued rows — and otherwise every ``tick_s`` (restart-safe: every timer is a
column, the tick only finds what is due). The consumer asks the broker to hold a fetch at most
``fetch_max_wait_ms`` (25 ms, not aiokafka's 500 ms), so an event is handled as soon as it lands.

All decisions are the pure functions of :mod:`alerting.route`, ``.group``, ``.inhibit``, ``.silence``,
``.escalation``, ``.matrix`` and ``.compose``; the SQL is :mod:`alerting.store`'s; this module runs the
loops. ``clock.now()`` is the only time source, so tests drive the timers with a
:class:`~alerting.clock.ManualClock`. Its knobs are one :class:`AlertingOptions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from alerting import area_warning, canary, intake, kpi_snapshot, metrics, selfwatch, store, workorder_notify
from alerting.arrival import ArrivalPolicy, escalate_overdue
from alerting.clock import Clock, SystemClock
from alerting.compose import ComposeContext
from alerting.config import AlertingConfig, load_config
from alerting.escalation import KeyPeriod
from alerting.flush import flush_due
from alerting.followup import FollowUps
from alerting.hazard_overdue import notify_overdue_hazards
from alerting.late import LatePolicy
from alerting.matrix import registry_warnings
from alerting.notices import escalate_due, voice_escalate_due
from alerting.notify.sms import Notifier
from alerting.outbox import OutboxPolicy, OutboxSender
from alerting.report import send_report_reminders
from alerting.risk import periodic as grade_risk
from alerting.silence import active_silences
from hazmon.contracts import DeadLetterReason, Event
from hazmon.errors import ConfigError
from hazmon.logs import kv
from hazmon.pgerrors import classify, refusal_detail
from hazmon.registry import Registry, load_registry
from hazmon.topics import Topics

if TYPE_CHECKING:
    from hazmon.settings import Settings

__all__ = ["AlertingOptions", "AlertingService", "TickReport", "build"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertingOptions:
    """The service's knobs (:meth:`from_settings` reads them from :class:`~hazmon.settings.Settings`).

    Without ``topics``/``bootstrap`` the service does not consume (tests hand it events)."""

    topics: Topics | None = None
    bootstrap: str | None = None
    group_id: str = "hazmon-alerting"
    #: the SMS signature (【签名】), counted in each text's length
    sign_name: str = "区应急指挥中心"
    #: base of the acknowledgement short link put in texts ("" = no link)
    ack_base_url: str = ""
    #: the SMS provider (its template rules: alerting/templates/) and the centre's duty number
    sms_provider: str = "webhook"
    duty_phone: str = "0571-88001110"
    #: lift.emergency_phone (96333) and the 维保单位's 到场 limit (alerting/arrival.py)
    lift_phone: str = "96333"
    arrival: ArrivalPolicy = ArrivalPolicy()
    outbox_policy: OutboxPolicy | None = None
    registry_refresh_s: float = 60.0
    #: group flushes / escalations run at once (each a transaction on the pool)
    concurrency: int = 4
    fetch_max_wait_ms: int = 25
    #: a loop pass taking this long is logged (with what it did); all are in PASS_SECONDS
    slow_pass_s: float = 0.5
    #: when an alarm is late or its device clock wrong (alerting.late_after_s, late_max_age_s)
    late: LatePolicy = LatePolicy()

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertingOptions:
        a = settings.alerting
        return cls(topics=settings.kafka.topics, bootstrap=settings.kafka.bootstrap, group_id=a.group_id,
                   sign_name=settings.sms.sign_name, ack_base_url=settings.sms.ack_base_url,
                   sms_provider=settings.sms.provider, duty_phone=settings.sms.duty_phone,
                   lift_phone=settings.lift.emergency_phone,
                   arrival=ArrivalPolicy(timedelta(minutes=settings.lift.arrival_limit_min)),
                   outbox_policy=OutboxPolicy(per_phone_per_hour=settings.sms.per_phone_per_hour,
                                              sms_budget=settings.sms.budget, owner=a.instance),
                   registry_refresh_s=a.registry_refresh_s, concurrency=a.concurrency,
                   fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms, slow_pass_s=a.slow_pass_s,
                   late=LatePolicy(timedelta(seconds=a.late_after_s), timedelta(seconds=a.late_max_age_s),
                                   timedelta(seconds=settings.mqtt.clock_skew_s)))


@dataclass
class TickReport:
    flushed: int = 0
    notified: int = 0
    escalated: int = 0
    sent: int = 0
    notes: list[str] = field(default_factory=list)


class AlertingService:
    def __init__(self, *, pool: asyncpg.Pool, config: AlertingConfig, notifiers: Mapping[str, Notifier],
                 clock: Clock | None = None, options: AlertingOptions | None = None) -> None:
        self.pool, self.config, self.clock = pool, config, clock or SystemClock()
        self.options = opts = options or AlertingOptions()
        self.topics, self.bootstrap, self.group_id = opts.topics, opts.bootstrap, opts.group_id
        self.sign_name, self.ack_base_url = opts.sign_name, opts.ack_base_url.rstrip("/")
        self.outbox = OutboxSender(pool, notifiers, opts.outbox_policy, duty=config.duty_operator)
        self.registry = Registry()
        self.key_periods: tuple[KeyPeriod, ...] = config.key_periods
        self.warnings: list[str] = list(config.warnings)
        self.registry_refresh_s, self.concurrency = opts.registry_refresh_s, opts.concurrency
        self.fetch_max_wait_ms, self.slow_pass_s = opts.fetch_max_wait_ms, opts.slow_pass_s
        #: set when a stored event made a group due / when rows were queued in the outbox
        self.flush_wake, self.send_wake = asyncio.Event(), asyncio.Event()
        self.followups = FollowUps()  # the morning digest and outcome passes, due-checked
        self._consumer: Any = None
        self._producer: Any = None
        self._owned = False  # the pool and notifiers are build()'s (closed by aclose)

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
                fetch_max_wait_ms=self.fetch_max_wait_ms, session_timeout_ms=6000, heartbeat_interval_ms=1000,
            )  # a killed peer's partitions move after 6 s, not aiokafka's 10 s (tests/e2e/test_alerting_ha.py)
            await self._consumer.start()
            self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap,
                                              client_id="hazmon-alerting-dlq")
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

    async def aclose(self) -> None:
        """:meth:`stop`, then close the notifiers and the pool (a service made by :func:`build`
        owns them; one given a pool by its caller leaves both alone)."""
        await self.stop()
        if self._owned:
            for n in self.outbox.notifiers.values():
                if (close := getattr(n, "aclose", None)) is not None:
                    await close()
            await self.pool.close()

    async def reload(self) -> None:
        """Re-read the registry (责任矩阵 changes at runtime) and the key-period calendar."""
        async with self.pool.acquire() as conn:
            self.registry = await load_registry(conn)
            self.key_periods = await store.sync_key_periods(conn, self.config.key_periods)
        self.warnings = (list(self.config.warnings) + registry_warnings(self.registry)
                         + intake.route_warnings(self.config, self.registry))

    def _context(self) -> ComposeContext:
        return ComposeContext(self.registry, self.config, self.sign_name, self.ack_base_url,
                              self.options.sms_provider, self.options.duty_phone, self.options.lift_phone)

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
                    except (ValueError, OverflowError, RecursionError) as exc:  # ValidationError too
                        metrics.EVENTS.labels("bad").inc()
                        await self._dead_letter(source, rec.value or b"", intake.first_error(exc))
            events, sources = await canary.take(self, events, sources)  # arrivals, not alarms
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
            await self._consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items() if rs})
            metrics.record_lag(self._consumer, batches)
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
        dl = intake.dead_letter(source, raw, detail, reason, device_id=device_id, now=self.clock.now())
        await self._producer.send_and_wait(self.topics.deadletter, dl.model_dump_json().encode(),
                                           key=b"alerting")

    async def handle_events(self, events: Sequence[Event], sources: Sequence[tuple[str, bytes]] | None = None
                            ) -> list[str]:
        """Store events as alerts and put them in their groups; returns what each did
        (``new``/``resolved``/``replay``, ``refused``). A batch is one transaction of a few
        statements per round (:mod:`alerting.intake`); records repeating an alert id go in
        later rounds, so the records of one alert are applied in order.

        Poison-proof (issue 17): an event the database refuses for a data reason
        (:func:`hazmon.pgerrors.classify`) is isolated by bisecting its round; the others are
        stored and it goes to the dead-letter topic with the SQLSTATE and PostgreSQL's message
        (``sources``: each event's ``topic:partition:offset`` and raw bytes). Any other error is
        raised: nothing of the batch is committed, the caller fetches it again."""
        now = self.clock.now()
        refused: dict[int, BaseException] = {}
        placed: list[intake.Placed | None] = []
        for i, ev in enumerate(events):
            try:
                placed.append(intake.place(ev, self.registry, self.config, self.key_periods,
                                           self.options.late, now))
            except Exception as exc:  # noqa: BLE001 - a bug in routing must not drop the batch
                log.exception("routing failed %s", kv(alert=ev.id))
                placed.append(None)
                refused[i] = exc
        out = [""] * len(events)
        for idx in intake.rounds(events, refused):
            stored = await intake.store_isolating(self.pool, self.config, idx, placed, now, refused)
            for i, (_alert, what) in stored:
                out[i] = what
                metrics.EVENTS.labels(what).inc()
                ev = events[i]
                resp = placed[i][2]  # type: ignore[index]
                if what == "new" and not resp.recipients:
                    log.warning("nobody configured for alarm, duty operator takes it %s",
                                kv(alert=ev.id, site=ev.site_id, domain=ev.domain,
                                   why="; ".join(resp.warnings)[:300]))
            if any(what != "replay" for _i, (_a, what) in stored):
                self.flush_wake.set()  # their groups may be due now (group_wait 0s, or resolved alerts)
        for i, why in sorted(refused.items()):
            out[i] = "refused"
            metrics.EVENTS.labels("bad").inc()
            source, raw = (sources[i] if sources is not None
                           else (f"events:{events[i].id}", events[i].model_dump_json().encode()))
            reason = DeadLetterReason.REFUSED if classify(why) == "data" else DeadLetterReason.INTERNAL
            detail = (refusal_detail(why) if reason is DeadLetterReason.REFUSED
                      else f"{type(why).__name__}: {why}")
            await self._dead_letter(source, raw, detail, reason, device_id=events[i].device_id)
        return out

    # --- tick -------------------------------------------------------------------------------

    async def tick(self) -> TickReport:
        """One pass of the timers at ``clock.now()``: flush due groups, escalate, send."""
        now = self.clock.now()
        rep = TickReport()
        await self.flush_and_escalate(now, rep)
        await self.send_due(now, rep)
        return rep

    async def flush_and_escalate(self, now: datetime, rep: TickReport) -> None:
        """Flush the groups due at ``now`` (:func:`alerting.flush.flush_due`), then what the timers owe (四单,
        到场, 工单, 隐患逾期); each pass that queued rows wakes the sender (``send_wake``) once committed."""
        async with self.pool.acquire() as conn:
            silences = await active_silences(conn, now)
        flushed = await flush_due(self.pool, self._context(), now, silences, concurrency=self.concurrency,
                                  on_queued=self.send_wake.set)
        rep.flushed += flushed.flushed
        rep.notified += flushed.queued
        rep.escalated += await escalate_due(self.pool, self._context(), now, concurrency=self.concurrency,
                                            on_issued=self.send_wake.set)
        rep.escalated += await voice_escalate_due(self.pool, self._context(), now,
                                                  on_issued=self.send_wake.set)
        rep.escalated += await escalate_overdue(self.pool, self._context(), now, self.options.arrival,
                                                on_issued=self.send_wake.set)
        rep.escalated += await workorder_notify.run(self.pool, self._context(), now, self.send_wake.set)  # 工单
        rep.notified += await send_report_reminders(self.pool, self._context(), now, self.send_wake.set)
        followed = await self.followups.run(self.pool, self._context(), now)  # morning digest, 办结 SMS
        followed += await area_warning.timer_pass(self.pool, self._context(), now)  # 三色区域预警 (issue 15)
        followed += await notify_overdue_hazards(self.pool, self._context(), now)  # 隐患逾期 (issue 14)
        await kpi_snapshot.daily(self.pool, now)  # the day's KPI snapshot, once per day (issue 15)
        await grade_risk(self.pool, now)  # 企业风险分级 of every site, every alerting.risk.EVERY (issue 15)
        if followed:
            rep.notified += followed
            self.send_wake.set()

    async def send_due(self, now: datetime, rep: TickReport) -> None:
        """Send what is due in the outbox at ``now``, batch after batch until a short one."""
        while True:
            n = await self.outbox.run_once(now)
            rep.sent += n
            if n < self.outbox.policy.batch:
                break
            now = max(now, self.clock.now())  # a storm's later batches are sent, and dated, later

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

        background = [asyncio.create_task(on_stop()), asyncio.create_task(reloader()),
                      asyncio.create_task(selfwatch.run(self, stop)),  # the watchdog's heartbeat
                      asyncio.create_task(canary.run(self, stop))]  # 监测链路: alerting/canary.py
        if self._consumer is not None:
            background.append(asyncio.create_task(consume()))
        try:
            await asyncio.gather(
                woken("timers", self.flush_wake, self.flush_and_escalate, "tick", "tick failed"),
                woken("sender", self.send_wake, self.send_due, "send", "outbox pass failed"))
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def build(settings: Settings, *, routes: Path | None = None, clock: Clock | None = None
                ) -> AlertingService:
    """The alerting stage wired from its settings (``hazmon alerting``): ``routes.yaml`` read and
    validated (``routes``, default ``settings.routes_file``), the pool and the notifiers made;
    :meth:`AlertingService.aclose` closes them. :meth:`AlertingService.start` joins Kafka."""
    from alerting.notify.console import ConsoleNotifier
    from alerting.notify.robot import RegistrySecrets, make_robot_notifiers
    from alerting.notify.sms import make_sms_notifier
    from alerting.notify.voice import make_voice_notifier
    from alerting.notify.webhook import WebhookNotifier

    config = load_config(routes or settings.routes_file)
    try:
        pool = await asyncpg.create_pool(settings.postgres.dsn, min_size=1,
                                         max_size=settings.postgres.pool_max)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConfigError(f"HAZMON_POSTGRES__DSN: cannot connect: {exc}") from None
    notifiers: dict[str, Notifier] = {"sms": make_sms_notifier(settings.sms), "webhook": WebhookNotifier(),
                                      "console": ConsoleNotifier(),
                                      "voice": make_voice_notifier(settings.voice, settings.sms.url)}
    robots = make_robot_notifiers(settings.robots, settings.sms)  # 企业微信/钉钉 group robots of the units
    notifiers.update(robots)
    svc = AlertingService(pool=pool, config=config, notifiers=notifiers, clock=clock,
                          options=AlertingOptions.from_settings(settings))
    svc._owned = True
    secrets = RegistrySecrets(lambda: svc.registry)  # 钉钉 加签 secrets: the registry's, by token
    for robot in robots.values():
        robot.secret_for = secrets
    return svc
