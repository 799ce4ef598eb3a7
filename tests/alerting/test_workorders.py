"""工单 on the real services (PostgreSQL, the SMS gateway simulator over HTTP, the alerting
service with an injected clock): 派发 from the matrix notifies each person with where, what, the
deadline and their own working link; every illegal step is refused in Chinese and recorded; an
overdue order reminds its assignee, then tells the duty operator and the leader, once; two
approvals of one order: one wins; the last approval closes the alarm and the business gets the
outcome SMS."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import asyncpg
from alerting_helpers import T0, ServiceFactory, ev, messages

from alerting import lifecycle, workorder_steps
from alerting.ack_link import confirm_link
from alerting.acks import token_hash
from alerting.clock import ManualClock
from alerting.matrix import resolve
from alerting.service import AlertingService
from alerting.store import acks as acks_store
from alerting.store import workorders as wstore
from alerting.templates import format_when
from alerting.workorder_steps import Pick
from alerting.workorders import dispatch_options, find_unit
from hazmon.contracts import Verdict
from sim.gateway import SmsSimulator

GRID_V1, TOWNSHIP_T1, DEPT_ZJ = "13800000201", "13800000101", "13800000301"
BIZ_S1, LEADER_L1, DUTY_OPERATOR = "13800001001", "13800000401", "13900000000"
WHERE, WHAT = "老王饭店的厨房燃气探测器 S1-GAS1", "可燃气体浓度超高限报警"
_LINK = re.compile(r"http://ack\.test/a/([0-9A-Za-z_-]{22})$")


async def _verified_gas_alarm(svc: AlertingService, pool: asyncpg.Pool, clock: ManualClock) -> str:
    gas = ev("gas.high", "S1-GAS1", "S1")
    await svc.handle_events([gas])
    await svc.tick()
    clock.advance(timedelta(minutes=2))
    async with pool.acquire() as conn:
        r = await lifecycle.verify(conn, gas.id, actor="centre:op1", now=clock.now(), verdict=Verdict.REAL,
                                   reason="视频复核有泄漏")
    assert r.applied
    return gas.id


async def _dispatch(svc: AlertingService, pool: asyncpg.Pool, clock: ManualClock, alert_id: str,
                    picks: list[tuple[str, bool]], minutes: int = 60) -> list[asyncpg.Record]:
    """派发 to ``picks`` (unit id, whether to its first person) of the alarm's matrix options."""
    options = dispatch_options(resolve(svc.registry, site_id="S1", domain="gas", device_id="S1-GAS1"))
    chosen = []
    for unit_id, person in picks:
        unit = find_unit(options, unit_id)
        assert unit is not None, (unit_id, options)
        chosen.append(Pick(unit, unit.people[0] if person else None))
    async with pool.acquire() as conn:
        res = await workorder_steps.dispatch(conn, alert_id, actor="centre:op1", now=clock.now(),
                                             picks=chosen, deadline_minutes=minutes, note="请尽快到场关阀")
    assert res.applied, res.problem
    return res.orders


async def _texts(sim: SmsSimulator, phone: str, tpl: str) -> list[str]:
    return [m["body"] for m in await messages(sim, phone) if m["params"].get("_tpl", "").startswith(tpl)]


