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

Scale-out: N bridges with distinct client ids subscribe through the shared group
``$share/{mqtt.shared_group}/…`` and the broker spreads messages over them.

Presence: with N bridges none sees all of a device's messages, so the bridge judges no silence
(the detectors do, detectors/offline.py). It forwards Last Wills, status reports and every
heartbeat, and while subscribed it writes an :class:`~hazmon.contracts.IngestBeat` to every
partition of the status topic every ``mqtt.beat_interval_s``: "everything I received before
``at`` is on Kafka" (``at`` = the oldest receive time still in flight, or now). The detectors
bound their silence verdicts by the smallest live watermark, so an ingest outage (bridges down,
the broker queueing) is not mistaken for silent devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)
from aiokafka.partitioner import DefaultPartitioner

from hazmon.contracts import INGEST_BEAT_KEY_PREFIX, DeadLetterReason, IngestBeat
from hazmon.logs import kv
from hazmon.settings import Settings
from ingest.diagnostics import (
    IN_FLIGHT,
    PRODUCE_LATENCY,
    PRODUCED,
    READINGS,
    RECEIVED,
    REFUSED,
    SUBSCRIBED,
    SUBSCRIBES,
    Diagnostics,
)
from ingest.directory import Directory
from ingest.flood import RATE_LIMITED, ShedWindow, VendorLimiter
from ingest.mqtt import MqttClient, MqttError, MqttMessage, MqttUnreachable
from ingest.pipeline import Pipeline, Record, Router, vendor_topics_from_settings
from ingest.presence import PresenceTracker
from ingest.validation import Limits, iso

__all__ = ["Bridge", "BridgeStats", "main"]

log = logging.getLogger(__name__)

#: retry interval while no broker answers. mosquitto forgets $share subscriptions on a restart,
#: so what devices publish between its restart and our SUBSCRIBE is lost (ingest/mqtt.py)
RECONNECT_UNREACHABLE_S = 0.2

DirectoryLoader = Callable[[], Awaitable[Directory]]

_RETAINED_DETAIL = ("retained publish refused: a retained telemetry/event message is replayed to every new subscriber "
                    "as if it were new (vendor accounts must publish with retain=0; status may be retained)")

#: Kafka counts as acknowledging (slow, not down) if it acknowledged a record this recently;
#: only then is a vendor's in-flight limit applied
KAFKA_ACKING_S = 1.0

#: produce errors that no retry can cure: the record itself is refused (its size, its format,
#: its topic name). Its message is dead-lettered instead of retried forever (which held the
#: message unacknowledged and its in-flight slot taken, across restarts)
NON_RETRYABLE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError, CorruptRecordException,
                 InvalidTopicError, UnsupportedForMessageFormatError)


@dataclass
class BridgeStats:
    received: int = 0
    acked: int = 0
    records: int = 0
    readings: int = 0
    deadletters: int = 0
    retries: int = 0
    refused: int = 0  # records the producer or broker refused for good (their message dead-lettered)


