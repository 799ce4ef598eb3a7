"""Group robots (企业微信 群机器人, 钉钉 自定义机器人) through the alerting service's outbox and the
gateway simulator over HTTP (/robots, sim/gateway_robots.py): delivery with the 钉钉 加签
signature checked by the simulator, a permanent refusal recorded and not retried, flow control
retried, the per-robot limit of 20 a minute held before sending.

The robot rows are queued with :func:`alerting.outbox.enqueue` on a real alert, as the flush
queues them once the matrix resolves a unit's robot (registry ``robot``/``robot_url``/
``robot_secret``); the rows' address and secret are the registry's.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from alerting_helpers import ServiceFactory, ev

from alerting.clock import ManualClock
from alerting.notify.robot import RegistrySecrets, RobotNotifier
from alerting.notify.robot_dingtalk import DingtalkRobot
from alerting.notify.robot_wecom import WecomRobot
from alerting.outbox import NewNotification, enqueue, notification_id
from alerting.service import AlertingService
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole
from hazmon.registry import Department, Registry
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN = "b7c3e1f0d2a94c5e8f6a1b2c3d4e5f60"
DING_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
PARAMS = {"site": "老王饭店", "device": "厨房燃气探测器（后厨灶台旁）", "what": "发生燃气泄漏报警", "sev": "红",
          "when": "11月3日09:00", "reading": "浓度 23%LEL", "business": "老王饭店", "contact": "老王 13800001001"}


class _Tick:
    """A monotonic clock for the per-robot limiter that the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def q(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(sql, *args)


async def robot_api(sim: SmsSimulator, method: str, path: str, **json: Any) -> Any:
    async with httpx.AsyncClient() as c:
        r = await c.request(method, f"{sim.url}/robots{path}", json=json or None)
        r.raise_for_status()
        return r.json()


@pytest.fixture
def tick() -> _Tick:
    return _Tick()


@pytest.fixture
async def robots(sim: SmsSimulator, tick: _Tick) -> AsyncIterator[dict[str, RobotNotifier]]:
    made: dict[str, RobotNotifier] = {
        "wecom": WecomRobot(f"{sim.url}/robots/wecom/cgi-bin/webhook/send", console_url="http://console.test",
                            timeout_s=2.0, clock=tick),
        "dingtalk": DingtalkRobot(f"{sim.url}/robots/dingtalk/robot/send", console_url="http://console.test",
                                  timeout_s=2.0, clock=tick),
    }
    await robot_api(sim, "POST", "/admin/robots", dingtalk={DING_TOKEN: {"secret": DING_SECRET,
                                                                         "keywords": ["报警"]}})
    yield made
    for n in made.values():
        await n.aclose()


async def service(make_service: ServiceFactory, robots: dict[str, RobotNotifier]) -> tuple[AlertingService, str]:
    """The alerting service with the robot channels, and a real open alert (gas at 老王饭店)."""
    svc = await make_service()
    svc.outbox.notifiers.update(robots)
    e = ev("gas.high", "S1-GAS1", "S1")
    await svc.handle_events([e])
    return svc, e.id


async def queue_robot(svc: AlertingService, alert_id: str, channel: str, address: str, secret: str = "",
                      unit: str = "区住建局", n: int = 1, step: int = 0) -> list[str]:
    """Rows to a unit's robot, addressed and signed with what the registry holds."""
    now = svc.clock.now()
    items = []
    for i in range(n):
        who = Recipient(role=RecipientRole.DEPARTMENT, name=f"{unit}值班群", unit=unit, rule="R-gas")
        # NotificationRequest's channel list is the contracts' (wecom/dingtalk come with the
        # recipient→channel resolution); built unvalidated here so this test does not wait on it
        req = NotificationRequest.model_construct(
            id=notification_id(alert_id, who, step + i, f"{channel}:alarm"), alert_id=alert_id, channel=channel,
            recipient=who, notice_level=None, template="alarm", body="（SMS 正文，机器人不用）", created_at=now)
        params = dict(PARAMS) | ({"_secret": secret} if secret else {})
        items.append(NewNotification(req, params, "g-test", None, None, 1, address))
    async with svc.pool.acquire() as conn:
        return await enqueue(conn, items, now=now)


async def rows(pool: asyncpg.Pool, channel: str) -> list[asyncpg.Record]:
    return await q(pool, "SELECT id, status, attempts, last_error, provider, next_attempt_at FROM notifications"
                         " WHERE channel=$1 ORDER BY id", channel)


async def test_wecom_and_dingtalk_deliver_markdown_signed(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, robots: dict[str, RobotNotifier],
) -> None:
    svc, alert_id = await service(make_service, robots)
    await queue_robot(svc, alert_id, "wecom", f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}",
                      unit="东城街道")
    await queue_robot(svc, alert_id, "dingtalk", f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}",
                      DING_SECRET)
    await svc.tick()
    got = await robot_api(sim, "GET", "/messages")
    by = {m["provider"]: m for m in got}
    assert set(by) == {"wecom", "dingtalk"}
    assert by["wecom"]["robot"] == WECOM_KEY and by["dingtalk"]["robot"] == DING_TOKEN
    for m in by.values():
        assert m["msgtype"] == "markdown"
        text = m["content"]
        assert "红色报警" in text and "老王饭店" in text and "厨房燃气探测器（后厨灶台旁）" in text
        assert "到场核实" in text and "督促" in text and "老王 13800001001" in text and "23%LEL" in text
        assert f"http://console.test/#/alert/{alert_id}" in text
        assert "S1-GAS1" not in text  # no raw ids where people read
    assert by["dingtalk"]["title"].startswith("红色报警")
    assert '<font color="warning">' in by["wecom"]["content"]  # 企业微信's colour for a red title
    for ch in ("wecom", "dingtalk"):
        [r] = await rows(pool, ch)
        assert r["status"] == "sent" and r["provider"] == ch and r["attempts"] == 1


