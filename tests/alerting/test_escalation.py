"""四单 escalation against PostgreSQL and the SMS simulator: each step, acknowledgement,
key periods, and a restart with a pending escalation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from alerting_helpers import ServiceFactory, ev, messages

from alerting import lifecycle
from alerting.clock import ManualClock
from hazmon.contracts import Verdict
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

CST = timezone(timedelta(hours=8))


async def notices(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT * FROM notices ORDER BY step")


def phones_of(msgs: list[dict], template: str = "notice", level: str = "") -> set[str]:
    return {m["phone"] for m in msgs if m["template"] == template and level in m["body"]}


async def test_each_step_of_the_ladder(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    gas = ev("gas.high", "S1-GAS1", "S1")  # red: 5m 提醒, 15m 警示, 30m 督办, 2h 问责
    await svc.handle_events([gas])
    clock.advance(10)
    await svc.tick()
    assert not await notices(pool)

    clock.advance(timedelta(minutes=5))  # t = 5m10s
    await svc.tick()
    ns = await notices(pool)
    assert [n["level"] for n in ns] == ["reminder"]
    # the 区安委办's notice to the township and its grid member; the business has its alarm
    assert phones_of(await messages(sim), level="工作提醒单") == {"13800000201", "13800000101"}
    assert ns[0]["deadline"] == gas.starts_at + timedelta(minutes=15)  # until the next step
    assert ns[0]["issued_by"] == "区安委办"

    clock.advance(timedelta(minutes=10))  # 15m10s
    await svc.tick()
    assert phones_of(await messages(sim), level="风险警示单") == {"13800000101", "13800000301"}

    clock.advance(timedelta(minutes=15))  # 30m10s
    await svc.tick()
    ns = await notices(pool)
    assert [n["level"] for n in ns] == ["reminder", "warning", "supervision"]
    assert ns[2]["deadline"] == clock.now() + timedelta(hours=2)  # 督办 with its own deadline
    assert [n["status"] for n in ns] == ["superseded", "superseded", "open"]
    assert phones_of(await messages(sim), level="问题督办单") == {"13800000101", "13800000301"}  # 东城 + 住建

    clock.advance(timedelta(hours=2))  # 2h30m
    await svc.tick()
    ns = await notices(pool)
    assert [n["level"] for n in ns] == ["reminder", "warning", "supervision", "accountability"]
    # 问责建议单 to the responsible leader and the centre's duty operator (S1 has no 包保 leader)
    assert phones_of(await messages(sim), level="问责建议单") == {"13800000401", "13900000000"}
    rules = {r["rule"] for r in json.loads(ns[3]["recipients"])}
    assert "matrix:R-gas:leader:L1" in rules and "fallback:duty_operator" in rules
    async with pool.acquire() as conn:
        a = await lifecycle.get_alert(conn, gas.id)
        tl = await lifecycle.alert_timeline(conn, gas.id)
    assert a.escalation_step == 4 and a.next_escalation_at is None
    assert [t.reason for t in tl if t.action == "escalate"] == ["工作提醒单", "风险警示单", "问题督办单", "问责建议单"]
    # the ladder is over: nothing more, ever
    before = len(await messages(sim))
    clock.advance(timedelta(days=1))
    await svc.tick()
    assert len([m for m in await messages(sim) if m["template"] == "notice"]) == \
        len([m for m in (await messages(sim))[:before] if m["template"] == "notice"])


async def test_acknowledged_stops_reminders_but_unhandled_still_reaches_supervision(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    gas = ev("gas.high", "S1-GAS1", "S1")
    await svc.handle_events([gas])
    clock.advance(10)
    await svc.tick()
    # the business replies with the 回复码 (through the inbound handler, as the provider would call it)
    from alerting.inbound import handle_reply

    code = [m for m in await messages(sim, "13800001001")][0]["params"]["code"]
    clock.advance(timedelta(minutes=2))
    async with pool.acquire() as conn:
        res = await handle_reply(conn, provider="webhook", phone="+86 138-0000-1001", text=f"{code} 收到", now=clock.now())
    assert res.result is not None and res.result.applied
    assert res.result.alert.acked_by == "sms_reply:site:S1:contact"  # who, by the matrix rule; never the number
    clock.advance(timedelta(minutes=20))  # past 提醒 (5m) and 警示 (15m): both skipped, acknowledged
    await svc.tick()
    assert not await notices(pool)
    clock.advance(timedelta(minutes=10))  # 30m: acknowledged but nobody is handling it → 督办
    await svc.tick()
    assert [n["level"] for n in await notices(pool)] == ["supervision"]
    # once someone is on site, the 问责 step does not come
    async with pool.acquire() as conn:
        await lifecycle.verify(conn, gas.id, actor="op1", now=clock.now(), verdict=Verdict.REAL, reason="现场确认泄漏")
        await lifecycle.dispatch(conn, gas.id, actor="op1", now=clock.now(), units=["住建", "东城街道"])
        await lifecycle.start_handling(conn, gas.id, actor="grid-zhang", now=clock.now(), note="已关阀通风")
    clock.advance(timedelta(hours=3))
    await svc.tick()
    assert [n["level"] for n in await notices(pool)] == ["supervision"]


async def test_false_alarm_verdict_ends_escalation(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    gas = ev("gas.high", "S1-GAS1", "S1")
    await svc.handle_events([gas])
    async with pool.acquire() as conn:
        await lifecycle.verify(conn, gas.id, actor="op1", now=clock.now(), verdict=Verdict.FALSE, reason="厨房油烟误报")
    clock.advance(timedelta(hours=5))
    await svc.tick()
    assert not await notices(pool)


async def test_key_period_tightens_timers(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    clock.set(datetime(2027, 2, 10, 20, 0, tzinfo=CST))  # 春节 (timer_factor 0.5 in routes.yaml)
    svc = await make_service()
    gas = ev("gas.high", "S1-GAS1", "S1", at=clock.now())
    await svc.handle_events([gas])
    clock.advance(timedelta(minutes=2, seconds=40))  # 5m × 0.5 = 2m30s
    await svc.tick()
    assert [n["level"] for n in await notices(pool)] == ["reminder"]
    async with pool.acquire() as conn:
        factor = await conn.fetchval("SELECT timer_factor FROM alerts")
    assert factor == 0.5


async def test_restart_fires_escalations_that_fell_due_while_down(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    first = await make_service()
    gas = ev("gas.high", "S1-GAS1", "S1")
    await first.handle_events([gas])
    clock.advance(10)
    await first.tick()
    await first.stop()  # alerting goes down with the 提醒 timer pending

    clock.advance(timedelta(minutes=20))  # down for 20 minutes: 提醒 (5m) and 警示 (15m) fell due
    second = await make_service()
    await second.tick()
    ns = await notices(pool)
    assert [n["level"] for n in ns] == ["reminder", "warning"]
    assert phones_of(await messages(sim), level="风险警示单") == {"13800000101", "13800000301"}
    # and the alarm itself was not announced twice
    assert len([m for m in await messages(sim, "13800001001") if m["template"] == "alarm"]) == 1
