"""维保单位报到场 by SMS (alerting/arrival_reply.py), on the real services: PostgreSQL, the SMS
gateway simulator over HTTP delivering the replies (signed) to alerting's inbound app under
uvicorn, the alerting service sending through the simulator with an injected clock.

The company's trapped-passenger SMS tells it to reply 到场; its reply records the arrival for its
most recent open trapped alarm (the timer stops, the timeline names it, a confirmation SMS says
which lift); 收到 keeps acknowledging as before. A 到场 from a number that is not the lift's
维保单位, or with no open trapped alarm, records nothing: an audit row, a Chinese answer, and an SMS
saying so only to a number hazmon has written to before (a stranger gets none).
"""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest
from alerting_helpers import ServiceFactory, ev, messages, set_mode
from test_ack_words import STRANGER, Inbound, q, reply, start_inbound  # noqa: F401 (a fixture)
from test_lift_arrival import COMPANY_MOBILE, _lift_with_company, _overdue_texts

from alerting.arrival_reply import is_arrival_word
from alerting.clock import ManualClock
from alerting.lifecycle import close, verify
from console.actors import actor_words, recipients_of
from hazmon.contracts import Verdict
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

BUSINESS = "13800006001"  # S6 安居小区's 物业吴, the lift's 使用单位
ACTOR = "sms_arrival:device:E6:maintainer:M1"


async def _trapped(pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, inbound: str
                   ) -> tuple[object, str]:
    await _lift_with_company(pool)
    svc = await make_service()
    await set_mode(sim, callback_url=inbound, receipt_delay_s=0.01)
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    return svc, trapped.id


