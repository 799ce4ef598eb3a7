"""Every party reached, or loudly not (issue 13), on real services: PostgreSQL, the alerting service
(tests/alerting helpers), the gateway simulator's SMS and voice endpoints over HTTP.

* a landline-only township duty room gets a voice call (阿里云 SingleCallByTts in the simulator);
* without a voice notifier that row is 未送达 with the reason, and the duty operator is told by SMS;
* a recipient no channel reaches (a business contact with a malformed number) is a 未送达 row at
  once, and the duty operator is told;
* the console's alert page reads those rows (alerting.queries.alert_notifications).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from alerting_helpers import KEY_ID, ROUTES, SECRET, ev, messages, resolved

from alerting.clock import ManualClock
from alerting.config import load_config
from alerting.matrix import NO_CHANNEL, resolve
from alerting.notify.console import ConsoleNotifier
from alerting.notify.sms import SmsNotifier
from alerting.notify.sms_webhook import WebhookSms
from alerting.notify.voice import VoiceNotifier
from alerting.notify.voice_aliyun import AliyunVoice
from alerting.outbox import OutboxPolicy
from alerting.queries import alert_notifications
from alerting.service import AlertingOptions, AlertingService
from hazmon.contracts import RecipientRole
from hazmon.registry import load_registry
from sim.gateway import SmsSimulator

DUTY = "13900000000"  # routes.yaml duty_operator
LANDLINE = "0571-88880102"  # 西山镇 duty room made landline-only below
DIALLED = "057188880102"


async def q(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql, *args))


@pytest.fixture
async def landline_t2(pool: asyncpg.Pool) -> None:
    """西山镇 (T2) keeps only its landline: no duty mobile, no robot."""
    await q(pool, "UPDATE townships SET duty_phone=$1, duty_mobile=NULL, robot=NULL WHERE id='T2'", LANDLINE)


@pytest.fixture
async def service(pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock) -> AsyncIterator[Any]:
    made: list[tuple[AlertingService, list[Any]]] = []

    async def factory(*, voice: bool) -> AlertingService:
        sms = SmsNotifier(WebhookSms(f"{sim.url}/webhook/sms", SECRET, "区应急指挥中心"), timeout_s=2.0)
        notifiers: dict[str, Any] = {"sms": sms, "console": ConsoleNotifier()}
        if voice:
            notifiers["voice"] = VoiceNotifier(AliyunVoice(f"{sim.url}/voice/aliyun", KEY_ID, SECRET,
                                                           "057100000000"), timeout_s=2.0)
        policy = OutboxPolicy(base_delay=timedelta(seconds=10), max_delay=timedelta(minutes=5))
        svc = AlertingService(pool=pool, config=load_config(ROUTES), clock=clock, notifiers=notifiers,
                              options=AlertingOptions(ack_base_url="http://ack.test/a", outbox_policy=policy))
        await svc.start()
        made.append((svc, [n for n in notifiers.values() if hasattr(n, "aclose")]))
        return svc

    yield factory
    for svc, ns in made:
        await svc.stop()
        for n in ns:
            await n.aclose()


async def calls(sim: SmsSimulator, number: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as c:
        return list((await c.get(f"{sim.url}/voice/calls", params={"number": number})).json())


async def rows(pool: asyncpg.Pool, alert_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await alert_notifications(conn, alert_id)


async def fire_at_s3(svc: AlertingService, clock: ManualClock) -> str:
    """A red fire alarm at 夕阳红养老院 (S3, township T2): business, grid member, 西山镇, 应急,
    消防, 民政 and the covering leader; then the route's group_wait and a send pass."""
    alarm = ev("fire.alarm", "S3-FIRE", "S3")
    await svc.handle_events([alarm])
    clock.advance(timedelta(seconds=11))
    await svc.tick()
    for _ in range(3):  # what the first pass queued (the duty operator's notes) goes out too
        await asyncio.sleep(0.05)
        await svc.tick()
    return alarm.id


async def test_matrix_gives_a_landline_only_township_a_voice_channel(pool: asyncpg.Pool,
                                                                    landline_t2: None) -> None:
    async with pool.acquire() as conn:
        reg = await load_registry(conn)
    resp = resolve(reg, site_id="S3", domain="fire")
    (town,) = [r for r in resp.recipients if r.role is RecipientRole.TOWNSHIP]
    assert town.phone is None and [(c.channel, c.address) for c in town.channels] == [("voice", LANDLINE)]
    (biz,) = [r for r in resp.recipients if r.role is RecipientRole.BUSINESS]
    assert [(c.channel, c.address) for c in biz.channels] == [("sms", "13800003001")]


