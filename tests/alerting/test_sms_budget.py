"""The providers' per-number budgets end to end: hazmon sends through the SMS simulator with its
frequency limits on (腾讯云 10 a natural day and one content once in 30 s, 阿里云 per template in
a rolling 24 h, their real error codes) and never meets a refusal: ordinary messages wait for the
window and go out when it frees (the manual clock drives both sides), a red alarm over the day's
budget is 未送达 with the reason and the duty operator gets an SMS. A refusal hazmon could not
foresee (the budget off here, as if another system used the number) is classified and not
retried in a hot loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from alerting_helpers import KEY_ID, SECRET, T0, ServiceFactory, ev, messages, set_mode

from alerting.clock import ManualClock
from alerting.outbox import NewNotification, OutboxPolicy, enqueue, notification_id
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole
from hazmon.settings_budget import SmsBudgetSettings
from sim.gateway import SimulatorConfig, SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

BUSINESS = "13800006001"  # S6 安居小区 物业吴 (alerting_helpers)
DUTY = "13900000000"  # routes.yaml duty_operator
MIDNIGHT = datetime(2026, 11, 3, 16, 0, tzinfo=UTC)  # 11月4日 00:00 Beijing time (T0 is 09:00)


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SmsSimulator]:
    """The simulator enforcing the providers' limits, on the test's clock (overrides conftest's)."""
    s = SmsSimulator(SimulatorConfig(webhook_secret=SECRET, keys={KEY_ID: SECRET}, enforce_limits=True,
                                     aliyun_per_template_per_day=4), clock=clock.now)
    await s.start()
    yield s
    await s.stop()


def _row(phone: str, body: str, n: int, *, priority: int = 0, template: str = "broadcast") -> NewNotification:
    r = Recipient(role=RecipientRole.BUSINESS, name="物业吴", unit="安居小区", phone=phone, rule="test")
    return NewNotification(NotificationRequest(
        id=notification_id(f"B{n}", r, 0, f"sms:{template}"), alert_id="", channel="sms", recipient=r,
        template=template, body=body, created_at=T0), params={"body": body}, priority=priority)


async def _q(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql, *args))


async def _no_provider_refusal(pool: asyncpg.Pool) -> None:
    refused = await _q(pool, "SELECT error FROM notification_attempts WHERE error LIKE '%LimitExceeded%'"
                             " OR error LIKE '%BUSINESS_LIMIT_CONTROL%'")
    assert refused == []


async def test_tencent_ordinary_messages_wait_for_beijing_midnight_and_go_then(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider="tencent")
    async with pool.acquire() as conn:
        await enqueue(conn, [_row(BUSINESS, f"安全公益短信第{i}条", i) for i in range(11)], now=clock.now())
    await svc.tick()
    assert len(await messages(sim, BUSINESS)) == 8  # 10 a day, the last 2 kept for alarms
    waiting = await _q(pool, "SELECT id, next_attempt_at, last_error FROM notifications"
                             " WHERE status='pending'")
    assert len(waiting) == 3 and {r["next_attempt_at"] for r in waiting} == {MIDNIGHT}
    why = "已达腾讯云单号码当日发送上限（10条，留2条给红色报警和四单），顺延至11月4日00:00"
    assert {r["last_error"] for r in waiting} == {why}
    att = await _q(pool, "SELECT outcome, provider, error FROM notification_attempts"
                         " WHERE outcome='rate_limited'")
    assert [(a["provider"], a["error"]) for a in att] == [("tencent", why)] * 3
    clock.set(MIDNIGHT - timedelta(seconds=1))
    await svc.tick()
    assert len(await messages(sim, BUSINESS)) == 8
    clock.set(MIDNIGHT)
    await svc.tick()
    assert len(await messages(sim, BUSINESS)) == 11
    assert {r["status"] for r in await _q(pool, "SELECT status FROM notifications")} == {"sent"}
    await _no_provider_refusal(pool)


