"""The whole pipeline as owned processes, for the fault tests, the bad-input test and the
pipeline benchmark (bench/bench_pipeline.py imports this module).

    mosquitto (persistence) → N × ``hazmon bridge`` → Tansu (s3 storage on moto) →
    ``hazmon detect`` → private PostgreSQL → ``hazmon alerting`` → ``hazmon sms-sim``

``kafka_engine="apache"`` / ``"apache3"`` puts an Apache Kafka KRaft cluster of one / three nodes
(:class:`~hazmon.stack.apache_kafka.ApacheKafkaCluster`; three: replication factor 3,
min.insync.replicas 2) where Tansu is; its nodes are ``kafka-1``… in :meth:`processes`.

Every piece is a :class:`~hazmon.stack.ManagedProcess` with ``kill()`` (SIGKILL of its process
group) and ``start()``, so a test can kill -9 any of the six components and bring it back on the
same port with the same data: Tansu keeps topics and committed offsets in S3 (moto stays up),
mosquitto its persistence file, PostgreSQL its data directory.

Also here: :class:`AckedPublisher` (a device fleet that records every QoS 1 publish the broker
acknowledged, each reading identified by (device, metric, ts)), process RSS/CPU sampling, and
the readers that reconcile what was accepted with what was stored, detected and sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import psutil

from hazmon.db import migrate
from hazmon.procs import HazmonProcess
from hazmon.stack import (
    SIM_USER,
    KafkaBroker,
    ManagedProcess,
    MosquittoBroker,
    PostgresServer,
    S3Server,
    create_topics,
    free_port,
)
from hazmon.topics import Topics
from sim.devices import FireAlarm, SimDevice, Simulator, register_fleet, synthetic_fleet

if TYPE_CHECKING:
    from hazmon.stack.apache_kafka import ApacheKafkaCluster

__all__ = [
    "ROUTES_FILE",
    "SAMPLE_DISTRICT",
    "PipelineProcesses",
    "AckedPublisher",
    "Reading",
    "RssSampler",
    "wait_until",
    "http_json",
]

REPO = Path(__file__).resolve().parents[1]
ROUTES_FILE = REPO / "tests" / "e2e" / "routes_e2e.yaml"
SAMPLE_DISTRICT = REPO / "data" / "sample"
TOPIC_ROOT = "hazmon/v1"
#: PipelineProcesses' kafka_engine → Apache Kafka nodes (0: Tansu)
KAFKA_NODES = {"tansu": 0, "apache": 1, "apache3": 3}


def http_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


async def wait_until(pred: Any, timeout_s: float, interval_s: float = 0.25, what: str = "condition") -> float:
    """Await ``pred()`` (sync or async) until truthy; returns seconds waited; TimeoutError names ``what``."""
    t0 = time.monotonic()
    while True:
        got = pred()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"{what}: not reached within {timeout_s:.0f} s")
        await asyncio.sleep(interval_s)


class _Stage(HazmonProcess):
    """A ``hazmon <stage>`` process, ready when its metrics endpoint answers."""

    def ready(self) -> bool:
        try:
            return bool(self.metrics_text())
        except OSError:
            return False


class _SmsSim(_Stage):
    """``hazmon sms-sim``: ready when /healthz answers (it serves no metrics port)."""

    def __init__(self, run_dir: Path, env: dict[str, str]) -> None:
        self.http_port = free_port()
        super().__init__("sms-sim", ["sms-sim", "--host", "127.0.0.1", "--port", str(self.http_port)], run_dir, env)

    def ready(self) -> bool:
        try:
            return bool(http_json(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1).get("ok"))
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@dataclass
class PipelineProcesses:
    """The six components plus the SMS simulator. ``start()`` brings everything up, migrates,
    imports the district (``district``: a directory of registry CSV files) and creates topics."""

    run_dir: Path
    district: Path = SAMPLE_DISTRICT
    bridges: int = 2
    routes_file: Path = ROUTES_FILE
    alerting_tick_s: float = 0.2
    mqtt_autosave_interval_s: int = 1
    detect_args: Sequence[str] = ()
    #: synthetic hazmon_json gas devices ``E2E-GAS-000000``… registered next to the district
    #: (vendor ``sim-hazmon-json``, site ``S-SIM``: no contacts, so no SMS), for bulk load
    fleet: int = 1000
    extra_env: dict[str, str] = field(default_factory=dict)
    topics: Topics = field(default_factory=lambda: Topics(f"e2e{uuid.uuid4().hex[:8]}"))
    #: "s3" (topics and offsets survive a broker kill -9: the fault tests) or "memory"
    kafka_storage: str = "s3"
    #: "tansu" (``kafka_storage``), "apache" (one Apache Kafka node) or "apache3" (three nodes)
    kafka_engine: str = "tansu"
    apache: ApacheKafkaCluster | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.kafka_engine not in KAFKA_NODES:
            raise ValueError(f"kafka_engine {self.kafka_engine!r}: one of {', '.join(KAFKA_NODES)}")
        if KAFKA_NODES[self.kafka_engine]:
            from hazmon.stack.apache_kafka import ApacheKafkaCluster

            self.apache = ApacheKafkaCluster(self.run_dir / "apache-kafka", nodes=KAFKA_NODES[self.kafka_engine])
        self.s3 = S3Server(self.run_dir / "s3")
        self.kafka = KafkaBroker(self.run_dir / "kafka", storage=self.kafka_storage,  # type: ignore[arg-type]
                                 s3=self.s3 if self.kafka_storage == "s3" else None, bucket="hazmon-e2e")
        self.mqtt = MosquittoBroker(self.run_dir / "mqtt", autosave_interval_s=self.mqtt_autosave_interval_s)
        self.postgres = PostgresServer(self.run_dir / "postgres", database="hazmon")
        self.stages: dict[str, HazmonProcess] = {}
        self.sms: _SmsSim | None = None
        self.dsn = ""

    # --- lifecycle -------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
        env.update({
            "HAZMON_POSTGRES__DSN": self.dsn,
            "HAZMON_POSTGRES__TIMESCALEDB": "false",
            "HAZMON_KAFKA__BOOTSTRAP": self.kafka_bootstrap,
            # Apache Kafka answers a held fetch as soon as data arrives: aiokafka's default there
            "HAZMON_KAFKA__FETCH_MAX_WAIT_MS": str(500 if self.apache else self.kafka.fetch_max_wait_ms),
            "HAZMON_KAFKA__TOPIC_PREFIX": self.topics.prefix,
            "HAZMON_MQTT__HOST": self.mqtt.host,
            "HAZMON_MQTT__PORT": str(self.mqtt.port),
            "HAZMON_MQTT__USERNAME": "hazmon-bridge",
            "HAZMON_MQTT__PASSWORD": self.mqtt.users["hazmon-bridge"],
            "HAZMON_MQTT__TOPIC_ROOT": TOPIC_ROOT,
            # presence sweeps would turn every quiet registered device into an offline alarm
            "HAZMON_MQTT__PRESENCE_K": "0",
            "HAZMON_MQTT__CLIENT_ID": f"e2e-{self.topics.prefix}",
            "HAZMON_RUN_DIR": str(self.run_dir / "stages"),
            "HAZMON_LOG_LEVEL": "INFO",
        })
        if self.sms is not None:
            env["HAZMON_SMS__URL"] = f"{self.sms.url}/webhook/sms"
        env.update(self.extra_env)
        return env

    def start(self) -> PipelineProcesses:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.apache is not None:
                self.apache.start()
            else:
                if self.kafka_storage == "s3":
                    self.s3.start()
                self.kafka.start()
            self.mqtt.start()
            self.postgres.start()
            self.postgres.create_database("hazmon")
            self.dsn = self.postgres.dsn("hazmon")
            asyncio.run(self._prepare_db())
            create_topics(self.kafka_bootstrap, self.topics, 4)
            stage_dir = self.run_dir / "stages"
            self.sms = _SmsSim(stage_dir, {})
            self.sms.start()
            env = self.env()
            for i in range(self.bridges):
                self.stages[f"bridge-{i}"] = _Stage(f"bridge-{i}", ["bridge", "--instance", str(i)], stage_dir, env)
            self.stages["detect"] = _Stage("detect", ["detect", *self.detect_args], stage_dir, env)
            self.stages["alerting"] = _Stage(
                "alerting",
                ["alerting", "--routes", str(self.routes_file), "--http-port", str(free_port()),
                 "--tick", str(self.alerting_tick_s)],
                stage_dir, env,
            )
            for proc in self.stages.values():
                proc.start()
        except BaseException:
            self.stop()
            raise
        return self

    async def _prepare_db(self) -> None:
        from hazmon.registry import import_registry

        await migrate(self.dsn, timescale=False)
        await import_registry(self.dsn, self.district, actor="e2e")
        if self.fleet:
            conn = await asyncpg.connect(self.dsn)
            try:
                await register_fleet(conn, self.fleet_devices())
            finally:
                await conn.close()

    def fleet_devices(self) -> list[SimDevice]:
        return synthetic_fleet(self.fleet, adapters=(("hazmon_json", "gas"),), interval_s=60.0, prefix="E2E")

    def stop(self) -> None:
        for proc in [*reversed(list(self.stages.values())), self.sms]:
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.stop()
        for svc in (self.postgres, self.mqtt, self.kafka, self.apache, self.s3):
            with contextlib.suppress(Exception):
                if svc is not None:
                    svc.stop()
        with contextlib.suppress(Exception):
            self.postgres.remove_data()

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka.bootstrap if self.apache is None else self.apache.bootstrap

    def __enter__(self) -> PipelineProcesses:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- components ------------------------------------------------------------------------
    def component(self, name: str) -> ManagedProcess:
        """``bridge`` (the first bridge), ``detect``, ``alerting``, ``kafka``, ``postgres``, ``mqtt``,
        or any stage name (``bridge-1``)."""
        if name == "bridge":
            return self.stages["bridge-0"]
        if name in self.stages:
            return self.stages[name]
        return {"kafka": self.kafka, "postgres": self.postgres, "mqtt": self.mqtt, "s3": self.s3, "sms": self.sms}[name]  # type: ignore[return-value]

    def processes(self) -> dict[str, ManagedProcess]:
        out: dict[str, ManagedProcess] = {"mqtt": self.mqtt, "kafka": self.kafka, "postgres": self.postgres}
        if self.apache is not None:
            del out["kafka"]
            out.update((n.name, n) for n in self.apache.nodes.values())
        out.update(self.stages)
        if self.sms is not None:
            out["sms-sim"] = self.sms
        return out

    def ensure_running(self) -> list[str]:
        """Start whatever is down (a test that failed half-way must not poison the next one)."""
        started = []
        for name, proc in self.processes().items():
            if not proc.is_running:
                proc.start()
                started.append(name)
        return started

    def crashed_stages(self) -> list[str]:
        return [n for n, p in self.stages.items() if not p.is_running]

    def metrics_answer(self) -> dict[str, bool]:
        out = {}
        for name, proc in self.stages.items():
            try:
                out[name] = bool(proc.metrics_text())
            except OSError:
                out[name] = False
        return out

    # --- the SMS simulator -----------------------------------------------------------------
    def sms_messages(self) -> list[dict[str, Any]]:
        assert self.sms is not None
        return list(http_json(f"{self.sms.url}/messages", timeout=30))

    # --- database --------------------------------------------------------------------------
    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn, timeout=10)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """One query on a fresh connection, retried while PostgreSQL restarts."""
        for attempt in range(120):
            try:
                conn = await self.connect()
                try:
                    return list(await conn.fetch(sql, *args))
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                if attempt == 119:
                    raise
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")


# ------------------------------------------------------------------------------- publisher
@dataclass(frozen=True, slots=True)
class Reading:
    device_id: str
    metric: str
    ts_ms: int
    value: float


class AckedPublisher:
    """A fleet of ``hazmon_json`` gas devices publishing QoS 1 at ``rate`` messages/s from a
    thread (paho, MQTT 3.1.1). Each message carries ``gas_lel`` and ``battery_pct`` at one
    device time; (device, metric, ts) is unique because every device's clock only moves
    forward. ``accepted`` holds the readings of every message the broker PUBACKed, with the
    acknowledgement time; a message whose PUBACK never came (broker killed) is not accepted,
    though the broker may still have it — then it is allowed, not required, in the database.
    paho resends unacknowledged messages after a reconnect, so most are accepted late.
    """

    def __init__(self, host: str, port: int, password: str, devices: Sequence[str], *, vendor: str = "hziot",
                 rate: float = 200.0, seed: int = 7) -> None:
        import paho.mqtt.client as mqtt

        self.devices = list(devices)
        self.vendor = vendor
        self.rate = rate
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self.pending: dict[int, tuple[list[Reading], float]] = {}
        self.published: list[Reading] = []
        self.accepted: dict[Reading, float] = {}  # reading → PUBACK wall time
        self.extra_accepted: list[tuple[str, bytes, float]] = []  # raw messages (topic, payload, ack time)
        self._raw_pending: dict[int, tuple[str, bytes]] = {}
        self._early: dict[int, float] = {}  # PUBACKs that overtook their registration
        self._last_ms: dict[str, int] = {}
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent_messages = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"e2e-pub-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv311, clean_session=True)
        self.client.username_pw_set(SIM_USER, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]  # paho types it int; seconds as float work
        self.client.on_publish = self._on_publish
        self.client.connect_async(host, port, keepalive=10)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        # paho's thread; never call into paho while holding self._lock (paho holds its own
        # locks around this callback), so a PUBACK can overtake the registration below
        now = time.time()
        with self._lock:
            got = self.pending.pop(mid, None)
            raw = self._raw_pending.pop(mid, None)
            if got is None and raw is None:
                self._early[mid] = now
                return
            if got is not None:
                for r in got[0]:
                    self.accepted[r] = now
            if raw is not None:
                self.extra_accepted.append((raw[0], raw[1], now))

    def _register(self, mid: int, readings: list[Reading] | None, raw: tuple[str, bytes] | None) -> None:
        with self._lock:
            acked = self._early.pop(mid, None)
            if acked is None:
                if readings is not None:
                    self.pending[mid] = (readings, time.time())
                if raw is not None:
                    self._raw_pending[mid] = raw
                return
            for r in readings or ():
                self.accepted[r] = acked
            if raw is not None:
                self.extra_accepted.append((raw[0], raw[1], acked))

    def _next_ts(self, device: str) -> int:
        ms = int(time.time() * 1000)
        last = self._last_ms.get(device, 0)
        if ms <= last:
            ms = last + 1
        self._last_ms[device] = ms
        return ms

    def publish_one(self, device: str) -> list[Reading]:
        ts = self._next_ts(device)
        readings = [Reading(device, "gas_lel", ts, round(self.rng.uniform(0.2, 3.0), 2)),
                    Reading(device, "battery_pct", ts, float(self.rng.randint(60, 99)))]
        payload = json.dumps({"readings": [{"metric": r.metric, "value": r.value, "ts": r.ts_ms / 1000.0}
                                           for r in readings]}, separators=(",", ":")).encode()
        with self._lock:
            self.published.extend(readings)
            self.sent_messages += 1
        info = self.client.publish(f"{TOPIC_ROOT}/{self.vendor}/{device}/telemetry", payload, qos=1)
        self._register(info.mid, readings, None)
        return readings

    def publish_raw(self, topic: str, payload: bytes) -> None:
        """Any payload (fire alarms, bad input); accepted ones land in ``extra_accepted``."""
        info = self.client.publish(topic, payload, qos=1)
        self._register(info.mid, None, (topic, payload))

    def _run(self) -> None:
        interval = 1.0 / self.rate
        nxt = time.monotonic()
        i = 0
        while not self._stop.is_set():
            if self._paused.is_set():
                time.sleep(0.05)
                nxt = time.monotonic()
                continue
            self.publish_one(self.devices[i % len(self.devices)])
            i += 1
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:
                nxt = time.monotonic()

    def start(self) -> AckedPublisher:
        self._thread = threading.Thread(target=self._run, name="e2e-publisher", daemon=True)
        self._thread.start()
        return self

    def stop_load(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def wait_acked(self, timeout_s: float = 60.0) -> int:
        """Wait until nothing is pending (or the timeout); returns what is still unacknowledged."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                left = len(self.pending) + len(self._raw_pending)
            if not left:
                return 0
            time.sleep(0.1)
        with self._lock:
            return len(self.pending) + len(self._raw_pending)

    def close(self) -> None:
        self.stop_load()
        self.client.disconnect()
        self.client.loop_stop()


