"""Hostile logins against a real uvicorn on real PostgreSQL (issue 17 item 12).

* An attacker's failures from one source address lock (account, that source) only: the owner
  signs in from another address.
* The limit is taken before the password is checked, atomically: 20 concurrent wrong
  passwords get at most ``per_user`` checks, the rest 429.
* Each further lock of the same (account, source) lasts longer (backoff).
* argon2 runs in worker threads: the health probe stays fast during 20 concurrent logins.
* Successful logins are limited too (they cost an argon2 check and a session each).

Different sources are real: the client binds 127.0.0.2 / 127.0.0.3 (all of 127/8 is loopback).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from console_district import PASSWORD
from console_server import ConsoleServer

from console.auth import LoginLimits
from hazmon.settings import ConsoleSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")

SOURCE_A = "127.0.0.2"
SOURCE_B = "127.0.0.3"


def client_from(server: ConsoleServer, source: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=server.url, timeout=60, transport=transport,
                             limits=httpx.Limits(max_connections=100))


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/auth/login", json={"username": username, "password": password})


@pytest.fixture
async def server(fresh_api, clock) -> AsyncIterator[ConsoleServer]:
    s = await asyncio.to_thread(lambda: ConsoleServer(fresh_api.dsn, clock=clock).start())
    try:
        yield s
    finally:
        await asyncio.to_thread(s.stop)


async def test_failures_from_one_source_do_not_lock_the_account_from_another(server, fresh_api):
    async with client_from(server, SOURCE_A) as attacker, client_from(server, SOURCE_B) as owner:
        for _ in range(5):
            r = await login(attacker, "town-t1", "guessed password")
            assert r.status_code == 401 and "用户名或密码错误" in r.json()["detail"]
        r = await login(attacker, "town-t1")  # even the right password waits, from that source
        assert r.status_code == 429, r.text
        assert "登录失败次数过多" in r.json()["detail"] and int(r.headers["retry-after"]) > 0
        r = await login(owner, "town-t1")
        assert r.status_code == 200, r.text
    async with fresh_api.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT ip, ok FROM console_login_attempts WHERE username = 'town-t1' ORDER BY id")
    # every attempt that was tried is on record, with its source
    assert [(r["ip"], r["ok"]) for r in rows] == [(SOURCE_A, False)] * 5 + [(SOURCE_B, True)]


async def test_twenty_concurrent_wrong_passwords_get_at_most_the_limit_tried(server, fresh_api):
    accounts = ["centre1", "admin1", "town-t2"]  # three at once: 60 requests in flight
    async with client_from(server, SOURCE_A) as attacker:
        answers = await asyncio.gather(*(login(attacker, u, f"guess {i}") for u in accounts for i in range(20)))
    async with fresh_api.pool.acquire() as conn:
        tried = dict(await conn.fetch(
            "SELECT username, count(*) FROM console_login_attempts GROUP BY username"))
    for k, user in enumerate(accounts):
        codes = sorted(r.status_code for r in answers[20 * k:20 * (k + 1)])
        assert codes.count(401) <= 5, (user, codes)
        assert codes == [401] * codes.count(401) + [429] * (20 - codes.count(401)), (user, codes)
        assert tried[user] == codes.count(401), (user, tried)
    refused = {r.json()["detail"].split("，")[0] for r in answers if r.status_code == 429}
    assert refused <= {"该账号在本地址登录失败次数过多", "该账号在本地址同时进行的登录过多"}, refused


async def test_each_further_lock_lasts_longer(server, clock):
    waits = []
    async with client_from(server, SOURCE_A) as attacker:
        for _ in range(3):
            for _ in range(5):
                assert (await login(attacker, "dept-zj", "wrong again")).status_code == 401
            r = await login(attacker, "dept-zj", "wrong again")
            assert r.status_code == 429, r.text
            waits.append(int(r.headers["retry-after"]))
            clock.now += timedelta(seconds=waits[-1] + 1)
        assert waits[0] < waits[1] < waits[2], waits
        # after the last lock ran out, the right password works and the streak starts over
        assert (await login(attacker, "dept-zj")).status_code == 200
        for _ in range(5):
            assert (await login(attacker, "dept-zj", "wrong again")).status_code == 401
        r = await login(attacker, "dept-zj", "wrong again")
        assert r.status_code == 429 and int(r.headers["retry-after"]) <= waits[0]


async def _health_times(client: httpx.AsyncClient, n: int, pause_s: float = 0.02) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await client.get("/api/healthz")
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200
        await asyncio.sleep(pause_s)
    return out


async def test_health_stays_fast_during_twenty_concurrent_logins(server):
    users = ["centre1", "admin1", "town-t1", "town-t2", "dept-zj"]
    async with client_from(server, SOURCE_A) as logins, client_from(server, SOURCE_B) as probe:
        baseline = statistics.median(await _health_times(probe, 10))
        t0 = time.perf_counter()
        batch = asyncio.gather(*(login(logins, users[i % len(users)]) for i in range(20)))
        during = []
        while not batch.done():
            during += await _health_times(probe, 1)
        answers = await batch
        took = time.perf_counter() - t0
    assert [r.status_code for r in answers] == [200] * 20
    print(f"health: idle median {baseline * 1000:.1f} ms; during 20 logins ({took:.2f} s, {len(during)} probes) "
          f"median {statistics.median(during) * 1000:.1f} ms, max {max(during) * 1000:.1f} ms")
    # generous: a blocked event loop made each probe wait for the argon2 checks queued before it
    assert statistics.median(during) < 10 * baseline + 0.15, (baseline, during, took)
    # one slow probe on a loaded 2-core machine is the scheduler, not the loop (seen: 0.83 s while
    # other suites ran beside it); a blocked loop shows in the median above
    assert max(during) < 20 * baseline + 1.5, (baseline, during, took)


async def test_successful_logins_are_limited_too(server):
    limit = LoginLimits().ok_per_user
    async with client_from(server, SOURCE_A) as c:
        for i in range(limit):
            r = await login(c, "biz-s1")
            assert r.status_code == 200, (i, r.text)
        r = await login(c, "biz-s1")
    assert r.status_code == 429, r.text
    assert "登录过于频繁" in r.json()["detail"] and int(r.headers["retry-after"]) > 0


async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_source(fresh_api, clock):
    """In compose every login arrives from the TLS proxy: without X-Forwarded-For from a
    trusted proxy, one attacker would lock the account (and the proxy's address) for all."""
    console = ConsoleSettings(trusted_proxies="127.0.0.2/32")
    proxied = await asyncio.to_thread(lambda: ConsoleServer(fresh_api.dsn, clock=clock, console=console).start())
    try:
        async with client_from(proxied, SOURCE_A) as proxy, client_from(proxied, SOURCE_B) as direct:
            attacker, owner = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}
            for _ in range(5):
                r = await proxy.post("/api/auth/login", json={"username": "town-t2", "password": "x" * 12},
                                     headers=attacker)
                assert r.status_code == 401
            r = await proxy.post("/api/auth/login", json={"username": "town-t2", "password": PASSWORD},
                                 headers=attacker)
            assert r.status_code == 429
            r = await proxy.post("/api/auth/login", json={"username": "town-t2", "password": PASSWORD},
                                 headers=owner)
            assert r.status_code == 200, r.text
            # a client that is no trusted proxy cannot pick its source by sending the header
            for _ in range(5):
                r = await direct.post("/api/auth/login", json={"username": "biz-s1", "password": "x" * 12},
                                      headers={"X-Forwarded-For": "192.0.2.1"})
                assert r.status_code == 401
            r = await direct.post("/api/auth/login", json={"username": "biz-s1", "password": PASSWORD},
                                  headers={"X-Forwarded-For": "192.0.2.2"})
            assert r.status_code == 429, r.text
        async with fresh_api.pool.acquire() as conn:
            ips = {r["ip"] for r in await conn.fetch("SELECT DISTINCT ip FROM console_login_attempts")}
        assert ips == {"203.0.113.7", "198.51.100.9", SOURCE_B}
    finally:
        await asyncio.to_thread(proxied.stop)