async def test_a_red_alarm_over_the_day_is_undeliverable_and_the_duty_operator_told(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider="tencent")
    async with pool.acquire() as conn:  # ten urgent messages to the business already today
        await enqueue(conn, [_row(BUSINESS, f"督办通知第{i}条", i, priority=1) for i in range(10)], now=clock.now())
    await svc.tick()
    assert len(await messages(sim, BUSINESS)) == 10
    clock.advance(timedelta(minutes=5))
    await svc.handle_events([ev("elevator.trapped", "E6", "S6", at=clock.now())])  # red: 电梯困人
    await svc.tick()
    await svc.tick()
    rows = await _q(pool, "SELECT status, last_error FROM notifications WHERE template='alarm'"
                          " AND recipient_phone=$1", BUSINESS)
    assert [(r["status"], r["last_error"]) for r in rows] == [("undeliverable", "已达腾讯云单号码当日发送上限（10条），未发送")]
    others = await _q(pool, "SELECT status FROM notifications WHERE template='alarm' AND recipient_phone<>$1"
                            " AND channel='sms'", BUSINESS)
    assert others and {r["status"] for r in others} == {"sent"}  # the grid member, 市监 … still reached
    duty = await _q(pool, "SELECT body, priority FROM notifications WHERE template='undelivered'"
                          " AND recipient_phone=$1", DUTY)
    assert len(duty) == 1 and duty[0]["priority"] > 0
    print("duty operator's SMS:", duty[0]["body"])
    assert duty[0]["body"] == ("未送达：安居小区的物业吴（企业）未收到安居小区的告警通知，"
                               "原因：已达腾讯云单号码当日发送上限（10条），未发送。请值班员电话通知到人。")
    await _no_provider_refusal(pool)


async def test_tencent_one_text_twice_to_a_number_waits_30_s_then_is_a_duplicate(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider="tencent")
    async with pool.acquire() as conn:  # the same person in two roles: two rows, one text, urgent
        await enqueue(conn, [_row(BUSINESS, "火警", 1, priority=1), _row(BUSINESS, "火警", 2, priority=1)],
                      now=clock.now())
    await svc.tick()
    waiting = await _q(pool, "SELECT next_attempt_at, last_error FROM notifications WHERE status='pending'")
    assert [(r["next_attempt_at"], r["last_error"]) for r in waiting] == [
        (T0 + timedelta(seconds=30), "腾讯云同一内容30秒内限发1条，顺延至09:00:30")]
    clock.advance(timedelta(seconds=30))
    await svc.tick()
    statuses = sorted(r["status"] for r in await _q(pool, "SELECT status FROM notifications"))
    assert statuses == ["sent", "suppressed"] and len(await messages(sim, BUSINESS)) == 1
    await _no_provider_refusal(pool)


