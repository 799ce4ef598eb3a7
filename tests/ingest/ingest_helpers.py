"""Ingest test helpers on top of the shared fixtures (tests/conftest.py): a registered fleet,
a bridge in-process or as a subprocess (``python -m ingest.bridge``), and a Kafka reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from hazmon.settings import KafkaSettings, MqttSettings, PostgresSettings, Settings
from hazmon.topics import Topics
from ingest.bridge import Bridge
from ingest.directory import pg_loader
from ingest.mqtt import MqttClient
from sim.devices import SimDevice, register_fleet, synthetic_fleet

REPO = Path(__file__).resolve().parents[2]


def bridge_settings(*, mqtt: Any, kafka_bootstrap: str, topics: Topics, pg_dsn: str, username: str, password: str,
                    root: str, group: str, client_id: str, **mqtt_kw: Any) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topics.prefix, linger_ms=5),
        postgres=PostgresSettings(dsn=pg_dsn),
        mqtt=MqttSettings(host=mqtt.host, port=mqtt.port, username=username, password=SecretStr(password), topic_root=root,
                          shared_group=group, client_id=client_id, **{"session_expiry_s": 600, "presence_k": 0, **mqtt_kw}),
    )


def settings_env(s: Settings) -> dict[str, str]:
    m, k = s.mqtt, s.kafka
    env = {k_: v for k_, v in os.environ.items() if not k_.startswith("HAZMON_")}
    env.update({
        "HAZMON_KAFKA__BOOTSTRAP": k.bootstrap, "HAZMON_KAFKA__TOPIC_PREFIX": k.topic_prefix,
        "HAZMON_KAFKA__LINGER_MS": str(k.linger_ms), "HAZMON_POSTGRES__DSN": s.postgres.dsn,
        "HAZMON_MQTT__HOST": m.host, "HAZMON_MQTT__PORT": str(m.port), "HAZMON_MQTT__USERNAME": m.username or "",
        "HAZMON_MQTT__PASSWORD": m.password.get_secret_value() if m.password else "", "HAZMON_MQTT__TOPIC_ROOT": m.topic_root,
        "HAZMON_MQTT__SHARED_GROUP": m.shared_group, "HAZMON_MQTT__CLIENT_ID": m.client_id,
        "HAZMON_MQTT__SESSION_EXPIRY_S": str(m.session_expiry_s), "HAZMON_MQTT__PRESENCE_K": str(m.presence_k),
        "HAZMON_LOG_LEVEL": "INFO",
    })
    return env


@dataclass
class Env:
    """One test's isolated world: its own topic root, shared group, client ids and fleet."""

    settings: Settings
    devices: list[SimDevice]
    mqtt: Any
    admin: tuple[str, str]
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    tasks: list[tuple[Bridge, asyncio.Task[None]]] = field(default_factory=list)
    logs: dict[int, Path] = field(default_factory=dict)
    subscribed_before: dict[int, int] = field(default_factory=dict)

    @property
    def topics(self) -> Topics:
        return self.settings.kafka.topics

    async def start_bridge(self, instance: str = "a") -> Bridge:
        bridge = Bridge(self.settings, pg_loader(self.settings.postgres.dsn), instance=instance)
        task = asyncio.create_task(bridge.run())
        self.tasks.append((bridge, task))
        waiter = asyncio.ensure_future(bridge.ready.wait())
        await asyncio.wait([waiter, task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert bridge.ready.is_set(), "bridge did not subscribe within 30 s"
        return bridge

    async def stop_bridge(self, bridge: Bridge) -> None:
        for b, task in list(self.tasks):
            if b is bridge:
                b.stop()
                await asyncio.wait_for(task, 30)
                self.tasks.remove((b, task))

    def spawn_bridge(self, instance: str = "p") -> subprocess.Popen[bytes]:
        path = self.log_dir / f"bridge-{instance}-{len(self.procs)}.log"
        with open(path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "ingest.bridge", instance], cwd=REPO, env=settings_env(self.settings),
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        self.logs[proc.pid] = path
        return proc

    async def wait_subscribed(self, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
        path = self.logs[proc.pid]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if path.read_text(errors="replace").count("bridge subscribed") >= self.subscribed_before.get(proc.pid, 0) + 1:
                return
            assert proc.poll() is None, path.read_text(errors="replace")[-3000:]
            await asyncio.sleep(0.1)
        raise AssertionError(f"bridge not subscribed: {path.read_text(errors='replace')[-3000:]}")

    def publisher(self, username: str | None = None, password: str | None = None) -> MqttClient:
        user, pw = (username, password) if username else self.admin
        return MqttClient(self.mqtt.host, self.mqtt.port, client_id=f"pub-{uuid.uuid4().hex[:8]}", username=user, password=pw)


@pytest.fixture
async def ingest_env(
    mqtt_broker: Any, kafka_bootstrap: str, topics: Topics, pg_dsn: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    envs: list[Env] = []

    async def make(n_devices: int = 20, adapters: Sequence[tuple[str, str]] = (("hazmon_json", "gas"),), *,
                   mqtt: Any = None, bootstrap: str | None = None, credentials: tuple[str, str] | None = None,
                   root: str | None = None, **mqtt_kw: Any) -> Env:
        broker = mqtt or mqtt_broker
        tag = uuid.uuid4().hex[:8]
        user, pw = credentials or (broker.username, broker.password)
        s = bridge_settings(mqtt=broker, kafka_bootstrap=bootstrap or kafka_bootstrap, topics=topics, pg_dsn=pg_dsn,
                            username=user, password=pw, root=root or f"it{tag}/v1", group=f"g{tag}", client_id=f"br{tag}", **mqtt_kw)
        devices = synthetic_fleet(n_devices, adapters=adapters, interval_s=60)
        conn = await asyncpg.connect(pg_dsn)
        try:
            await register_fleet(conn, devices)
        finally:
            await conn.close()
        admin = (broker.username, broker.password) if hasattr(broker, "username") else ("", "")
        env = Env(s, devices, broker, admin, tmp_path)
        envs.append(env)
        return env

    yield make
    for env in envs:
        for bridge, task in env.tasks:
            bridge.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
        for proc in env.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


class KafkaReader:
    """Reads whole topics from the beginning (assign + seek, no consumer group)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.values: list[dict[str, Any]] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> KafkaReader:
        c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                             request_timeout_ms=10_000, fetch_max_wait_ms=200)
        await c.start()
        await c.topics()  # fetches cluster metadata
        parts = c.partitions_for_topic(self.topic) or {0, 1, 2, 3}
        c.assign([TopicPartition(self.topic, p) for p in sorted(parts)])
        await c.seek_to_beginning()
        self._consumer = c
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self, timeout_ms: int = 500) -> int:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        n = 0
        for records in batches.values():
            for r in records:
                self.values.append(json.loads(r.value))
                n += 1
        return n

    async def until(self, done: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while not done(self.values):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out on {self.topic} with {len(self.values)} records")
            await self.poll()
        return self.values


def first_seqs(values: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """(device, seq of the first sample) of every ReadingBatch: identifies the MQTT message."""
    return {(v["device_id"], v["samples"][0]["seq"]) for v in values}
