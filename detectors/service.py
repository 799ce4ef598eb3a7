"""The detector stage: intake → engine → write → commit, one micro-batch at a time.

Per poll (:meth:`DetectorService.run`'s loop reads as these steps):

1. **intake** (:mod:`detectors.intake`) — ``getmany`` a micro-batch and split it by topic:
   readings, status, device events, the dead-letter topic's letters, the offsets; ingest beats
   feed the presence clocks;
2. **engine** (:meth:`Engine.process <detectors.engine.Engine.process>`) — decode (msgspec),
   validate, detect: pure, in-process, never raises on bad input;
3. **write** (:class:`detectors.write.BatchWriter`) — produce the batch's events and dead
   letters, store every row in one transaction (bisected by record when the database refuses
   one: its dead letter ``refused`` is produced), riding out a database outage;
4. **commit** (:func:`detectors.write.commit`) — the batch's offsets, only after 3
   (at-least-once; every sink is idempotent).

Steps 3–4 of batch N overlap the intake and detection of batch N+1 (one write in flight, on the
writer's own thread), which is where the throughput comes from.

Restart safety (kill -9): before consuming, the state is rebuilt from the database
(:mod:`detectors.warmup`). Presence (在线全时段, detectors/offline.py): this stage, not the
ingest bridges, judges device silence, because only here does one instance see all of a
device's traffic; every ``detectors.presence_check_s`` the engine runs the silence check against
the per-partition clocks of :class:`detectors.intake.PartitionClocks`, also while idle.

Dead letters on the dead-letter topic (the ingest bridge's and ours) are persisted into
``deadletters`` by the same loop; the ingest stage does not write the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from hazmon import heartbeat
from hazmon.contracts import DeadLetter
from hazmon.logs import kv
from hazmon.settings import DetectorSettings, Settings
from hazmon.topics import Topics

from . import metrics as m
from .batch import BatchOutput, RunStats
from .config import DetectorConfig, load_config
from .deadletter_retention import DeadLetterPolicy
from .engine import Engine
from .intake import PartitionClocks, Polled, PresenceClock, make_consumer, record_lag, split
from .storage import Storage
from .warmup import load_firing, load_presence, rebuild, registry_meta, reload_registry
from .write import BatchWriter, WriterThread, commit, make_producer

__all__ = ["DetectorService", "RunStats", "build", "tune_gc"]

log = logging.getLogger(__name__)


def build(settings: Settings, *, config: DetectorConfig | None = None) -> DetectorService:
    """The detector stage wired from its settings section (``hazmon detect``): the thresholds
    file is read (and validated) here, the connections are made by :meth:`DetectorService.run`."""
    if config is None:
        config = load_config(settings.detectors_file if settings.detectors_file.is_file() else None)
    return DetectorService(settings, settings.detectors, config)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: DetectorService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.service._drain_pending()
        await self.service._flush_presence()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.service._on_assigned(assigned)


class DetectorService:
    def __init__(self, settings: Settings, options: DetectorSettings | None = None,
                 config: DetectorConfig | None = None) -> None:
        self.settings = settings
        self.options = options or settings.detectors
        self.topics: Topics = settings.kafka.topics
        self.config = config
        self.stats = RunStats()
        self.clocks = PartitionClocks(self.topics, self.options)
        self._pending: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.engine: Engine | None = None
        self._conn: asyncpg.Connection | None = None
        self._storage: Storage | None = None
        self._writer: BatchWriter | None = None
        self._thread: WriterThread | None = None
        self._consumer: AIOKafkaConsumer | None = None

    def stop(self) -> None:
        self._stop.set()

    # --- the loop -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> RunStats:
        """Consume until ``stop`` is set (or :meth:`stop`, ``idle_exit_s``, ``stop_after_readings``)."""
        if stop is not None:
            self._stop = stop
        s, opts = self.settings, self.options
        # the stage's heartbeat (hazmon/heartbeat.py), from the start: every start of a
        # crash-looping detector is its own row (alerting/canary.py counts them)
        beat = asyncio.create_task(heartbeat.run(s.postgres.dsn, "detect", self._stop, detail=self._beat_detail))
        await asyncio.sleep(0)
        config = self.config or load_config(s.detectors_file if s.detectors_file.is_file() else None)
        conn = self._conn = await asyncpg.connect(s.postgres.dsn)
        thread = self._thread = WriterThread()
        storage = self._storage = Storage(await thread.call(asyncpg.connect(s.postgres.dsn)))
        storage.deadletter_policy = DeadLetterPolicy.from_settings(s.ingest)
        await thread.call(storage.prepare())
        meta = await registry_meta(conn, config=config)  # warns of site_classes keys no site uses
        engine = self.engine = Engine(config, meta, max_skew_s=s.mqtt.clock_skew_s)
        await rebuild(engine, conn, opts)
        tune_gc()
        k = s.kafka
        producer = make_producer(k.bootstrap, opts.client_id, k.acks, k.linger_ms, k.max_batch_bytes)
        consumer = self._consumer = make_consumer(s, opts)
        self._writer = BatchWriter(producer, storage, thread, self.topics, s.postgres.dsn, self.stats)
        t = self.topics
        consumer.subscribe([t.readings, t.status, t.device_events, t.deadletter], listener=_Rebalance(self))
        await producer.start()
        try:
            await consumer.start()
            try:
                await self._loop(consumer, engine)
                await self._drain_pending()
            finally:
                with contextlib.suppress(Exception):
                    await self._drain_pending()
                await consumer.stop()
        finally:
            beat.cancel()
            await producer.stop()
            await conn.close()
            with contextlib.suppress(Exception):
                await thread.call(storage.flush())
                await thread.call(storage.conn.close())
            thread.close()
        return self.stats

    def _beat_detail(self) -> dict[str, Any]:
        st = self.stats
        return {"consumed": st.consumed, "readings": st.readings, "events": st.events, "batches": st.batches}

    async def _loop(self, consumer: AIOKafkaConsumer, engine: Engine) -> None:
        opts, st = self.options, self.stats
        st.started = idle_since = time.perf_counter()
        next_reload = time.monotonic() + (opts.registry_refresh_s or math.inf)
        while not self._stop.is_set():
            if time.monotonic() >= next_reload:
                assert self._conn is not None
                await reload_registry(engine, self._conn)
                next_reload = time.monotonic() + (opts.registry_refresh_s or math.inf)
            polled = await consumer.getmany(timeout_ms=opts.poll_timeout_ms, max_records=opts.max_records)
            clock = await self.clocks.due(consumer, engine.devices)
            if not polled:
                if clock is not None:  # the silence check also runs while nothing arrives
                    out = engine.process(presence_clock=clock[0], presence_upper=clock[1])
                    if out.events or out.presence:
                        await self._hand_over(out, [], {})
                if opts.idle_exit_s is not None and time.perf_counter() - idle_since > opts.idle_exit_s:
                    break
                continue
            idle_since = time.perf_counter()
            if not st.first_record:
                st.first_record = idle_since
            work = split(polled, self.topics, self.clocks)  # 1. intake
            out = self._detect(engine, work, clock)  # 2. engine
            await self._hand_over(out, work.letters, work.offsets)  # 3. write → 4. commit
            # getmany returns without suspending while records are buffered: yield so the
            # write is handed to the writer thread before we decode the next batch
            for _ in range(3):
                await asyncio.sleep(0)
            st.batches += 1
            st.last_record = time.perf_counter()
            if opts.stop_after_readings is not None and st.consumed >= opts.stop_after_readings:
                await self._drain_pending()
                break
            record_lag(consumer, polled)

    def _detect(self, engine: Engine, work: Polled, clock: PresenceClock | None) -> BatchOutput:
        t0 = time.perf_counter()
        out = engine.process(work.readings, work.statuses, work.device_events,
                             presence_clock=clock[0] if clock else None,
                             presence_upper=clock[1] if clock else math.inf)
        self.stats.detect_s += time.perf_counter() - t0
        n_batch = len(out.readings) + len(out.flagged_readings)
        m.BATCH_SIZE.observe(n_batch)
        self.stats.consumed += n_batch
        return out

    async def _hand_over(self, out: BatchOutput, letters: list[DeadLetter],
                         offsets: dict[TopicPartition, int]) -> None:
        """Start write → commit of this output once the previous one is done (one in flight, in order)."""
        await self._drain_pending()
        self._pending = asyncio.create_task(self._write_and_commit(out, letters, offsets))

    async def _write_and_commit(self, out: BatchOutput, letters: list[DeadLetter],
                                offsets: dict[TopicPartition, int]) -> None:
        assert self._writer is not None and self._consumer is not None
        await self._writer.write(out, letters)  # our own dead letters reach the table through the topic
        await commit(self._consumer, offsets)

    async def _drain_pending(self) -> None:
        if self._pending is not None:
            task, self._pending = self._pending, None
            await task

    # --- rebalancing ----------------------------------------------------------------------
    async def _on_assigned(self, assigned: Any) -> None:
        self.clocks.assigned(assigned)
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
        if self._storage is not None and self._thread is not None:
            try:
                await self._thread.call(self._storage.flush())
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
                        kv(readings=sorted(parts[0]), status=sorted(parts[1]),
                           device_events=sorted(parts[2])))


def tune_gc() -> None:
    """Decoding allocates ~40 short-lived objects per reading; with the default thresholds the
    cyclic collector runs every few hundred allocations and walks the long-lived state each
    time (~30 % of detection time measured). Freeze what exists after start-up (registry,
    warm state) and collect the young generation less often; nothing here builds cycles."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 20, 10)