async def test_aliyun_rolling_24_h_per_template(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    budget = SmsBudgetSettings(aliyun_per_template_per_day=4, priority_reserve=1)  # as the console (and sim)
    svc = await make_service(provider="aliyun", policy=OutboxPolicy(sms_budget=budget))
    for i in range(5):  # one an hour
        async with pool.acquire() as conn:
            await enqueue(conn, [_row(BUSINESS, f"公益短信{i}", i)], now=clock.now())
        await svc.tick()
        clock.advance(timedelta(hours=1))
    assert len(await messages(sim, BUSINESS)) == 3  # 4 a template, 1 kept for alarms
    async with pool.acquire() as conn:  # another template is counted on its own
        await enqueue(conn, [_row(BUSINESS, "另一模板", 9, template="alarm")], now=clock.now())
    await svc.tick()
    assert len(await messages(sim, BUSINESS)) == 4
    waiting = await _q(pool, "SELECT next_attempt_at, last_error FROM notifications WHERE status='pending'")
    # the first leaves the window 24 h after its answer (a few ms after T0)
    day = T0 + timedelta(hours=24)
    assert waiting and all(timedelta(0) <= r["next_attempt_at"] - day < timedelta(seconds=1) for r in waiting)
    assert all(r["last_error"].startswith("已达阿里云同模板单号码24小时上限（4条，留1条给红色报警和四单）")
               for r in waiting)
    clock.set(waiting[0]["next_attempt_at"])
    await svc.tick()
    assert len(await messages(sim, BUSINESS)) == 5
    clock.set(waiting[0]["next_attempt_at"] + timedelta(hours=1))
    await svc.tick()
    assert len(await messages(sim, BUSINESS)) == 6
    await _no_provider_refusal(pool)


async def test_a_refusal_hazmon_could_not_foresee_waits_for_the_window_or_is_undeliverable(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    sim.config.tencent_per_day = 1  # another system used the number today: the provider counts more
    svc = await make_service(provider="tencent")
    async with pool.acquire() as conn:
        await enqueue(conn, [_row(BUSINESS, "第一条", 1, priority=1), _row(BUSINESS, "第二条", 2),
                             _row(BUSINESS, "第三条", 3, priority=1)], now=clock.now())
    await svc.tick()  # one goes; the provider refuses the others (hazmon's own count said yes)
    first = await _q(pool, "SELECT status, next_attempt_at, last_error FROM notifications"
                           " WHERE status='pending'")
    assert len(first) == 2 and all("LimitExceeded.PhoneNumberDailyLimit" in r["last_error"] for r in first)
    assert all(r["next_attempt_at"] - T0 <= timedelta(seconds=15) for r in first)  # the first backoff
    clock.advance(timedelta(seconds=15))
    await svc.tick()  # the budget reads the refusal: the ordinary one to Beijing midnight, the red one 未送达
    await svc.tick()
    rows = {r["body"]: (r["status"], r["next_attempt_at"], r["last_error"])
            for r in await _q(pool, "SELECT body, status, next_attempt_at, last_error FROM notifications"
                                    " WHERE recipient_phone=$1", BUSINESS)}
    assert rows["第二条"] == ("pending", MIDNIGHT, "腾讯云已按单号码当日上限拒收，顺延至11月4日00:00")
    assert rows["第三条"][0] == "undeliverable" and rows["第三条"][2] == "腾讯云已按单号码当日上限拒收，未发送"
    duty = await _q(pool, "SELECT body FROM notifications WHERE template='undelivered'"
                          " AND recipient_phone=$1", DUTY)
    assert len(duty) == 1 and "原因：腾讯云已按单号码当日上限拒收，未发送" in duty[0]["body"]
    tries = await _q(pool, "SELECT count(*) AS n FROM notification_attempts WHERE outcome='retrying'")
    assert tries[0]["n"] == 2  # each refused once, never in a loop


async def test_the_thirty_second_refusal_is_retried_after_30_s(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    sim.config.tencent_same_text_s = 60  # the console's rule stricter than hazmon's setting
    svc = await make_service(provider="tencent", policy=OutboxPolicy(dedup_window=timedelta(seconds=1)))
    async with pool.acquire() as conn:
        await enqueue(conn, [_row(BUSINESS, "同一内容", 1)], now=clock.now())
    await svc.tick()
    clock.advance(timedelta(seconds=40))
    async with pool.acquire() as conn:
        await enqueue(conn, [_row(BUSINESS, "同一内容", 2)], now=clock.now())
    await svc.tick()  # hazmon's 30 s passed, the provider's 60 s not
    row = (await _q(pool, "SELECT status, next_attempt_at, last_error FROM notifications"
                          " WHERE status='pending'"))[0]
    assert "PhoneNumberThirtySecondLimit" in row["last_error"]
    # after the window, not the 10 s backoff
    assert row["next_attempt_at"] >= clock.now() + timedelta(seconds=30)
    clock.set(row["next_attempt_at"])
    await svc.tick()
    assert len(await messages(sim, BUSINESS)) == 2


async def test_aliyun_flow_control_answer_is_read_and_the_row_waits_an_hour(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider="aliyun")  # hazmon's budget 50 a template; the console's is 4 (sim)
    async with pool.acquire() as conn:
        await enqueue(conn, [_row(BUSINESS, f"公益短信{i}", i) for i in range(5)], now=clock.now())
    await svc.tick()
    refused = await _q(pool, "SELECT last_error FROM notifications WHERE status='pending'")
    assert [r["last_error"] for r in refused] == ["aliyun: isv.BUSINESS_LIMIT_CONTROL: 触发天级流控Permits:4"]
    clock.advance(timedelta(seconds=15))
    await svc.tick()
    row = (await _q(pool, "SELECT next_attempt_at, last_error FROM notifications WHERE status='pending'"))[0]
    assert (row["next_attempt_at"], row["last_error"]) == (clock.now() + timedelta(hours=1),
                                                           "阿里云已按单号码当日上限拒收，顺延至10:00:15")


async def test_aliyun_minute_flow_control_is_retried_after_a_minute(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider="aliyun")
    await set_mode(sim, rate_limit_next=1)  # 阿里云 answers 触发分钟级流控 once
    async with pool.acquire() as conn:
        await enqueue(conn, [_row(BUSINESS, "公益短信", 1)], now=clock.now())
    await svc.tick()
    row = (await _q(pool, "SELECT next_attempt_at, last_error FROM notifications WHERE status='pending'"))[0]
    assert "触发分钟级流控" in row["last_error"] and row["next_attempt_at"] >= T0 + timedelta(seconds=60)
    clock.set(row["next_attempt_at"])
    await svc.tick()
    assert len(await messages(sim, BUSINESS)) == 1


async def test_the_duty_operators_note_goes_out_through_tencent(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider="tencent")
    async with pool.acquire() as conn:
        await enqueue(conn, [_row(BUSINESS, f"督办通知第{i}条", i, priority=1) for i in range(11)], now=clock.now())
    await svc.tick()
    await svc.tick()
    assert [m for m in await messages(sim, DUTY) if "未送达" in m["body"]]
