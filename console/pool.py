"""Borrowing a database connection for a moment, with a deadline.

A request that waits forever for a pooled connection is how one busy feature froze the whole
console (issue 17: eight live-board tabs held the pool, login and ``/api/healthz`` hung). Code
that must stay answerable — sign-in, session checks, the health probe, opening a stream —
borrows through :func:`acquire`: a connection for the ``async with`` block only, or a 503 in
Chinese after ``console.db_acquire_timeout_s`` (or at once when PostgreSQL is down).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import HTTPException

__all__ = ["DB_DOWN", "DB_UNAVAILABLE_DETAIL", "acquire", "unavailable"]

#: errors meaning "the database cannot be reached right now" (not "this query is wrong")
DB_DOWN: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
DB_UNAVAILABLE_DETAIL = "数据库暂时不可用，请稍后重试 (database unavailable)"


def unavailable() -> HTTPException:
    return HTTPException(503, DB_UNAVAILABLE_DETAIL, headers={"Retry-After": "5"})


@asynccontextmanager
async def acquire(app: Any) -> AsyncIterator[Any]:
    """A pooled connection for the block, or :func:`unavailable` (503) when none comes in time."""
    pool = app.state.pool
    try:
        conn = await pool.acquire(timeout=app.state.settings.console.db_acquire_timeout_s)
    except DB_DOWN as exc:
        raise unavailable() from exc
    try:
        yield conn
    finally:
        await pool.release(conn)
