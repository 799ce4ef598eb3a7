"""The MQTT → Kafka bridge: every QoS 1 message the broker accepted ends up on Kafka.

No-loss rules, and how they are kept:

- persistent session (MQTT v5 ``clean_start=False`` + session expiry): while the bridge is
  away (crash, kill -9, restart) the broker queues for it;
- a message is acknowledged (PUBACK, paho ``manual_ack``) only after Kafka acknowledged every
  record made from it (readings, status, device events or its dead letter). A crash before
  that makes the broker redeliver it: at-least-once, and every sink downstream is idempotent
  (readings on (device, metric, ts), dead letters on id);
- bounded in-flight: the connection announces ``Receive Maximum`` = ``mqtt.max_inflight``, so
  the broker never has more unacknowledged messages out to us; memory stays bounded and the
  rest waits in the broker's queue (backpressure);
- Kafka down: produces fail or stall, nothing is acked, failed records are retried with
  backoff forever (the in-flight window caps how many), and the flow resumes when Kafka returns.

Scale-out: N bridges with distinct client ids (``ingest.instance``) share the subscription
(:mod:`ingest.intake`); the Kafka side is :mod:`ingest.producer`.

Presence: the bridge judges no silence; its watermark beats let the detectors do it
(:mod:`ingest.beats`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from hazmon.contracts import DeadLetterReason
from hazmon.logs import kv
from hazmon.settings import Settings
from ingest.beats import beat_every, watermark
from ingest.diagnostics import (
    IN_FLIGHT,
    PRODUCE_LATENCY,
    PRODUCED,
    READINGS,
    RECEIVED,
    REFUSED,
    VENDOR_READINGS,
    BridgeStats,
    Diagnostics,
)
from ingest.directory import Directory, DirectoryLoader, pg_loader, refresh_every
from ingest.flood import RATE_LIMITED, ShedWindow, VendorLimiter
from ingest.intake import MqttIntake
from ingest.mqtt import MqttClient, MqttMessage
from ingest.pipeline import Pipeline, Record, Router, bridge_pipeline, vendor_topics_from_settings
from ingest.producer import (
    KAFKA_ACKING_S,
    NON_RETRYABLE,
    InFlight,
    PartitionCache,
    broker_record_limit,
    start_producer,
)

__all__ = ["Bridge", "BridgeStats", "build"]

log = logging.getLogger(__name__)



@dataclass
class Bridge:
    settings: Settings
    load_directory: DirectoryLoader
    instance: str = ""
    stats: BridgeStats = field(default_factory=BridgeStats)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)

    def __post_init__(self) -> None:
        m = self.settings.mqtt
        self.client_id = f"{m.client_id}-{self.instance}" if self.instance else m.client_id
        self.router = Router(m.topic_root, vendor_topics_from_settings(m.vendor_topics))
        self.pipeline: Pipeline | None = None
        self.producer: AIOKafkaProducer | None = None
        share = f"$share/{m.shared_group}/" if m.shared_group else ""
        filters = [share + f for f in self.router.subscriptions()]
        self.intake = MqttIntake(m, self.client_id, filters)
        self._in_flight = 0
        self._stop = asyncio.Event()
        self._parts = PartitionCache()
        self._produced: dict[str, int] = {}
        self._vendor_readings: dict[str, int] = {}  # since the last export (VENDOR_READINGS)
        self._exported = (0, 0)
        self._open: deque[InFlight] = deque()  # messages with records in flight, in receive order
        self.beats = 0
        g = self.settings.ingest
        self._limiter = VendorLimiter(g.vendor_rate_per_s, g.vendor_burst)
        self._shed: dict[str, tuple[ShedWindow, InFlight]] = {}
        self._vendor_inflight: dict[str, int] = {}
        self._acked_at = 0.0  # wall time Kafka last acknowledged a record (is it acknowledging?)

    # --- start / stop ---------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Forward until ``stop`` is set (or :meth:`stop`): the last in-flight messages are
        given 10 s to reach Kafka and be acknowledged."""
        if stop is not None:
            self._stop = stop
        directory = await self._retry("registry", self.load_directory)
        self.pipeline = bridge_pipeline(self.settings, directory, self.router, self.diagnostics)
        log.info("registry loaded %s", kv(devices=len(directory.devices), vendors=len(directory.vendors)))
        for vendor in directory.vendors:  # a vendor silent since the start is a 0, not a missing series
            VENDOR_READINGS.labels(vendor)
        self.producer = await self._retry("kafka", lambda: start_producer(self.settings, self.client_id))
        await self._broker_record_limit()
        tasks = [
            asyncio.create_task(self._worker(), name="bridge-worker"),
            asyncio.create_task(self._refresh_loop(), name="bridge-registry"),
            asyncio.create_task(self._presence_loop(), name="bridge-presence"),
            asyncio.create_task(self._beat_loop(), name="bridge-beat"),
        ]
        try:
            await self.intake.run(self._stop, self._drain)
        finally:
            await self._shutdown(tasks)

    async def _retry(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        delay = 0.5
        while True:
            try:
                return await fn()
            except Exception as exc:  # noqa: BLE001 - any start-up failure is retried
                if self._stop.is_set():
                    raise
                log.warning("%s not ready, retrying %s",
                            what, kv(error=f"{type(exc).__name__}: {exc}"[:300], in_s=delay))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    raise
                delay = min(delay * 2, 10.0)

    async def _broker_record_limit(self) -> None:
        """Size records under the broker's ``max.message.bytes``, when it reports one."""
        assert self.pipeline is not None
        limit = await broker_record_limit(self.settings)
        if limit is not None and limit - 1024 < self.pipeline.max_record_bytes:
            self.pipeline.set_record_limit(max(16 * 1024, limit - 1024))
        reported = limit if limit is not None else "not reported"
        log.info("record limit %s", kv(bytes=self.pipeline.max_record_bytes, broker_max_message_bytes=reported))

    @property
    def ready(self) -> asyncio.Event:
        """Set once subscribed (tests and the benchmark wait on it)."""
        return self.intake.ready

    @property
    def mqtt(self) -> MqttClient | None:
        return self.intake.client

    @property
    def _inbox(self) -> deque[tuple[MqttMessage, float]]:
        return self.intake.inbox

    async def _drain(self, timeout_s: float) -> None:
        """Give in-flight messages a chance to be produced and acked before we leave."""
        deadline = time.monotonic() + timeout_s
        while (self._in_flight or self._inbox) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls two counters
            await asyncio.sleep(0.05)

    async def _shutdown(self, tasks: list[asyncio.Task[Any]]) -> None:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), 10.0)
        log.info("bridge stopped %s", kv(**self.stats.__dict__))

    # --- the hot path ---------------------------------------------------------------------

    async def _worker(self) -> None:
        inbox = self._inbox
        assert self.pipeline is not None and self.producer is not None
        pipeline = self.pipeline
        process = pipeline.process
        route = self.router.route
        admit = self._limiter.admit
        refuse_retained = self.settings.ingest.refuse_retained
        cap = self.settings.ingest.vendor_max_inflight
        vendor_inflight = self._vendor_inflight
        send = self.producer.send
        stats = self.stats
        open_ = self._open
        while True:
            await self.intake.wake.wait()
            self.intake.wake.clear()
            while inbox:
                message, received = inbox[0]
                stats.received += 1
                topic = message.topic
                r = route(topic)
                vendor = r.vendor if r is not None else self.router.vendor_hint(topic)
                if not admit(vendor, received):
                    self._shed_one(vendor, message, received, "rate")
                    inbox.popleft()
                    continue
                # over its share of the window while Kafka is slow (not down: then all is held)
                slow = received - self._acked_at < KAFKA_ACKING_S
                if cap and vendor_inflight.get(vendor, 0) >= cap and slow:
                    self._shed_one(vendor, message, received, "in_flight")
                    inbox.popleft()
                    continue
                if message.retain and refuse_retained and r is not None and r.kind != "status":
                    records = [pipeline.retained(topic, vendor, r.device_id, message.payload, received)]
                else:
                    records = process(topic, message.payload, received)
                inbox.popleft()  # after process: the beat's watermark counts it until it is open
                if not records:
                    self._ack(message)
                    continue
                pending = InFlight(message, len(records), time.perf_counter(), received, vendor=vendor)
                open_.append(pending)
                self._in_flight += 1
                vendor_inflight[vendor] = vendor_inflight.get(vendor, 0) + 1
                for rec in records:
                    await self._send(send, rec, pending)
            if self._shed:
                await self._flush_shed(time.time())
            self._export_metrics()

    # --- flood control (ingest/flood.py) --------------------------------------------------

    def _shed_one(self, vendor: str, message: MqttMessage, received: float, cause: str) -> None:
        """A message over its vendor's rate joins the vendor's shed window (acked with the
        window's dead letter; it holds its in-flight slot and the watermark until then)."""
        entry = self._shed.get(vendor)
        if entry is None:
            window = ShedWindow(vendor, received, message)
            pending = InFlight(None, 1, time.perf_counter(), received, more=window.messages)
            self._shed[vendor] = entry = (window, pending)
            self._open.append(pending)
        entry[0].add(message, received, cause)
        self._in_flight += 1
        RATE_LIMITED.labels(vendor or "(unknown)").inc()

    async def _flush_shed(self, now: float, *, force: bool = False) -> None:
        assert self.pipeline is not None and self.producer is not None
        g = self.settings.ingest
        for vendor, (window, pending) in list(self._shed.items()):
            if not (force or window.full(now)):
                continue
            del self._shed[vendor]
            first = window.first
            r = self.router.route(first.topic)
            n = len(window.messages)
            detail = window.detail(g.vendor_rate_per_s, g.vendor_burst, g.vendor_max_inflight)
            rec = self.pipeline.dead_letter(first.topic, vendor, r.device_id if r else "", DeadLetterReason.RATE_LIMITED,
                                            detail, first.payload, window.started,
                                            salt=f"{self.client_id}|{window.started!r}|{n}".encode())
            await self._send(self.producer.send, rec, pending)

    def _export_metrics(self) -> None:
        """Counters go to Prometheus per worker wake-up, not per message (hot path)."""
        s = self.stats
        RECEIVED.inc(s.received - self._exported[0])
        READINGS.inc(s.readings - self._exported[1])
        self._exported = (s.received, s.readings)
        for topic, n in self._produced.items():
            if n:
                PRODUCED.labels(topic).inc(n)
        self._produced.clear()
        for vendor, n in self._vendor_readings.items():
            VENDOR_READINGS.labels(vendor).inc(n)
        self._vendor_readings.clear()
        IN_FLIGHT.set(self._in_flight)

    async def _send(self, send: Callable[..., Any], rec: Record, pending: InFlight) -> None:
        try:
            part = rec.partition
            if part is None:
                assert self.producer is not None
                part = await self._parts.partition(self.producer, rec.topic, rec.key)
            fut = await send(rec.topic, rec.value, key=rec.key, partition=part)
        except NON_RETRYABLE as exc:
            await self._refused(rec, pending, exc)
            return
        except KafkaError as exc:
            self._schedule_retry(rec, pending, exc)
            return
        except Exception as exc:  # noqa: BLE001 - never let the worker die: retry, the message stays unacked
            log.exception("unexpected produce error %s", kv(topic=rec.topic))
            self._schedule_retry(rec, pending, exc)
            return
        fut.add_done_callback(lambda f, rec=rec, pending=pending: self._delivered(f, rec, pending))

    def _delivered(self, fut: asyncio.Future[Any], rec: Record, pending: InFlight) -> None:
        if fut.cancelled() or fut.exception() is not None:
            exc = fut.exception() if not fut.cancelled() else None
            if isinstance(exc, NON_RETRYABLE):
                asyncio.get_running_loop().create_task(self._refused(rec, pending, exc))
                return
            self._schedule_retry(rec, pending, exc)
            return
        self._settle(rec, pending)

    def _settle(self, rec: Record, pending: InFlight, produced: bool = True) -> None:
        stats = self.stats
        if produced:
            self._acked_at = time.time()
            stats.records += 1
            self._produced[rec.topic] = self._produced.get(rec.topic, 0) + 1
            if rec.readings:
                stats.readings += rec.readings
                if pending.vendor is not None:
                    vr = self._vendor_readings
                    vr[pending.vendor] = vr.get(pending.vendor, 0) + rec.readings
            elif rec.topic == self.settings.kafka.topics.deadletter:
                stats.deadletters += 1
        pending.remaining -= 1
        if pending.remaining == 0:
            PRODUCE_LATENCY.observe(time.perf_counter() - pending.t0)
            if pending.message is not None or pending.more:
                if pending.message is not None:
                    self._in_flight -= 1
                    self._ack(pending.message)
                    if pending.vendor is not None:
                        self._vendor_inflight[pending.vendor] -= 1
                for m in pending.more or ():
                    self._in_flight -= 1
                    self._ack(m)
                open_ = self._open
                while open_ and open_[0].remaining == 0:
                    open_.popleft()

    async def _refused(self, rec: Record, pending: InFlight, exc: BaseException) -> None:
        """A record refused for good: its message's dead letter (``too_large``, raw kept up to
        what fits) takes its place in the message's count; a refused dead letter or timer
        record is logged, counted and let go (nothing else could carry it)."""
        self.stats.refused += 1
        REFUSED.labels(rec.topic).inc()
        message = pending.message
        assert self.pipeline is not None and self.producer is not None
        if message is None or rec.topic == self.settings.kafka.topics.deadletter:
            log.error("kafka refused a record for good, dropped %s",
                      kv(topic=rec.topic, bytes=len(rec.value), error=repr(exc)[:300]))
            self._settle(rec, pending, produced=False)
            return
        log.warning("kafka refused a record for good, dead-lettering its message %s",
                    kv(topic=message.topic, record_topic=rec.topic, bytes=len(rec.value),
                       error=type(exc).__name__))
        detail = f"Kafka refused a {rec.topic} record of {len(rec.value)} bytes: {type(exc).__name__}: {exc}"
        dead = self.pipeline.too_large(message.topic, message.payload, pending.received, detail[:1500])
        await self._send(self.producer.send, dead, pending)

    def _ack(self, message: MqttMessage) -> None:
        if self.intake.ack(message):
            self.stats.acked += 1

    def _schedule_retry(self, rec: Record, pending: InFlight, exc: BaseException | None) -> None:
        self.stats.retries += 1
        if self.stats.retries % 1000 == 1:
            log.warning("kafka produce failed, retrying (message not acked) %s",
                        kv(topic=rec.topic, error=repr(exc)[:200], retries=self.stats.retries))
        asyncio.get_running_loop().create_task(self._retry_send(rec, pending))

    async def _retry_send(self, rec: Record, pending: InFlight) -> None:
        await asyncio.sleep(1.0)
        assert self.producer is not None
        await self._send(self.producer.send, rec, pending)

    # --- timers ---------------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        def apply(directory: Directory) -> None:
            assert self.pipeline is not None
            self.pipeline.directory = directory

        await refresh_every(self.settings.mqtt.registry_refresh_s, self.load_directory, apply)

    async def _presence_loop(self) -> None:
        assert self.pipeline is not None and self.producer is not None
        ticks = 0
        while True:
            await asyncio.sleep(0.1)
            if self._shed:
                await self._flush_shed(time.time())
            self._export_metrics()  # keeps /metrics current while the worker is idle
            ticks += 1
            if ticks % 10:
                continue
            for rec in self.pipeline.sweep(time.time()):
                await self._send(self.producer.send, rec, InFlight(None, 1, time.perf_counter()))


    def watermark(self, now: float) -> float:
        """Everything received before the returned time is on Kafka (:func:`ingest.beats.watermark`)."""
        return watermark(self._inbox, self._open, now)

    async def _beat_loop(self) -> None:
        assert self.producer is not None
        producer, topic = self.producer, self.settings.kafka.topics.status

        async def send(rec: Record) -> None:
            await self._send(producer.send, rec, InFlight(None, 1, time.perf_counter()))

        def sent() -> None:
            self.beats += 1

        await beat_every(self.settings.mqtt.beat_interval_s, topic, self.client_id,
                         subscribed=lambda: self.intake.subscribed, mark=self.watermark,
                         partitions=lambda: self._parts.partitions(producer, topic), send=send, sent=sent)



def build(settings: Settings) -> Bridge:
    """The ingest stage wired from its settings (``hazmon bridge``): one bridge, its registry read
    from PostgreSQL, its client id suffixed with ``ingest.instance``."""
    return Bridge(settings, pg_loader(settings.postgres.dsn), instance=settings.ingest.instance)


if __name__ == "__main__":  # python -m ingest.bridge [INSTANCE]
    import sys

    from ingest.cli import run_module

    sys.exit(run_module(sys.argv[1:]))
