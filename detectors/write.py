"""The detector loop's write and commit steps, for one engine output.

Write: produce the batch's events and our own dead letters and await every send; store the
readings, latest values, presence, status, device events, events and the dead letters the topic
delivered in one transaction (:class:`~detectors.storage.Storage`, on its own thread), riding
out a database outage; produce the database's refusals as dead letters. Commit: the batch's
offsets, only after all of that (at-least-once).

Events are produced before the rows are stored so that "stored" implies "announced": after a
crash between the two, the restart re-reads the batch from the committed offset and, the
readings being absent from the database, detects and produces the same events again (same ids:
``event_id(device, kind, starts_at)``); downstream dedups on the id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from hazmon.contracts import DeadLetter
from hazmon.logs import kv
from hazmon.pgerrors import classify, refusal_detail
from hazmon.topics import Topics

from . import metrics as m
from .batch import BatchOutput, RunStats
from .storage import Storage, WriteStats

__all__ = ["WriterThread", "BatchWriter", "make_producer", "commit"]

log = logging.getLogger(__name__)

#: errors that mean "the database is not available right now" (down, restarting, in crash
#: recovery), as opposed to a bad statement
_DB_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # class 57: admin shutdown, crash shutdown, cannot connect now
    asyncpg.InterfaceError,
    OSError,
)


def make_producer(bootstrap: str, client_id: str, acks: str, linger_ms: int,
                  max_batch_bytes: int) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id=client_id, acks="all" if acks == "all" else int(acks),
        enable_idempotence=False, linger_ms=linger_ms, max_batch_size=max_batch_bytes,
    )


class WriterThread:
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


class BatchWriter:
    """Announce → store → refusals for one engine output (module docstring)."""

    def __init__(self, producer: AIOKafkaProducer, storage: Storage, thread: WriterThread, topics: Topics,
                 dsn: str, stats: RunStats) -> None:
        self.producer, self.storage, self.thread = producer, storage, thread
        self.topics, self.dsn, self.stats = topics, dsn, stats

    async def write(self, out: BatchOutput, letters: list[DeadLetter]) -> None:
        await self._announce(out)
        out.deadletters = list(letters)  # persist what the topic delivered (ours come back that way)
        stats = await self._store(out)
        if out.canaries:  # after the store: an arriving canary says the database took its batch
            await asyncio.gather(*[await self.producer.send(self.topics.events, ev.model_dump_json().encode(),
                                                            key=ev.device_id.encode()) for ev in out.canaries])
        if stats.refused:
            # the database's refusals become dead letters before the offsets move past them
            await self._produce_letters(stats.refused, "detectors")
        self._count(out, stats, letters)

    async def _announce(self, out: BatchOutput) -> None:
        producer, topics = self.producer, self.topics
        sends = []
        for ev in out.events:
            sends.append(await producer.send(topics.events, ev.model_dump_json().encode(),
                                             key=ev.device_id.encode()))
            m.EVENTS.labels(ev.kind, ev.severity.value, ev.state.value).inc()
        for dl in out.deadletters:
            sends.append(await producer.send(topics.deadletter, dl.model_dump_json().encode(),
                                             key=(dl.device_id or dl.vendor or "detectors").encode()))
            m.DEADLETTERS.labels(dl.reason.value).inc()
        if sends:
            await asyncio.gather(*sends)

    async def _produce_letters(self, letters: list[DeadLetter], default_key: str) -> None:
        sends = [await self.producer.send(self.topics.deadletter, dl.model_dump_json().encode(),
                                          key=(dl.device_id or default_key).encode()) for dl in letters]
        await asyncio.gather(*sends)
        for dl in letters:
            m.DEADLETTERS.labels(dl.reason.value).inc()

    async def _store(self, out: BatchOutput) -> WriteStats:
        storage, thread = self.storage, self.thread
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
                        await thread.call(storage.conn.close(timeout=2))
                    storage.conn = await thread.call(asyncpg.connect(self.dsn))
                    await thread.call(storage.prepare())
                    reconnect = False
                stats: WriteStats = await thread.call(storage.write(out))
                return stats
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

    def _count(self, out: BatchOutput, stats: WriteStats, letters: list[DeadLetter]) -> None:
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


async def commit(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    """The commit step: a presence-check output (no offsets) commits nothing."""
    if not offsets:
        return
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, KafkaError) as exc:  # rebalanced meanwhile: the next owner replays
        log.warning("offset commit failed %s", kv(error=str(exc)))
