"""The short link in an alarm SMS (短链接确认), end to end on the one server that serves it: the
console (console/routes/ack.py), as ``hazmon console`` runs it under uvicorn, against the
alerting service that queued the SMS through the gateway simulator. The flow:
docs/delivery.md, *Acknowledgement*.

A GET never acknowledges (link previews fetch it) and shows nothing about the site; only the
POST of the page's button does, as the recipient the token was sent to; a guessed token is
refused in Chinese and, repeated, rate-limited per client address (the forwarded one only
behind a trusted proxy), while a valid token is never held back by its address; each alert
takes a bounded number of attempts per window. Every attempt leaves an audit row, and no full
phone number reaches ``acked_by``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest
import uvicorn
from alerting_helpers import ServiceFactory, ev, messages

from alerting.clock import ManualClock
from console.app import create_app
from hazmon.settings import ConsoleSettings, InboundSettings, PostgresSettings, Settings
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

BUSINESS_S6 = "13800006001"  # the S6 安居小区 contact (alerting_helpers)
#: the test services' sms.ack_base_url (tests/alerting/conftest.py)
LINK = re.compile(r"http://ack\.test/a/([0-9A-Za-z_-]{22})$")
Console = Callable[..., Awaitable[str]]


async def q(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(sql, *args)


@pytest.fixture
async def start_console(pool: asyncpg.Pool, clock: ManualClock, pg_dsn: str) -> AsyncIterator[Console]:
    """``start(trusted_proxies="", **inbound_limits)`` → the base URL of a console served by uvicorn
    on 127.0.0.1, as ``hazmon console`` serves it (uvicorn's X-Forwarded-For handling off)."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(*, trusted_proxies: str = "", **limits: int) -> str:
        settings = Settings(postgres=PostgresSettings(dsn=pg_dsn),
                            inbound=InboundSettings.model_validate(limits),
                            console=ConsoleSettings(trusted_proxies=trusted_proxies))
        app = create_app(settings, pool=pool, clock=clock.now)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", proxy_headers=False,
                                               server_header=False))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
            await asyncio.sleep(0.01)
        servers.append((server, task))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, task in servers:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _alarm(make_service: ServiceFactory, sim: SmsSimulator) -> tuple[str, dict[str, str]]:
    """One 困人 alarm at S6, sent through the gateway simulator ``sim`` (the fixture); returns its
    id and the link token per phone."""
    svc = await make_service()
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    tokens = {}
    for m in await messages(sim):
        got = LINK.search(m["body"])
        assert got, m["body"]  # the recipient's own token, never the alert's code
        tokens[m["phone"]] = got.group(1)
    return trapped.id, tokens


