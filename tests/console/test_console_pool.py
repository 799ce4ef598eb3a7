"""Every route's connection (the ``Conn`` dependency) is borrowed with the pool deadline: a
pool held by something else answers 503 in words, soon, and never hangs the request."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from console.routes._common import Conn
from hazmon.settings import ConsoleSettings, PostgresSettings, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_route_connection_has_a_deadline(district_dsn: str) -> None:
    pool = await asyncpg.create_pool(district_dsn, min_size=1, max_size=1)
    app = FastAPI()
    app.state.pool = pool
    app.state.settings = Settings(postgres=PostgresSettings(dsn=district_dsn),
                                  console=ConsoleSettings(db_acquire_timeout_s=0.5))

    @app.get("/probe")
    async def probe(conn: Conn) -> dict:
        return {"one": await conn.fetchval("SELECT 1")}

    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            assert (await client.get("/probe")).json() == {"one": 1}
            async with pool.acquire():  # someone else holds the only connection
                r = await client.get("/probe")  # without a deadline: waits for ever (the test hangs)
            assert r.status_code == 503 and "数据库" in r.json()["detail"], r.text
            assert int(r.headers["retry-after"]) > 0
            assert (await client.get("/probe")).json() == {"one": 1}  # and the connection came back
    finally:
        await pool.close()
