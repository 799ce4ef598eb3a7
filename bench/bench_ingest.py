"""Ingest benchmark: simulated devices → mosquitto → bridge → Kafka (Tansu), against raw baselines
measured in the same run on the same services.

Method (fill, then drain — the consumer is saturated, so the figure is its sustained rate and
not the publisher's): the consumer's persistent session is created, the consumer stops, the
simulator publishes N QoS 1 messages (gateway batches of ``--records`` records, 20 readings per
message by default), then the consumer starts and the drain is timed from its first to its last
message. Consumers:

1. bare paho-mqtt subscriber (own process, QoS 1, auto-ack, same shared subscription and receive
   maximum as the bridge) — the MQTT baseline;
2. bare aiokafka producer (own process) sending the bridge's real output records (same sizes,
   keys, linger) without waiting on each — the Kafka baseline;
3. one ``python -m ingest.bridge`` process, then two sharing one ``$share`` group.

The bridge's progress is read from its Prometheus endpoint (``hazmon_ingest_produced_total``:
records Kafka acknowledged; one ReadingBatch record per message). Tansu's end offsets count
batches, not records, so they cannot be used.

    .venv/bin/python bench/bench_ingest.py [--messages 40000] [--devices 500] [--records 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from hazmon.db import migrate
from hazmon.stack import KafkaBroker, MosquittoBroker, PostgresServer, create_topics_async, postgres_reachable
from hazmon.stack.postgres import with_database
from hazmon.topics import Topics
from ingest.mqtt import MqttClient
from sim.devices import Simulator, register_fleet, synthetic_fleet

REPO = Path(__file__).resolve().parents[1]

PAHO_SUB = textwrap.dedent(
    """
    import json, sys, time
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    host, port, user, pw, cid, filt, n, rmax = sys.argv[1:9]
    n, rmax = int(n), int(rmax)
    st = {"count": 0, "first": None, "last": None}
    def on_connect(c, u, f, rc, p):
        c.subscribe(filt, qos=1)
    def on_subscribe(c, u, mid, codes, p):
        if n == 0:
            c.disconnect()
    def on_message(c, u, m):
        now = time.time()
        st["count"] += 1
        if st["first"] is None:
            st["first"] = now
        st["last"] = now
        if st["count"] >= n:
            c.disconnect()
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, pw)
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = rmax
    c.connect(host, int(port), 30, clean_start=False, properties=props)
    c.loop_forever()
    print(json.dumps(st))
    """
)

KAFKA_PRODUCER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from aiokafka import AIOKafkaProducer
    bootstrap, topic, path, linger = sys.argv[1:5]
    records = [json.loads(line) for line in open(path)]
    async def main():
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=int(linger), max_batch_size=1024 * 1024,
                             max_request_size=2 * 1024 * 1024, enable_idempotence=False, acks="all")
        await p.start()
        vals = [(r["k"].encode(), r["v"].encode()) for r in records]
        t0 = time.time()
        futs = [await p.send(topic, v, key=k) for k, v in vals]
        await asyncio.gather(*futs)
        t1 = time.time()
        await p.stop()
        print(json.dumps({"count": len(vals), "seconds": t1 - t0}))
    asyncio.run(main())
    """
)


