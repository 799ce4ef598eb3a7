"""Ingest cannot be stalled by size (issue 17 item 9), against real mosquitto + Tansu + PostgreSQL.

A 252 KB elevator message (2,180 GB/T 24476 records without time, nine data items each)
becomes one 2 MB readings batch: over the producer's request cap, which aiokafka refuses with
MessageSizeTooLargeError on every retry. Before the fix that message was retried forever,
never acknowledged and held its in-flight slot.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from ingest_helpers import Env, KafkaReader, first_seqs

from hazmon.settings import IngestSettings
from sim.devices import Simulator

pytestmark = pytest.mark.timeout(180)

ADAPTERS = (("hazmon_json", "gas"), ("elevator_json", "elevator"))
BIG_RECORDS = 2180
ITEMS_PER_RECORD = 9


def big_elevator_payload(lift_id: str, n: int = BIG_RECORDS) -> bytes:
    rec = {"running": 1, "person": 1, "doorZone": 1, "direction": "up", "floor": 1, "door": "open", "speed": 1,
           "ratedSpeed": 2, "mode": "normal"}
    return json.dumps({"liftId": lift_id, "records": [rec] * n}, separators=(",", ":")).encode()


def with_ingest(env: Env, **kw: Any) -> None:
    env.settings = env.settings.model_copy(update={"ingest": IngestSettings(**kw)})


async def stream_around(env: Env, big: list[tuple[str, bytes]], n: int = 600) -> tuple[Simulator, float]:
    """Publish ``n`` steady gas messages with the ``big`` ones in the middle of them."""
    gas = [d for d in env.devices if d.domain == "gas"]
    sim = Simulator(gas, seed=17, batch=3, topic_root=env.settings.mqtt.topic_root)
    t0 = time.time() - 3600
    msgs = list(sim.messages(n, t0=t0, spacing_s=1.0))
    async with env.publisher() as pub:
        futs = []
        for i, m in enumerate(msgs):
            if i == n // 2:
                futs += [pub.publish_nowait(topic, payload) for topic, payload in big]
            futs.append(pub.publish_nowait(m.topic, m.payload))
            if len(futs) >= 100:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
    return sim, t0


def stream_ids(sim: Simulator, n: int, t0: float) -> set[tuple[str, int]]:
    return {(m.device_id, int(json.loads(m.payload)["readings"][0]["seq"])) for m in sim.messages(n, t0=t0, spacing_s=1.0)}


async def settled(bridge: Any, received: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if bridge.stats.received >= received and bridge.stats.acked == bridge.stats.received and bridge._in_flight == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not settled: {bridge.stats} in_flight={bridge._in_flight}")


async def test_a_message_expanding_past_the_record_limit_is_split_and_the_stream_flows(ingest_env) -> None:  # type: ignore[no-untyped-def]
    env = await ingest_env(6, adapters=ADAPTERS)
    lift = next(d for d in env.devices if d.domain == "elevator")
    root = env.settings.mqtt.topic_root
    payload = big_elevator_payload(lift.device_id)
    assert 240_000 < len(payload) <= env.settings.mqtt.max_payload_bytes
    bridge = await env.start_bridge()
    sim, t0 = await stream_around(env, [(f"{root}/{lift.vendor}/{lift.device_id}/telemetry", payload)])
    want = stream_ids(sim, 600, t0)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr:
        got = await kr.until(lambda v: want <= first_seqs([x for x in v if x["device_id"] != lift.device_id])
                             and sum(len(x["samples"]) for x in v if x["device_id"] == lift.device_id) >= BIG_RECORDS * ITEMS_PER_RECORD,
                             timeout_s=60)
    parts = [x for x in got if x["device_id"] == lift.device_id]
    assert sum(len(x["samples"]) for x in parts) == BIG_RECORDS * ITEMS_PER_RECORD  # split, nothing lost, nothing twice
    assert len(parts) >= 2
    assert all(len(json.dumps(x, separators=(",", ":"))) <= env.settings.ingest.max_record_bytes for x in parts)
    await settled(bridge, 601)
    assert bridge.stats.retries == 0 and bridge.stats.deadletters == 0


async def test_a_record_the_producer_refuses_is_dead_lettered_not_retried(ingest_env) -> None:  # type: ignore[no-untyped-def]
    """Non-retryable produce error (aiokafka MessageSizeTooLargeError, raised by the real client).
    The bridge sizes records under the producer's cap; here its sizing limit is raised past it
    after start (what a broker with a lower max.message.bytes than ours amounts to), so the
    2 MB batch reaches the producer unsplit."""
    env = await ingest_env(6, adapters=ADAPTERS)
    lift = next(d for d in env.devices if d.domain == "elevator")
    root = env.settings.mqtt.topic_root
    topic = f"{root}/{lift.vendor}/{lift.device_id}/telemetry"
    payload = big_elevator_payload(lift.device_id)
    bridge = await env.start_bridge()
    assert bridge.pipeline is not None
    bridge.pipeline.max_record_bytes = 8_000_000
    sim, t0 = await stream_around(env, [(topic, payload)])
    want = stream_ids(sim, 600, t0)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr:
        await kr.until(lambda v: want <= first_seqs(v), timeout_s=60)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.deadletter) as dr:
        dls = await dr.until(lambda v: any(d["reason"] == "too_large" for d in v), timeout_s=30)
    d = next(d for d in dls if d["reason"] == "too_large")
    assert d["source"] == topic and d["device_id"] == lift.device_id and d["vendor"] == lift.vendor
    assert "MessageSizeTooLarge" in d["detail"], d["detail"]
    raw = base64.b64decode(d["raw"])
    assert raw and payload.startswith(raw)
    await settled(bridge, 601)
    assert bridge.stats.retries == 0


async def test_a_message_making_too_many_records_is_dead_lettered_too_large(ingest_env) -> None:  # type: ignore[no-untyped-def]
    env = await ingest_env(12, adapters=(("hazmon_json", "gas"),))
    with_ingest(env, max_records_per_message=5)
    root = env.settings.mqtt.topic_root
    gw = env.devices[0]
    batch = [{"device_id": d.device_id, "ts": time.time() - 10, "seq": 999_999, "values": {"gas_lel": 1.0}} for d in env.devices[:8]]
    topic = f"{root}/{gw.vendor}/{gw.device_id}/telemetry"
    bridge = await env.start_bridge()
    sim, t0 = await stream_around(env, [(topic, json.dumps(batch).encode())], n=300)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.deadletter) as dr:
        dls = await dr.until(lambda v: any(d["reason"] == "too_large" for d in v), timeout_s=30)
    d = next(d for d in dls if d["reason"] == "too_large")
    assert "8 records" in d["detail"] and "5" in d["detail"], d["detail"]
    assert json.loads(base64.b64decode(d["raw"])) == batch
    want = stream_ids(sim, 300, t0)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr:
        got = await kr.until(lambda v: want <= first_seqs(v), timeout_s=60)
    assert not [x for x in got if x["samples"][0].get("seq") == 999_999]  # none of its 8 records went out
    await settled(bridge, 301)


async def test_records_are_sized_under_the_brokers_max_message_bytes(ingest_env) -> None:  # type: ignore[no-untyped-def]
    """The topics say max.message.bytes = 300000 (Tansu keeps and reports topic configs): the
    bridge reads it at start and sizes the 2 MB batch under it, below ingest.max_record_bytes."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from hazmon.topics import Topics

    env = await ingest_env(6, adapters=ADAPTERS)
    topics = Topics(env.topics.prefix + "mmb")
    admin = AIOKafkaAdminClient(bootstrap_servers=env.settings.kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, 4, 1, topic_configs={"max.message.bytes": "300000"}) for n in topics.all()])
    finally:
        await admin.close()
    env.settings = env.settings.model_copy(update={"kafka": env.settings.kafka.model_copy(update={"topic_prefix": topics.prefix})})
    lift = next(d for d in env.devices if d.domain == "elevator")
    root = env.settings.mqtt.topic_root
    bridge = await env.start_bridge()
    assert bridge.pipeline is not None and bridge.pipeline.max_record_bytes <= 300_000 - 1024
    await stream_around(env, [(f"{root}/{lift.vendor}/{lift.device_id}/telemetry", big_elevator_payload(lift.device_id))], n=100)
    async with KafkaReader(env.settings.kafka.bootstrap, topics.readings) as kr:
        got = await kr.until(
            lambda v: sum(len(x["samples"]) for x in v if x["device_id"] == lift.device_id) >= BIG_RECORDS * ITEMS_PER_RECORD,
            timeout_s=60)
    parts = [x for x in got if x["device_id"] == lift.device_id]
    assert sum(len(x["samples"]) for x in parts) == BIG_RECORDS * ITEMS_PER_RECORD
    assert max(len(json.dumps(x, separators=(",", ":"))) for x in parts) <= 300_000
    await settled(bridge, 101)
