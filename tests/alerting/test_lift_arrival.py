"""Lifts and their 维保单位, on the real services (PostgreSQL, the SMS gateway simulator over HTTP,
the alerting service with an injected clock): a trapped passenger reaches the lift's maintenance
company with its own text; 到场 recorded in time stops the timer; a missed limit escalates to the
township, the regulator and the centre's duty operator, once, with an entry on the alert's
timeline — also across a restart of alerting (the timer is a database row)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from alerting_helpers import ServiceFactory, ev, messages

from alerting.arrival import record_arrival
from alerting.clock import ManualClock
from sim.gateway import SmsSimulator

COMPANY_MOBILE = "13800007001"
TOWNSHIP_T1, DEPT_SJ, DUTY_OPERATOR = "13800000101", "13800000302", "13900000000"


async def _lift_with_company(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO maintainers (id, name, duty_name, duty_phone, duty_mobile) VALUES"
            " ('M1', '杭州钱江电梯工程有限公司', '钱江电梯应急救援值班', '0571-86050001', $1)", COMPANY_MOBILE)
        await conn.execute("UPDATE devices SET maintainer_id='M1', location='2号楼1单元 3号梯',"
                           " reg_code='31103301152017432274' WHERE id='E6'")


async def _overdue_texts(sim: SmsSimulator) -> dict[str, str]:
    return {m["phone"]: m["body"] for m in await messages(sim) if m["params"].get("_tpl", "").startswith(
        "arrival.overdue")}


async def _timeline(pool: asyncpg.Pool, alert_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch("SELECT action, outcome, actor, reason, detail FROM alert_transitions"
                                     " WHERE alert_id=$1 AND action LIKE 'arrival%' ORDER BY id", alert_id))


async def test_a_trapped_passenger_reaches_the_lifts_maintenance_company(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory,
) -> None:
    await _lift_with_company(pool)
    svc = await make_service()
    await svc.handle_events([ev("elevator.trapped", "E6", "S6")])
    await svc.tick()
    (company,) = await messages(sim, COMPANY_MOBILE)
    print("维保单位 receives:", company["body"])
    assert company["body"].startswith("红色报警：安居小区的2号楼1单元 3号梯（注册代码31103301152017432274）发生电梯困人")
    assert "请立即派员到场救援，到场后回复“到场”或致电中心0571-88001110；使用单位物业吴，电话13800006001。" in company["body"]
    assert company["params"]["_tpl"] == "alarm.mnt.trapped.reg_l"
    (biz,) = await messages(sim, "13800006001")
    print("使用单位 receives:", biz["body"])
    assert "请立即通知维保单位到场救援或拨打96333" in biz["body"]
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT recipient_role, recipient_unit, rule FROM notifications"
                                  " WHERE recipient_phone=$1", COMPANY_MOBILE)
        assert tuple(row) == ("maintainer", "杭州钱江电梯工程有限公司", "device:E6:maintainer:M1")
        # the company's landline duty line is its second channel: a call, whose script is the rescuer's
        call = await conn.fetchrow("SELECT body FROM notifications WHERE channel='voice' AND recipient_role="
                                   "'maintainer'")
        assert call is not None and "立即派员到场救援" in call["body"], call
        timer = await conn.fetchrow("SELECT * FROM lift_arrivals")
        assert timer["maintainer_id"] == "M1" and timer["due_at"] - timer["started_at"] == timedelta(minutes=30)
    # a fire alarm names no 维保单位
    await svc.handle_events([ev("fire.alarm", "P2", "S2")])
    await svc.tick()
    assert len(await messages(sim, COMPANY_MOBILE)) == 1


async def test_arrival_recorded_in_time_stops_the_timer(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    await _lift_with_company(pool)
    svc = await make_service()
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    clock.advance(timedelta(minutes=12))
    await svc.tick()
    async with pool.acquire() as conn:
        done = await record_arrival(conn, trapped.id, actor="console:centre1", now=clock.now())
        again = await record_arrival(conn, trapped.id, actor="console:centre2", now=clock.now())
    assert done.applied and not again.applied and again.problem == "维保到场已由console:centre1于11月3日09:12记录"
    clock.advance(timedelta(minutes=40))  # well past the limit: nothing escalates
    await svc.tick()
    assert await _overdue_texts(sim) == {}
    rows = await _timeline(pool, trapped.id)
    print([dict(r) for r in rows])
    assert [(r["action"], r["outcome"], r["actor"]) for r in rows] == [
        ("arrival", "applied", "console:centre1"), ("arrival", "rejected", "console:centre2")]
    assert rows[0]["reason"] == "维保单位到场，用时12分钟（30分钟时限内）"


async def test_a_missed_limit_escalates_once_across_a_restart(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    await _lift_with_company(pool)
    svc = await make_service()
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    clock.advance(timedelta(minutes=29))
    await svc.tick()
    assert await _overdue_texts(sim) == {}
    await svc.stop()  # alerting restarts while the timer runs: its state is the database's
    clock.advance(timedelta(minutes=2))
    svc2 = await make_service(group_id="alerting-test-2")
    await svc2.tick()
    texts = await _overdue_texts(sim)
    print("\n".join(f"{k}: {v}" for k, v in texts.items()))
    assert set(texts) == {TOWNSHIP_T1, DEPT_SJ, DUTY_OPERATOR}
    body = texts[DUTY_OPERATOR]
    assert body.startswith("到场超时：安居小区的2号楼1单元 3号梯发生电梯困人（11月3日09:00起），维保单位杭州钱江电梯工程"
                           "有限公司超过30分钟未到场，请立即督促到场救援，必要时拨打96333。"), body
    rows = await _timeline(pool, trapped.id)
    assert [(r["action"], r["actor"]) for r in rows] == [("arrival_overdue", "system")]
    assert "超过30分钟未到场" in rows[0]["reason"]
    clock.advance(timedelta(minutes=5))
    await svc2.tick()  # once
    assert len([m for m in await messages(sim) if m["params"].get("_tpl", "").startswith("arrival.")]) == 3
    # arriving late is still recorded, and says it was late
    async with pool.acquire() as conn:
        late = await record_arrival(conn, trapped.id, actor="console:centre1", now=clock.now())
    assert late.applied
    assert (await _timeline(pool, trapped.id))[-1]["reason"] == "维保单位到场，用时36分钟，超过30分钟时限"


async def test_a_lift_fault_reaches_the_company_as_a_repair_without_a_timer(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    from hazmon.contracts import Severity

    await _lift_with_company(pool)
    svc = await make_service()
    await svc.handle_events([ev("elevator.door_lock_fault", "E6", "S6", severity=Severity.ORANGE)])
    clock.advance(timedelta(minutes=2))  # the faults route's group wait
    await svc.tick()
    (company,) = await messages(sim, COMPANY_MOBILE)
    print("维保单位 receives:", company["body"])
    assert company["params"]["_tpl"] == "alarm.mnt.fault.reg_l"
    assert "发生电梯门锁回路故障" in company["body"] and "请尽快派员到场检修，修复前停止使用" in company["body"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM lift_arrivals") == 0  # 到场 is timed for 困人
