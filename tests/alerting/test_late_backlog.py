"""A gateway's backlog of old alarms, end to end against the real services (issue 18): the
detectors' engine turns the late device events into events (their ``starts_at`` the device's
time, their ``received_at`` the platform's), they travel on Kafka, and the alerting service
(PostgreSQL, the SMS simulator over HTTP, a controllable clock) sends only the first messages,
saying the alarms were reported late — never the whole 四单 ladder, never a 问责建议单 at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from alerting_helpers import T0, ServiceFactory, consume, messages, produce

from alerting import queries
from alerting.clock import ManualClock
from detectors.batch import Message
from detectors.engine import Engine
from detectors.state import DeviceMeta
from hazmon.contracts import DeviceEvent, Event, EventState, Severity, event_id
from hazmon.topics import Topics
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

BUSINESS_S1, BUSINESS_S6 = "13800001001", "13800006001"
META = {"S1-GAS1": DeviceMeta(site_id="S1", domain="gas", model="厨房燃气探测器"),
        "E6": DeviceMeta(site_id="S6", domain="elevator", model="1号电梯"),
        "S4-GAS1": DeviceMeta(site_id="S4", domain="gas", model="燃气探测器")}


def backlog_events() -> list[Event]:
    """What the detectors make of a gateway's backlog delivered at T0 (09:00 China time)."""
    engine = Engine(meta=META.get, clock=lambda: T0)
    old = [("S1-GAS1", "S1", "gas", "gas_high", T0 - timedelta(days=3)),  # 10月31日09:00
           ("E6", "S6", "elevator", "trapped", T0 - timedelta(hours=6)),  # 11月3日03:00
           ("S4-GAS1", "S4", "gas", "gas_high", datetime(2000, 1, 1, tzinfo=UTC))]  # an RTC reset
    msgs = [Message(DeviceEvent(device_id=d, site_id=s, domain=dom, vendor="v1", code=c, ts=ts,
                                received_at=T0 + timedelta(seconds=i)).model_dump_json().encode(), f"de:0:{i}")
            for i, (d, s, dom, c, ts) in enumerate(old)]
    out = engine.process(device_events=msgs)
    return [e for e in out.events if e.state is EventState.FIRING]


class _Everyone:
    """A reader who sees every alert (the console's scopes are tested with the console)."""

    def alerts_sql(self, p: queries.Params, alias: str = "a") -> str:
        return "true"


async def rows(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(sql, *args)


async def test_a_backlog_of_old_alarms_gets_only_its_first_messages_worded_late(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    topics: Topics, kafka_bootstrap: str,
) -> None:
    events = backlog_events()
    by_dev = {e.device_id: e for e in events}
    assert set(by_dev) == {"S1-GAS1", "E6", "S4-GAS1"}
    gas = by_dev["S1-GAS1"]
    assert gas.starts_at == T0 - timedelta(days=3) and gas.received_at == T0  # the detectors carry both
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    clock.advance(5)  # alerting reads them a few seconds after ingest received them
    await produce(kafka_bootstrap, topics, events)
    assert await consume(svc, 3) == 3

    alerts = {r["device_id"]: r for r in await rows(
        pool, "SELECT device_id, starts_at, reported_at, time_flag, next_escalation_at, severity FROM alerts")}
    assert alerts["S1-GAS1"]["starts_at"] == T0 - timedelta(days=3)  # it keeps its true start
    assert alerts["S1-GAS1"]["reported_at"] == T0 and alerts["S1-GAS1"]["time_flag"] == "late"
    assert alerts["S1-GAS1"]["next_escalation_at"] == T0 + timedelta(minutes=5)  # red: 提醒 after 5 m
    assert alerts["E6"]["time_flag"] == "late" and alerts["S4-GAS1"]["time_flag"] == "clock_old"
    assert alerts["S4-GAS1"]["next_escalation_at"] == T0 + timedelta(seconds=2, minutes=5)
    async with pool.acquire() as conn:  # the console's alert page reads both times (发生 / 接报)
        page = await queries.alert_detail(conn, _Everyone(), gas.id)
    assert page["starts_at"] == gas.starts_at and page["reported_at"] == T0 and page["time_flag"] == "late"

    clock.advance(60)  # every group_wait over: the first messages, and no notice
    await svc.tick()
    assert await rows(pool, "SELECT * FROM notices") == []
    sms = await messages(sim)
    assert sms and {m["template"] for m in sms} == {"alarm"}
    s1 = next(m["body"] for m in sms if m["phone"] == BUSINESS_S1)
    assert "11月3日09:00" in s1 and "设备延迟上报，实际发生于10月31日09:00" in s1, s1
    s6 = next(m["body"] for m in sms if m["phone"] == BUSINESS_S6)
    assert "电梯困人" in s6 and "设备延迟上报，实际发生于11月3日03:00" in s6, s6
    s4 = [m["body"] for m in sms if "无人小店" in m["body"]]
    assert s4 and all("设备时间异常" in b and "按接报时间计" in b for b in s4), s4

    clock.advance(timedelta(minutes=5))  # T0+6m05s: the red ones' 工作提醒单, nothing higher
    await svc.tick()
    levels = [r["level"] for r in await rows(pool, "SELECT level FROM notices")]
    assert levels and set(levels) == {"reminder"}
    reasons = {r["reason"] for r in await rows(pool, "SELECT reason FROM notices")}
    assert all(r.startswith("11月3日09:00起未确认") for r in reasons), reasons  # since hazmon knew
    notice = [m["body"] for m in await messages(sim) if m["template"] == "notice"]
    assert notice and all("自11月3日09:00起未确认" in b for b in notice), notice  # not 10月31日
    assert not any("问责建议单" in m["body"] for m in await messages(sim))

    clock.advance(timedelta(minutes=100))  # 1 h 46 m after the report: still no 问责建议单
    await svc.tick()
    levels = {r["level"] for r in await rows(pool, "SELECT level FROM notices")}
    assert "accountability" not in levels and "supervision" in levels
    clock.advance(timedelta(minutes=15))  # two hours after hazmon learned of it
    await svc.tick()
    assert "accountability" in {r["level"] for r in await rows(pool, "SELECT level FROM notices")}


async def test_a_device_clock_in_the_future_is_flagged_not_postponed(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    topics: Topics, kafka_bootstrap: str,
) -> None:
    """An event whose device time is a day ahead (the detectors never start one from a reading,
    another source may): counted from receipt, or its ladder would wait a day."""
    ahead = T0 + timedelta(days=1)
    e = Event(id=event_id("S1-GAS1", "gas.high", ahead), kind="gas.high", domain="gas", severity=Severity.RED,
              state=EventState.FIRING, device_id="S1-GAS1", site_id="S1", starts_at=ahead, detected_at=T0,
              received_at=T0, summary="设备上报 gas_high")
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    await produce(kafka_bootstrap, topics, [e])
    assert await consume(svc, 1) == 1
    a = (await rows(pool, "SELECT time_flag, next_escalation_at FROM alerts WHERE id=$1", e.id))[0]
    assert a["time_flag"] == "clock_future" and a["next_escalation_at"] == T0 + timedelta(minutes=5)
    audit = await rows(pool, "SELECT detail FROM alert_transitions WHERE alert_id=$1 AND action='fire'", e.id)
    assert '"time_flag": "clock_future"' in audit[0]["detail"]
    clock.advance(30)
    await svc.tick()
    body = next(m["body"] for m in await messages(sim) if m["phone"] == BUSINESS_S1)
    assert "设备时间异常" in body and "按接报时间计" in body and "11月3日09:00" in body, body
