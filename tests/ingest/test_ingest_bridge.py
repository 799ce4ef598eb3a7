"""The bridge against real mosquitto + Tansu + PostgreSQL: nothing the broker accepted is lost."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import time
from datetime import UTC, datetime

import pytest
from ingest_helpers import KafkaReader, first_seqs
from prometheus_client import REGISTRY

from ingest.adapters.gbt26875 import FIRE_ALARM, NORMAL, ComponentState, encode_frame
from sim.devices import Simulator

pytestmark = pytest.mark.timeout(180)


def expected_ids(sim: Simulator, n: int, t0: float) -> set[tuple[str, int]]:
    return {(m.device_id, _seq(m.payload)) for m in sim.messages(n, t0=t0, spacing_s=1.0)}


def _seq(payload: bytes) -> int:
    return int(json.loads(payload)["readings"][0]["seq"])


def _vendor_readings(vendor: str) -> float:
    """hazmon_ingest_vendor_readings_total{vendor} of this process (the bridge runs in it)."""
    return REGISTRY.get_sample_value("hazmon_ingest_vendor_readings_total", {"vendor": vendor}) or 0.0


async def test_every_qos1_message_reaches_kafka(ingest_env) -> None:  # type: ignore[no-untyped-def]
    env = await ingest_env(20)
    vendors = {d.vendor for d in env.devices}
    before = {v: _vendor_readings(v) for v in vendors}
    bridge = await env.start_bridge()
    sim = Simulator(env.devices, seed=7, batch=5, topic_root=env.settings.mqtt.topic_root)
    t0 = time.time() - 3600
    async with env.publisher() as pub:
        report = await sim.blast(pub, 2000, t0=t0)
    assert report.failed == 0
    want = expected_ids(sim, 2000, t0)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr:
        got = await kr.until(lambda v: want <= first_seqs(v), timeout_s=90)
    assert want <= first_seqs(got)
    assert sum(len(v["samples"]) for v in got) >= report.readings
    assert bridge.stats.deadletters == 0 and bridge.diagnostics.snapshot() == {}
    # the per-vendor readings (rule HazmonVendorReadingsCollapsed) add up to what the bridge produced
    counted = 0.0
    for _ in range(50):  # exported every 0.1 s
        counted = sum(_vendor_readings(v) - before[v] for v in vendors)
        if counted == bridge.stats.readings:
            break
        await asyncio.sleep(0.1)
    assert counted == bridge.stats.readings >= report.readings


async def test_bad_payloads_land_in_deadletter_with_reasons(ingest_env) -> None:  # type: ignore[no-untyped-def]
    env = await ingest_env(3, adapters=(("hazmon_json", "gas"), ("gbt26875", "fire")))
    await env.start_bridge()
    root = env.settings.mqtt.topic_root
    gas, fire = env.devices[0], env.devices[1]
    now = datetime.now(UTC)
    good_frame = encode_frame([ComponentState(1, 1, 40, 1, 7, NORMAL | FIRE_ALARM, "2F", now)], serial=1, sent_at=now)
    bad = {
        "malformed": (f"{root}/{gas.vendor}/{gas.device_id}/telemetry", b'{"values": {"gas_lel": 1'),
        "schema": (f"{root}/{gas.vendor}/{gas.device_id}/telemetry", b'{"values": {"gas_lel": [1]}}'),
        "unknown_device": (f"{root}/{gas.vendor}/NOT-REGISTERED/telemetry", b'{"values": {"gas_lel": 1}}'),
        "forbidden_topic": (f"{root}/{gas.vendor}/{fire.device_id}/telemetry", b'{"values": {"gas_lel": 1}}'),
        "unknown_vendor": (f"{root}/nobody/{gas.device_id}/telemetry", b'{"values": {"gas_lel": 1}}'),
        "oversized": (f"{root}/{gas.vendor}/{gas.device_id}/telemetry", b"{" + b" " * (300 * 1024) + b"}"),
        "checksum": (f"{root}/{fire.vendor}/{fire.device_id}/telemetry", good_frame[:-3] + bytes([(good_frame[-3] + 1) % 256]) + b"##"),
        "truncated": (f"{root}/{fire.vendor}/{fire.device_id}/telemetry", good_frame[:-9]),
    }
    async with env.publisher() as pub:
        for topic, payload in bad.values():
            await pub.publish(topic, payload)
        # the bridge is still alive afterwards
        await pub.publish(f"{root}/{fire.vendor}/{fire.device_id}/telemetry", good_frame)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.deadletter) as dr:
        dls = await dr.until(lambda v: {d["reason"] for d in v} >= set(bad), timeout_s=60)
    by_reason = {d["reason"]: d for d in dls}
    for reason, (topic, payload) in bad.items():
        d = by_reason[reason]
        assert d["source"] == topic and d["detail"] and d["stage"] == "ingest"
        if reason != "oversized":
            assert base64.b64decode(d["raw"]) == payload
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.device_events) as er:
        evs = await er.until(lambda v: any(e["code"] == "fire_alarm" for e in v), timeout_s=30)
    assert evs[0]["device_id"] == fire.device_id and evs[0]["component"] == "1-1/40/1-007"


async def test_two_bridges_share_the_load_nothing_lost(ingest_env) -> None:  # type: ignore[no-untyped-def]
    env = await ingest_env(40)
    b1 = await env.start_bridge("one")
    b2 = await env.start_bridge("two")
    sim = Simulator(env.devices, seed=11, batch=4, topic_root=env.settings.mqtt.topic_root)
    t0 = time.time() - 3600
    async with env.publisher() as pub:
        assert (await sim.blast(pub, 3000, t0=t0)).failed == 0
    want = expected_ids(sim, 3000, t0)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr:
        await kr.until(lambda v: want <= first_seqs(v), timeout_s=90)
    assert b1.stats.received > 300 and b2.stats.received > 300, (b1.stats, b2.stats)
    assert b1.stats.received + b2.stats.received >= 3000


@pytest.mark.fault
async def test_kill9_of_the_bridge_mid_stream_loses_nothing(ingest_env) -> None:  # type: ignore[no-untyped-def]
    env = await ingest_env(30)
    proc = env.spawn_bridge()
    await env.wait_subscribed(proc)
    sim = Simulator(env.devices, seed=3, batch=5, topic_root=env.settings.mqtt.topic_root)
    t0 = time.time() - 3600
    n = 6000
    want = expected_ids(sim, n, t0)
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr, env.publisher() as pub:
        blast = asyncio.create_task(sim.blast(pub, n, t0=t0, window=200))
        await kr.until(lambda v: len(v) >= n // 5, timeout_s=60)
        os.killpg(proc.pid, signal.SIGKILL)  # mid-stream: messages in flight, unacked
        proc.wait(10)
        seen_at_kill = len(first_seqs(kr.values))
        report = await blast  # the broker keeps queueing for the dead bridge's session
        assert report.failed == 0
        assert seen_at_kill < n
        proc2 = env.spawn_bridge()
        await env.wait_subscribed(proc2)
        await kr.until(lambda v: want <= first_seqs(v), timeout_s=120)
    # the restarted bridge found its persistent session (the broker had queued for it)
    assert "session_present=True" in env.logs[proc2.pid].read_text()


@pytest.mark.fault
async def test_kafka_outage_messages_published_meanwhile_arrive_afterwards(ingest_env, kafka_factory) -> None:  # type: ignore[no-untyped-def]
    from hazmon.stack import create_topics_async

    kafka = kafka_factory(storage="s3")
    env = await ingest_env(10, bootstrap=kafka.bootstrap)
    await create_topics_async(kafka.bootstrap, env.topics, partitions=4)
    bridge = await env.start_bridge()
    sim = Simulator(env.devices, seed=5, batch=2, topic_root=env.settings.mqtt.topic_root)
    t0 = time.time() - 3600
    msgs = list(sim.messages(600, t0=t0, spacing_s=1.0))
    before, during = msgs[:200], msgs[200:]
    async with env.publisher() as pub:
        for m in before:
            await pub.publish(m.topic, m.payload)
        async with KafkaReader(kafka.bootstrap, env.topics.readings) as kr:
            await kr.until(lambda v: len(first_seqs(v)) >= 200, timeout_s=60)
        kafka.stop()
        for m in during:  # Kafka is down: the bridge receives these but must not ack them
            await pub.publish(m.topic, m.payload)
    for _ in range(100):  # the bridge holds all 400 but acknowledges none of them
        if bridge.stats.received >= 600:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    assert (bridge.stats.received, bridge.stats.acked) == (600, 200)
    kafka.start()
    want = {(m.device_id, _seq(m.payload)) for m in msgs}
    async with KafkaReader(kafka.bootstrap, env.topics.readings) as kr:
        await kr.until(lambda v: want <= first_seqs(v), timeout_s=120)
    assert bridge.stats.acked == 600


async def test_last_will_and_registry_refresh(ingest_env, pg_dsn) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    from ingest.mqtt import MqttClient, Will
    from sim.devices import SimDevice, register_fleet

    env = await ingest_env(2, registry_refresh_s=0.5)  # presence_k = 0: the default, the detector judges
    await env.start_bridge()
    root, dev = env.settings.mqtt.topic_root, env.devices[0]
    status_topic = f"{root}/{dev.vendor}/{dev.device_id}/status"
    device = MqttClient(env.mqtt.host, env.mqtt.port, client_id=f"dev-{dev.device_id}", username=env.admin[0], password=env.admin[1],
                        keepalive=5, will=Will(status_topic, b"offline"))
    await device.connect()
    await device.publish(f"{root}/{dev.vendor}/{dev.device_id}/telemetry", b'{"values": {"gas_lel": 1.0}}')
    device._client.socket().shutdown(socket.SHUT_RDWR)  # dies without DISCONNECT: the broker publishes the Last Will
    # a device registered after the bridge started is accepted after the next registry reload
    late = SimDevice("LATE-0001", dev.vendor, dev.adapter, dev.domain, 60)
    conn = await asyncpg.connect(pg_dsn)
    try:
        await register_fleet(conn, [late])
    finally:
        await conn.close()
    await asyncio.sleep(1.5)
    async with env.publisher() as pub:
        await pub.publish(f"{root}/{late.vendor}/{late.device_id}/telemetry", b'{"values": {"gas_lel": 2.0}}')
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.status) as sr:
        st = await sr.until(lambda v: any(s.get("device_id") == dev.device_id and s["reason"] == "lwt" for s in v), timeout_s=30)
    mine = [(s["state"], s["reason"]) for s in st if s.get("device_id") == dev.device_id]  # (beats have no device)
    assert mine == [("offline", "lwt")]  # no bridge-side "online" from data: presence is judged downstream
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr:
        await kr.until(lambda v: any(r["device_id"] == "LATE-0001" for r in v), timeout_s=30)
    await device.disconnect()
