"""A bad event fetched in one batch with real trapped-passenger alarms (issue 17): the good ones
become alerts, the bad ones land in the dead-letter topic with the reason, and the offsets are
committed past all of them — never a whole batch lost, never a batch retried forever."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from alerting_helpers import T0, ServiceFactory, consume, ev, produce

from alerting.clock import ManualClock
from hazmon.contracts import DeadLetter, Event
from hazmon.topics import Topics
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _dead_letters(bootstrap: str, topics: Topics, want: int) -> list[DeadLetter]:
    dlq = AIOKafkaConsumer(topics.deadletter, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                           group_id="dlq-reader")
    await dlq.start()
    got: list[DeadLetter] = []
    try:
        for _ in range(20):
            batch = await dlq.getmany(timeout_ms=500)
            got += [DeadLetter.model_validate_json(r.value) for rs in batch.values() for r in rs]
            if len(got) >= want:
                break
    finally:
        await dlq.stop()
    return got


async def test_bad_events_among_trapped_passenger_alarms_in_one_batch(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    topics: Topics, kafka_bootstrap: str,
) -> None:
    async with pool.acquire() as conn:  # a rule of this database the contracts do not know
        await conn.execute("ALTER TABLE alerts ADD CONSTRAINT zone_at_most_16 CHECK (char_length(zone) <= 16)")
    trapped = [ev("elevator.trapped", "E6", "S6", at=T0 + timedelta(minutes=i)) for i in range(6)]
    trapped = [e.model_copy(update={"zone": "2号楼"}) for e in trapped]
    gas = ev("gas.high", "S1-GAS1", "S1")
    nul = ev("elevator.trapped", "E6", "S6", at=T0 + timedelta(minutes=30)).model_dump(mode="json")
    nul["zone"] = "3F\u0000东侧"
    refused = ev("elevator.trapped", "E6", "S6", at=T0 + timedelta(minutes=31)).model_copy(
        update={"zone": "北区地下二层设备间东侧第三排电梯机房"})
    # one partition (key E6), in this order: 3 good, the U+0000 one, 1 good, the refused one, 2 good
    await produce(kafka_bootstrap, topics, trapped[:3])
    await produce_raw_keyed(kafka_bootstrap, topics, nul)
    await produce(kafka_bootstrap, topics, trapped[3:4])
    await produce(kafka_bootstrap, topics, [refused])
    await produce(kafka_bootstrap, topics, trapped[4:] + [gas])

    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    assert await consume(svc, 9) == 9
    async with pool.acquire() as conn:
        stored = {r["id"] for r in await conn.fetch("SELECT id FROM alerts")}
    assert stored == {e.id for e in [*trapped, gas]}

    got = await _dead_letters(kafka_bootstrap, topics, 2)
    print("\n" + "\n".join(f"[alerting poison] {d.reason} {d.source}: {d.detail[:200]}" for d in got))
    assert len(got) == 2 and all(d.stage == "alerting" for d in got)
    by_reason = {d.reason.value: d for d in got}
    assert set(by_reason) == {"schema", "refused"}
    assert "U+0000" in by_reason["schema"].detail
    assert "23514" in by_reason["refused"].detail and "zone_at_most_16" in by_reason["refused"].detail
    assert Event.model_validate_json(by_reason["refused"].raw).id == refused.id

    # committed past everything: nothing is fetched again, by this consumer or a new one of the group
    assert await svc.poll_once(timeout_ms=500) == 0
    c = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id="alerting-test", enable_auto_commit=False)
    await c.start()
    try:
        parts = [TopicPartition(topics.events, p) for p in sorted(c.partitions_for_topic(topics.events) or ())]
        ends = await c.end_offsets(parts)
        committed = {tp: (await c.committed(tp)) or 0 for tp in parts}
        assert all(committed[tp] >= ends[tp] for tp in parts), (committed, ends)  # (Tansu reports the end one short)
    finally:
        await c.stop()


async def produce_raw_keyed(bootstrap: str, topics: Topics, doc: dict) -> None:
    """A record built by hand (it would not pass the contract), keyed like its device's."""
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(topics.events, json.dumps(doc, ensure_ascii=False).encode(), key=doc["device_id"].encode())
    finally:
        await prod.stop()



async def test_a_batch_the_database_could_not_store_is_fetched_again_not_skipped(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    topics: Topics, kafka_bootstrap: str,
) -> None:
    """Not the records' fault (here: the table is missing, SQLSTATE 42P01 — the same for every
    record): nothing is dead-lettered, nothing committed; once the database is right again the
    same records are fetched and stored (the loop used to commit past the lost batch)."""
    trapped = [ev("elevator.trapped", "E6", "S6", at=T0 + timedelta(minutes=i)) for i in range(3)]
    await produce(kafka_bootstrap, topics, trapped)
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE alerts RENAME TO alerts_away")
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            for _ in range(20):
                await svc.poll_once(timeout_ms=500)
    finally:
        async with pool.acquire() as conn:
            await conn.execute("ALTER TABLE alerts_away RENAME TO alerts")
    assert await consume(svc, 3) == 3
    async with pool.acquire() as conn:
        assert {r["id"] for r in await conn.fetch("SELECT id FROM alerts")} == {e.id for e in trapped}
    assert await _dead_letters(kafka_bootstrap, topics, 1) == []
