"""The detector loop's intake step: the consumer, and one poll split into typed work.

One consumer group (``detectors.group_id``) over the readings, status, device-events and
dead-letter topics, with the *range* assignor: the topics are keyed by device id with the same
partition count, so partition p of readings, status and device-events lands on one instance —
the device's presence judge (detectors/offline.py).

:class:`PartitionClocks` is the presence check's clock per device: per owned partition, the
wall clock when the partition is caught up (as of its last fetch), else the Kafka timestamp of
the last record consumed from it — a lagging or just restarted instance never judges a device
silent for data it simply has not read yet — and no later than the bridges' watermark
(:class:`~hazmon.contracts.IngestBeat` on the status partition), so an ingest outage is not
mistaken for silent devices.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from hazmon.contracts import INGEST_BEAT_KEY_PREFIX, DeadLetter, IngestBeat
from hazmon.logs import kv
from hazmon.settings import DetectorSettings, Settings
from hazmon.topics import Topics

from . import metrics as m
from .batch import Message
from .offline import Clock, IngestWatermarks
from .state import DeviceTable

__all__ = ["Polled", "PartitionClocks", "PresenceClock", "make_consumer", "split", "record_lag"]

log = logging.getLogger(__name__)

#: (device → its clock or None, the upper bound of all clocks): what Engine.process takes
PresenceClock = tuple[Callable[[str], Clock | None], float]


def make_consumer(settings: Settings, opts: DetectorSettings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, group_id=opts.group_id, client_id=opts.client_id,
        enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=opts.max_records,
        fetch_max_bytes=opts.fetch_max_bytes, max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        # range, not round-robin: partition p of readings, status and device-events (same
        # partition count, same key → same p) lands on one instance, the device's presence judge
        partition_assignment_strategy=(RangePartitionAssignor,),
    )


@dataclass(slots=True)
class Polled:
    """One poll, split by topic: the engine's input, the dead letters to store, the offsets to commit."""

    readings: list[Message] = field(default_factory=list)
    statuses: list[Message] = field(default_factory=list)
    device_events: list[Message] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


def split(polled: dict[TopicPartition, list[Any]], topics: Topics, clocks: PartitionClocks) -> Polled:
    """Records → :class:`Polled`; ingest beats go to ``clocks``, unreadable dead letters are skipped."""
    out = Polled()
    presence_topics = (topics.readings, topics.status, topics.device_events)
    for tp, records in polled.items():
        out.offsets[tp] = records[-1].offset + 1
        if tp.topic in presence_topics:
            clocks.consumed(tp, records[-1].timestamp / 1000.0)
        prefix = f"{tp.topic}:{tp.partition}:"
        if tp.topic == topics.readings:
            out.readings.extend(Message(r.value, prefix + str(r.offset)) for r in records
                                if r.value is not None)
        elif tp.topic == topics.status:
            for r in records:
                if r.value is None:
                    continue
                if r.key is not None and r.key.startswith(INGEST_BEAT_KEY_PREFIX):
                    clocks.beat(tp.partition, r.value, prefix + str(r.offset))
                else:
                    out.statuses.append(Message(r.value, prefix + str(r.offset)))
        elif tp.topic == topics.device_events:
            out.device_events.extend(Message(r.value, prefix + str(r.offset)) for r in records
                                     if r.value is not None)
        elif tp.topic == topics.deadletter:
            for r in records:
                try:
                    out.letters.append(DeadLetter.model_validate_json(r.value or b""))
                except ValidationError as exc:
                    log.warning("unreadable dead letter skipped %s",
                                kv(source=prefix + str(r.offset), error=str(exc)[:200]))
    return out


def record_lag(consumer: AIOKafkaConsumer, polled: dict[TopicPartition, list[Any]]) -> None:
    for tp, records in polled.items():
        hw = consumer.highwater(tp)
        if hw is not None:
            m.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, hw - records[-1].offset - 1))


class PartitionClocks:
    """The presence check's per-partition clocks and the bridges' watermarks (module docstring)."""

    def __init__(self, topics: Topics, opts: DetectorSettings) -> None:
        self.topics = topics
        self.opts = opts
        #: presence topic partition → Kafka timestamp (s) of the last record consumed from it
        self._consumed_ts: dict[TopicPartition, float] = {}
        self._partitioner = DefaultPartitioner()
        self._device_parts: dict[str, tuple[int, ...]] = {}
        self._part_counts: tuple[int, ...] = ()
        self._due = 0.0
        self.marks = IngestWatermarks(opts.bridge_ttl_s, opts.blind_gap_s)

    def consumed(self, tp: TopicPartition, ts: float) -> None:
        self._consumed_ts[tp] = ts

    def beat(self, partition: int, value: bytes, source: str) -> None:
        try:
            beat = IngestBeat.model_validate_json(value)
        except ValidationError as exc:
            log.warning("unreadable ingest beat skipped %s", kv(source=source, error=str(exc)[:200]))
            return
        self.marks.beat(partition, beat.bridge, beat.at.timestamp())

    def assigned(self, assigned: Any) -> None:
        """Forget what this instance no longer owns."""
        self._consumed_ts = {tp: t for tp, t in self._consumed_ts.items() if tp in assigned}
        self.marks.keep_only(tp.partition for tp in assigned if tp.topic == self.topics.status)

    async def due(self, consumer: AIOKafkaConsumer, devices: DeviceTable | None) -> PresenceClock | None:
        """When the presence check is due: (device → its clock or None, upper bound of all).

        Per owned partition of the three presence topics: caught up at its last fetch (position
        ≥ highwater) → the time of that fetch; behind → the Kafka timestamp of the last record
        consumed from it; never fetched → unknown. Both minus ``presence_margin_s``. A device's
        clock is the smallest over its three partitions, and (``device.silence_clock: ingest``)
        no later than the bridges' watermark on its status partition; None when a partition is
        not ours or a clock is unknown."""
        opts = self.opts
        if opts.presence_check_s is None:
            return None
        now = time.time()
        if now < self._due:
            return None
        self._due = now + opts.presence_check_s
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
        marks = self.marks

        def clock_of(device_id: str) -> Clock | None:
            parts = parts_cache.get(device_id)
            if parts is None:  # the bridge's partitioner (ingest: DefaultPartitioner over the key)
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
