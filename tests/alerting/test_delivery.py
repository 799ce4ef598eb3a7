"""Delivery through the SMS simulator over HTTP: the three provider shapes with their signing,
outages with retries and backoff (nothing lost), rate limits, timeouts, per-phone limits,
delivery receipts and acknowledgement by reply code (the short link: test_ack_link.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
import uvicorn
from alerting_helpers import SECRET, ServiceFactory, ev, messages, resolved, set_mode
from prometheus_client import REGISTRY

from alerting.clock import ManualClock
from alerting.inbound import InboundConfig, build_app
from alerting.outbox import OutboxPolicy
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def q(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(sql, *args)


def by_provider(provider: str, outcome: str) -> float:
    """hazmon_alerting_provider_outcomes_total of the SMS channel (the dashboard's SMS outcomes by
    provider; the counter is the process's, so tests compare before and after)."""
    labels = {"channel": "sms", "provider": provider, "outcome": outcome}
    return REGISTRY.get_sample_value("hazmon_alerting_provider_outcomes_total", labels) or 0.0


async def sms_statuses(pool: asyncpg.Pool) -> set[str]:
    return {r["status"] for r in await q(pool, "SELECT status FROM notifications WHERE channel='sms'")}


@pytest.mark.parametrize("provider", ["webhook", "aliyun", "tencent"])
async def test_each_provider_shape_is_accepted_and_verified(
    provider: str, pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider=provider)
    before = by_provider(provider, "sent")
    await svc.handle_events([ev("elevator.trapped", "E6", "S6")])
    await svc.tick()  # trapped: group_wait 0s
    got = await messages(sim)
    assert got and all(m["provider"] == provider for m in got)
    body = next(m["body"] for m in got if m["phone"] == "13800006001")
    assert "安居小区" in body and "电梯困人" in body and "救援" in body
    sent = await q(pool, "SELECT status, provider, provider_message_id FROM notifications"
                         " WHERE channel='sms'")
    assert {r["status"] for r in sent} == {"sent"} and all(r["provider_message_id"] for r in sent)
    assert {r["provider"] for r in sent} == {provider} and by_provider(provider, "sent") - before == len(sent)


def alarm_sent(channel: str) -> tuple[float, float]:
    """hazmon_alerting_alarm_sent_seconds of ``channel``: (count, sum) — the process's histogram."""
    get = REGISTRY.get_sample_value
    labels = {"channel": channel}
    return (get("hazmon_alerting_alarm_sent_seconds_count", labels) or 0.0,
            get("hazmon_alerting_alarm_sent_seconds_sum", labels) or 0.0)


async def test_an_alarm_sms_observes_the_seconds_since_hazmon_received_its_record(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    """The dashboard's 报警到发出时延: from the bridge's receipt of the record that opened the alarm
    (its ``received_at``, 2.5 s before alerting has it) to the simulator taking each SMS; the
    恢复 of the same alarm is not counted."""
    svc = await make_service()
    n0, s0 = alarm_sent("sms")
    trapped = ev("elevator.trapped", "E6", "S6").model_copy(
        update={"received_at": clock.now() - timedelta(seconds=2.5)})
    await svc.handle_events([trapped])
    await svc.tick()  # trapped: group_wait 0s
    sent = await q(pool, "SELECT id FROM notifications WHERE channel='sms' AND status='sent'")
    assert sent and len([m for m in await messages(sim) if m["template"] == "alarm"]) == len(sent)
    n1, s1 = alarm_sent("sms")
    assert n1 - n0 == len(sent)
    mean = (s1 - s0) / (n1 - n0)
    assert 2.5 <= mean < 2.5 + 5, mean  # the simulated clock stands still: the rest is the real send

    clock.advance(60)
    await svc.handle_events([resolved(trapped, clock.now())])
    await svc.tick()
    assert [m for m in await messages(sim) if m["template"] == "resolved"]
    assert alarm_sent("sms") == (n1, s1)


async def test_bad_signature_is_a_permanent_failure(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider="aliyun")
    svc.outbox.notifiers["sms"].provider.secret = "wrong-secret"  # type: ignore[attr-defined]
    before = by_provider("aliyun", "failed")
    await svc.handle_events([ev("elevator.trapped", "E6", "S6")])
    await svc.tick()
    assert await messages(sim) == []
    rows = await q(pool, "SELECT status, last_error FROM notifications WHERE channel='sms'")
    assert rows and all(r["status"] == "failed" and "SignatureDoesNotMatch" in r["last_error"] for r in rows)
    assert by_provider("aliyun", "failed") - before == len(rows)


async def test_outage_delays_but_loses_nothing(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    policy = OutboxPolicy(base_delay=timedelta(seconds=10), max_delay=timedelta(minutes=5))
    svc = await make_service(policy=policy)
    await set_mode(sim, fail_next=1000, fail_status=503)  # the provider is down
    await svc.handle_events([ev("elevator.trapped", "E6", "S6")])
    await svc.tick()
    alarm = "channel='sms' AND template='alarm'"
    n = len(await q(pool, f"SELECT 1 FROM notifications WHERE {alarm}"))
    assert n >= 3
    for _ in range(4):  # four failed rounds, each after the backoff
        clock.advance(timedelta(minutes=5))
        await svc.tick()
    rows = await q(pool, f"SELECT status, attempts, next_attempt_at FROM notifications WHERE {alarm}")
    assert all(r["status"] == "pending" and r["attempts"] == 5 for r in rows)  # meanwhile 四单 queue up too
    assert await messages(sim) == []
    # backoff grows: the attempt log shows 5 'retrying' rows per notification
    att = await q(pool, "SELECT notification_id, count(*) AS n FROM notification_attempts a"
                        " JOIN notifications n ON n.id = a.notification_id"
                        f" WHERE outcome='retrying' AND {alarm} GROUP BY notification_id")
    assert len(att) == n and all(a["n"] == 5 for a in att)

    await set_mode(sim, fail_next=0)  # the provider recovers
    clock.advance(timedelta(minutes=6))
    await svc.tick()
    rows = await q(pool, "SELECT status FROM notifications WHERE channel='sms'")
    assert {r["status"] for r in rows} == {"sent"}
    assert len([m for m in await messages(sim) if m["template"] == "alarm"]) == n  # every alarm message, once
    notices = [m for m in await messages(sim) if m["template"] == "notice"]
    assert notices and len(notices) == len({(m["phone"], m["body"]) for m in notices})


async def test_rate_limited_by_provider_and_slow_provider_are_retried(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider="tencent")
    await set_mode(sim, rate_limit_next=1)  # one SendSms refused by the frequency limit, per number
    await svc.handle_events([ev("elevator.trapped", "E6", "S6")])
    await svc.tick()
    limited = await q(pool, "SELECT notification_id, error FROM notification_attempts"
                            " WHERE outcome='retrying'")
    sms_rows = await q(pool, "SELECT id FROM notifications WHERE channel='sms'")
    # each recipient's text is their own (回复码, link token), so each number is its own request:
    # the one refused request is the one number retried
    assert len(sms_rows) >= 2 and len(limited) == 1
    assert all("LimitExceeded" in r["error"] for r in limited)
    clock.advance(timedelta(minutes=1))
    await svc.tick()
    assert await sms_statuses(pool) == {"sent"}

    # a provider slower than our timeout (2 s): a timeout is retryable, not lost
    await set_mode(sim, slow_s=2.5)
    await svc.handle_events([ev("elevator.door_open_moving", "E6", "S6")])
    clock.advance(timedelta(minutes=1))
    await svc.tick()
    rows = await q(pool, "SELECT status, last_error FROM notifications"
                         " WHERE channel='sms' AND template='alarm' AND status <> 'sent'")
    assert rows and all(r["status"] == "pending" and "timeout" in r["last_error"] for r in rows)
    await set_mode(sim, slow_s=0)
    clock.advance(timedelta(minutes=1))
    await svc.tick()
    assert await sms_statuses(pool) >= {"sent"}
    assert not await q(pool, "SELECT 1 FROM notifications WHERE channel='sms' AND status <> 'sent'")


async def test_per_phone_limit_defers_low_priority_but_never_red(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    from hazmon.contracts import Severity

    svc = await make_service(policy=OutboxPolicy(per_phone_per_hour=2))
    business = "13800006001"
    kinds = ["elevator.fault", "elevator.overspeed", "elevator.overtravel_top"]
    for k in kinds:  # three yellow alarms to the same business within minutes
        await svc.handle_events([ev(k, "E6", "S6", severity=Severity.YELLOW, at=clock.now())])
        clock.advance(timedelta(minutes=2))
        await svc.tick()
    got = await messages(sim, business)
    assert len(got) == 2  # the third waits for the window
    deferred = await q(pool, "SELECT next_attempt_at FROM notifications"
                             " WHERE recipient_phone=$1 AND status='pending'", business)
    assert len(deferred) == 1
    # a red alarm is not held back by the limit
    await svc.handle_events([ev("elevator.trapped", "E6", "S6", at=clock.now())])
    await svc.tick()
    assert any("电梯困人" in m["body"] for m in await messages(sim, business))
    clock.set(deferred[0]["next_attempt_at"])
    await svc.tick()
    assert len([m for m in await messages(sim, business) if m["template"] == "alarm"]) == 4


@pytest.fixture
async def inbound(pool: asyncpg.Pool, clock: ManualClock) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    app = build_app(pool, clock, config=InboundConfig(secret=SECRET))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await app.aclose()


async def _until(pred, tries: int = 100) -> bool:  # type: ignore[no-untyped-def]
    for _ in range(tries):
        if await pred():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("provider", ["webhook", "aliyun", "tencent"])
async def test_receipts_and_reply_code_acknowledge(
    provider: str, pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    inbound: str,
) -> None:
    svc = await make_service(provider=provider)
    await set_mode(sim, callback_url=inbound, auto_reply=True, receipt_delay_s=0.01)
    trapped = ev("elevator.trapped", "E6", "S6")
    before = by_provider(provider, "delivered")
    await svc.handle_events([trapped])
    await svc.tick()

    async def delivered() -> bool:
        rows = await q(pool, "SELECT status FROM notifications WHERE channel='sms'")
        return bool(rows) and all(r["status"] == "delivered" for r in rows)

    async def acked() -> bool:
        return bool(await q(pool, "SELECT 1 FROM alerts WHERE id=$1 AND acked_at IS NOT NULL", trapped.id))

    assert await _until(delivered)
    assert await _until(acked)
    n_sms = len(await q(pool, "SELECT 1 FROM notifications WHERE channel='sms'"))
    assert by_provider(provider, "delivered") - before == n_sms  # each receipt, counted by provider

    async def all_replied() -> bool:
        return len(await q(pool, "SELECT 1 FROM sms_replies")) == n_sms

    assert await _until(all_replied)
    replies = await q(pool, "SELECT outcome FROM sms_replies")
    # every recipient replied with their own code: the first acknowledges, the rest are recorded
    # (already acknowledged, a refused transition each)
    assert sum(r["outcome"] == "acknowledged" for r in replies) == 1
    assert sum(r["outcome"] == "already_acknowledged" for r in replies) == len(replies) - 1
    tl = await q(pool, "SELECT outcome, actor FROM alert_transitions"
                       " WHERE alert_id=$1 AND action='acknowledge'", trapped.id)
    assert sum(t["outcome"] == "applied" for t in tl) == 1 and len(tl) == len(replies)