# ------------------------------------------------------------------------------- sampling
class RssSampler:
    """Samples RSS (bytes, the process and its descendants) and CPU of named processes from a
    thread; ``peak`` per name."""

    def __init__(self, procs: dict[str, ManagedProcess], every_s: float = 0.25) -> None:
        self.procs = procs
        self.every_s = every_s
        self.peak: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    @staticmethod
    def rss_of(pid: int | None) -> int:
        if not pid:
            return 0
        try:
            p = psutil.Process(pid)
            total = p.memory_info().rss
            for c in p.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += c.memory_info().rss
            return total
        except psutil.Error:
            return 0

    def sample(self) -> None:
        for name, proc in list(self.procs.items()):
            rss = self.rss_of(proc.pid if proc.is_running else None)
            self.last[name] = rss
            if rss > self.peak.get(name, 0):
                self.peak[name] = rss

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# ------------------------------------------------------------------------------- reconciliation
async def stored_readings(pipeline: PipelineProcesses, devices: Iterable[str], since_ms: int) -> dict[tuple[str, str, int], int]:
    """(device, metric, ts ms) → number of rows, for ``devices`` from ``since_ms`` on."""
    rows = await pipeline.fetch(
        """SELECT device_id, metric, round(extract(epoch FROM ts) * 1000)::bigint AS ms, count(*) AS n
           FROM readings WHERE device_id = ANY($1::text[]) AND ts >= to_timestamp($2::float8 / 1000)
           GROUP BY 1, 2, 3""",
        list(devices), float(since_ms),
    )
    return {(r["device_id"], r["metric"], int(r["ms"])): int(r["n"]) for r in rows}


