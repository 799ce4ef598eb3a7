"""Flood benchmark: one vendor floods the bridge while another vendor's fire panel raises alarms.

Measures, on one mosquitto + Tansu + bridge (in this process) + a flood publisher (its own
process): a fire alarm's latency from MQTT publish to its device event arriving on Kafka,
first with nothing else going on (the baseline), then while vendor ``sim-hazmon_json``
publishes ``--flood`` messages as fast as the broker takes them. Run twice: with the per-vendor
rate limit off (``vendor_rate_per_s = 0``: the bridge before issue 17 item 16) and on
(``--rate``/s, burst ``2 × rate``). Prints the figures and the ratios to the baseline.

    .venv/bin/python bench/bench_flood.py [--flood 20000] [--rate 500] [--alarms 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from hazmon.db import migrate
from hazmon.settings import IngestSettings, KafkaSettings, MqttSettings, PostgresSettings, Settings
from hazmon.stack import KafkaBroker, MosquittoBroker, PostgresServer, create_topics_async, postgres_reachable
from hazmon.stack.postgres import with_database
from hazmon.topics import Topics
from ingest.adapters.gbt26875 import FIRE_ALARM, NORMAL, ComponentState, encode_frame
from ingest.bridge import Bridge
from ingest.directory import pg_loader
from ingest.mqtt import MqttClient
from sim.devices import register_fleet, synthetic_fleet

REPO = Path(__file__).resolve().parents[1]

FLOOD = r"""
import asyncio, json, sys, time
from ingest.mqtt import MqttClient
host, port, user, pw, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
topics = json.loads(sys.argv[6])
async def main():
    c = MqttClient(host, port, client_id=f"flood-{time.time_ns()}", username=user, password=pw, max_inflight_out=1000)
    await c.connect()
    sem = asyncio.Semaphore(1000)
    t0 = time.perf_counter()
    base = time.time() - 7200
    for i in range(n):
        await sem.acquire()
        payload = json.dumps({"ts": base + i * 0.1, "seq": i, "values": {"gas_lel": 1.0}}).encode()
        c.publish_nowait(topics[i % len(topics)], payload, 1).add_done_callback(lambda f: sem.release())
    for _ in range(1000):
        await sem.acquire()
    print(f"{time.perf_counter() - t0:.3f}", flush=True)
    await c.disconnect()
