"""Acknowledgements and receipts cannot be forged (issue 17 items 3, 6, 11, 13).

Real services only: PostgreSQL, the SMS gateway simulator over HTTP (it signs its callbacks the
way each provider's callback is authenticated) and the alerting inbound app served by uvicorn on
127.0.0.1. Every refused acknowledgement — forged signature, guessed code, non-recipient, closed
alert, rate-limited — must leave an audit row and a clear HTTP error, and no full phone
number may reach ``acked_by``, the audit or the log. The short link (GET never acknowledges,
guesses rate-limited, behind a proxy per forwarded client) is the console's:
tests/alerting/test_ack_link.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import asyncpg
import httpx
import pytest
import uvicorn
from alerting_helpers import SECRET, ServiceFactory, ev, messages, set_mode

from alerting.clock import ManualClock
from alerting.inbound import InboundApp, InboundConfig, build_app, callback_token
from alerting.lifecycle import close, verify
from alerting.notify.sms_webhook import webhook_signature
from hazmon.contracts import Verdict
from hazmon.errors import ConfigError
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

BUSINESS_S6 = "13800006001"  # the S6 安居小区 contact (alerting_helpers)
STRANGER = "13912345678"  # receives nothing from us
Inbound = Callable[..., Awaitable[str]]


async def q(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(sql, *args)


@pytest.fixture
async def start_inbound(pool: asyncpg.Pool, clock: ManualClock, pg_dsn: str) -> AsyncIterator[Inbound]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None], InboundApp]] = []

    async def start(**overrides: object) -> str:
        cfg = InboundConfig(secret=SECRET, **overrides)  # type: ignore[arg-type]
        # receipts on their own connection, as the CLI does
        app = build_app(pool, clock, config=cfg, dsn=pg_dsn)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        # as the CLI runs it: uvicorn's own X-Forwarded-For handling off (inbound.trusted_proxies decides)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", proxy_headers=False))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
            await asyncio.sleep(0.01)
        servers.append((server, task, app))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, task, app in servers:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await app.aclose()


async def _alarm(svc_factory: ServiceFactory, sim: SmsSimulator, inbound: str) -> tuple[str, dict[str, dict]]:
    """One 困人 alarm at S6, sent; returns its id and the SMS per phone."""
    svc = await svc_factory()
    await set_mode(sim, callback_url=inbound, receipt_delay_s=0.01)
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    return trapped.id, {m["phone"]: m for m in await messages(sim)}


async def _reply(sim: SmsSimulator, phone: str, text: str, provider: str = "webhook") -> httpx.Response:
    """A reply the way the provider delivers it: the simulator sends it, signed."""
    async with httpx.AsyncClient() as c:
        return await c.post(f"{sim.url}/admin/reply",
                            json={"phone": phone, "text": text, "provider": provider})


async def _audit(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await q(pool, "SELECT * FROM inbound_audit ORDER BY id")


async def _acked_by(pool: asyncpg.Pool, alert_id: str) -> str | None:
    return (await q(pool, "SELECT acked_by FROM alerts WHERE id=$1", alert_id))[0]["acked_by"]


def _no_full_phone(text: str) -> bool:
    return re.search(r"1[3-9]\d{9}", text) is None


async def test_forged_and_unsigned_callbacks_are_refused_and_audited(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, start_inbound: Inbound,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbound = await start_inbound()
    alert_id, sms = await _alarm(make_service, sim, inbound)
    code = sms[BUSINESS_S6]["params"]["code"]
    body = json.dumps({"phone": BUSINESS_S6, "text": code}).encode()
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient() as c:
        unsigned = await c.post(f"{inbound}/sms/reply/webhook", content=body,
                                headers={"content-type": "application/json"})
        forged = await c.post(f"{inbound}/sms/reply/webhook", content=body,
                              headers={"content-type": "application/json",
                                       "x-hazmon-signature": webhook_signature("guessed-secret", body)})
        # 阿里云 / 腾讯云 push unsigned: a secret token in the callback URL authenticates them
        ali = await c.post(f"{inbound}/sms/reply/aliyun",
                           json=[{"phone_number": BUSINESS_S6, "content": code}])
        ali_bad = await c.post(f"{inbound}/sms/reply/aliyun?token=0123456789abcdef",
                               json=[{"phone_number": BUSINESS_S6, "content": code}])
        tc_receipt = await c.post(f"{inbound}/sms/receipt/tencent",
                                  json=[{"sid": "tencent-000001", "report_status": "SUCCESS"}])
    for r in (unsigned, forged, ali, ali_bad, tc_receipt):
        assert r.status_code == 401, (r.status_code, r.text)
        assert "签名" in r.json()["error"] or "令牌" in r.json()["error"]
    assert await _acked_by(pool, alert_id) is None
    refused = [a for a in await _audit(pool) if a["outcome"] == "forged"]
    assert len(refused) == 5 and {a["channel"] for a in refused} == {"sms_reply", "receipt"}
    # the real provider path still works: the simulator signs (webhook HMAC) / carries the token
    assert (await _reply(sim, BUSINESS_S6, code)).json()["status"] == 200
    acked_by = await _acked_by(pool, alert_id)
    assert acked_by is not None and acked_by.startswith("sms_reply:") and _no_full_phone(acked_by)
    assert _no_full_phone(caplog.text)


async def test_guessed_codes_and_non_recipients_are_refused_and_audited(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, start_inbound: Inbound,
) -> None:
    inbound = await start_inbound(per_phone_failures=5)
    alert_id, sms = await _alarm(make_service, sim, inbound)
    right = sms[BUSINESS_S6]["params"]["code"]
    grid = next(p for p in sms if p != BUSINESS_S6)
    # codes are per recipient: another recipient's code does not acknowledge from this number
    assert sms[grid]["params"]["code"] != right
    # a number that never received the alert, with a valid code: refused
    r = await _reply(sim, STRANGER, right)
    assert r.json()["status"] == 403, r.json()
    assert await _acked_by(pool, alert_id) is None
    # guessing from a recipient's number: refused, then rate-limited (the right code too)
    guesses = [f"{n:06d}" for n in range(100000, 100006) if f"{n:06d}" != right]
    statuses = [(await _reply(sim, BUSINESS_S6, g)).json()["status"] for g in guesses[:5]]
    assert statuses == [404] * 5
    assert (await _reply(sim, BUSINESS_S6, right)).json()["status"] == 429
    assert await _acked_by(pool, alert_id) is None
    outcomes = [a["outcome"] for a in await _audit(pool)]
    assert outcomes.count("non_recipient") == 1 and outcomes.count("unknown_code") == 5
    assert outcomes.count("rate_limited") == 1
    for a in await _audit(pool):
        assert _no_full_phone(json.dumps({k: str(v) for k, v in dict(a).items()}, ensure_ascii=False))
    tl = await q(pool, "SELECT outcome, actor, detail FROM alert_transitions"
                       " WHERE alert_id=$1 AND action='acknowledge'", alert_id)
    assert [t["outcome"] for t in tl] == ["rejected"]  # the non-recipient attempt is on the alert's timeline
    assert all(_no_full_phone(t["actor"] + str(t["detail"])) for t in tl)
    replies = await q(pool, "SELECT phone FROM sms_replies")
    assert replies and all(_no_full_phone(r["phone"]) for r in replies)
    # one request may not carry a thousand guesses
    many = [{"phone_number": BUSINESS_S6, "content": f"{n:06d}"} for n in range(1000)]
    async with httpx.AsyncClient() as c:
        big = await c.post(f"{inbound}/sms/reply/aliyun?token={callback_token(SECRET, 'aliyun')}", json=many)
    assert big.status_code == 413 and "条" in big.json()["error"]


async def test_codes_of_a_closed_alert_are_refused(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    start_inbound: Inbound,
) -> None:
    inbound = await start_inbound()
    alert_id, sms = await _alarm(make_service, sim, inbound)
    code = sms[BUSINESS_S6]["params"]["code"]
    async with pool.acquire() as conn:
        await verify(conn, alert_id, actor="op1", now=clock.now(), verdict=Verdict.TEST, reason="测试")
        await close(conn, alert_id, actor="op1", now=clock.now(), reason="测试结束")
    r = await _reply(sim, BUSINESS_S6, code)
    assert r.json()["status"] == 409 and "办结" in r.json()["answer"]
    assert [a["outcome"] for a in await _audit(pool)] == ["closed_alert"]


async def test_unknown_receipt_flood_does_not_slow_alert_creation(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    start_inbound: Inbound,
) -> None:
    inbound = await start_inbound()
    svc = await make_service()

    async def create(n: int) -> float:
        t0 = time.perf_counter()
        await svc.handle_events([ev("elevator.trapped", "E6", "S6", at=clock.now() + timedelta(seconds=n))])
        return time.perf_counter() - t0

    baseline = max([await create(i) for i in range(3)])
    unknown = [{"message_id": f"nope-{i}", "id": f"n-unknown-{i}", "status": "delivered"} for i in range(20)]
    body = json.dumps(unknown).encode()
    headers = {"content-type": "application/json", "x-hazmon-signature": webhook_signature(SECRET, body)}
    async with httpx.AsyncClient(timeout=60) as c:
        flood = [asyncio.create_task(c.post(f"{inbound}/sms/receipt/webhook", content=body, headers=headers))
                 for _ in range(8)]
        await asyncio.sleep(0.2)
        during = max([await create(10 + i) for i in range(3)])
        answers = await asyncio.gather(*flood)
    print(f"alert creation: baseline {baseline * 1000:.0f} ms, "
          f"during an unknown-receipt flood {during * 1000:.0f} ms")
    assert all(a.status_code == 200 for a in answers)
    assert during < 3 * baseline + 1.0, (baseline, during)


async def test_reply_limits_hold_under_concurrent_guesses(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, start_inbound: Inbound,
) -> None:
    inbound = await start_inbound(per_phone_failures=5, per_ip_failures=3, per_alert_attempts=3)
    alert_id, sms = await _alarm(make_service, sim, inbound)
    right = sms[BUSINESS_S6]["params"]["code"]
    wrong = [f"{n:06d}" for n in range(200000, 200030) if f"{n:06d}" != right][:20]
    # twenty guesses at once from one number: exactly five are looked at, the rest refused
    answers = await asyncio.gather(*(_reply(sim, BUSINESS_S6, g) for g in wrong))
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == [404] * 5 + [429] * 15, statuses
    outcomes = [a["outcome"] for a in await _audit(pool)]
    assert outcomes.count("unknown_code") == 5 and outcomes.count("rate_limited") == 15
    # the link's limits (per address, per alert): tests/alerting/test_ack_link.py, on the console


async def test_no_callback_secret_is_a_config_error(pool: asyncpg.Pool, clock: ManualClock) -> None:
    """Callbacks that could not be authenticated are refused at start, as a setting's error."""
    with pytest.raises(ConfigError, match="HAZMON_INBOUND__CALLBACK_SECRET"):
        build_app(pool, clock, config=InboundConfig(secret=""))