def env_for(settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    env.update(settings)
    return env


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.mqtt: MosquittoBroker | None = None
        self.kafka: KafkaBroker | None = None
        self.pg: PostgresServer | None = None
        self.dsn = ""

    async def setup(self) -> None:
        a = self.args
        self.mqtt = MosquittoBroker(self.work / "mqtt", max_payload_bytes=256 * 1024)
        self.mqtt.start()
        self.kafka = KafkaBroker(self.work / "kafka")
        self.kafka.start()
        server = "postgresql://postgres@127.0.0.1:5432/postgres"
        if not postgres_reachable(server):
            self.pg = PostgresServer(self.work / "pg")
            self.pg.start()
            server = self.pg.server_dsn
        self.db = f"bench_ingest_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(server)
        await conn.execute(f'CREATE DATABASE "{self.db}"')
        await conn.close()
        self.server_dsn = server
        self.dsn = with_database(server, self.db)
        await migrate(self.dsn, timescale=False)
        self.devices = synthetic_fleet(a.devices, adapters=(("hazmon_json", "gas"),), interval_s=60, prefix="BENCH")
        conn = await asyncpg.connect(self.dsn)
        await register_fleet(conn, self.devices)
        await conn.close()
        sim = Simulator(self.devices, seed=42, batch=a.records)
        # device times in the recent past, one interval apart (a backlog, as after an outage)
        t0 = time.time() - (a.messages // a.devices + 2) * 60.0
        self.messages = [(m.topic.split("/", 2)[2], m.payload, m.readings) for m in sim.messages(a.messages, t0=t0, spacing_s=60.0)]
        self.readings_per_msg = sum(r for _, _, r in self.messages) / len(self.messages)
        self.payload_bytes = sum(len(p) for _, p, _ in self.messages) / len(self.messages)

    async def teardown(self) -> None:
        for svc in (self.kafka, self.mqtt):
            if svc is not None:
                svc.stop()
        if self.dsn:
            conn = await asyncpg.connect(self.server_dsn)
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            await conn.close()
        if self.pg is not None:
            self.pg.stop()

    async def publish(self, root: str) -> float:
        assert self.mqtt is not None
        t0 = time.perf_counter()
        async with MqttClient(self.mqtt.host, self.mqtt.port, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
                              username=self.mqtt.username, password=self.mqtt.password) as pub:
            sem = asyncio.Semaphore(1000)

            def done(_: Any) -> None:
                sem.release()

            for rest, payload, _ in self.messages:
                await sem.acquire()
                pub.publish_nowait(f"{root}/{rest}", payload, 1).add_done_callback(done)
            for _ in range(1000):
                await sem.acquire()
        return len(self.messages) / (time.perf_counter() - t0)

    # --- baselines ------------------------------------------------------------------------

    def paho(self, cid: str, filt: str, n: int) -> dict[str, Any]:
        assert self.mqtt is not None
        out = subprocess.run([sys.executable, "-c", PAHO_SUB, self.mqtt.host, str(self.mqtt.port), self.mqtt.username,
                              self.mqtt.password, cid, filt, str(n), str(self.args.inflight)],
                             capture_output=True, text=True, timeout=600, check=True)
        return json.loads(out.stdout)

    async def paho_baseline(self) -> float:
        root, cid = f"bp{uuid.uuid4().hex[:6]}/v1", f"paho-{uuid.uuid4().hex[:6]}"
        filt = f"$share/gp/{root}/+/+/+"
        await asyncio.to_thread(self.paho, cid, filt, 0)  # creates the session
        await self.publish(root)
        st = await asyncio.to_thread(self.paho, cid, filt, len(self.messages))
        assert st["count"] == len(self.messages)
        return (st["count"] - 1) / (st["last"] - st["first"])

    async def kafka_baseline(self, topics: Topics) -> float:
        from hazmon.topics import Topics as _T
        from ingest.directory import DeviceInfo, Directory, VendorInfo
        from ingest.pipeline import Pipeline

        directory = Directory.build({VendorInfo(d.vendor, d.adapter) for d in self.devices},
                                    [DeviceInfo(d.device_id, d.vendor, "S-SIM", d.domain) for d in self.devices])
        p = Pipeline(directory, _T(topics.prefix))
        path = self.work / "records.jsonl"
        now = time.time()
        with path.open("w") as f:
            for rest, payload, _ in self.messages:
                for r in p.process(f"hazmon/v1/{rest}", payload, now):
                    f.write(json.dumps({"k": r.key.decode(), "v": r.value.decode()}) + "\n")
        assert self.kafka is not None
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", KAFKA_PRODUCER, self.kafka.bootstrap, topics.readings, str(path), str(self.args.linger_ms)],
            capture_output=True, text=True, timeout=600, check=True)
        st = json.loads(out.stdout)
        return st["count"] / st["seconds"]

    # --- the bridge -----------------------------------------------------------------------

    def bridge_env(self, root: str, group: str, topics: Topics) -> dict[str, str]:
        assert self.mqtt is not None and self.kafka is not None
        return env_for({
            "HAZMON_KAFKA__BOOTSTRAP": self.kafka.bootstrap, "HAZMON_KAFKA__TOPIC_PREFIX": topics.prefix,
            "HAZMON_KAFKA__LINGER_MS": str(self.args.linger_ms), "HAZMON_POSTGRES__DSN": self.dsn,
            "HAZMON_MQTT__HOST": self.mqtt.host, "HAZMON_MQTT__PORT": str(self.mqtt.port),
            "HAZMON_MQTT__USERNAME": self.mqtt.username, "HAZMON_MQTT__PASSWORD": self.mqtt.password,
            "HAZMON_MQTT__TOPIC_ROOT": root, "HAZMON_MQTT__SHARED_GROUP": group, "HAZMON_MQTT__CLIENT_ID": f"bench-{group}",
            "HAZMON_MQTT__PRESENCE_K": "0", "HAZMON_MQTT__MAX_INFLIGHT": str(self.args.inflight), "HAZMON_LOG_LEVEL": "INFO",
        })

    def spawn(self, env: dict[str, str], instance: str, tag: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.work / f"bridge-{tag}-{instance}.log"
        with log.open("wb") as f:
            proc = subprocess.Popen([sys.executable, "-m", "ingest.bridge", instance], cwd=REPO, env=env, stdout=f,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        return proc, log

    @staticmethod
    async def wait_log(path: Path, text: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in path.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path}: no {text!r}: {path.read_text(errors='replace')[-2000:]}")
            await asyncio.sleep(0.1)

    @staticmethod
    async def produced(client: Any, ports: list[int]) -> int:
        total = 0
        for port in ports:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            for line in text.splitlines():
                if line.startswith("hazmon_ingest_produced_total{"):
                    total += int(float(line.rsplit(" ", 1)[1]))
        return total

    async def bridge_run(self, n_bridges: int) -> dict[str, float]:
        import httpx

        from hazmon.stack import free_port

        assert self.kafka is not None
        tag = uuid.uuid4().hex[:6]
        root, group, topics = f"bb{tag}/v1", f"g{tag}", Topics(f"bench{tag}")
        await create_topics_async(self.kafka.bootstrap, topics, partitions=4)
        env = self.bridge_env(root, group, topics)
        procs = [self.spawn(env, str(i), f"{tag}a") for i in range(n_bridges)]
        for _, log in procs:  # create the sessions, then stop (sessions persist)
            await self.wait_log(log, "bridge subscribed")
        for proc, _ in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        await self.publish(root)
        n = len(self.messages)
        ports = [free_port() for _ in range(n_bridges)]
        procs = [self.spawn({**env, "HAZMON_METRICS_PORT": str(port)}, str(i), f"{tag}b") for i, port in enumerate(ports)]
        first_t = None
        first_count = 0
        async with httpx.AsyncClient(timeout=5.0) as client:
            try:
                for _, log in procs:
                    await self.wait_log(log, "registry loaded")
                while True:
                    try:
                        total = await self.produced(client, ports)
                    except httpx.HTTPError:
                        total = 0
                    now = time.time()
                    if total and first_t is None:
                        first_t, first_count = now, total
                    if total >= n:
                        end_t = now
                        break
                    for proc, log in procs:
                        if proc.poll() is not None:
                            raise RuntimeError(f"bridge died: {log.read_text(errors='replace')[-2000:]}")
                    await asyncio.sleep(0.05)
            finally:
                for proc, _ in procs:
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGTERM)
                        proc.wait(30)
        assert first_t is not None
        msgs_s = (n - first_count) / max(end_t - first_t, 1e-6)
        return {"msgs_s": msgs_s, "readings_s": msgs_s * self.readings_per_msg}


async def amain(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    bench = Bench(args, work)
    try:
        await bench.setup()
        n = len(bench.messages)
        print(f"messages: {n}, devices: {args.devices}, readings/message: {bench.readings_per_msg:.1f}, "
              f"payload: {bench.payload_bytes:.0f} B, receive maximum: {args.inflight}, linger: {args.linger_ms} ms, "
              f"cpus: {os.cpu_count()}")
        paho = await bench.paho_baseline()
        print(f"baseline paho subscriber (QoS 1, drain):     {paho:10,.0f} msg/s")
        kafka = await bench.kafka_baseline(Topics(f"benchk{uuid.uuid4().hex[:6]}"))
        print(f"baseline aiokafka producer (bridge records): {kafka:10,.0f} msg/s")
        slower = min(paho, kafka)
        results = {}
        for nb in args.bridges:
            r = await bench.bridge_run(nb)
            results[nb] = r
            print(f"bridge x{nb} (drain, end to end on Kafka):    {r['msgs_s']:10,.0f} msg/s  {r['readings_s']:10,.0f} readings/s  "
                  f"ratio to slower baseline {r['msgs_s'] / slower:.2f} ({r['msgs_s'] / slower / nb:.2f} per process)")
        summary = {"messages": n, "readings_per_message": bench.readings_per_msg, "paho_msgs_s": round(paho),
                   "kafka_msgs_s": round(kafka), **{f"bridge{nb}_msgs_s": round(r["msgs_s"]) for nb, r in results.items()},
                   **{f"bridge{nb}_readings_s": round(r["readings_s"]) for nb, r in results.items()},
                   **{f"bridge{nb}_ratio": round(r["msgs_s"] / slower, 3) for nb, r in results.items()}}
        print(json.dumps(summary))
        return 0
    finally:
        await bench.teardown()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--messages", type=int, default=40_000)
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--records", type=int, default=10, help="records per message (hazmon_json gas: 2 readings each)")
    ap.add_argument("--inflight", type=int, default=2000, help="receive maximum of bridge and baseline subscriber")
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--bridges", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    return asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
