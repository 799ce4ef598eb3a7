"""The detector stage: consume → detect → produce events → store → commit.

One consumer group (``hazmon-detectors``) over the readings, status, device-events and
dead-letter topics. Per poll:

1. ``getmany`` a micro-batch; split by topic;
2. :meth:`Engine.process` — decode (msgspec), validate, detect (pure, in-process);
3. produce the batch's events and dead letters and await every send;
4. write readings, latest values, presence, status, device events, events and dead letters
   in one transaction (:class:`Storage`);
5. commit the batch's offsets.

Offsets are committed only after 3 and 4 (at-least-once). Events are produced before the
rows are stored so that "stored" implies "announced": after a crash between the two, the
restart re-reads the batch from the committed offset and, the readings being absent from the
database, detects and produces the same events again (same ids: ``event_id(device, kind,
starts_at)``); downstream dedups on the id. Steps 3–5 of batch N overlap the polling and
detection of batch N+1 (one write in flight), which is where the throughput comes from.

Restart safety (kill -9): before consuming, the state is rebuilt from the database —
firing events (they stay the active episodes under their ids), the recent window of
readings and device events (ring buffers, timers, shields) and the newest stored time per
device and metric (re-consumed readings count as already applied).

Presence (在线全时段, detectors/offline.py): this stage, not the ingest bridges, judges device
silence, because only here does one instance see all of a device's traffic (the topics are
keyed by device id and the group uses the *range* assignor, so partition p of readings, status
and device-events goes to the same instance). Every ``presence_check_s`` the loop runs the
silence check for the devices whose partitions this instance owns, against a per-partition
clock: the wall clock when the partition is caught up (as of its last fetch), else the Kafka
timestamp of the last record consumed from it — a lagging or just restarted instance never
judges a device silent for data it simply has not read yet — and no later than the bridges'
watermark (:class:`~hazmon.contracts.IngestBeat` on the status partition), so an ingest outage
is not mistaken for silent devices.

Dead letters on the dead-letter topic (the ingest bridge's and ours) are persisted into
``deadletters`` by the same loop; the ingest stage does not write the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from hazmon.contracts import INGEST_BEAT_KEY_PREFIX, DeadLetter, IngestBeat
from hazmon.logs import kv
from hazmon.pgerrors import classify, refusal_detail
from hazmon.settings import Settings
from hazmon.topics import Topics

from . import metrics as m
from .config import DetectorConfig, load_config
from .deadletter_retention import DeadLetterPolicy
from .engine import BatchOutput, Engine, Message
from .offline import Clock, IngestWatermarks
from .state import DeviceMeta
from .storage import (
    Storage,
    load_firing,
    load_latest_times,
    load_presence,
    load_recent_device_events,
    load_recent_readings,
)

__all__ = ["DetectorService", "ServiceOptions", "registry_meta", "tune_gc"]

log = logging.getLogger(__name__)

#: errors that mean "the database is not available right now" (down, restarting, in crash
#: recovery), as opposed to a bad statement
_DB_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # class 57: admin shutdown, crash shutdown, cannot connect now
    asyncpg.InterfaceError,
    OSError,
)


@dataclass
class ServiceOptions:
    group_id: str = "hazmon-detectors"
    #: records per poll (≈ 20 readings each from gateways)
    max_records: int = 2000
    poll_timeout_ms: int = 200
    #: readings window replayed into the state after a restart (rate-of-rise, trapped timers)
    warmup_readings_s: float = 900.0
    #: device events window (shields, fault windows)
    warmup_device_events_s: float = 2 * 86400.0
    #: stop after this long without records (tests, benchmark); None = run forever
    idle_exit_s: float | None = None
    #: stop after this many readings stored (benchmark); None = no limit
    stop_after_readings: int | None = None
    fetch_max_bytes: int = 16 * 1024 * 1024
    client_id: str = "hazmon-detectors"
    #: how often the presence (silence) check runs; None = never (benchmarks)
    presence_check_s: float | None = 2.0
    #: how often the registry is re-read, so a device registered (or re-configured) while the
    #: detector runs gets its thresholds, labels and expected interval (silence judging);
    #: None = only at start
    registry_refresh_s: float | None = 60.0
    #: a partition's clock is held back this much (fetch-to-poll race, produce latency)
    presence_margin_s: float = 5.0
    #: a bridge whose beats stop is left out of the watermark after this long (a restart is shorter)
    bridge_ttl_s: float = 60.0
    #: a watermark jump larger than this was an ingest blind period: silence counts from its end
    blind_gap_s: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunStats:
    readings: int = 0
    consumed: int = 0
    batches: int = 0
    events: int = 0
    deadletters: int = 0
    detect_s: float = 0.0
    write_s: float = 0.0
    started: float = 0.0
    first_record: float = 0.0
    last_record: float = 0.0


async def registry_meta(conn: asyncpg.Connection, *, strict: bool = False) -> Callable[[str], DeviceMeta | None]:
    """Device facts from the registry snapshot (hazmon.registry). Unreadable registry: no facts
    (defaults) at start, or — ``strict``, for a reload — the error, so the caller keeps the
    facts it has."""
    try:
        from hazmon.registry import load_registry

        reg = await load_registry(conn)
    except (asyncpg.PostgresError, ImportError) as exc:
        if strict:
            raise
        log.warning("registry not loaded, thresholds from defaults %s", kv(error=str(exc)))
        return lambda _d: None
    metas: dict[str, DeviceMeta] = {}
    for dev in reg.devices.values():
        site = reg.sites.get(dev.site_id)
        metas[dev.id] = DeviceMeta(
            site_id=dev.site_id, domain=dev.domain, model=dev.model,
            site_class=site.site_class if site else "", township=site.township_id if site else "",
            parent_id=dev.parent_id, expected_interval_s=dev.expected_interval_s,
        )
    log.info("registry loaded %s", kv(devices=len(metas)))
    return metas.get


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: DetectorService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.service._drain_pending()
        await self.service._flush_presence()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.service._on_assigned(assigned)


class _WriterThread:
    """The database writer on its own thread and event loop: while PostgreSQL works through
    batch N's COPY, the main thread decodes and detects batch N+1 (asyncpg's encoding and
    PostgreSQL's insert overlap the pure-Python detection instead of alternating with it)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="det-writer", daemon=True)
        self._thread.start()

    async def call(self, coro: Any) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class DetectorService:
    def __init__(self, settings: Settings, options: ServiceOptions | None = None,
                 config: DetectorConfig | None = None) -> None:
        self.settings = settings
        self.options = options or ServiceOptions()
        self.topics: Topics = settings.kafka.topics
        self.config = config
        self.stats = RunStats()
        self._pending: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.engine: Engine | None = None
        self._conn: asyncpg.Connection | None = None
        self._storage: Storage | None = None
        self._consumer: AIOKafkaConsumer | None = None
        #: presence topic partition → Kafka timestamp (s) of the last record consumed from it
        self._consumed_ts: dict[TopicPartition, float] = {}
        self._partitioner = DefaultPartitioner()
        self._device_parts: dict[str, tuple[int, ...]] = {}
        self._part_counts: tuple[int, ...] = ()
        self._presence_due = 0.0
        self._marks = IngestWatermarks(self.options.bridge_ttl_s, self.options.blind_gap_s)

    def stop(self) -> None:
        self._stop.set()

    async def _on_assigned(self, assigned: Any) -> None:
        self._consumed_ts = {tp: t for tp, t in self._consumed_ts.items() if tp in assigned}
        self._marks.keep_only(tp.partition for tp in assigned if tp.topic == self.topics.status)
        self._check_copartitioned(assigned)
        if self.engine is not None and self._conn is not None and self.stats.batches:
            n = self.engine.restore_active(await load_firing(self._conn))
            # devices whose partitions moved here: their last-seen and state as the previous
            # owner stored them (a stale memory of ours would misjudge them)
            p = self.engine.restore_presence(await load_presence(self._conn))
            log.info("partitions assigned %s", kv(partitions=len(assigned), restored=n, presence_rows=p))

    async def _flush_presence(self) -> None:
        """Before partitions leave: write the coalesced last-seen times, so the next owner's
        :meth:`_on_assigned` reads them."""
        if self._storage is not None:
            try:
                await self._writer.call(self._storage.flush())
            except Exception as exc:  # noqa: BLE001 - the next owner replays from the committed offset anyway
                log.warning("presence flush on revoke failed %s", kv(error=str(exc)[:200]))

    def _check_copartitioned(self, assigned: Any) -> None:
        """Presence needs partition p of every presence topic on one instance."""
        t = self.topics
        by_topic: dict[str, set[int]] = {}
        for tp in assigned:
            by_topic.setdefault(tp.topic, set()).add(tp.partition)
        parts = [frozenset(by_topic.get(x, set())) for x in (t.readings, t.status, t.device_events)]
        if len(set(parts)) > 1:
            log.warning("presence topics not co-partitioned here: silence is judged only for devices "
                        "whose partitions of all three topics are assigned %s",
                        kv(readings=sorted(parts[0]), status=sorted(parts[1]), device_events=sorted(parts[2])))

    async def _reload_registry(self, engine: Engine) -> None:
        """Re-read the registry and re-resolve every known device's context (thresholds,
        labels, expected interval). A device registered after start was otherwise never judged
        for silence until a restart. On a database error the previous facts stay."""
        if self._conn is None:
            return
        t0 = time.perf_counter()
        try:
            meta = await registry_meta(self._conn, strict=True)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("registry reload failed; keeping the previous one %s", kv(error=str(exc)[:200]))
            return
        engine.devices.refresh(meta)
        log.info("registry reloaded %s", kv(known_devices=len(engine.devices),
                                             seconds=round(time.perf_counter() - t0, 3)))

    async def _drain_pending(self) -> None:
        if self._pending is not None:
            task, self._pending = self._pending, None
            await task

    async def run(self) -> RunStats:
        opts = self.options
        s = self.settings
        config = self.config or load_config(s.detectors_file if s.detectors_file.is_file() else None)
        conn = await asyncpg.connect(s.postgres.dsn)
        self._conn = conn
        self._writer = _WriterThread()
        storage = Storage(await self._writer.call(asyncpg.connect(s.postgres.dsn)))
        storage.deadletter_policy = DeadLetterPolicy.from_settings(s.ingest)
        self._storage = storage
        await self._writer.call(storage.prepare())
        meta = await registry_meta(conn)
        engine = Engine(config, meta)
        self.engine = engine
        await self._warm_up(engine, conn)
        tune_gc()
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka.bootstrap, client_id=opts.client_id, acks="all" if s.kafka.acks == "all" else int(s.kafka.acks),
            enable_idempotence=False, linger_ms=s.kafka.linger_ms, max_batch_size=s.kafka.max_batch_bytes,
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka.bootstrap, group_id=opts.group_id, client_id=opts.client_id,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=opts.max_records,
            fetch_max_bytes=opts.fetch_max_bytes, max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=s.kafka.fetch_max_wait_ms,
            # range, not round-robin: partition p of readings, status and device-events (same
            # partition count, same key → same p) lands on one instance, the device's presence judge
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self._consumer = consumer
        topics = self.topics
        consumer.subscribe([topics.readings, topics.status, topics.device_events, topics.deadletter],
                           listener=_Rebalance(self))
        await producer.start()
        try:
            await consumer.start()
            try:
                await self._loop(consumer, producer, storage, engine)
                await self._drain_pending()
            finally:
                with contextlib.suppress(Exception):
                    await self._drain_pending()
                await consumer.stop()
        finally:
            await producer.stop()
            await conn.close()
            with contextlib.suppress(Exception):
                await self._writer.call(storage.flush())
                await self._writer.call(storage.conn.close())
            self._writer.close()
        return self.stats

    async def _warm_up(self, engine: Engine, conn: asyncpg.Connection) -> None:
        t0 = time.perf_counter()
        firing = await load_firing(conn)
        readings = await load_recent_readings(conn, self.options.warmup_readings_s)
        dev_events = await load_recent_device_events(conn, self.options.warmup_device_events_s)
        latest = await load_latest_times(conn)
        presence = await load_presence(conn)
        engine.warm_up(firing, readings, dev_events, latest, presence)
        log.info("state rebuilt %s", kv(firing=len(firing), readings=len(readings), device_events=len(dev_events),
                                        presence=len(presence), devices=len(engine.devices),
                                        seconds=round(time.perf_counter() - t0, 3)))

    async def _loop(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, storage: Storage,
                    engine: Engine) -> None:
        opts = self.options
        topics = self.topics
        st = self.stats
        st.started = time.perf_counter()
        idle_since = time.perf_counter()
        presence_topics = (topics.readings, topics.status, topics.device_events)
        next_reload = time.monotonic() + (opts.registry_refresh_s or math.inf)
        while not self._stop.is_set():
            if time.monotonic() >= next_reload:
                await self._reload_registry(engine)
                next_reload = time.monotonic() + (opts.registry_refresh_s or math.inf)
            polled = await consumer.getmany(timeout_ms=opts.poll_timeout_ms, max_records=opts.max_records)
            clock = await self._presence_clock(consumer)
            if not polled:
                if clock is not None:  # the silence check also runs while nothing arrives
                    out = engine.process(presence_clock=clock[0], presence_upper=clock[1])
                    if out.events or out.presence:
                        await self._drain_pending()
                        self._pending = asyncio.create_task(self._finish(consumer, producer, storage, out, [], {}))
                if opts.idle_exit_s is not None and time.perf_counter() - idle_since > opts.idle_exit_s:
                    break
                continue
            now = time.perf_counter()
            idle_since = now
            if not st.first_record:
                st.first_record = now
            readings: list[Message] = []
            statuses: list[Message] = []
            dev_events: list[Message] = []
            letters: list[DeadLetter] = []
            offsets: dict[TopicPartition, int] = {}
            for tp, records in polled.items():
                offsets[tp] = records[-1].offset + 1
                if tp.topic in presence_topics:
                    self._consumed_ts[tp] = records[-1].timestamp / 1000.0
                prefix = f"{tp.topic}:{tp.partition}:"
                if tp.topic == topics.readings:
                    readings.extend(Message(r.value, prefix + str(r.offset)) for r in records if r.value is not None)
                elif tp.topic == topics.status:
                    for r in records:
                        if r.value is None:
                            continue
                        if r.key is not None and r.key.startswith(INGEST_BEAT_KEY_PREFIX):
                            self._beat(tp.partition, r.value, prefix + str(r.offset))
                        else:
                            statuses.append(Message(r.value, prefix + str(r.offset)))
                elif tp.topic == topics.device_events:
                    dev_events.extend(Message(r.value, prefix + str(r.offset)) for r in records if r.value is not None)
                elif tp.topic == topics.deadletter:
                    for r in records:
                        try:
                            letters.append(DeadLetter.model_validate_json(r.value or b""))
                        except ValidationError as exc:
                            log.warning("unreadable dead letter skipped %s", kv(source=prefix + str(r.offset), error=str(exc)[:200]))
            t0 = time.perf_counter()
            out = engine.process(readings, statuses, dev_events, presence_clock=clock[0] if clock else None,
                                 presence_upper=clock[1] if clock else math.inf)
            st.detect_s += time.perf_counter() - t0
            n_batch = len(out.readings) + len(out.flagged_readings)
            m.BATCH_SIZE.observe(n_batch)
            st.consumed += n_batch
            # our own dead letters reach the table through the topic, like the bridge's
            to_store = letters
            await self._drain_pending()  # one write in flight, in order
            self._pending = asyncio.create_task(self._finish(consumer, producer, storage, out, to_store, offsets))
            # getmany returns without suspending while records are buffered: yield so the
            # write is handed to the writer thread before we decode the next batch
            for _ in range(3):
                await asyncio.sleep(0)
            st.batches += 1
            st.last_record = time.perf_counter()
            if opts.stop_after_readings is not None and st.consumed >= opts.stop_after_readings:
                await self._drain_pending()
                break
            self._lag(consumer, polled)

    def _beat(self, partition: int, value: bytes, source: str) -> None:
        try:
            beat = IngestBeat.model_validate_json(value)
        except ValidationError as exc:
            log.warning("unreadable ingest beat skipped %s", kv(source=source, error=str(exc)[:200]))
            return
        self._marks.beat(partition, beat.bridge, beat.at.timestamp())

    async def _presence_clock(self, consumer: AIOKafkaConsumer) -> tuple[Callable[[str], Clock | None], float] | None:
        """When the presence check is due: (device → its clock or None, upper bound of all).

        Per owned partition of the three presence topics: caught up at its last fetch (position
        ≥ highwater) → the time of that fetch; behind → the Kafka timestamp of the last record
        consumed from it; never fetched → unknown. Both minus ``presence_margin_s``. A device's
        clock is the smallest over its three partitions, and (``device.silence_clock: ingest``)
        no later than the bridges' watermark on its status partition; None when a partition is
        not ours or a clock is unknown."""
        opts = self.options
        if opts.presence_check_s is None:
            return None
        now = time.time()
        if now < self._presence_due:
            return None
        self._presence_due = now + opts.presence_check_s
        t = self.topics
        names = (t.readings, t.status, t.device_events)
        clocks: dict[TopicPartition, float] = {}
        for tp in consumer.assignment():
            if tp.topic not in names:
                continue
            hw = consumer.highwater(tp)
            polled_ms = consumer.last_poll_timestamp(tp)
            if hw is None or polled_ms is None:
                continue
            if await consumer.position(tp) >= hw:
                clocks[tp] = min(now, polled_ms / 1000.0) - opts.presence_margin_s
            elif tp in self._consumed_ts:
                clocks[tp] = self._consumed_ts[tp] - opts.presence_margin_s
        if not clocks:
            return None
        counts = tuple(len(consumer.partitions_for_topic(x) or ()) for x in names)
        if counts != self._part_counts:
            self._part_counts, self._device_parts = counts, {}
        if 0 in counts:
            return None
        parts_cache = self._device_parts
        partitioner = self._partitioner
        all_parts = [list(range(n)) for n in counts]
        marks = self._marks
        devices = self.engine.devices if self.engine is not None else None

        def clock_of(device_id: str) -> Clock | None:
            parts = parts_cache.get(device_id)
            if parts is None:  # the bridge's partitioner (ingest/bridge.py: DefaultPartitioner over the key)
                key = device_id.encode()
                parts = parts_cache[device_id] = tuple(partitioner(key, ap, ap) for ap in all_parts)
            best = math.inf
            for name, p in zip(names, parts, strict=True):
                c = clocks.get(TopicPartition(name, p))
                if c is None:
                    return None
                best = min(best, c)
            ctx = devices.get(device_id) if devices is not None else None
            if ctx is not None and ctx.params.device.silence_clock == "consumed":
                return best, -math.inf
            mark = marks.get(parts[1])  # the status partition carries the bridges' beats
            if mark is None:
                return None  # no bridge has vouched for this partition yet
            return min(best, mark[0]), mark[1]

        return clock_of, max(clocks.values())

    def _lag(self, consumer: AIOKafkaConsumer, polled: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in polled.items():
            hw = consumer.highwater(tp)
            if hw is not None:
                m.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, hw - records[-1].offset - 1))

    async def _finish(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, storage: Storage,
                      out: BatchOutput, letters: list[DeadLetter], offsets: dict[TopicPartition, int]) -> None:
        topics = self.topics
        sends = []
        for ev in out.events:
            sends.append(await producer.send(topics.events, ev.model_dump_json().encode(), key=ev.device_id.encode()))
            m.EVENTS.labels(ev.kind, ev.severity.value, ev.state.value).inc()
        for dl in out.deadletters:
            sends.append(await producer.send(topics.deadletter, dl.model_dump_json().encode(),
                                             key=(dl.device_id or dl.vendor or "detectors").encode()))
            m.DEADLETTERS.labels(dl.reason.value).inc()
        if sends:
            await asyncio.gather(*sends)
        out.deadletters = list(letters)  # persist what the topic delivered (ours come back that way)
        delay = 0.5
        reconnect = False
        while True:
            # Ride out a database outage (restart, crash recovery): retry the write, and the
            # reconnect itself, until PostgreSQL accepts us again. Offsets are committed only
            # after the write, so nothing is lost meanwhile. A record the database refuses for
            # a data reason never gets here: the writer isolates it (Storage.write).
            try:
                if reconnect:
                    with contextlib.suppress(Exception):
                        await self._writer.call(storage.conn.close(timeout=2))
                    storage.conn = await self._writer.call(asyncpg.connect(self.settings.postgres.dsn))
                    await self._writer.call(storage.prepare())
                    reconnect = False
                stats = await self._writer.call(storage.write(out))
                break
            except Exception as exc:  # noqa: BLE001 - the stage never exits on a write: retry
                kind = classify(exc)
                if kind == "bug":  # the same for every record (a wrong statement, a missing table)
                    log.error("database write failed, not a connection problem; retrying %s",
                              kv(error=refusal_detail(exc)[:300], in_s=delay))
                else:
                    log.error("database write failed, retrying %s", kv(error=str(exc)[:300], in_s=delay))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                reconnect = kind == "retry" or isinstance(exc, _DB_UNAVAILABLE)
        if stats.refused:
            # the database's refusals become dead letters before the offsets move past them
            sends = [await producer.send(topics.deadletter, dl.model_dump_json().encode(),
                                         key=(dl.device_id or "detectors").encode()) for dl in stats.refused]
            await asyncio.gather(*sends)
            for dl in stats.refused:
                m.DEADLETTERS.labels(dl.reason.value).inc()
        m.WRITE_SECONDS.observe(stats.seconds)
        if stats.merged:
            m.REPLAY_FALLBACKS.inc()
        m.READINGS.labels("stored").inc(stats.readings - out.flagged)
        m.READINGS.labels("flagged").inc(out.flagged)
        m.LATE_READINGS.inc(out.late)
        st = self.stats
        st.readings += stats.readings
        st.events += len(out.events)
        st.deadletters += len(letters)
        st.write_s += stats.seconds
        if not offsets:
            return  # a presence-check output: nothing consumed
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:  # rebalanced meanwhile: the next owner replays, idempotently
            log.warning("offset commit failed %s", kv(error=str(exc)))


def utc_now() -> datetime:
    return datetime.now(UTC)


def tune_gc() -> None:
    """Decoding allocates ~40 short-lived objects per reading; with the default thresholds the
    cyclic collector runs every few hundred allocations and walks the long-lived state each
    time (~30 % of detection time measured). Freeze what exists after start-up (registry,
    warm state) and collect the young generation less often; nothing here builds cycles."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 20, 10)
