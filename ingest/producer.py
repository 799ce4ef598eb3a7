"""The bridge's Kafka side: the producer, the broker's record-size limit, the key → partition
cache, and one MQTT message's records in flight (:class:`InFlight`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)
from aiokafka.partitioner import DefaultPartitioner

from hazmon.logs import kv
from hazmon.settings import Settings
from ingest.mqtt import MqttMessage

__all__ = ["NON_RETRYABLE", "KAFKA_ACKING_S", "InFlight", "PartitionCache", "start_producer",
           "broker_record_limit"]

log = logging.getLogger(__name__)

#: Kafka counts as acknowledging (slow, not down) if it acknowledged a record this recently;
#: only then is a vendor's in-flight limit applied
KAFKA_ACKING_S = 1.0

#: produce errors that no retry can cure: the record itself is refused (its size, its format,
#: its topic name). Its message is dead-lettered instead of retried forever (which held the
#: message unacknowledged and its in-flight slot taken, across restarts)
NON_RETRYABLE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError,
                 CorruptRecordException, InvalidTopicError, UnsupportedForMessageFormatError)


@dataclass(slots=True)
class InFlight:
    """One MQTT message waiting for Kafka to acknowledge all its records."""

    message: MqttMessage | None
    remaining: int
    t0: float
    received: float = 0.0  # wall time the MQTT message was received (the beat's watermark)
    more: list[MqttMessage] | None = None  # a shed window's messages, acked with its dead letter
    vendor: str | None = None  # counted in the vendor's in-flight (flood control)


async def start_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    k = settings.kafka
    acks: Any = k.acks if k.acks == "all" else int(k.acks)
    producer = AIOKafkaProducer(
        bootstrap_servers=k.bootstrap,
        client_id=f"{k.client_id}-{client_id}",
        acks=acks,
        linger_ms=k.linger_ms,
        max_batch_size=min(k.max_batch_bytes, 1024 * 1024),
        max_request_size=settings.ingest.producer_max_request_bytes,
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


async def broker_record_limit(settings: Settings) -> int | None:
    """The smallest ``max.message.bytes`` of the topics the bridge produces to, when the broker
    reports one (Apache Kafka does; Tansu 0.6 answers DescribeConfigs with no entries, and then
    ``ingest.max_record_bytes`` alone applies)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    t = settings.kafka.topics
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap, request_timeout_ms=5000)
    limits: list[int] = []
    try:
        await asyncio.wait_for(admin.start(), 5)
        names = (t.readings, t.status, t.device_events, t.deadletter)
        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        resp = await asyncio.wait_for(admin.describe_configs(resources), 5)
        for r in resp:
            for res in r.resources:
                for entry in res[4]:  # (name, value, read_only, is_default, …)
                    if entry[0] == "max.message.bytes" and str(entry[1]).isdigit():
                        limits.append(int(entry[1]))
    except Exception as exc:  # noqa: BLE001 - the setting alone then applies
        log.info("broker record limit not read, using ingest.max_record_bytes %s",
                 kv(error=f"{type(exc).__name__}: {exc}"[:200]))
        return None
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return min(limits) if limits else None


class PartitionCache:
    """The key's partition, computed once per (topic, device) with the producer's own
    partitioner (murmur2 in Python is a visible share of the hot path)."""

    def __init__(self) -> None:
        self._partitions: dict[tuple[str, bytes], int] = {}
        self._topic_parts: dict[str, list[int]] = {}
        self._partitioner = DefaultPartitioner()

    async def partitions(self, producer: AIOKafkaProducer, topic: str) -> list[int]:
        parts = self._topic_parts.get(topic)
        if parts is None:
            parts = self._topic_parts[topic] = sorted(await producer.partitions_for(topic))
        return parts

    async def partition(self, producer: AIOKafkaProducer, topic: str, key: bytes) -> int:
        cache = self._partitions
        part = cache.get((topic, key))
        if part is None:
            parts = await self.partitions(producer, topic)
            part = self._partitioner(key, parts, parts)
            if len(cache) > 1_000_000:
                cache.clear()
            cache[(topic, key)] = part
        return part