async def test_permanent_refusals_are_recorded_and_not_retried(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    robots: dict[str, RobotNotifier],
) -> None:
    svc, alert_id = await service(make_service, robots)
    await robot_api(sim, "POST", "/admin/mode", revoke=["removed-key"])
    await queue_robot(svc, alert_id, "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=removed-key")
    await queue_robot(svc, alert_id, "dingtalk", f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}",
                      "SECwrong-secret")
    await queue_robot(svc, alert_id, "dingtalk", "https://oapi.dingtalk.com/robot/send", DING_SECRET, step=5)
    await svc.tick()
    [wecom] = await rows(pool, "wecom")
    assert wecom["status"] == "failed" and "wecom: 93000: invalid webhook url" in wecom["last_error"]
    ding = await rows(pool, "dingtalk")
    errors = sorted(r["last_error"] for r in ding)
    assert all(r["status"] == "failed" for r in ding)
    assert any("dingtalk: 310000: sign not match" in e for e in errors)  # the simulator checked the 加签
    assert any("机器人地址缺少 access_token" in e for e in errors)  # never sent anywhere
    sent_before = len(await robot_api(sim, "GET", "/requests"))
    assert sent_before == 2
    clock.advance(timedelta(hours=1))
    await svc.tick()
    assert len(await robot_api(sim, "GET", "/requests")) == sent_before  # not retried
    att = await q(pool, "SELECT a.outcome, a.error FROM notification_attempts a JOIN notifications n"
                        " ON n.id=a.notification_id WHERE n.channel IN ('wecom','dingtalk')")
    assert len(att) == 3 and {a["outcome"] for a in att} == {"failed"}
    assert await robot_api(sim, "GET", "/messages") == []