asyncio.run(main())
"""


def fire_alarm(zone: str, serial: int) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    return encode_frame([ComponentState(1, 1, 40, 1, serial % 200 + 1, NORMAL | FIRE_ALARM, zone, now)], serial=serial, sent_at=now)


class EventWatch:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        c = self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                              auto_offset_reset="earliest", fetch_max_wait_ms=20)
        await c.start()
        c.assign([TopicPartition(self.topic, p) for p in range(4)])
        await c.seek_to_beginning()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batches.values():
                for r in records:
                    self.seen.setdefault(json.loads(r.value).get("zone") or "", now)

    async def wait(self, zone: str, timeout_s: float = 120.0) -> float:
        deadline = time.monotonic() + timeout_s
        while zone not in self.seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"alarm {zone} not on Kafka within {timeout_s} s")
            await asyncio.sleep(0.005)
        return self.seen[zone]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()


async def run_mode(args: argparse.Namespace, mqtt: MosquittoBroker, bootstrap: str, dsn: str, rate: float, label: str) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    root = f"bf{tag}/v1"
    topics = Topics(f"bf{tag}")
    await create_topics_async(bootstrap, topics, partitions=4)
    devices = synthetic_fleet(args.devices + 1, adapters=(("hazmon_json", "gas"), ("gbt26875", "fire")), interval_s=60, prefix=f"F{tag}")
    conn = await asyncpg.connect(dsn)
    await register_fleet(conn, devices)
    await conn.close()
    gas = [d for d in devices if d.domain == "gas"]
    panel = next(d for d in devices if d.domain == "fire")
    settings = Settings(
        kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=topics.prefix, linger_ms=5),
        postgres=PostgresSettings(dsn=dsn),
        mqtt=MqttSettings(host=mqtt.host, port=mqtt.port, username=mqtt.username, password=SecretStr(mqtt.password), topic_root=root,
                          shared_group=f"g{tag}", client_id=f"br{tag}", session_expiry_s=600),
        ingest=IngestSettings(vendor_rate_per_s=rate, vendor_burst=max(1, int(rate * 2))),
    )
    bridge = Bridge(settings, pg_loader(dsn), instance="a")
    task = asyncio.create_task(bridge.run())
    await asyncio.wait_for(bridge.ready.wait(), 60)
    watch = EventWatch(bootstrap, topics.device_events)
    await watch.start()
    alarm_topic = f"{root}/{panel.vendor}/{panel.device_id}/telemetry"
    serial = 0

    async def alarm(pub: MqttClient, zone: str) -> float:
        nonlocal serial
        serial += 1
        t0 = time.perf_counter()
        await pub.publish(alarm_topic, fire_alarm(zone, serial))
        return await watch.wait(zone) - t0

    try:
        async with MqttClient(mqtt.host, mqtt.port, client_id=f"pub-{tag}", username=mqtt.username, password=mqtt.password) as pub:
            baseline = [await alarm(pub, f"base-{i}") for i in range(args.alarms)]
            flood_topics = [f"{root}/{d.vendor}/{d.device_id}/telemetry" for d in gas]
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", FLOOD, mqtt.host, str(mqtt.port), mqtt.username, mqtt.password, str(args.flood),
                json.dumps(flood_topics), cwd=REPO, stdout=asyncio.subprocess.PIPE)
            received0 = bridge.stats.received
            while bridge.stats.received < received0 + min(2000, args.flood // 4):  # noqa: ASYNC110 - polls a counter
                await asyncio.sleep(0.01)
            during = []
            for i in range(args.alarms):
                during.append(await alarm(pub, f"flood-{i}"))
                await asyncio.sleep(0.05)
            out, _ = await proc.communicate()
            flood_s = float(out.split()[-1])
            drain_t0 = time.perf_counter()
            while bridge.stats.acked < bridge.stats.received or bridge._in_flight:  # noqa: ASYNC110 - polls counters
                await asyncio.sleep(0.05)
            drain_s = time.perf_counter() - drain_t0
    finally:
        await watch.stop()
        bridge.stop()
        await asyncio.wait_for(task, 30)
    return {
        "mode": label, "rate_per_s": rate, "flood_msgs": args.flood, "flood_publish_s": round(flood_s, 2),
        "baseline_ms_median": round(statistics.median(baseline) * 1000, 1), "baseline_ms_max": round(max(baseline) * 1000, 1),
        "flood_ms_median": round(statistics.median(during) * 1000, 1), "flood_ms_max": round(max(during) * 1000, 1),
        "ratio_max_to_baseline_median": round(max(during) / statistics.median(baseline), 1),
        "records": bridge.stats.records,
        "deadletter_records": bridge.stats.deadletters, "drain_after_publish_s": round(drain_s, 2),
    }


async def amain(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench_flood_"))
    mqtt = MosquittoBroker(work / "mqtt", max_payload_bytes=256 * 1024)
    mqtt.start()
    kafka = KafkaBroker(work / "kafka")
    kafka.start()
    pg = None
    server = "postgresql://postgres@127.0.0.1:5432/postgres"
    if not postgres_reachable(server):
        pg = PostgresServer(work / "pg")
        pg.start()
        server = pg.server_dsn
    db = f"bench_flood_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server)
    await conn.execute(f'CREATE DATABASE "{db}"')
    await conn.close()
    dsn = with_database(server, db)
    try:
        await migrate(dsn, timescale=False)
        results = []
        for rate, label in ((0.0, "no flood control (before)"), (args.rate, "per-vendor rate limit (after)")):
            r = await run_mode(args, mqtt, kafka.bootstrap, dsn, rate, label)
            results.append(r)
            print(f"{label:32s} flood {r['flood_msgs']:,} msgs in {r['flood_publish_s']} s | fire alarm publish → Kafka: "
                  f"baseline median {r['baseline_ms_median']} ms (max {r['baseline_ms_max']}), during flood median "
                  f"{r['flood_ms_median']} ms, max {r['flood_ms_max']} ms = {r['ratio_max_to_baseline_median']}× baseline | "
                  f"dead-letter records {r['deadletter_records']}, drain after publish {r['drain_after_publish_s']} s", flush=True)
        print(json.dumps(results))
        return 0
    finally:
        kafka.stop()
        mqtt.stop()
        conn = await asyncpg.connect(server)
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await conn.close()
        if pg is not None:
            pg.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--flood", type=int, default=20_000, help="messages the flooding vendor publishes")
    ap.add_argument("--rate", type=float, default=500.0, help="per-vendor rate limit of the 'after' run (msgs/s)")
    ap.add_argument("--devices", type=int, default=200, help="flooding vendor's devices")
    ap.add_argument("--alarms", type=int, default=10, help="fire alarms per phase")
    return asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
