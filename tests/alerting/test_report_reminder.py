"""维保/测试 报备 on real services (PostgreSQL, the alerting service, the SMS gateway simulator over
HTTP): what a 测试 报备 holds and what it never holds (a real 火警), and the reminder SMS at the end
of the window listing the alarms it held, read from the simulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from alerting_helpers import T0, ServiceFactory, ev, messages

from alerting.clock import ManualClock
from alerting.errors import InvalidAction
from alerting.report import ReportLimits, create_report, report_matchers
from hazmon.contracts import Severity

BOSS2 = "13800002001"  # 幸福商场's contact: files the 报备 and is reminded


async def _alert(pool: asyncpg.Pool, alert_id: str) -> asyncpg.Record:
    async with pool.acquire() as c:
        row = await c.fetchrow("SELECT suppressed_by, notified_at FROM alerts WHERE id=$1", alert_id)
    assert row is not None
    return row


async def test_a_test_report_holds_the_test_alarm_never_a_real_fire_and_reminds_with_what_it_held(
    make_service: ServiceFactory, pool: asyncpg.Pool, sim: Any, clock: ManualClock
) -> None:
    svc = await make_service()
    async with pool.acquire() as c:
        rep = await create_report(
            c,
            actor="business:biz-s2",
            now=T0,
            site_id="S2",
            device_ids=["P2-D01", "P2-D02"],
            kind="测试",
            ends_at=T0 + timedelta(hours=2),
            reason="消防联动测试",
            self_service=True,
            notify_name="幸福商场联系人",
            notify_phone=BOSS2,
        )
    test_fire = ev("fire.test", "P2-D01", "S2", severity=Severity.BLUE)
    real_fire = ev("fire.alarm", "P2-D02", "S2", at=T0 + timedelta(minutes=1))
    await svc.handle_events([test_fire])
    clock.advance(timedelta(minutes=1))
    await svc.handle_events([real_fire])
    clock.advance(timedelta(seconds=15))
    await svc.tick()
    await svc.tick()
    assert (await _alert(pool, test_fire.id))["suppressed_by"] == f"silence:{rep.id}"
    fire = await _alert(pool, real_fire.id)
    assert fire["suppressed_by"] == "" and fire["notified_at"] is not None  # a real 火警 reaches people
    before = [m["body"] for m in await messages(sim, BOSS2)]
    assert any("火" in b for b in before), before
    assert not any("报备" in b for b in before)  # the window is not over yet

    clock.set(T0 + timedelta(hours=2, seconds=1))
    await svc.tick()
    await svc.tick()  # once per 报备
    ended = [m["body"] for m in await messages(sim, BOSS2) if "报备" in m["body"]]
    assert ended == [
        "幸福商场的测试报备（09:00至11:00）已结束，期间暂缓通知的报警：消防系统测试报警（仍在报警）。"
        "请核实现场，详情请登录监测平台查看，中心值班电话0571-88001110。"
    ], ended


async def test_an_ended_report_with_nothing_held_says_so(
    make_service: ServiceFactory, pool: asyncpg.Pool, sim: Any, clock: ManualClock
) -> None:
    svc = await make_service()
    async with pool.acquire() as c:
        await create_report(
            c,
            actor="maintainer:maint-m1",
            now=T0,
            site_id="S6",
            device_ids=["E6"],
            kind="维保",
            ends_at=T0 + timedelta(hours=1),
            reason="电梯半月维保",
            self_service=True,
            notify_name="张工",
            notify_phone="13900003333",
        )
    clock.set(T0 + timedelta(hours=1))
    await svc.tick()
    got = [m["body"] for m in await messages(sim, "13900003333")]
    assert got == [
        "安居小区的维保报备（09:00至10:00）已结束，期间没有报警被暂缓通知，设备已恢复正常监测。"
        "中心值班电话0571-88001110。"
    ], got


async def test_self_service_reports_are_bounded_and_never_mute_a_fire_alarm(pool: asyncpg.Pool) -> None:
    assert {"name": "kind", "op": "!=", "value": "fire.alarm"} in report_matchers(
        "S1", ["G1"], "维保", self_service=True
    )
    assert {"name": "kind", "op": "!=", "value": "fire.alarm"} in report_matchers(
        "S1", [], "测试", self_service=False
    )
    assert all(m["name"] != "kind" for m in report_matchers("S1", [], "维保", self_service=False))
    async with pool.acquire() as c:
        with pytest.raises(InvalidAction, match="报备时长不能超过8小时"):
            await create_report(
                c,
                actor="business:b",
                now=T0,
                site_id="S1",
                device_ids=["S1-GAS1"],
                kind="维保",
                ends_at=T0 + timedelta(hours=8, minutes=1),
                reason="装修",
                self_service=True,
            )
        with pytest.raises(InvalidAction, match="报备时长不能超过2小时"):
            await create_report(
                c,
                actor="business:b",
                now=T0,
                site_id="S1",
                device_ids=["S1-GAS1"],
                kind="维保",
                ends_at=T0 + timedelta(hours=3),
                reason="装修",
                self_service=True,
                limits=ReportLimits(self_service_max=timedelta(hours=2)),
            )
        with pytest.raises(InvalidAction, match="报备类型只能是维保或测试"):
            await create_report(
                c,
                actor="centre:c",
                now=T0,
                site_id="S1",
                device_ids=[],
                kind="装修",
                ends_at=T0 + timedelta(hours=1),
                reason="装修",
            )
        # the centre may file longer
        ok = await create_report(
            c,
            actor="centre:c",
            now=T0,
            site_id="S1",
            device_ids=[],
            kind="维保",
            ends_at=T0 + timedelta(days=2),
            reason="管道改造",
        )
        assert ok.reason == "维保报备：管道改造"
