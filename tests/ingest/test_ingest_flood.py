"""Ingest cannot be stalled by one vendor's flood, nor fed stale retained messages (issue 17
items 16), against real mosquitto + Tansu + PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from ingest_helpers import REPO, Env, KafkaReader

from hazmon.settings import IngestSettings
from ingest.adapters.gbt26875 import FIRE_ALARM, NORMAL, ComponentState, encode_frame

pytestmark = pytest.mark.timeout(300)

ADAPTERS = (("hazmon_json", "gas"), ("gbt26875", "fire"))

#: publishes ``n`` telemetry messages round-robin over the topics, as fast as the broker
#: acknowledges them (1,000 unacknowledged at most); prints the seconds it took
FLOOD = r"""
import asyncio, json, sys, time
from ingest.mqtt import MqttClient
host, port, user, pw, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
topics = json.loads(sys.argv[6])
start = int(sys.argv[7]) if len(sys.argv) > 7 else 0
async def main():
    c = MqttClient(host, port, client_id=f"flood-{time.time_ns()}", username=user, password=pw, max_inflight_out=1000)
    await c.connect()
    sem = asyncio.Semaphore(1000)
    t0 = time.perf_counter()
    base = time.time() - 7200
    for i in range(n):
        await sem.acquire()
        payload = json.dumps({"ts": base + (start + i) * 0.1, "seq": start + i, "values": {"gas_lel": 1.0}}).encode()
        c.publish_nowait(topics[i % len(topics)], payload, 1).add_done_callback(lambda f: sem.release())
    for _ in range(1000):
        await sem.acquire()
    print(f"{time.perf_counter() - t0:.3f}", flush=True)
    await c.disconnect()
asyncio.run(main())
"""


def with_ingest(env: Env, **kw: Any) -> None:
    env.settings = env.settings.model_copy(update={"ingest": IngestSettings(**kw)})


class EventWatch:
    """Device events as they arrive (a short fetch wait, so the poll adds little)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.seen: dict[str, float] = {}  # zone → arrival time
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> EventWatch:
        c = self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                              auto_offset_reset="earliest", fetch_max_wait_ms=20)
        await c.start()
        c.assign([TopicPartition(self.topic, p) for p in range(4)])
        await c.seek_to_beginning()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batches.values():
                for r in records:
                    v = json.loads(r.value)
                    self.seen.setdefault(v.get("zone") or "", now)

    async def wait(self, zone: str, timeout_s: float = 60.0) -> float:
        deadline = time.monotonic() + timeout_s
        while zone not in self.seen:
            assert time.monotonic() < deadline, f"fire alarm {zone} not on Kafka within {timeout_s} s"
            await asyncio.sleep(0.005)
        return self.seen[zone]

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()


def fire_alarm(zone: str, serial: int) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    return encode_frame([ComponentState(1, 1, 40, 1, serial % 200 + 1, NORMAL | FIRE_ALARM, zone, now)], serial=serial, sent_at=now)


async def alarm_latency(env: Env, watch: EventWatch, pub: Any, topic: str, zone: str, serial: int) -> float:
    t0 = time.perf_counter()
    await pub.publish(topic, fire_alarm(zone, serial))
    return await watch.wait(zone) - t0


