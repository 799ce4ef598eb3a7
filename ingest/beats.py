"""The bridge's watermark beats, which let the detectors judge silence (在线全时段).

With N bridges none sees all of a device's messages, so the bridge judges no silence (the
detectors do, detectors/offline.py). It forwards Last Wills, status reports and every heartbeat,
and while subscribed it writes an :class:`~hazmon.contracts.IngestBeat` to every partition of
the status topic every ``mqtt.beat_interval_s``: "everything I received before ``at`` is on
Kafka" (``at`` = the oldest receive time still in flight, or now). The detectors bound their
silence verdicts by the smallest live watermark, so an ingest outage (bridges down, the broker
queueing) is not mistaken for silent devices.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from hazmon.contracts import INGEST_BEAT_KEY_PREFIX, IngestBeat
from hazmon.logs import kv
from ingest.mqtt import MqttMessage
from ingest.pipeline import Record
from ingest.producer import InFlight

__all__ = ["watermark", "beat_every"]

log = logging.getLogger("ingest.bridge")  # the bridge's log, where these lines always were


def watermark(inbox: deque[tuple[MqttMessage, float]], open_: deque[InFlight], now: float) -> float:
    """Everything received before the returned time is acknowledged by Kafka: the oldest
    receive time still waiting (inbox, or records in flight), else ``now``."""
    at = now
    if inbox:
        at = min(at, inbox[0][1])
    while open_ and open_[0].remaining == 0:
        open_.popleft()
    if open_:
        at = min(at, open_[0].received)
    return at


async def beat_every(every_s: float, topic: str, bridge: str, *, subscribed: Callable[[], bool],
                     mark: Callable[[float], float], partitions: Callable[[], Awaitable[list[int]]],
                     send: Callable[[Record], Awaitable[None]], sent: Callable[[], None]) -> None:
    """Every ``every_s`` while ``subscribed()``: one beat ``at = mark(now)`` to each partition."""
    if every_s <= 0:
        return
    key = INGEST_BEAT_KEY_PREFIX + bridge.encode()
    while True:
        await asyncio.sleep(every_s)
        if not subscribed():
            continue  # cannot receive: no promise about "everything before now"
        try:
            parts = await partitions()
            now = time.time()
            beat = IngestBeat(bridge=bridge[:64], at=datetime.fromtimestamp(mark(now), UTC),
                              sent_at=datetime.fromtimestamp(now, UTC)).model_dump_json().encode()
            for p in parts:
                await send(Record(topic, key, beat, partition=p))
            sent()
        except Exception as exc:  # noqa: BLE001 - a missed beat only delays silence verdicts downstream
            log.warning("ingest beat failed %s", kv(error=repr(exc)[:200]))