async def _audit(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await q(pool, "SELECT * FROM inbound_audit ORDER BY id")


async def _acked_by(pool: asyncpg.Pool, alert_id: str) -> str | None:
    return (await q(pool, "SELECT acked_by FROM alerts WHERE id=$1", alert_id))[0]["acked_by"]


def _no_full_phone(text: str) -> bool:
    return re.search(r"1[3-9]\d{9}", text) is None


async def test_short_link_acknowledges(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, start_console: Console,
) -> None:
    console = await start_console()
    alert_id, tokens = await _alarm(make_service, sim)
    token = tokens[BUSINESS_S6]
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{console}/ack/{token}")
        assert r.status_code == 200 and "确认收到" in r.text
        assert await _acked_by(pool, alert_id) is None  # GET never acknowledges
        r = await c.post(f"{console}/ack/{token}")
        assert r.status_code == 200 and "已确认" in r.text and "安居小区" in r.text
        r2 = await c.post(f"{console}/ack/000000x")
        # not even a token's shape: the same Chinese page
        assert r2.status_code == 404 and "确认链接无效" in r2.text
    assert await _acked_by(pool, alert_id) == "link:site:S6:contact"


async def test_short_link_get_never_acknowledges_and_tokens_are_per_recipient(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, start_console: Console,
) -> None:
    console = await start_console()
    alert_id, tokens = await _alarm(make_service, sim)
    assert len(set(tokens.values())) == len(tokens) >= 2 and all(len(t) >= 20 for t in tokens.values())
    token = tokens[BUSINESS_S6]
    async with httpx.AsyncClient() as c:
        page = await c.get(f"{console}/ack/{token}")
        assert page.status_code == 200 and "确认收到" in page.text and 'method="post"' in page.text
        # nothing about the site before confirming
        assert "安居小区" not in page.text and "困人" not in page.text
        assert 'name="viewport"' in page.text and 'lang="zh-CN"' in page.text
        assert page.headers["cache-control"] == "no-store"
        assert await _acked_by(pool, alert_id) is None  # a link preview must not acknowledge
        guessed = await c.post(f"{console}/ack/{'A' * len(token)}")
        assert guessed.status_code == 404 and "无效" in guessed.text
        ok = await c.post(f"{console}/ack/{token}")
        assert ok.status_code == 200 and "已确认" in ok.text
    acked_by = await _acked_by(pool, alert_id)
    assert acked_by is not None and acked_by.startswith("link:") and _no_full_phone(acked_by)
    assert acked_by.endswith("site:S6:contact")
    outcomes = [a["outcome"] for a in await _audit(pool)]
    assert outcomes == ["get_no_ack", "unknown_token", "acknowledged"]
    for a in await _audit(pool):
        assert _no_full_phone(" ".join(str(v) for v in dict(a).values()))


async def test_link_guesses_are_limited_per_address_and_attempts_per_alert(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, start_console: Console,
) -> None:
    console = await start_console(per_ip_failures=3, per_alert_attempts=3)
    alert_id, tokens = await _alarm(make_service, sim)
    token = tokens[BUSINESS_S6]
    async with httpx.AsyncClient() as c:
        # guessing link tokens from one address is limited, but a valid token still works from it
        guessed = [await c.post(f"{console}/ack/{'B' * 22}") for _ in range(5)]
        assert [g.status_code for g in guessed] == [404, 404, 404, 429, 429]
        assert "尝试次数过多" in guessed[-1].text and guessed[-1].headers["retry-after"] == "900"
        assert (await c.post(f"{console}/ack/{token}")).status_code == 200
        assert (await _acked_by(pool, alert_id) or "").startswith("link:")
        # per alert: three attempts in the window, then 429 even with a valid token
        assert (await c.post(f"{console}/ack/{token}")).status_code == 200  # already acknowledged
        assert (await c.post(f"{console}/ack/{token}")).status_code == 200
        limited = await c.post(f"{console}/ack/{token}")
        assert limited.status_code == 429 and "尝试次数过多" in limited.text
    outcomes = [a["outcome"] for a in await _audit(pool)]
    assert outcomes.count("unknown_token") == 3 and outcomes.count("rate_limited") == 3


async def test_behind_a_trusted_proxy_the_limit_is_per_forwarded_client(
    pool: asyncpg.Pool, start_console: Console,
) -> None:
    proxied = await start_console(per_ip_failures=2, trusted_proxies="127.0.0.1/32")
    direct = await start_console(per_ip_failures=2)
    bad = "/ack/" + "C" * 22
    async with httpx.AsyncClient() as c:
        one = [(await c.post(proxied + bad, headers={"x-forwarded-for": "203.0.113.7"})).status_code
               for _ in range(3)]
        other = (await c.post(proxied + bad, headers={"x-forwarded-for": "203.0.113.8"})).status_code
        # an untrusted peer cannot pick its address with the header
        spoofed = [(await c.post(direct + bad, headers={"x-forwarded-for": f"198.51.100.{i}"})).status_code
                   for i in range(3)]
    # the spoofed three all counted as 127.0.0.1
    assert one == [404, 404, 429] and other == 404 and spoofed == [404, 404, 429]
    ips = [a["ip"] for a in await _audit(pool)]
    assert ips[:4] == ["203.0.113.7", "203.0.113.7", "203.0.113.7", "203.0.113.8"]


async def test_the_alerting_inbound_server_serves_no_link(pool: asyncpg.Pool, clock: ManualClock) -> None:
    """One acknowledgement implementation: alerting's inbound HTTP (receipts, replies; bound to
    an interface the proxy reaches) has no /ack route, GET or POST."""
    from alerting.inbound import InboundConfig, build_app

    app = build_app(pool, clock, config=InboundConfig(secret="s"))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inbound.test") as c:
            for method in ("GET", "POST"):
                assert (await c.request(method, "/ack/" + "D" * 22)).status_code == 404
    finally:
        await app.aclose()
    assert await _audit(pool) == []
