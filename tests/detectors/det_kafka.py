"""Helpers for the detector tests: produce scenario feeds, read back events and rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from det_scenarios import Feed

from hazmon.contracts import Event
from hazmon.topics import Topics


def topic_of(topics: Topics, feed: Feed) -> str:
    return {"readings": topics.readings, "status": topics.status, "device_events": topics.device_events}[feed.topic]


async def produce(bootstrap: str, topics: Topics, feeds: Iterable[Feed]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", linger_ms=5)
    await producer.start()
    n = 0
    try:
        futs = []
        for f in feeds:
            futs.append(await producer.send(topic_of(topics, f), f.value, key=f.key.encode()))
            n += 1
        await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return n


async def consume_events(bootstrap: str, topic: str, *, idle_s: float = 2.0) -> list[Event]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"check-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[Event] = []
    try:
        idle = 0.0
        while idle < idle_s:
            got = await consumer.getmany(timeout_ms=500)
            if not got:
                idle += 0.5
                continue
            idle = 0.0
            for records in got.values():
                out.extend(Event.model_validate_json(r.value) for r in records)
    finally:
        await consumer.stop()
    return out


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()