async def test_flow_control_is_retried_after_the_providers_wait(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    robots: dict[str, RobotNotifier],
) -> None:
    svc, alert_id = await service(make_service, robots)
    await robot_api(sim, "POST", "/admin/mode", fail_next=1, errcode=45009, errmsg="api freq out of limit")
    await queue_robot(svc, alert_id, "wecom", WECOM_KEY)  # a bare key is an address too
    t0 = clock.now()
    await svc.tick()
    [r] = await rows(pool, "wecom")
    assert r["status"] == "pending" and r["attempts"] == 1 and "45009" in r["last_error"]
    assert r["next_attempt_at"] >= t0 + timedelta(seconds=60)  # the robot's minute, not the 10 s backoff
    clock.advance(timedelta(seconds=30))
    await svc.tick()
    assert await robot_api(sim, "GET", "/messages") == []  # not before its time
    clock.advance(timedelta(seconds=45))
    await svc.tick()
    [r] = await rows(pool, "wecom")
    assert r["status"] == "sent" and r["attempts"] == 2
    assert len(await robot_api(sim, "GET", "/messages")) == 1


async def test_dingtalk_rate_limit_code_is_retryable(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    robots: dict[str, RobotNotifier],
) -> None:
    svc, alert_id = await service(make_service, robots)
    await robot_api(sim, "POST", "/admin/mode", fail_next=1, errcode=130101,
                    errmsg="send too fast, exceed 20 times per minute")
    await queue_robot(svc, alert_id, "dingtalk", DING_TOKEN, DING_SECRET)
    await svc.tick()
    [r] = await rows(pool, "dingtalk")
    assert r["status"] == "pending" and "130101" in r["last_error"]
    clock.advance(timedelta(minutes=11))  # 钉钉 holds an over-limit robot back for 10 minutes
    await svc.tick()
    [r] = await rows(pool, "dingtalk")
    assert r["status"] == "sent"


async def test_twenty_a_minute_per_robot_held_before_sending(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    robots: dict[str, RobotNotifier], tick: _Tick,
) -> None:
    svc, alert_id = await service(make_service, robots)
    await queue_robot(svc, alert_id, "wecom", WECOM_KEY, n=22)
    await queue_robot(svc, alert_id, "wecom", "another-robot-key", unit="西山镇")  # its own minute
    await svc.tick()
    got = await rows(pool, "wecom")
    assert sum(r["status"] == "sent" for r in got) == 21
    held = [r for r in got if r["status"] == "pending"]
    assert len(held) == 2 and all("每分钟限发 20 条" in r["last_error"] for r in held)
    reqs = await robot_api(sim, "GET", "/requests")
    assert len(reqs) == 21 and all(x["errcode"] == 0 for x in reqs)  # none sent only to be refused
    tick.t += 61  # a minute later, here and at the provider (whose window is wall-clock time)
    await robot_api(sim, "POST", "/admin/reset")
    clock.advance(timedelta(minutes=2))
    await svc.tick()
    assert {r["status"] for r in await rows(pool, "wecom")} == {"sent"}
    assert len(await robot_api(sim, "GET", "/messages")) == 2


async def test_a_stale_timestamp_is_refused_like_a_bad_signature(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, robots: dict[str, RobotNotifier],
) -> None:
    svc, alert_id = await service(make_service, robots)
    stale = int(time.time() * 1000) - 2 * 3600 * 1000  # the provider's window is an hour of wall time
    robots["dingtalk"]._wall_ms = lambda: stale  # type: ignore[attr-defined]
    await queue_robot(svc, alert_id, "dingtalk", DING_TOKEN, DING_SECRET)
    await svc.tick()
    [r] = await rows(pool, "dingtalk")
    assert r["status"] == "failed" and "310000: timestamp invalid" in r["last_error"]


async def test_build_registers_both_robot_channels_from_settings(pool: asyncpg.Pool, pg_dsn: str) -> None:
    """build(settings): the wecom and dingtalk channels at the configured endpoints, their 加签
    secrets looked up in the service's registry (the 钉钉 robot of 区住建局 here)."""
    from alerting.service import build
    from hazmon.settings import PostgresSettings, RobotsSettings, Settings

    async with pool.acquire() as c:
        await c.execute("UPDATE departments SET robot='dingtalk', robot_url=$1, robot_secret=$2 WHERE id='zj'",
                        f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}", DING_SECRET)
    s = Settings(postgres=PostgresSettings(dsn=pg_dsn), robots=RobotsSettings(wecom_url="http://robots.test/w"))
    svc = await build(s)
    try:
        await svc.reload()
        got = svc.outbox.notifiers
        assert isinstance(got["wecom"], WecomRobot) and got["wecom"].url == "http://robots.test/w"
        ding = got["dingtalk"]
        assert isinstance(ding, DingtalkRobot) and ding.url.endswith("/robots/dingtalk/robot/send")
        assert ding.secret_for is not None and ding.secret_for(DING_TOKEN) == DING_SECRET
        assert ding.secret_for("unknown") == ""
        assert ding.console_url == "http://127.0.0.1:8080"  # sms.ack_base_url without /ack
    finally:
        await svc.aclose()