@dataclass(slots=True)
class _Pending:
    """One MQTT message waiting for Kafka to acknowledge all its records."""

    message: MqttMessage | None
    remaining: int
    t0: float
    received: float = 0.0  # wall time the MQTT message was received (the beat's watermark)
    more: list[MqttMessage] | None = None  # a shed window's messages, acked with its dead letter
    vendor: str | None = None  # counted in the vendor's in-flight (flood control)


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
        self.mqtt: MqttClient | None = None
        self._inbox: deque[tuple[MqttMessage, float]] = deque()
        self._wake = asyncio.Event()
        self._in_flight = 0
        self._drained = asyncio.Event()
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()  # set once subscribed (tests and the benchmark wait on it)
        self._partitions: dict[tuple[str, bytes], int] = {}
        self._topic_parts: dict[str, list[int]] = {}
        self._partitioner = DefaultPartitioner()
        self._produced: dict[str, int] = {}
        self._exported = (0, 0)
        self._open: deque[_Pending] = deque()  # messages with records in flight, in receive order
        self._subscribed = False
        self.beats = 0
        g = self.settings.ingest
        self._limiter = VendorLimiter(g.vendor_rate_per_s, g.vendor_burst)
        self._shed: dict[str, tuple[ShedWindow, _Pending]] = {}
        self._vendor_inflight: dict[str, int] = {}
        self._acked_at = 0.0  # wall time Kafka last acknowledged a record (is it acknowledging?)

    # --- start / stop ---------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        m, k, g = self.settings.mqtt, self.settings.kafka, self.settings.ingest
        directory = await self._retry("registry", self.load_directory)
        self.pipeline = Pipeline(
            directory,
            k.topics,
            router=self.router,
            limits=Limits(m.clock_skew_s, m.max_age_s),
            max_payload_bytes=m.max_payload_bytes,
            max_record_bytes=min(g.max_record_bytes, g.producer_max_request_bytes - 1024),
            max_records_per_message=g.max_records_per_message,
            diagnostics=self.diagnostics,
            presence=PresenceTracker(m.presence_k, time.time()) if m.presence_k > 0 else None,
        )
        log.info("registry loaded %s", kv(devices=len(directory.devices), vendors=len(directory.vendors)))
        self.producer = await self._retry("kafka", self._start_producer)
        await self._broker_record_limit()
        tasks = [
            asyncio.create_task(self._worker(), name="bridge-worker"),
            asyncio.create_task(self._refresh_loop(), name="bridge-registry"),
            asyncio.create_task(self._presence_loop(), name="bridge-presence"),
            asyncio.create_task(self._beat_loop(), name="bridge-beat"),
        ]
        try:
            await self._mqtt_loop()
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
                log.warning("%s not ready, retrying %s", what, kv(error=f"{type(exc).__name__}: {exc}"[:300], in_s=delay))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    raise
                delay = min(delay * 2, 10.0)

    async def _start_producer(self) -> AIOKafkaProducer:
        k = self.settings.kafka
        acks: Any = k.acks if k.acks == "all" else int(k.acks)
        producer = AIOKafkaProducer(
            bootstrap_servers=k.bootstrap,
            client_id=f"{k.client_id}-{self.client_id}",
            acks=acks,
            linger_ms=k.linger_ms,
            max_batch_size=min(k.max_batch_bytes, 1024 * 1024),
            max_request_size=self.settings.ingest.producer_max_request_bytes,
            enable_idempotence=False,  # Tansu 0.6 has no idempotent producer; sinks dedup instead
            request_timeout_ms=15_000,
            retry_backoff_ms=200,
        )
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        return producer

    async def _broker_record_limit(self) -> None:
        """Size records under the broker's ``max.message.bytes`` of the topics we produce to,
        when it reports one (Apache Kafka does; Tansu 0.6 answers DescribeConfigs with no
        entries, and then ``ingest.max_record_bytes`` alone applies)."""
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        assert self.pipeline is not None
        t = self.settings.kafka.topics
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka.bootstrap, request_timeout_ms=5000)
        limits: list[int] = []
        try:
            await asyncio.wait_for(admin.start(), 5)
            names = (t.readings, t.status, t.device_events, t.deadletter)
            resp = await asyncio.wait_for(admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names]), 5)
            for r in resp:
                for res in r.resources:
                    for entry in res[4]:  # (name, value, read_only, is_default, …)
                        if entry[0] == "max.message.bytes" and str(entry[1]).isdigit():
                            limits.append(int(entry[1]))
        except Exception as exc:  # noqa: BLE001 - the setting alone then applies
            log.info("broker record limit not read, using ingest.max_record_bytes %s", kv(error=f"{type(exc).__name__}: {exc}"[:200]))
            return
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        current = self.pipeline.max_record_bytes
        if limits and min(limits) - 1024 < current:
            self.pipeline.set_record_limit(max(16 * 1024, min(limits) - 1024))
        log.info("record limit %s", kv(bytes=self.pipeline.max_record_bytes, broker_max_message_bytes=min(limits) if limits else "not reported"))

    async def _mqtt_loop(self) -> None:
        m = self.settings.mqtt
        filters = [f"$share/{m.shared_group}/{f}" if m.shared_group else f for f in self.router.subscriptions()]
        delay = 0.5
        warned = 0.0
        while not self._stop.is_set():
            client = MqttClient(
                m.host,
                m.port,
                client_id=self.client_id,
                username=m.username,
                password=m.password.get_secret_value() if m.password else None,
                clean_start=False,
                session_expiry_s=m.session_expiry_s,
                receive_maximum=m.max_inflight,
                keepalive=m.keepalive_s,
                manual_ack=True,
                on_message=self._on_message,
            )
            try:
                await client.connect()
                self.mqtt = client
                await client.subscribe(*filters, qos=1, retain_as_published=True)
                log.info("bridge subscribed %s", kv(client_id=self.client_id, filters=",".join(filters), session_present=client.session_present))
                self.ready.set()
                self._set_subscribed(True)
                SUBSCRIBES.inc()
                delay = 0.5
                stop_wait = asyncio.ensure_future(self._stop.wait())
                waiting: list[asyncio.Future[Any]] = [stop_wait, client.closed]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                self._set_subscribed(False)  # no watermark while we cannot receive
                stop_wait.cancel()
                if not self._stop.is_set():
                    client.closed.exception()
            except MqttError as exc:
                self._set_subscribed(False)
                unreachable = isinstance(exc, MqttUnreachable)
                wait_s = RECONNECT_UNREACHABLE_S if unreachable else delay
                if not unreachable or time.monotonic() - warned >= 10.0:
                    warned = time.monotonic()
                    log.warning("mqtt connection problem %s", kv(error=str(exc)[:300], retry_in_s=wait_s))
                await client.disconnect()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait_s)
                if not unreachable:
                    delay = min(delay * 2, 10.0)
                continue
            if self._stop.is_set():
                await self._drain(timeout_s=10.0)
                await client.disconnect()

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

    def _set_subscribed(self, on: bool) -> None:
        self._subscribed = on
        SUBSCRIBED.set(1 if on else 0)

    def _on_message(self, message: MqttMessage) -> None:
        self._inbox.append((message, time.time()))
        if not self._wake.is_set():
            self._wake.set()

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
            await self._wake.wait()
            self._wake.clear()
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
                if cap and vendor_inflight.get(vendor, 0) >= cap and received - self._acked_at < KAFKA_ACKING_S:
                    self._shed_one(vendor, message, received, "in_flight")
                    inbox.popleft()
                    continue
                if message.retain and refuse_retained and r is not None and r.kind != "status":
                    records = [pipeline.dead_letter(topic, vendor, r.device_id, DeadLetterReason.RETAINED, _RETAINED_DETAIL,
                                                    message.payload, received)]
                else:
                    records = process(topic, message.payload, received)
                inbox.popleft()  # after process: the beat's watermark counts it until it is open
                if not records:
                    self._ack(message)
                    continue
                pending = _Pending(message, len(records), time.perf_counter(), received, vendor=vendor)
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
            pending = _Pending(None, 1, time.perf_counter(), received, more=window.messages)
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
            limits = []
            if window.causes.get("rate"):
                limits.append(f"its limit of {g.vendor_rate_per_s:g}/s (burst {g.vendor_burst}): {window.causes['rate']}")
            if window.causes.get("in_flight"):
                limits.append(f"its limit of {g.vendor_max_inflight} in flight while Kafka was slow: {window.causes['in_flight']}")
            detail = (f"{n} messages from vendor {vendor!r} over {'; '.join(limits)}, "
                      f"between {iso(window.started)} and {iso(window.last)}, were not forwarded (限流); raw of the first kept")
            rec = self.pipeline.dead_letter(first.topic, vendor, r.device_id if r else "", DeadLetterReason.RATE_LIMITED, detail,
                                            first.payload, window.started, salt=f"{self.client_id}|{window.started!r}|{n}".encode())
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
        IN_FLIGHT.set(self._in_flight)

    async def _partition(self, topic: str, key: bytes) -> int | None:
        """The key's partition, computed once per (topic, device) with the producer's own
        partitioner (murmur2 in Python is a visible share of the hot path)."""
        cache = self._partitions
        part = cache.get((topic, key))
        if part is None:
            assert self.producer is not None
            parts = self._topic_parts.get(topic)
            if parts is None:
                found = await self.producer.partitions_for(topic)
                parts = self._topic_parts[topic] = sorted(found)
            part = self._partitioner(key, parts, parts)
            if len(cache) > 1_000_000:
                cache.clear()
            cache[(topic, key)] = part
        return part

    async def _send(self, send: Callable[..., Any], rec: Record, pending: _Pending) -> None:
        try:
            part = rec.partition if rec.partition is not None else await self._partition(rec.topic, rec.key)
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

    def _delivered(self, fut: asyncio.Future[Any], rec: Record, pending: _Pending) -> None:
        if fut.cancelled() or fut.exception() is not None:
            exc = fut.exception() if not fut.cancelled() else None
            if isinstance(exc, NON_RETRYABLE):
                asyncio.get_running_loop().create_task(self._refused(rec, pending, exc))
                return
            self._schedule_retry(rec, pending, exc)
            return
        self._settle(rec, pending)

    def _settle(self, rec: Record, pending: _Pending, produced: bool = True) -> None:
        stats = self.stats
        if produced:
            self._acked_at = time.time()
            stats.records += 1
            self._produced[rec.topic] = self._produced.get(rec.topic, 0) + 1
            if rec.readings:
                stats.readings += rec.readings
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

    async def _refused(self, rec: Record, pending: _Pending, exc: BaseException) -> None:
        """A record refused for good: its message's dead letter (``too_large``, raw kept up to
        what fits) takes its place in the message's count; a refused dead letter or timer
        record is logged, counted and let go (nothing else could carry it)."""
        self.stats.refused += 1
        REFUSED.labels(rec.topic).inc()
        message = pending.message
        assert self.pipeline is not None and self.producer is not None
        if message is None or rec.topic == self.settings.kafka.topics.deadletter:
            log.error("kafka refused a record for good, dropped %s", kv(topic=rec.topic, bytes=len(rec.value), error=repr(exc)[:300]))
            self._settle(rec, pending, produced=False)
            return
        log.warning("kafka refused a record for good, dead-lettering its message %s",
                    kv(topic=message.topic, record_topic=rec.topic, bytes=len(rec.value), error=type(exc).__name__))
        detail = f"Kafka refused a {rec.topic} record of {len(rec.value)} bytes: {type(exc).__name__}: {exc}"
        dead = self.pipeline.too_large(message.topic, message.payload, pending.received, detail[:1500])
        await self._send(self.producer.send, dead, pending)

    def _ack(self, message: MqttMessage) -> None:
        client = self.mqtt
        if client is not None and client.ack(message):
            self.stats.acked += 1

    def _schedule_retry(self, rec: Record, pending: _Pending, exc: BaseException | None) -> None:
        self.stats.retries += 1
        if self.stats.retries % 1000 == 1:
            log.warning("kafka produce failed, retrying (message not acked) %s", kv(topic=rec.topic, error=repr(exc)[:200], retries=self.stats.retries))
        asyncio.get_running_loop().create_task(self._retry_send(rec, pending))

    async def _retry_send(self, rec: Record, pending: _Pending) -> None:
        await asyncio.sleep(1.0)
        assert self.producer is not None
        await self._send(self.producer.send, rec, pending)

    # --- timers ---------------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        interval = self.settings.mqtt.registry_refresh_s
        while True:
            await asyncio.sleep(interval)
            try:
                directory = await self.load_directory()
            except Exception as exc:  # noqa: BLE001 - keep the previous snapshot
                log.warning("registry reload failed, keeping the previous snapshot %s", kv(error=str(exc)[:300]))
                continue
            assert self.pipeline is not None
            self.pipeline.directory = directory
            log.debug("registry reloaded %s", kv(devices=len(directory.devices)))

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
                await self._send(self.producer.send, rec, _Pending(None, 1, time.perf_counter()))


    def watermark(self, now: float) -> float:
        """Everything received before the returned time is acknowledged by Kafka: the oldest
        receive time still waiting (inbox, or records in flight), else ``now``."""
        at = now
        if self._inbox:
            at = min(at, self._inbox[0][1])
        open_ = self._open
        while open_ and open_[0].remaining == 0:
            open_.popleft()
        if open_:
            at = min(at, open_[0].received)
        return at

    async def _beat_loop(self) -> None:
        every = self.settings.mqtt.beat_interval_s
        if every <= 0:
            return
        assert self.producer is not None
        topic = self.settings.kafka.topics.status
        key = INGEST_BEAT_KEY_PREFIX + self.client_id.encode()
        while True:
            await asyncio.sleep(every)
            if not self._subscribed:
                continue  # cannot receive: no promise about "everything before now"
            try:
                parts = self._topic_parts.get(topic)
                if parts is None:
                    parts = self._topic_parts[topic] = sorted(await self.producer.partitions_for(topic))
                now = time.time()
                beat = IngestBeat(bridge=self.client_id[:64], at=datetime.fromtimestamp(self.watermark(now), UTC),
                                  sent_at=datetime.fromtimestamp(now, UTC)).model_dump_json().encode()
                for p in parts:
                    await self._send(self.producer.send, Record(topic, key, beat, partition=p), _Pending(None, 1, time.perf_counter()))
                self.beats += 1
            except Exception as exc:  # noqa: BLE001 - a missed beat only delays silence verdicts downstream
                log.warning("ingest beat failed %s", kv(error=repr(exc)[:200]))


