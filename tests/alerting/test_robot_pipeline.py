"""A unit with a group robot and a duty phone is reached over both (issue 13: two channels),
through the whole alerting service — event → flush → outbox → the robot and the SMS simulator
over HTTP. The 钉钉 加签 secret is the registry's, looked up by the robot's token as build()
wires it (alerting/notify/robot.py RegistrySecrets): the outbox row carries no secret."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest
from alerting_helpers import ServiceFactory, ev, messages
from test_robot import DING_SECRET, DING_TOKEN, robot_api, robots, tick  # noqa: F401 (fixtures)

from alerting.clock import ManualClock
from alerting.notify.robot import RegistrySecrets, RobotNotifier
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_unit_with_a_robot_gets_robot_and_duty_phone(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    robots: dict[str, RobotNotifier],  # noqa: F811
) -> None:
    async with pool.acquire() as c:
        await c.execute("UPDATE departments SET robot='dingtalk', robot_url=$1, robot_secret=$2 WHERE id='zj'",
                        f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}", DING_SECRET)
        await c.execute("UPDATE townships SET robot='wecom', robot_url="
                        "'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=dongcheng-duty' WHERE id='T1'")
    svc = await make_service()
    svc.outbox.notifiers.update(robots)
    secrets = RegistrySecrets(lambda: svc.registry)
    for robot in robots.values():
        robot.secret_for = secrets
    await svc.handle_events([ev("gas.high", "S1-GAS1", "S1")])
    await svc.tick()
    clock.advance(timedelta(minutes=2))  # past the gas route's group_wait
    await svc.tick()
    async with pool.acquire() as c:
        rows = await c.fetch("SELECT channel, recipient_role, recipient_unit, status, params::text AS params"
                             " FROM notifications WHERE recipient_role IN ('department','township')")
    by = {(r["recipient_role"], r["channel"]): r for r in rows}
    assert {("department", "sms"), ("department", "dingtalk"), ("township", "sms"), ("township", "wecom")} <= set(by)
    assert all(by[k]["status"] == "sent" for k in by)
    assert DING_SECRET not in by[("department", "dingtalk")]["params"]  # the secret stayed in the registry
    got = {m["provider"]: m for m in await robot_api(sim, "GET", "/messages")}
    assert got["dingtalk"]["robot"] == DING_TOKEN and got["wecom"]["robot"] == "dongcheng-duty"
    for m in got.values():
        assert "红色报警" in m["content"] and "老王饭店" in m["content"] and "到场核实" in m["content"]
    assert await messages(sim, "13800000301") and await messages(sim, "13800000101")  # and the duty phones