async def test_empty_endpoints_are_the_providers_or_the_simulators() -> None:
    from alerting.notify.robot import ENDPOINTS, default_url

    assert default_url("dingtalk", "https://dysmsapi.aliyuncs.com/") == ENDPOINTS["dingtalk"]
    assert default_url("wecom", "") == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    assert default_url("wecom", "http://127.0.0.1:40123/webhook/sms") == (
        "http://127.0.0.1:40123/robots/wecom/cgi-bin/webhook/send")


async def test_the_secret_comes_from_the_registry_not_the_outbox_row(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, robots: dict[str, RobotNotifier],
) -> None:
    """The outbox row holds the robot's address only; the 加签 secret is the registry's (found by
    the token), so no secret sits in ``notifications``."""
    svc, alert_id = await service(make_service, robots)

    url = f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}"
    zj = Department(id="zj", name="区住建局", duty_name="住建值班", duty_phone="0571-86030001", robot="dingtalk",
                    robot_url=url, robot_secret=DING_SECRET)
    robots["dingtalk"].secret_for = RegistrySecrets(lambda: Registry(departments={"zj": zj}))
    await queue_robot(svc, alert_id, "dingtalk", url)
    await svc.tick()
    [r] = await rows(pool, "dingtalk")
    assert r["status"] == "sent"
    stored = await q(pool, "SELECT params::text AS p FROM notifications WHERE channel='dingtalk'")
    assert DING_SECRET not in stored[0]["p"]


async def test_the_text_reads_a_row_carrying_the_sms_templates_parameters() -> None:
    """A robot row may carry the SMS template's keys (unit, loc, level, contact, phone)."""
    from alerting.notify.base import OutgoingMessage
    from alerting.notify.robot import robot_markdown

    msg = OutgoingMessage(id="n-1", channel="dingtalk", body="", template="alarm", alert_id="a-1", params={
        "unit": "老王饭店", "loc": "后厨灶台旁", "what": "可燃气体浓度超高限报警", "level": "橙色报警",
        "when": "11月3日09:00", "contact": "老王", "phone": "13800001001", "_secret": "SECx", "code": "236949"})
    title, text, colour = robot_markdown(msg, "https://c.test")
    assert title == "橙色报警：老王饭店可燃气体浓度超高限报警" and colour == "橙色"
    assert "- 位置：后厨灶台旁" in text and "联系人 老王 13800001001" in text
    assert "SECx" not in text and "236949" not in text  # neither the secret nor the SMS reply code


async def test_the_simulator_knows_the_sample_districts_dingtalk_robots(
    sim: SmsSimulator, robots: dict[str, RobotNotifier],
) -> None:
    """The demo's 钉钉 robot (data/sample departments.csv) is verified with its secret; a resolved
    text carries the keyword "报警" too (a robot set up with keywords refuses a text without)."""
    from alerting.notify.base import OutgoingMessage
    from sim.gateway_robots import sample_robots

    [(token, robot)] = sample_robots().items()
    msg = OutgoingMessage(id="n-r", channel="dingtalk", body="", template="resolved", alert_id="a-1",
                          webhook_url=f"https://oapi.dingtalk.com/robot/send?access_token={token}",
                          params={"site": "老王饭店", "what": "可燃气体浓度恢复正常", "when": "11月3日09:20",
                                  "_secret": robot["secret"]})
    got = await robots["dingtalk"].send(msg)
    assert got.provider == "dingtalk"
    [m] = await robot_api(sim, "GET", "/messages")
    assert m["robot"] == token and m["title"].startswith("报警已恢复")