async def test_landline_only_township_is_called(pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock,
                                                landline_t2: None, service: Any) -> None:
    svc = await service(voice=True)
    alert_id = await fire_at_s3(svc, clock)
    placed = await calls(sim, DIALLED)
    assert len(placed) == 1 and placed[0]["provider"] == "aliyun"
    assert "夕阳红养老院" in placed[0]["script"]
    # a duty room supervises: it hears whom to press, not the business's own instructions
    assert "督促企业处置，企业联系人" in placed[0]["script"] and "组织人员疏散" not in placed[0]["script"]
    got = {(r["channel"], r["recipient_role"], r["recipient_phone"]): r["status"]
           for r in await rows(pool, alert_id)}
    assert got[("voice", "township", DIALLED)] == "sent"
    assert got[("sms", "business", "13800003001")] == "sent"
    assert not [k for k, s in got.items() if s == "undeliverable"]
    assert await messages(sim, DUTY) == []  # everyone reached: the duty operator is not bothered
    # the row says what the callee heard, not the SMS text with its link-token placeholder
    (voice_row,) = await q(pool, "SELECT body FROM notifications WHERE alert_id=$1 AND channel='voice'", alert_id)
    assert voice_row["body"] == placed[0]["script"] and "按1" in voice_row["body"] and "--" not in voice_row["body"]
    # the 恢复 text goes by SMS; a resolution is not a call (alerting/notify/voice.py)
    await svc.handle_events([resolved(ev("fire.alarm", "S3-FIRE", "S3"), clock.now())])
    clock.advance(timedelta(minutes=3))
    for _ in range(3):
        await svc.tick()
        await asyncio.sleep(0.05)
    after = [(r["channel"], r["recipient_role"]) for r in await rows(pool, alert_id)
             if r["template"] == "resolved"]
    assert ("sms", "business") in after and not [c for c, _r in after if c == "voice"]
    assert len(await calls(sim, DIALLED)) == 1


async def test_no_voice_notifier_is_undeliverable_and_the_duty_operator_is_told(
        pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, landline_t2: None, service: Any) -> None:
    svc = await service(voice=False)
    alert_id = await fire_at_s3(svc, clock)
    (town,) = [r for r in await rows(pool, alert_id) if r["recipient_role"] == "township"]
    assert (town["channel"], town["status"], town["recipient_phone"]) == ("voice", "undeliverable", DIALLED)
    assert town["last_error"] == "未配置语音通知渠道"
    attempts = await q(pool, "SELECT outcome FROM notification_attempts WHERE notification_id=$1", town["id"])
    assert [a["outcome"] for a in attempts] == ["undeliverable"]
    told = [m["body"] for m in await messages(sim, DUTY)]
    assert told == ["未送达：西山镇的西山值班（镇街值班）未收到夕阳红养老院的告警通知，"
                    "原因：未配置语音通知渠道。请值班员电话通知到人。"]
    note = [r for r in await rows(pool, alert_id)
            if r["recipient_role"] == "duty_operator" and r["channel"] == "sms"]
    assert [(r["template"], r["status"]) for r in note] == [("undelivered", "sent")]


async def test_a_recipient_no_channel_reaches_is_undeliverable_at_once(
        pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, service: Any) -> None:
    # 错号超市 (S5): its only contact's number is malformed (12345); its gas alarm still reaches
    # the grid member, 西山镇 and 住建, and the business is a 未送达 row, the duty operator told
    svc = await service(voice=False)
    alarm = ev("gas.high", "S5-GAS1", "S5")
    await svc.handle_events([alarm])
    clock.advance(timedelta(seconds=11))
    for _ in range(3):
        await svc.tick()
        await asyncio.sleep(0.05)
    got = await rows(pool, alarm.id)
    (biz,) = [r for r in got if r["recipient_role"] == "business"]
    assert (biz["status"], biz["last_error"]) == ("undeliverable", NO_CHANNEL)
    assert biz["recipient_name"] == "周老板"
    assert biz["attempts"] == 0  # never handed to a provider
    assert {r["recipient_role"] for r in got if r["status"] == "sent" and r["channel"] == "sms"} >= {
        "grid_member", "township", "department"}
    told = [m["body"] for m in await messages(sim, DUTY)]
    assert len(told) == 1 and told[0].startswith("未送达：错号超市的周老板（企业）未收到错号超市的告警通知")
    assert NO_CHANNEL in told[0]


async def test_a_unit_robot_is_one_more_channel_and_undeliverable_without_its_notifier(
        pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, service: Any) -> None:
    # 区市场监管局 (sj): its duty mobile and a 企业微信 robot; no robot notifier in this service
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=test-sj"
    await q(pool, "UPDATE departments SET robot='wecom', robot_url=$1 WHERE id='sj'", url)
    svc = await service(voice=False)
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    for _ in range(3):
        await svc.tick()
        await asyncio.sleep(0.05)
    sj = [r for r in await rows(pool, trapped.id) if r["recipient_unit"] == "区市场监管局"]
    assert sorted((r["channel"], r["status"]) for r in sj) == [("sms", "sent"), ("wecom", "undeliverable")]
    (robot,) = [r for r in sj if r["channel"] == "wecom"]
    assert robot["last_error"] == "未配置企业微信群机器人渠道"
    (params,) = await q(pool, "SELECT params->>'_url' AS url FROM notifications WHERE id=$1", robot["id"])
    assert params["url"] == url
    (body,) = await q(pool, "SELECT body FROM notifications WHERE id=$1", robot["id"])
    assert body["body"].startswith("### ") and "- 场所：安居小区" in body["body"], body["body"]  # the robot's markdown
    told = [m["body"] for m in await messages(sim, DUTY)]
    assert told == ["未送达：区市场监管局的市监值班（行业监管部门）未收到安居小区的告警通知，"
                    "原因：未配置企业微信群机器人渠道。请值班员电话通知到人。"]
