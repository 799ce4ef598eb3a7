"""Many live-board streams and a database restart, through a real uvicorn on real PostgreSQL.

Issue 17 item 5: each ``/api/stream`` used to hold a pooled database connection for its whole
life, so a handful of tabs froze login and the health check. Streams now share the board hub's
one poller and hold no connection; a per-user cap refuses the stream beyond it (429, Chinese).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from console_district import NOW, PASSWORD, USERS, make_alert, seed_district, sessions_for
from console_server import ConsoleServer

from console.auth import _token_hash
from console.board import BoardHub
from hazmon.contracts import Severity
from hazmon.db import migrate
from hazmon.settings import ConsoleSettings
from hazmon.stack import PostgresServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

STREAMS = 20


class Stream:
    """One open SSE response, read line by line in the background into a queue of events."""

    def __init__(self, resp: httpx.Response) -> None:
        self.resp = resp
        self.events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.ended = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        event = "message"
        try:
            async for line in self.resp.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    await self.events.put((event, line[6:]))
                    event = "message"
        except (httpx.HTTPError, asyncio.CancelledError):
            pass
        finally:
            self.ended.set()

    async def next(self, wanted: str, wait_s: float) -> str:
        async def get() -> str:
            while True:
                event, data = await self.events.get()
                if event == wanted:
                    return data

        return await asyncio.wait_for(get(), wait_s)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def open_stream(client: httpx.AsyncClient, headers: dict[str, str], *, hello_s: float = 10.0
                      ) -> AsyncIterator[Stream]:
    """An open stream that has received its greeting (subscribed from here on)."""
    async with client.stream("GET", "/api/stream", headers=headers) as resp:
        assert resp.status_code == 200, (await resp.aread()).decode()
        s = Stream(resp)
        try:
            await s.next("hello", hello_s)
            yield s
        finally:
            await s.close()


async def timed(coro) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = await coro
    return time.perf_counter() - t0, r


async def _baseline(client: httpx.AsyncClient) -> tuple[float, float]:
    """Median health and login times of the idle console."""
    health, login = [], []
    for _ in range(5):
        dt, r = await timed(client.get("/api/healthz"))
        assert r.status_code == 200
        health.append(dt)
    for _ in range(3):
        dt, r = await timed(client.post("/api/auth/login", json={"username": "centre1", "password": PASSWORD}))
        assert r.status_code == 200, r.text
        login.append(dt)
    return statistics.median(health), statistics.median(login)


async def test_twenty_streams_of_one_user_share_one_listener_and_leave_the_console_free(fresh_api):
    api = fresh_api
    server = await asyncio.to_thread(
        lambda: ConsoleServer(api.dsn, console=ConsoleSettings(streams_per_user=STREAMS)).start()
    )
    try:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with (httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as streams_client,
                    httpx.AsyncClient(base_url=server.url, timeout=10) as client):
            health0, login0 = await _baseline(client)
            async with contextlib.AsyncExitStack() as stack:
                streams = []
                for i in range(STREAMS):
                    try:
                        streams.append(await asyncio.wait_for(
                            stack.enter_async_context(open_stream(streams_client, api.auth("centre1"))), 10.0))
                    except (TimeoutError, httpx.TimeoutException):
                        raise AssertionError(f"stream {i + 1} of {STREAMS} got no greeting within 10 s") from None
                # the console still answers quickly while the 20 streams are open
                health = [(await timed(client.get("/api/healthz"))) for _ in range(5)]
                assert all(r.status_code == 200 for _, r in health)
                health_s = statistics.median(dt for dt, _ in health)
                assert health_s < 20 * health0 + 0.5, (health0, health_s)
                dt, r = await timed(client.post("/api/auth/login", json={"username": "town-t1", "password": PASSWORD}))
                assert r.status_code == 200, r.text
                assert dt < 5 * login0 + 1.0, (login0, dt)
                print(f"{STREAMS} streams open: health median {health_s * 1000:.1f} ms (idle {health0 * 1000:.1f} ms), "
                      f"login {dt * 1000:.0f} ms (idle {login0 * 1000:.0f} ms)")
                # the snapshot endpoint (a pooled connection per request) still works too
                assert (await client.get("/api/board", headers=api.auth("centre1"))).status_code == 200

                # one change → every stream gets the same event from the one shared poller
                async with api.pool.acquire() as conn:
                    aid = await make_alert(conn, "G1", "S1", "gas", "gas.high", Severity.RED, now=datetime.now(UTC),
                                           township_id="T1", department_ids=("D-ZJ",), summary="20 个页面")
                got = await asyncio.gather(*(s.next("alert", 15.0) for s in streams))
                assert len(set(got)) == 1, "every client gets the same serialised event"
                assert json.loads(got[0])["alert"]["id"] == aid

                # the 21st stream of the same user is refused, in Chinese, with a Retry-After
                r = await client.get("/api/stream", headers=api.auth("centre1"))
                assert r.status_code == 429, r.text
                assert "实时推送" in r.json()["detail"] and int(r.headers["retry-after"]) > 0
                # …while another user may still open one
                async with open_stream(streams_client, api.auth("town-t1")):
                    pass
                # closing one of the 20 frees its place
                await stack.aclose()
            async with open_stream(streams_client, api.auth("centre1")) as s:
                assert not s.ended.is_set()
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[PostgresServer]:
    """A private PostgreSQL this test may stop and start (the shared one serves everyone)."""
    server = PostgresServer(tmp_path / "pg")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.remove_data)


async def test_a_stream_lives_through_a_database_restart(own_postgres: PostgresServer):
    pg = own_postgres
    await asyncio.to_thread(pg.create_database, "console")
    dsn = pg.dsn("console")
    await migrate(dsn, timescale=False)
    conn = await asyncpg.connect(dsn)
    try:
        await seed_district(conn)
        tokens = await sessions_for(conn, list(USERS), now=datetime.now(UTC))
    finally:
        await conn.close()
    auth = {"Authorization": f"Bearer {tokens['town-t1'][0]}"}
    server = await asyncio.to_thread(
        lambda: ConsoleServer(dsn, console=ConsoleSettings(db_acquire_timeout_s=2.0)).start()
    )
    try:
        async with (httpx.AsyncClient(base_url=server.url, timeout=30) as sc,
                    httpx.AsyncClient(base_url=server.url, timeout=10) as client):
            async with open_stream(sc, auth) as stream:
                await asyncio.to_thread(pg.stop)
                await asyncio.sleep(1.0)  # a few board polls fail meanwhile
                r = await client.get("/api/healthz")
                assert r.status_code == 503 and "数据库" in r.json()["detail"], r.text
                await asyncio.to_thread(pg.start)
                assert not stream.ended.is_set(), "the stream ended with the database"
                conn = await asyncpg.connect(dsn)
                try:
                    aid = await make_alert(conn, "G1", "S1", "gas", "gas.high", Severity.ORANGE, now=datetime.now(UTC),
                                           township_id="T1", department_ids=("D-ZJ",), summary="重启之后")
                finally:
                    await conn.close()
                got = json.loads(await stream.next("alert", 20.0))
                assert got["alert"]["id"] == aid
            r = await client.get("/api/healthz")
            assert r.status_code == 200
            async with open_stream(sc, auth):  # new streams authenticate again
                pass
    finally:
        await asyncio.to_thread(server.stop)


async def test_logout_and_deactivation_end_open_streams(fresh_api):
    """A stream outlives no session: the hub re-checks all open streams' sessions in one query."""
    api = fresh_api
    server = await asyncio.to_thread(lambda: ConsoleServer(api.dsn, board_recheck_s=0.3).start())
    try:
        async with (httpx.AsyncClient(base_url=server.url, timeout=30) as sc,
                    httpx.AsyncClient(base_url=server.url, timeout=10) as client):
            r = await client.post("/api/auth/login", json={"username": "town-t2", "password": PASSWORD})
            h = {"Authorization": f"Bearer {r.json()['token']}"}
            async with open_stream(sc, h) as mine, open_stream(sc, api.auth("town-t1")) as other:
                assert (await client.post("/api/auth/logout", headers=h)).status_code == 200
                bye = json.loads(await mine.next("bye", 10.0))
                assert bye == {"reason": "session"}
                await asyncio.wait_for(mine.ended.wait(), 5.0)
                assert not other.ended.is_set()
                r = await client.delete("/api/users/town-t1", headers=api.auth("admin1"))
                assert r.status_code == 200, r.text
                assert json.loads(await other.next("bye", 10.0)) == {"reason": "session"}
    finally:
        await asyncio.to_thread(server.stop)


async def test_a_stream_opened_during_a_session_check_is_not_ended_by_it(fresh_api):
    """The check asks about the streams open when it starts; one opened while its query runs
    was not asked about and must not be taken for a dead session."""
    api = fresh_api
    hub = BoardHub(api.pool, clock=lambda: NOW)
    early = hub.subscribe(None, username="town-t1", session_hash=_token_hash(api.tokens["town-t1"][0]))
    blocker = await api.pool.acquire()
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE console_sessions IN ACCESS EXCLUSIVE MODE")
        check = asyncio.create_task(hub.recheck_sessions())
        async with api.pool.acquire() as conn:  # wait until the check's query waits for the lock
            for _ in range(200):
                if await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND query LIKE '%console_sessions%'"):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the session check never reached the database")
        late = hub.subscribe(None, username="town-t2", session_hash=_token_hash(api.tokens["town-t2"][0]))
        await tx.rollback()
    finally:
        await api.pool.release(blocker)
    assert await asyncio.wait_for(check, 10) == 0
    assert early.ended == "" and late.ended == ""
    assert late.queue.empty()
