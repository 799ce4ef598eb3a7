"""A stage's heartbeat (issue 20): its ``stage_heartbeats`` row (deploy/sql/020_monitoring.sql),
upserted every few seconds while the process runs.

Who reads it: alerting's canary check (alerting/canary.py) names the hop where the canary
stopped from it (the detector's beat stale → 检测服务 stopped; many detector starts in a short
while → crash-looping), the watchdog (hazwatch/) and the console's 监测系统运行状态 page.

The stages with a database connection beat here: ``detect``, ``alerting``, ``console`` and
the canary publisher (``canary``). The bridges have no database: they are seen through the
canary readings they carry (the bridge instance in each, which alerting writes as the bridge's
row, ``detail.via = "canary"``) and through their metrics endpoint, which the watchdog polls.

The beat runs on a connection of its own (:func:`run`), so a stage whose own work is stuck on
the database (a long COPY, a lock) still shows whether the process lives; the ``detail`` a
stage supplies (a callable, read at each beat) says what it is doing — counts, its last error.
A beat that fails is logged and tried again at the next one: the heartbeat never stops a stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hazmon.logs import kv

__all__ = ["EVERY_S", "default_instance", "beat", "run"]

log = logging.getLogger(__name__)

#: seconds between two beats (the readers call a beat stale after ~3 of these)
EVERY_S = 5.0

_UPSERT = """
INSERT INTO stage_heartbeats (stage, instance, started_at, beat_at, detail)
VALUES ($1, $2, $3, now(), $4::jsonb)
ON CONFLICT (stage, instance) DO UPDATE SET started_at = EXCLUDED.started_at, beat_at = now(),
    detail = EXCLUDED.detail"""


def default_instance(name: str = "") -> str:
    """``name`` when configured, else ``host:pid`` (a restarted process is a new instance: its
    ``started_at`` says when; the readers count recent starts to see a crash loop)."""
    return name or f"{socket.gethostname()}:{os.getpid()}"


async def beat(conn: asyncpg.Connection, stage: str, instance: str, started_at: datetime,
               detail: dict[str, Any] | None = None) -> None:
    """One upsert of the row (``beat_at`` is the database's clock, as every reader compares it)."""
    await conn.execute(_UPSERT, stage, instance, started_at,
                       json.dumps(detail or {}, ensure_ascii=False, default=str))


async def run(dsn: str, stage: str, stop: asyncio.Event, *, instance: str = "",
              detail: Callable[[], dict[str, Any]] | None = None, every_s: float = EVERY_S) -> None:
    """Beat every ``every_s`` until ``stop``, on a connection of its own (reconnected after a
    failure). Meant to run as a task beside the stage's loops."""
    instance = default_instance(instance)
    started_at = datetime.now(UTC)
    conn: asyncpg.Connection | None = None
    failing = False
    try:
        while not stop.is_set():
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(dsn, timeout=5, command_timeout=5,
                                                 server_settings={"application_name": f"hazmon-{stage} heartbeat"})
                await beat(conn, stage, instance, started_at, detail() if detail else None)
                if failing:
                    log.info("heartbeat written again %s", kv(stage=stage, instance=instance))
                failing = False
            except Exception as exc:  # noqa: BLE001 - the database may be down: beat again later
                if not failing:
                    log.warning("heartbeat failed %s", kv(stage=stage, instance=instance, error=str(exc)[:200]))
                failing = True
                if conn is not None:
                    conn.terminate()
                    conn = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)