async def test_dispatch_from_the_matrix_notifies_each_person_with_a_working_link(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    aid = await _verified_gas_alarm(svc, pool, clock)
    options = dispatch_options(resolve(svc.registry, site_id="S1", domain="gas", device_id="S1-GAS1"))
    assert [(u.unit_kind, u.unit_id, u.unit_name, u.why) for u in options] == [
        ("business", "S1", "老王饭店", "企业主体责任"), ("grid", "V1", "东城社区", "属地（网格员）"),
        ("township", "T1", "东城街道", "属地（值班）"), ("department", "zj", "区住建局", "行业监管（三管三必须）"),
        ("leader", "L1", "王副区长", "责任领导")]
    orders = await _dispatch(svc, pool, clock, aid, [("V1", True), ("T1", False), ("zj", False)])
    assert [(o["unit_kind"], o["assignee_name"], o["state"]) for o in orders] == [
        ("grid", "张网格", "issued"), ("township", "", "issued"), ("department", "", "issued")]
    async with pool.acquire() as conn:
        alert = await lifecycle.get_alert(conn, aid)
        assert alert.phase.value == "dispatched"
    await svc.tick()  # the timer pass tells each order's person, the sender sends
    deadline = format_when(clock.now() + timedelta(minutes=60))
    for phone in (GRID_V1, TOWNSHIP_T1, DEPT_ZJ):
        (body,) = await _texts(sim, phone, "workorder.issue")
        print(phone, "receives:", body)
        assert body.startswith(f"工单：{WHERE}发生{WHAT}（红色报警），"), body
        assert f"请于{deadline}前到场处置" in body and "中心值班电话0571-88001110" in body
        m = _LINK.search(body)
        assert m, body
        async with pool.acquire() as conn:  # the link is the recipient's own, and it works
            grant = await acks_store.grant_by_token_hash(conn, token_hash(m.group(1)))
            assert grant is not None and grant["phone"] == phone and grant["alert_id"] == aid
            out = await confirm_link(conn, m.group(1), now=clock.now(), ip="203.0.113.9")
            assert out.outcome in ("acknowledged", "already_acknowledged") and out.alert_id == aid
            assert f"回复{grant['code']}确认" in body
    async with pool.acquire() as conn:
        told = await conn.fetch("SELECT action, reason FROM work_order_transitions WHERE action='notify'")
        assert len(told) == 3 and {t["reason"] for t in told} == {"已通知接单人"}
        assert not await wstore.any_due(conn, clock.now())  # nothing due until the deadline
    await svc.tick()  # replayed: nothing twice
    assert len(await _texts(sim, GRID_V1, "workorder")) == 1


async def test_every_illegal_step_is_refused_in_chinese_and_recorded(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    aid = await _verified_gas_alarm(svc, pool, clock)
    (order,) = await _dispatch(svc, pool, clock, aid, [("V1", True)])
    oid, who = order["id"], "grid_member:gm13800000201"
    s = workorder_steps
    plan = [  # (step, args, applied, words of the refusal)
        (s.arrive, {}, False, "请先接单，再到场签到"), (s.feedback, {"note": "已关阀"}, False, "请先到场签到"),
        (s.approve, {"reason": "real"}, False, "工单尚未反馈，不能审核办结"),
        (s.return_order, {"reason": "照片不清"}, False, "工单尚未反馈，不能退回"),
        (s.accept, {}, True, ""), (s.accept, {}, False, "工单已接单（当前：已接单），不能重复接单"),
        (s.feedback, {"note": "已关阀"}, False, "请先到场签到，再反馈处置情况（当前：已接单）"),
        (s.arrive, {"lat": 30.2, "lon": 120.1, "accuracy_m": 12.0}, True, ""),
        (s.arrive, {}, False, "已到场签到（当前：已到场），不能重复签到"),
        (s.feedback, {"note": "已关阀通风", "attachment_ids": ["att-0001"], "request_close": True}, True, ""),
        (s.feedback, {"note": "再次反馈"}, False, "工单已反馈，等待中心审核，不能重复反馈"),
        (s.accept, {}, False, "工单已接单（当前：已反馈待审核），不能重复接单"),
        (s.return_order, {"reason": "请补拍关阀照片"}, True, ""),
        (s.approve, {"reason": "real"}, False, "工单尚未反馈，不能审核办结（当前：已退回）"),
        (s.feedback, {"note": "已补拍照片", "attachment_ids": ["att-0002"]}, True, ""),
        (s.approve, {"reason": "real", "note": "处置到位"}, True, ""),
        (s.accept, {}, False, "工单已于"), (s.feedback, {"note": "x"}, False, "办结，不能再操作"),
    ]
    for call, args, applied, words in plan:
        clock.advance(timedelta(minutes=1))
        actor = "centre:op1" if call in (s.approve, s.return_order) else who
        async with pool.acquire() as conn:
            r = await call(conn, oid, actor=actor, now=clock.now(), **args)
        assert r.applied is applied, (call.__name__, r.problem)
        if not applied:
            assert words in r.problem and not re.search(r"[A-Za-z]", r.problem), r.problem
        if call is s.return_order and applied:
            await svc.tick()  # the person is told why, with the new deadline
            (body,) = await _texts(sim, GRID_V1, "workorder.returned")
            print("退回:", body)
            assert "的反馈未通过审核（请补拍关阀照片），请于" in body and _LINK.search(body)
    async with pool.acquire() as conn:
        steps = await conn.fetch("SELECT action, outcome, reason FROM work_order_transitions"
                                 " WHERE order_id=$1 AND action NOT IN ('issue', 'notify') ORDER BY id", oid)
        assert [(t["action"], t["outcome"]) for t in steps] == [
            (c.__name__.replace("return_order", "return"), "applied" if a else "rejected")
            for c, _, a, _ in plan]
        final = await conn.fetchrow("SELECT * FROM work_orders WHERE id=$1", oid)
        assert final["state"] == "closed" and final["attachment_ids"] == ["att-0002"]
        assert final["arrived_accuracy_m"] == 12.0 and final["close_reason"] == "real"
        phases = [r["action"] for r in await conn.fetch(
            "SELECT action FROM alert_transitions WHERE alert_id=$1 AND outcome='applied'"
            " AND action <> 'notify' ORDER BY id", aid)]
        assert phases[-4:] == ["dispatch", "handle", "feedback", "close"], phases
        assert (await lifecycle.get_alert(conn, aid)).phase.value == "closed"


async def test_an_overdue_order_reminds_then_escalates_once(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    aid = await _verified_gas_alarm(svc, pool, clock)
    (order,) = await _dispatch(svc, pool, clock, aid, [("V1", True)], minutes=30)
    await svc.tick()
    assert len(await _texts(sim, GRID_V1, "workorder.issue")) == 1
    clock.advance(timedelta(minutes=29))
    await svc.tick()
    assert await _texts(sim, GRID_V1, "workorder.remind") == []  # not due yet
    clock.advance(timedelta(minutes=2))
    await svc.tick()
    (remind,) = await _texts(sim, GRID_V1, "workorder.remind")
    print("超时提醒:", remind)
    assert remind.startswith(f"工单超时提醒：{WHERE}的{WHAT}已过处置时限"
                             f"{format_when(order['deadline'])}") and _LINK.search(remind)
    assert await _texts(sim, DUTY_OPERATOR, "workorder.overdue") == []
    clock.advance(timedelta(minutes=30))
    await svc.tick()
    for phone in (DUTY_OPERATOR, LEADER_L1):
        (body,) = await _texts(sim, phone, "workorder.overdue")
        print(phone, "超时上报:", body)
        assert "派给张网格的工单已过时限" in body and "仍未反馈，请督促处置" in body
    async with pool.acquire() as conn:
        assert not await wstore.any_due(conn, clock.now() + timedelta(days=30))  # the ladder has ended
        steps = [r["action"] for r in await conn.fetch(
            "SELECT action FROM work_order_transitions WHERE order_id=$1 ORDER BY id", order["id"])]
        assert steps == ["issue", "notify", "remind", "escalate"]
    clock.advance(timedelta(hours=3))
    await svc.tick()
    assert len(await _texts(sim, DUTY_OPERATOR, "workorder.overdue")) == 1  # once


async def _to_fed_back(pool: asyncpg.Pool, clock: ManualClock, oid: str) -> None:
    async with pool.acquire() as conn:
        for call, args in ((workorder_steps.accept, {}), (workorder_steps.arrive, {}),
                           (workorder_steps.feedback, {"note": "现场核实为探头受油烟影响误报"})):
            r = await call(conn, oid, actor="township:t1", now=clock.now(), **args)
            assert r.applied, r.problem


async def test_two_approvals_at_once_one_wins_and_the_last_closes_the_alarm_with_the_outcome(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    aid = await _verified_gas_alarm(svc, pool, clock)
    first, second = await _dispatch(svc, pool, clock, aid, [("V1", True), ("T1", False)])
    await svc.tick()
    clock.advance(timedelta(minutes=10))
    await _to_fed_back(pool, clock, first["id"])
    await _to_fed_back(pool, clock, second["id"])

    async def approve(who: str) -> workorder_steps.StepResult:
        async with pool.acquire() as conn:
            return await workorder_steps.approve(conn, first["id"], actor=who, now=clock.now(),
                                                 reason="false")

    a, b = await asyncio.gather(approve("centre:op1"), approve("centre:op2"))
    assert sorted([a.applied, b.applied]) == [False, True]
    loser = a if not a.applied else b
    assert loser.problem.startswith("工单已于") and loser.problem.endswith("办结，不能再操作"), loser.problem
    assert not a.alert_closed and not b.alert_closed  # one order is still open
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT outcome FROM work_order_transitions"
                                " WHERE order_id=$1 AND action='approve'", first["id"])
        assert sorted(r["outcome"] for r in rows) == ["applied", "rejected"]
        assert (await lifecycle.get_alert(conn, aid)).phase.value == "feedback"
        last = await workorder_steps.approve(conn, second["id"], actor="centre:op1", now=clock.now(),
                                             reason="false", note="探头受油烟影响")
        assert last.applied and last.alert_closed
        alert = await lifecycle.get_alert(conn, aid)
        assert alert.phase.value == "closed" and alert.verdict is not None and alert.verdict.value == "false"
        assert alert.close_reason == "工单全部办结：误报，探头受油烟影响"
    await svc.tick()  # the outcome pass tells the business the verdict
    (outcome,) = await _texts(sim, BIZ_S1, "outcome")
    print("企业 receives:", outcome)
    assert "经核实为误报，已办结" in outcome and outcome.startswith(f"{WHERE}的{WHAT}")
    assert T0 < clock.now()


async def test_the_orders_of_an_alarm_closed_meanwhile_neither_remind_nor_escalate(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    aid = await _verified_gas_alarm(svc, pool, clock)
    (order,) = await _dispatch(svc, pool, clock, aid, [("V1", True)], minutes=30)
    await svc.tick()
    async with pool.acquire() as conn:  # the centre closed the alarm itself (the field phoned in)
        fed = await lifecycle.feedback(conn, aid, actor="centre:op1", now=clock.now(), note="电话反馈已关阀")
        closed = await lifecycle.close(conn, aid, actor="centre:op1", now=clock.now(), reason="电话核实处置完毕")
        assert fed.applied and closed.applied
    clock.advance(timedelta(hours=2))
    await svc.tick()
    assert await _texts(sim, GRID_V1, "workorder.remind") == []
    assert await _texts(sim, DUTY_OPERATOR, "workorder.overdue") == []
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT next_due_at FROM work_orders WHERE id=$1", order["id"]) is None


async def test_a_landline_duty_room_gets_its_order_as_a_call(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    async with pool.acquire() as conn:  # 东城街道's duty room: a landline only
        await conn.execute("UPDATE townships SET duty_phone='0571-86010001' WHERE id='T1'")
    svc = await make_service()
    aid = await _verified_gas_alarm(svc, pool, clock)
    await _dispatch(svc, pool, clock, aid, [("T1", False)])
    await svc.tick()
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT recipient_phone, body FROM notifications WHERE channel='voice'"
                                  " AND template='workorder'")
    assert row is not None and row["recipient_phone"] == "057186010001"
    print("镇街值班座机 hears:", row["body"])
    assert row["body"].startswith("这里是区应急指挥中心。老王饭店") and "前到场处置，并在监测平台签到、反馈" in row["body"]


async def test_a_returned_order_is_reminded_again_at_its_new_deadline(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    aid = await _verified_gas_alarm(svc, pool, clock)
    (order,) = await _dispatch(svc, pool, clock, aid, [("V1", True)], minutes=30)
    await svc.tick()
    clock.advance(timedelta(minutes=31))
    await svc.tick()
    assert len(await _texts(sim, GRID_V1, "workorder.remind")) == 1
    async with pool.acquire() as conn:
        for call, args in ((workorder_steps.accept, {}), (workorder_steps.arrive, {}),
                           (workorder_steps.feedback, {"note": "已关阀"})):
            assert (await call(conn, order["id"], actor="grid_member:g", now=clock.now(), **args)).applied
        r = await workorder_steps.return_order(conn, order["id"], actor="centre:op1", now=clock.now(),
                                               reason="请补拍照片")
        assert r.applied and r.order["deadline"] == clock.now() + timedelta(minutes=30)
    await svc.tick()
    assert len(await _texts(sim, GRID_V1, "workorder.returned")) == 1
    clock.advance(timedelta(minutes=31))
    await svc.tick()
    reminders = await _texts(sim, GRID_V1, "workorder.remind")
    assert len(reminders) == 2 and reminders[0] != reminders[1]  # the new deadline's own reminder
