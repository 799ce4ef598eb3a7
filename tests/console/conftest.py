"""Console fixtures: one district database per session (read-mostly tests), fresh databases
for tests that need exact counts, an in-memory ASGI client, and bearer tokens per role."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from console_district import NOW, USERS, Seeded, seed_district, sessions_for

from console.app import create_app
from console.auth import LoginLimits
from hazmon.db import migrate
from hazmon.settings import PostgresSettings, Settings
from hazmon.stack.postgres import with_database


@dataclass
class Api:
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    tokens: dict[str, tuple[str, str]]  # username → (token, csrf)
    seeded: Seeded
    dsn: str

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username][0]}"}


class Clock:
    """A controllable clock for the app (session expiry, stale sensors, KPIs)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):  # noqa: ANN204
        return self.now


async def _new_db(server_dsn: str) -> str:
    name = f"test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    dsn = with_database(server_dsn, name)
    await migrate(dsn, timescale=False)
    return dsn


async def _drop_db(server_dsn: str, dsn: str) -> None:
    name = dsn.rsplit("/", 1)[-1].split("?")[0]
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _api(dsn: str, clock: Clock) -> AsyncIterator[Api]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=6)
    async with pool.acquire() as conn:
        seeded = await seed_district(conn)
        tokens = await sessions_for(conn, list(USERS), now=NOW)
    app = create_app(Settings(postgres=PostgresSettings(dsn=dsn)), pool=pool, clock=clock,
                     login_limits=LoginLimits(per_user=5, per_ip=30, window_s=900), board_poll_s=0.2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            yield Api(client, pool, tokens, seeded, dsn)
    await pool.close()


@pytest.fixture(scope="session")
async def district_dsn(pg_server_dsn: str) -> AsyncIterator[str]:
    """A migrated database holding the small test district (shared; tests add, never rely on
    exact global counts)."""
    dsn = await _new_db(pg_server_dsn)
    yield dsn
    await _drop_db(pg_server_dsn, dsn)


@pytest.fixture(scope="session")
async def api(district_dsn: str) -> AsyncIterator[Api]:
    async for a in _api(district_dsn, Clock()):
        yield a


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fresh_api(pg_dsn: str, clock: Clock) -> AsyncIterator[Api]:
    """A fresh database (exact counts, time travel with ``clock``)."""
    async for a in _api(pg_dsn, clock):
        yield a
