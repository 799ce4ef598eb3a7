"""监测系统运行状态 (issue 20): the pipeline's own health for the centre's duty operator.

``GET /api/system/status`` answers what console/system_status.py makes of the monitor's tables
(alerting/queries_monitor.py). The page asks every 5 s from every open tab; the answer is kept
``CACHE_S`` per console process, so N tabs cost one database round per ``CACHE_S``, each on a
connection borrowed with the pool's deadline (console/pool.py) and given back at once — a tab
never holds one between refreshes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException, Request

from alerting.queries_monitor import monitor_rows
from console.auth import access
from console.pool import acquire
from console.scope import Role
from console.system_status import Thresholds, shape

__all__ = ["router", "READERS", "CACHE_S"]

router = APIRouter(prefix="/api/system", tags=["system"])

#: who sees the pipeline's health: the centre's duty desk and the administrators
READERS = (Role.CENTRE, Role.ADMIN)
#: seconds one answer serves every viewer of a console process
CACHE_S = 2.0
NOT_MIGRATED = "监测状态表不存在：数据库尚未升级到本版本，请先执行 hazmon db migrate"


class _Cache:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.at = -1e9
        self.value: dict[str, Any] | None = None


def _cache(request: Request) -> _Cache:
    cache = getattr(request.app.state, "system_status_cache", None)
    if cache is None:
        cache = request.app.state.system_status_cache = _Cache()
    return cache


@router.get(
    "/status",
    summary="监测系统运行状态 (stages' heartbeats and lag, canary age per family, the watchdog)",
    responses={503: {"description": "数据库暂时不可用，或监测状态表尚未建立"}},
    **access(*READERS),
)
async def system_status(request: Request) -> dict[str, Any]:
    cache = _cache(request)
    async with cache.lock:  # concurrent viewers wait for the one round in flight
        if cache.value is None or time.monotonic() - cache.at > CACHE_S:
            async with acquire(request.app) as conn:
                try:
                    rows = await monitor_rows(conn)
                except asyncpg.UndefinedTableError as exc:
                    raise HTTPException(503, NOT_MIGRATED) from exc
            cache.value = shape(rows, Thresholds.from_settings(request.app.state.settings))
            cache.at = time.monotonic()
        return cache.value