async def _audit(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await q(pool, "SELECT * FROM inbound_audit WHERE channel='sms_reply' ORDER BY id")


async def test_what_counts_as_reporting_arrival() -> None:
    for yes in ("到场", "已到场", "到达", " 到场。", "已到达", "已经到场", "到场了", "我已到场", "好的，已到场！",
                "到达现场", "维保已到场", "ＯＫ到场"):
        assert is_arrival_word(yes), yes
    for no in ("", "未到场", "没到场", "还未到达", "到场超时", "快到场了吗", "收到", "到场123456", "马上到"):
        assert not is_arrival_word(no), no


async def test_the_company_replies_daochang_and_its_arrival_is_recorded(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    start_inbound: Inbound,  # noqa: F811
) -> None:
    inbound = await start_inbound()
    svc, alert_id = await _trapped(pool, sim, make_service, inbound)
    [alarm] = await messages(sim, COMPANY_MOBILE)
    print("维保单位 receives:", alarm["body"])
    assert "请立即派员到场救援，到场后回复“到场”或致电中心0571-88001110；" in alarm["body"]
    # 收到 still acknowledges, as before
    clock.advance(timedelta(minutes=1))
    got = await reply(sim, COMPANY_MOBILE, "收到")
    assert (got["status"], got["outcome"]) == (200, "acknowledged"), got
    await svc.tick()
    clock.advance(timedelta(minutes=8))
    got = await reply(sim, COMPANY_MOBILE, "已到场")
    print("answer:", got)
    assert (got["status"], got["outcome"]) == (200, "arrived"), got
    assert got["message"] == "已记录维保单位到场：安居小区的2号楼1单元 3号梯，用时9分钟。"
    [timer] = await q(pool, "SELECT arrived_at, arrived_by FROM lift_arrivals WHERE alert_id=$1", alert_id)
    assert timer["arrived_at"] == clock.now() and timer["arrived_by"] == ACTOR
    [t] = await q(pool, "SELECT actor, outcome, reason, note FROM alert_transitions WHERE alert_id=$1"
                        " AND action='arrival'", alert_id)
    assert (t["actor"], t["outcome"]) == (ACTOR, "applied")
    assert t["reason"] == "维保单位到场，用时9分钟（30分钟时限内）" and t["note"].startswith("短信回复“已到场”")
    # the console names the actor in words: the recipient's name and unit, by SMS
    notes = await q(pool, "SELECT rule, recipient_name, recipient_unit FROM notifications WHERE alert_id=$1",
                    alert_id)
    words = actor_words(t["actor"], recipients_of([dict(n) for n in notes]), {})
    print("timeline actor:", words)
    assert words == "短信报到场（钱江电梯应急救援值班·杭州钱江电梯工程有限公司）"
    row = (await _audit(pool))[-1]
    assert (row["outcome"], row["alert_id"]) == ("arrived", alert_id)
    assert row["recipient_id"] == "device:E6:maintainer:M1"
    assert row["phone_masked"] == "138****7001" and json.loads(row["detail"])["by"] == "arrival_word"
    # the confirmation, through the outbox
    await svc.tick()
    [confirm] = [m for m in await messages(sim, COMPANY_MOBILE) if m["template"] == "arrival_confirm"]
    print("confirmation SMS:", confirm["body"])
    assert confirm["body"] == ("已记录到场：安居小区的2号楼1单元 3号梯的电梯困人，11月3日09:09到场，用时9分钟。"
                               "请尽快救援并反馈处置情况。中心值班电话0571-88001110。")
    assert confirm["params"]["_tpl"] == "arrival.confirm"
    # sent twice (people do): the same arrival, no second record, no second SMS
    n = len(await messages(sim, COMPANY_MOBILE))
    again = await reply(sim, COMPANY_MOBILE, "到场")
    assert again["outcome"] == "already_arrived" and "已于11月3日09:09记录" in again["message"], again
    await svc.tick()
    assert len(await messages(sim, COMPANY_MOBILE)) == n
    clock.advance(timedelta(minutes=40))  # past the limit: it arrived, nothing escalates
    await svc.tick()
    assert await _overdue_texts(sim) == {}
    assert [r["outcome"] for r in await q(pool, "SELECT outcome FROM sms_replies ORDER BY id")] == [
        "acknowledged", "arrived", "already_arrived"]


async def test_a_daochang_from_anyone_else_or_without_an_open_alarm_records_nothing(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    start_inbound: Inbound,  # noqa: F811
) -> None:
    inbound = await start_inbound()
    svc, alert_id = await _trapped(pool, sim, make_service, inbound)
    # the 使用单位 was told of the alarm, but 到场 is the company's to report
    got = await reply(sim, BUSINESS, "到场")
    print("使用单位's 到场:", got)
    assert (got["status"], got["outcome"]) == (403, "not_maintainer"), got
    assert got["error"] == "到场由维保单位回复，本号码不是该报警的维保单位，未记录到场。"
    # a stranger
    got = await reply(sim, STRANGER, "已到场")
    assert (got["status"], got["outcome"]) == (404, "no_open_lift_alarm"), got
    assert got["error"] == "该号码没有待到场的电梯困人报警，未记录到场。"
    [timer] = await q(pool, "SELECT arrived_at FROM lift_arrivals WHERE alert_id=$1", alert_id)
    assert timer["arrived_at"] is None
    assert not await q(pool, "SELECT 1 FROM alert_transitions WHERE action='arrival'")
    rows = await _audit(pool)
    for r in rows:
        print("audit:", r["outcome"], r["phone_masked"], r["recipient_id"] or "-", r["alert_id"] or "-",
              r["detail"])
    assert [(r["outcome"], r["phone_masked"], r["alert_id"]) for r in rows] == [
        ("not_maintainer", "138****6001", alert_id), ("no_open_lift_alarm", "139****5678", None)]
    # the 使用单位 (a number hazmon writes to) is told nothing was recorded; the stranger is not
    await svc.tick()
    [refused] = [m for m in await messages(sim, BUSINESS) if m["template"] == "arrival_refused"]
    print("refusal SMS:", refused["body"])
    assert refused["body"] == ("未记录到场：本号码没有待到场的电梯困人报警，到场由接到困人报警的维保单位回复。"
                               "如有疑问请致电中心值班电话0571-88001110。")
    assert await messages(sim, STRANGER) == []
    await reply(sim, BUSINESS, "已到达")  # again the same day: audited, no second SMS
    await svc.tick()
    assert len([m for m in await messages(sim, BUSINESS) if m["template"] == "arrival_refused"]) == 1
    # the alarm closed: the company's own 到场 finds nothing open, and is told so
    async with pool.acquire() as conn:
        await verify(conn, alert_id, actor="op1", now=clock.now(), verdict=Verdict.TEST, reason="测试")
        await close(conn, alert_id, actor="op1", now=clock.now(), reason="测试结束")
    got = await reply(sim, COMPANY_MOBILE, "到场")
    assert (got["status"], got["outcome"]) == (404, "no_open_lift_alarm"), got
    await svc.tick()
    assert [m["template"] for m in await messages(sim, COMPANY_MOBILE)] == ["alarm", "arrival_refused"]
    [timer] = await q(pool, "SELECT arrived_at FROM lift_arrivals WHERE alert_id=$1", alert_id)
    assert timer["arrived_at"] is None
    assert [r["outcome"] for r in await _audit(pool)][-2:] == ["not_maintainer", "no_open_lift_alarm"]
