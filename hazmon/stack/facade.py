"""``Stack``: everything hazmon needs to run, external where configured and reachable, embedded
otherwise — the one object ``hazmon demo`` and ``hazmon stack up`` use.

Decision per service (made once, at :meth:`Stack.start`):

* PostgreSQL: ``settings.postgres.dsn`` when the server accepts a login (a missing database is
  created); else a private :class:`PostgresServer` on ``postgres.embedded_port``.
* Kafka: ``settings.kafka.bootstrap`` when a metadata request succeeds; else Tansu
  (:class:`KafkaBroker`) on ``kafka.embedded_port`` — memory storage, or ``kafka_storage="s3"``
  with a local S3 server so topics and offsets survive a broker kill -9.
* MQTT: the configured broker only when ``HAZMON_MQTT__HOST``/``PORT`` (or the YAML file) set it
  explicitly and it answers an MQTT CONNECT: hazmon needs its own mosquitto configuration (queue
  limits, persistence, ACL), so by default the project's own broker is started on
  ``mqtt.embedded_port`` and the bridge uses the ``hazmon-bridge`` account.

``stack.settings`` is a copy of the settings with the effective endpoints filled in; hand it to
the pipeline stages. Services stop in reverse order of start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from hazmon.errors import StackError
from hazmon.logs import kv
from hazmon.settings import Settings
from hazmon.stack._net import tcp_connectable
from hazmon.stack._process import ManagedProcess
from hazmon.stack.kafka import KafkaBroker, create_topics, kafka_reachable
from hazmon.stack.mosquitto import BRIDGE_USER, MosquittoBroker, mqtt_connect_ok
from hazmon.stack.postgres import PostgresServer, postgres_reachable, with_database
from hazmon.stack.s3 import S3Server

__all__ = ["Stack", "MqttEndpoint"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    username: str | None
    password: str | None


def _redact_dsn(dsn: str) -> str:
    parts = urlsplit(dsn)
    return dsn.replace(f":{parts.password}@", ":***@") if parts.password else dsn


class Stack:
    """``with Stack(settings, run_dir) as stack: ...`` — see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        run_dir: Path | None = None,
        *,
        kafka_storage: Literal["memory", "s3"] = "memory",
        prefer_embedded: bool = False,
    ) -> None:
        self._given = settings
        self.run_dir = Path(run_dir if run_dir is not None else settings.run_dir).resolve()
        self.kafka_storage = kafka_storage
        #: ignore configured endpoints and start everything (tests of the embedded path)
        self.prefer_embedded = prefer_embedded
        self.postgres: PostgresServer | None = None
        self.kafka: KafkaBroker | None = None
        self.s3: S3Server | None = None
        self.mosquitto: MosquittoBroker | None = None
        self._started: list[ManagedProcess] = []
        self._lines: list[str] = []
        self.pg_dsn: str = settings.postgres.dsn
        self.kafka_bootstrap: str = settings.kafka.bootstrap
        pw = settings.mqtt.password.get_secret_value() if settings.mqtt.password else None
        self.mqtt = MqttEndpoint(settings.mqtt.host, settings.mqtt.port, settings.mqtt.username, pw)
        #: accounts of the embedded broker ({user: password}); empty for an external broker
        self.mqtt_users: dict[str, str] = {}
        self.settings: Settings = settings

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> Stack:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lines.clear()
        try:
            self._start_postgres()
            self._start_kafka()
            self._start_mqtt()
        except BaseException:
            self.stop()
            raise
        self.settings = self._effective_settings()
        return self

    def stop(self) -> None:
        errors = []
        for proc in reversed(self._started):
            try:
                proc.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(f"{proc.name}: {exc}")
        self._started.clear()
        if errors:
            raise StackError("stopping the stack: " + "; ".join(errors))

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # --- per service -------------------------------------------------------------------
    def _start_postgres(self) -> None:
        cfg = self._given.postgres
        if not self.prefer_embedded and postgres_reachable(cfg.dsn):
            self.pg_dsn = cfg.dsn
            self._lines.append(f"postgres  external  {_redact_dsn(cfg.dsn)}")
            log.info("using external postgres %s", kv(dsn=_redact_dsn(cfg.dsn)))
            return
        dbname = urlsplit(cfg.dsn).path.lstrip("/") or "hazmon"
        server = PostgresServer(self.run_dir / "postgres", port=cfg.embedded_port, database=dbname)
        server.start()
        self._started.append(server)
        self.postgres = server
        server.create_database(dbname)
        self.pg_dsn = server.dsn(dbname)
        self._lines.append(
            f"postgres  embedded  {self.pg_dsn}  ({server.describe()}; "
            f"configured {_redact_dsn(cfg.dsn)} unreachable; log {server.log_path})"
        )

    def _start_kafka(self) -> None:
        cfg = self._given.kafka
        if not self.prefer_embedded and kafka_reachable(cfg.bootstrap):
            self.kafka_bootstrap = cfg.bootstrap
            self._lines.append(f"kafka     external  {cfg.bootstrap}")
            return
        if self.kafka_storage == "s3":
            self.s3 = S3Server(self.run_dir / "s3")
            self.s3.start()
            self._started.append(self.s3)
        broker = KafkaBroker(
            self.run_dir / "kafka", port=cfg.embedded_port, storage=self.kafka_storage, s3=self.s3, bucket="hazmon-kafka"
        )
        broker.start()
        self._started.append(broker)
        self.kafka = broker
        self.kafka_bootstrap = broker.bootstrap
        s3_log = f"; s3 log {self.s3.log_path}" if self.s3 is not None else ""
        self._lines.append(
            f"kafka     embedded  {broker.bootstrap}  ({broker.describe()}; log {broker.log_path}{s3_log})"
        )

    def _start_mqtt(self) -> None:
        cfg = self._given.mqtt
        explicit = bool({"host", "port"} & cfg.model_fields_set)
        if explicit and not self.prefer_embedded and tcp_connectable(cfg.host, cfg.port):
            pw = cfg.password.get_secret_value() if cfg.password else None
            ok, reason = mqtt_connect_ok(cfg.host, cfg.port, cfg.username, pw)
            if ok:
                self._lines.append(f"mqtt      external  {cfg.host}:{cfg.port} (user {cfg.username or '-'})")
                return
            log.warning("configured MQTT broker refused us; starting our own %s", kv(reason=reason))
        broker = MosquittoBroker(
            self.run_dir / "mqtt",
            port=cfg.embedded_port,
            max_payload_bytes=cfg.max_payload_bytes,
            topic_root=cfg.topic_root,
        )
        broker.start()
        self._started.append(broker)
        self.mosquitto = broker
        self.mqtt_users = dict(broker.users)
        self.mqtt = MqttEndpoint(broker.host, broker.port, BRIDGE_USER, broker.users[BRIDGE_USER])
        why = "configured broker unreachable" if explicit else "project's own config"
        self._lines.append(
            f"mqtt      embedded  {broker.host}:{broker.port}  (mosquitto, {why}; "
            f"config {broker.config_path}; log {broker.log_path})"
        )

    # --- results -----------------------------------------------------------------------
    def _effective_settings(self) -> Settings:
        s = self._given
        mqtt = s.mqtt.model_copy(
            update={
                "host": self.mqtt.host,
                "port": self.mqtt.port,
                "username": self.mqtt.username,
                "password": SecretStr(self.mqtt.password) if self.mqtt.password is not None else None,
            }
        )
        kafka = s.kafka.model_copy(update={"bootstrap": self.kafka_bootstrap, "fetch_max_wait_ms": self._fetch_wait_ms()})
        postgres = s.postgres.model_copy(update={"dsn": self.pg_dsn})
        return s.model_copy(update={"mqtt": mqtt, "kafka": kafka, "postgres": postgres, "run_dir": self.run_dir})

    def describe(self) -> list[str]:
        """One line per service for the demo banner: embedded or external, endpoint, log path."""
        return list(self._lines)

    def _fetch_wait_ms(self) -> int:
        """The configured fetch wait, or — for our own Tansu, when none was configured — the one
        its storage engine needs (:func:`~hazmon.stack.kafka.tansu_fetch_wait_ms`)."""
        cfg = self._given.kafka
        if self.kafka is None or "fetch_max_wait_ms" in cfg.model_fields_set:
            return cfg.fetch_max_wait_ms
        return self.kafka.fetch_max_wait_ms

    def env(self) -> dict[str, str]:
        """``HAZMON_*`` variables pointing another process at this stack."""
        out = {
            "HAZMON_POSTGRES__DSN": self.pg_dsn,
            "HAZMON_KAFKA__BOOTSTRAP": self.kafka_bootstrap,
            "HAZMON_KAFKA__FETCH_MAX_WAIT_MS": str(self._fetch_wait_ms()),
            "HAZMON_MQTT__HOST": self.mqtt.host,
            "HAZMON_MQTT__PORT": str(self.mqtt.port),
        }
        if self.mqtt.username is not None:
            out["HAZMON_MQTT__USERNAME"] = self.mqtt.username
        if self.mqtt.password is not None:
            out["HAZMON_MQTT__PASSWORD"] = self.mqtt.password
        return out

    @property
    def services(self) -> list[ManagedProcess]:
        """The embedded services currently owned, in start order."""
        return list(self._started)

    def create_topics(self) -> list[str]:
        """Create the configured topics (``settings.kafka.topic_prefix``, ``partitions``); idempotent."""
        return create_topics(self.kafka_bootstrap, self.settings.kafka.topics, self.settings.kafka.partitions)

    def with_database(self, name: str) -> str:
        return with_database(self.pg_dsn, name)