async def test_one_vendors_flood_delays_no_other_vendors_fire_alarm(ingest_env) -> None:  # type: ignore[no-untyped-def]
    n_flood = 20_000
    env = await ingest_env(20, adapters=ADAPTERS)
    with_ingest(env, vendor_rate_per_s=500, vendor_burst=1000)
    root = env.settings.mqtt.topic_root
    gas = [d for d in env.devices if d.domain == "gas"]
    panel = next(d for d in env.devices if d.domain == "fire")
    alarm_topic = f"{root}/{panel.vendor}/{panel.device_id}/telemetry"
    bridge = await env.start_bridge()
    async with EventWatch(env.settings.kafka.bootstrap, env.topics.device_events) as watch, env.publisher() as pub:
        baseline = [await alarm_latency(env, watch, pub, alarm_topic, f"base-{i}", i) for i in range(5)]
        topics = [f"{root}/{d.vendor}/{d.device_id}/telemetry" for d in gas]
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOOD, env.mqtt.host, str(env.mqtt.port), *env.admin, str(n_flood), json.dumps(topics),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            while bridge.stats.received < 5 + 2000:
                assert flood.returncode is None, await flood.communicate()
                await asyncio.sleep(0.01)
            during = []
            for i in range(5):
                during.append(await alarm_latency(env, watch, pub, alarm_topic, f"flood-{i}", 100 + i))
                await asyncio.sleep(0.1)
            out, err = await asyncio.wait_for(flood.communicate(), 120)
        finally:
            if flood.returncode is None:
                flood.kill()
                await flood.wait()
        assert flood.returncode == 0, err
    flood_s = float(out.split()[-1])
    # every flood message is stored or dead-lettered, and the bridge acknowledged them all
    deadline = time.monotonic() + 60
    while bridge.stats.acked < n_flood + 10 or bridge._in_flight:
        assert time.monotonic() < deadline, (bridge.stats, bridge._in_flight)
        await asyncio.sleep(0.1)
    gas_ids = {d.device_id for d in gas}
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr, \
            KafkaReader(env.settings.kafka.bootstrap, env.topics.deadletter) as dr:
        deadline = time.monotonic() + 60
        while True:
            await kr.poll(200)
            await dr.poll(200)
            stored = sum(1 for v in kr.values if v["device_id"] in gas_ids)
            if stored + sum(_shed_count(d) for d in dr.values) >= n_flood:
                break
            assert time.monotonic() < deadline, (stored, len(dr.values))
    limited = [d for d in dr.values if d["reason"] == "rate_limited"]
    shed = sum(_shed_count(d) for d in limited)
    assert limited and all(d["vendor"] == gas[0].vendor for d in limited)
    assert stored + shed == n_flood, (stored, shed)
    assert json.loads(base64.b64decode(limited[0]["raw"]))["values"] == {"gas_lel": 1.0}
    base_med, flood_max = statistics.median(baseline), max(during)
    print(f"\nflood of {n_flood} msgs in {flood_s:.2f} s ({n_flood / flood_s:,.0f}/s): {stored} stored, {shed} dead-lettered rate_limited "
          f"in {len(limited)} records; fire alarm publish → Kafka: baseline median {base_med * 1000:.0f} ms "
          f"(max {max(baseline) * 1000:.0f}), during the flood {', '.join(f'{x * 1000:.0f}' for x in during)} ms")
    assert flood_max <= max(baseline) + 1.0, (baseline, during)


def _shed_count(d: dict[str, Any]) -> int:
    m = re.match(r"(\d+) messages from vendor", d["detail"]) if d["reason"] == "rate_limited" else None
    return int(m.group(1)) if m else 0


async def test_retained_telemetry_and_events_from_vendors_are_dead_lettered_retained(ingest_env) -> None:  # type: ignore[no-untyped-def]
    env = await ingest_env(2)
    root = env.settings.mqtt.topic_root
    dev = env.devices[0]
    base = f"{root}/{dev.vendor}/{dev.device_id}"
    retained = b'{"ts": %d, "seq": 4242, "values": {"gas_lel": 9.5}}' % int(time.time() - 30)
    await env.start_bridge()
    async with env.publisher() as pub:
        await pub.publish(f"{base}/telemetry", retained, retain=True)
        await pub.publish(f"{base}/status", b"online", retain=True)  # presence may be retained (Last Will style)
        await pub.publish(f"{base}/telemetry", b'{"ts": %d, "seq": 4243, "values": {"gas_lel": 1.5}}' % int(time.time() - 20))
        try:
            async with KafkaReader(env.settings.kafka.bootstrap, env.topics.deadletter) as dr:
                dls = await dr.until(lambda v: any(d["reason"] == "retained" for d in v), timeout_s=30)
            d = next(d for d in dls if d["reason"] == "retained")
            assert d["source"] == f"{base}/telemetry" and base64.b64decode(d["raw"]) == retained and "retain" in d["detail"]
            async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr:
                got = await kr.until(lambda v: any(r["samples"][0].get("seq") == 4243 for r in v), timeout_s=30)
                await kr.poll(500)
            assert [r["samples"][0]["seq"] for r in kr.values if r["device_id"] == dev.device_id] == [4243], got
            async with KafkaReader(env.settings.kafka.bootstrap, env.topics.status) as sr:
                await sr.until(lambda v: any(s.get("device_id") == dev.device_id and s.get("state") == "online" for s in v), timeout_s=30)
        finally:
            for kind in ("telemetry", "status"):  # clear the broker's retained copies
                await pub.publish(f"{base}/{kind}", b"", retain=True)