def _pg_loader(dsn: str) -> DirectoryLoader:
    async def load() -> Directory:
        from hazmon.db import connect
        from ingest.directory import load_directory

        conn = await connect(dsn)
        try:
            return await load_directory(conn)
        finally:
            await conn.close()

    return load


async def main(settings: Settings, *, instance: str = "", stats_every_s: float = 10.0) -> int:
    """Run one bridge until SIGINT/SIGTERM (``hazmon bridge``)."""
    from hazmon.metrics import serve_metrics

    serve_metrics(settings.metrics_port)
    bridge = Bridge(settings, _pg_loader(settings.postgres.dsn), instance=instance or os.environ.get("HAZMON_BRIDGE_INSTANCE", ""))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, bridge.stop)

    async def report() -> None:
        while True:
            await asyncio.sleep(stats_every_s)
            log.info("bridge stats %s", kv(**bridge.stats.__dict__, in_flight=bridge._in_flight))
            for vendor, diag in bridge.diagnostics.snapshot().items():
                last = diag["last"][-1] if diag["last"] else {}
                log.info("rejections %s", kv(vendor=vendor, counts=str(diag["counts"]).replace(" ", ""), last=str(last.get("detail", ""))[:120]))

    reporter = asyncio.create_task(report())
    try:
        await bridge.run()
    finally:
        reporter.cancel()
    return 0


if __name__ == "__main__":  # python -m ingest.bridge
    import sys

    from hazmon.cli import run_async
    from hazmon.logs import setup_logging
    from hazmon.settings import load_settings

    s = load_settings()
    setup_logging(s.log_level)
    sys.exit(run_async(main(s, instance=sys.argv[1] if len(sys.argv) > 1 else "")))