def fire_alarm_message(panel: str, *, vendor: str = "firenet", adapter: str = "gbt26875", at: float | None = None,
                       point: int = 23) -> tuple[str, bytes]:
    """A panel's fire-alarm frame (GB/T 26875.3 component state, 火警 bit) as the simulator writes it."""
    t = time.time() if at is None else at
    dev = SimDevice(panel, vendor, adapter, "fire", 300.0)
    sim = Simulator([dev], incidents=[FireAlarm(panel, 0.0, point=point)], start=t - 1.0)
    msg = sim.message(dev, 0, t)
    return msg.topic, msg.payload


async def alarm_outcome(pipeline: PipelineProcesses, panels: Sequence[str]) -> dict[str, Any]:
    """Events, their alerts' SMS (from the simulator) and the SMS expected from the
    responsibility matrix, for fire alarms on ``panels``."""
    from alerting.config import load_config
    from alerting.matrix import resolve
    from hazmon.registry import load_registry

    events = await pipeline.fetch(
        "SELECT id, device_id, site_id, kind, state, starts_at FROM events WHERE device_id = ANY($1::text[])", list(panels))
    ids = [e["id"] for e in events]
    notes = await pipeline.fetch(
        "SELECT id, alert_id, recipient_phone, status FROM notifications WHERE channel = 'sms' AND alert_id = ANY($1::text[])",
        ids)
    alert_of = {n["id"]: n["alert_id"] for n in notes}
    sms = [m for m in await asyncio.to_thread(pipeline.sms_messages) if m.get("client_ref") in alert_of]
    config = load_config(pipeline.routes_file)
    conn = await pipeline.connect()
    try:
        registry = await load_registry(conn)
    finally:
        await conn.close()
    roles = config.receivers["life_safety"].roles
    expected: dict[str, set[str]] = {}
    for e in events:
        resp = resolve(registry, site_id=e["site_id"], domain="fire")
        expected[e["id"]] = {r.phone for r in resp.for_roles(roles, duty_operator=config.duty_operator) if r.phone}
    sent: dict[str, dict[str, list[str]]] = {}  # alert → phone → notification ids (one per request)
    for m in sms:
        sent.setdefault(alert_of[m["client_ref"]], {}).setdefault(m["phone"], []).append(m["client_ref"])
    return {"events": events, "notifications": notes, "sms": sms, "sent": sent, "expected": expected}