async def _flood(env: Env, n: int, topics: list[str], start: int = 0) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FLOOD, env.mqtt.host, str(env.mqtt.port), *env.admin, str(n), json.dumps(topics), str(start),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err


async def _stored_and_shed(env: Env, device_ids: set[str], n: int) -> tuple[int, list[dict[str, Any]]]:
    async with KafkaReader(env.settings.kafka.bootstrap, env.topics.readings) as kr, \
            KafkaReader(env.settings.kafka.bootstrap, env.topics.deadletter) as dr:
        deadline = time.monotonic() + 90
        while True:
            await kr.poll(200)
            await dr.poll(200)
            stored = len({(v["device_id"], v["samples"][0]["seq"]) for v in kr.values if v["device_id"] in device_ids})
            if stored + sum(_shed_count(d) for d in dr.values) >= n:
                return stored, [d for d in dr.values if d["reason"] == "rate_limited"]
            assert time.monotonic() < deadline, (stored, len(dr.values))


async def test_a_vendor_over_its_in_flight_limit_is_shed_while_kafka_acknowledges(ingest_env) -> None:  # type: ignore[no-untyped-def]
    n = 20_000
    env = await ingest_env(20)
    with_ingest(env, vendor_rate_per_s=0, vendor_max_inflight=20)
    root = env.settings.mqtt.topic_root
    bridge = await env.start_bridge()
    await _flood(env, n, [f"{root}/{d.vendor}/{d.device_id}/telemetry" for d in env.devices])
    stored, limited = await _stored_and_shed(env, {d.device_id for d in env.devices}, n)
    shed = sum(_shed_count(d) for d in limited)
    assert stored + shed == n and shed > 0, (stored, shed)
    assert all("in flight while Kafka was slow" in d["detail"] for d in limited), limited[0]["detail"]
    await _settled(bridge, n)


@pytest.mark.fault
async def test_the_in_flight_limit_sheds_nothing_during_a_kafka_outage(ingest_env, kafka_factory) -> None:  # type: ignore[no-untyped-def]
    """Kafka down: nothing is acknowledging, so the limit does not apply — all is held, then stored."""
    from hazmon.stack import create_topics_async

    kafka = kafka_factory(storage="s3")
    env = await ingest_env(10, bootstrap=kafka.bootstrap)
    with_ingest(env, vendor_max_inflight=50)
    await create_topics_async(kafka.bootstrap, env.topics, partitions=4)
    root = env.settings.mqtt.topic_root
    bridge = await env.start_bridge()
    topics = [f"{root}/{d.vendor}/{d.device_id}/telemetry" for d in env.devices]
    await _flood(env, 100, topics)
    await _stored_and_shed(env, {d.device_id for d in env.devices}, 100)
    kafka.stop()
    await asyncio.sleep(1.5)
    await _flood(env, 400, topics, start=100)  # 400 > 50 in flight, all held
    kafka.start()
    stored, limited = await _stored_and_shed(env, {d.device_id for d in env.devices}, 500)
    assert (stored, limited) == (500, [])
    await _settled(bridge, 500)


async def _settled(bridge: Any, n: int) -> None:
    deadline = time.monotonic() + 60
    while bridge.stats.acked < n or bridge._in_flight:
        assert time.monotonic() < deadline, (bridge.stats, bridge._in_flight)
        await asyncio.sleep(0.1)
