"""Voice calls (语音通知) on real services: the alerting service over PostgreSQL, the gateway
simulator's 阿里云 SingleCallByTts / 腾讯云 SendTtsVoice over HTTP (each request's signature
verified there with the simulator's keys), and call receipts into the inbound server.

Paths: a landline duty room called (阿里云); "按1确认" acknowledging as that recipient; a red alarm
unacknowledged ``voice_after`` → its recipients called; no answer → redial → given up → the duty
operator called; a provider error → recorded, retried; 腾讯云 refusing a landline for good →
recorded, escalated; the call script within each provider's caps, without links."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from alerting_helpers import KEY_ID, SECRET, ev, raw_routes, set_mode

from alerting.clock import ManualClock
from alerting.config import AlertingConfig, parse_config
from alerting.inbound import InboundConfig, build_app
from alerting.notify import sms_aliyun, sms_tencent
from alerting.notify.base import OutgoingMessage
from alerting.notify.console import ConsoleNotifier
from alerting.notify.sms import SmsNotifier
from alerting.notify.sms_webhook import WebhookSms
from alerting.notify.voice import VOICE_TEMPLATES, VoiceNotifier, render_script, tts_params
from alerting.notify.voice_aliyun import AliyunVoice
from alerting.notify.voice_tencent import TencentVoice
from alerting.outbox import NewNotification, OutboxPolicy, enqueue, notification_id
from alerting.service import AlertingOptions, AlertingService
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole
from sim.gateway import SmsSimulator

LANDLINE = "057188880101"  # 东城街道 duty room: a landline, reached only by voice
DUTY = "13900000000"  # routes.yaml duty_operator


async def q(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql, *args))


async def until(pred: Any, tries: int = 100) -> bool:
    for _ in range(tries):
        if await pred():
            return True
        await asyncio.sleep(0.05)
    return False


def voice_config(voice_after: str | None = None) -> AlertingConfig:
    raw = raw_routes()
    if voice_after:
        for r in raw["route"]["routes"]:
            if r.get("name") == "elevator-trapped":
                r["voice_after"] = voice_after
    return parse_config(raw, file="test-routes.yaml")


@pytest.fixture
async def inbound(pool: asyncpg.Pool, clock: ManualClock) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    app = build_app(pool, clock, config=InboundConfig(secret=SECRET, voice_max_attempts=2,
                                                      voice_retry_delay_s=60))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await app.aclose()


@pytest.fixture
async def voice_service(pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, inbound: str
                        ) -> AsyncIterator[Any]:
    made: list[tuple[AlertingService, list[Any]]] = []

    async def factory(provider: str = "aliyun", config: AlertingConfig | None = None) -> AlertingService:
        sms = SmsNotifier(WebhookSms(f"{sim.url}/webhook/sms", SECRET, "区应急指挥中心"), timeout_s=2.0)
        if provider == "tencent":
            prov: Any = TencentVoice(f"{sim.url}/voice/tencent", KEY_ID, SECRET, "1400000001")
        else:
            prov = AliyunVoice(f"{sim.url}/voice/aliyun", KEY_ID, SECRET, "057100000000")
        voice = VoiceNotifier(prov, timeout_s=2.0)
        svc = AlertingService(
            pool=pool, config=config or voice_config(), clock=clock,
            notifiers={"sms": sms, "console": ConsoleNotifier(), "voice": voice},
            options=AlertingOptions(ack_base_url="http://ack.test/a",
                                    outbox_policy=OutboxPolicy(base_delay=timedelta(seconds=10),
                                                               max_delay=timedelta(minutes=5))))
        await svc.start()
        await set_mode(sim, callback_url=inbound, receipt_delay_s=0.01)
        made.append((svc, [sms, voice]))
        return svc

    yield factory
    for svc, ns in made:
        await svc.stop()
        for n in ns:
            await n.aclose()


async def script(sim: SmsSimulator, number: str, *outcomes: str) -> None:
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{sim.url}/voice/admin/script", json={"number": number, "outcomes": list(outcomes)})
        assert r.status_code == 200, r.text


async def calls(sim: SmsSimulator, number: str | None = None) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{sim.url}/voice/calls", params={"number": number} if number else None)
        return list(r.json())


async def queue_call(pool: asyncpg.Pool, alert_id: str, phone: str, clock: ManualClock) -> str:
    """A voice row for the township duty room, as the matrix makes it for a landline contact
    (engineer I's channel resolution; built directly here), with the alert's SMS parameters."""
    rows = await q(pool, "SELECT params FROM notifications WHERE alert_id=$1 AND channel='sms' LIMIT 1",
                   alert_id)
    params = {k: str(v) for k, v in json.loads(rows[0]["params"]).items()}
    who = Recipient(role=RecipientRole.TOWNSHIP, name="东城值班", unit="东城街道", phone=phone,
                    rule="township:T1:duty")
    req = NotificationRequest(id=notification_id(alert_id, who, 0, "alarm"), alert_id=alert_id,
                              channel="voice", recipient=who, template="alarm", body="(语音)",
                              created_at=clock.now())
    async with pool.acquire() as conn:
        (nid,) = await enqueue(conn, [NewNotification(req, params, priority=1)], now=clock.now())
    return nid


async def row(pool: asyncpg.Pool, nid: str) -> asyncpg.Record:
    return (await q(pool, "SELECT * FROM notifications WHERE id=$1", nid))[0]


async def status_is(pool: asyncpg.Pool, nid: str, *status: str) -> bool:
    return (await row(pool, nid))["status"] in status


async def test_an_unanswered_call_of_an_alarm_acknowledged_meanwhile_is_not_redialled(
        pool: asyncpg.Pool, clock: ManualClock, voice_service: Any) -> None:
    """The receipt of a call that rang out after someone else acknowledged the alarm: no redial,
    the row ``suppressed`` with why, the attempt on the timeline; a second receipt of it changes
    nothing."""
    from alerting.voice_inbound import CallReceipt, VoicePolicy, apply_call_receipts

    svc = await voice_service("aliyun")
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    nid = await queue_call(pool, trapped.id, LANDLINE, clock)
    async with pool.acquire() as conn:  # the call placed (provider's call id), then acknowledged by SMS
        await conn.execute("UPDATE notifications SET status='sent', attempts=1, provider='voice-aliyun',"
                           " provider_message_id='CALL-ACKED' WHERE id=$1", nid)
        await conn.execute("UPDATE alerts SET acked_at=$2, acked_by='sms_reply:x' WHERE id=$1", trapped.id,
                           clock.now())
        receipt = CallReceipt("aliyun", "CALL-ACKED", "no_answer", "200003")
        did = await apply_call_receipts(conn, [receipt, receipt], now=clock.now(), policy=VoicePolicy(3, 60))
    assert did == ["stopped", "stale"]
    r = await row(pool, nid)
    assert r["status"] == "suppressed" and r["last_error"] == "未接听（200003）；报警已确认或已办结，不再重拨"
    attempts = await q(pool, "SELECT outcome, error, provider_message_id FROM notification_attempts"
                             " WHERE notification_id=$1 ORDER BY id", nid)
    assert [(a["outcome"], a["error"], a["provider_message_id"]) for a in attempts] == [
        ("undelivered", "未接听（200003），报警已确认，不再重拨", "CALL-ACKED")]


# --- the call script and the request shapes ------------------------------------------------------


def test_script_is_short_spoken_chinese_without_links_within_caps() -> None:
    tpl = VOICE_TEMPLATES["voice_alarm"]
    params = {"unit": "云栖公寓" * 30, "loc": "2号电梯（注册代码31103301…）", "what": "电梯困人",
              "level": "红色报警", "todo": "立即到场救援 http://127.0.0.1:8080/ack/abc", "code": "123456",
              "link": "，或点 http://x/ack/----"}
    ali = tts_params(tpl, params, "aliyun")
    assert sum(len(v) for v in ali.values()) < 250 and set(ali) == set(tpl.params)
    assert not any("http" in v or "【" in v for v in ali.values())
    spoken = render_script(tpl, tts_params(tpl, params, "tencent"))
    assert len(spoken) <= 350 and spoken.endswith("确认收到请按1。") and "http" not in spoken
    assert "123456" not in spoken  # the SMS 回复码 is not read out: pressing 1 is the acknowledgement


def test_every_alarm_template_family_is_a_call_and_nothing_else_is() -> None:
    from alerting.errors import ProviderError
    from alerting.notify.voice import voice_template

    for name in ("alarm", "alarm.sup_l", "alarm.biz.lift_trapped.reg_l", "repeat.sup", "notice_l",
                 "alarm_repeat", "voice_unanswered"):
        assert voice_template(name).text.endswith("确认收到请按1。"), name
    for name in ("resolved.biz", "broadcast", "outcome.false"):
        with pytest.raises(ProviderError, match="不是报警") as err:
            voice_template(name)
        assert not err.value.retryable


def test_requests_are_signed_as_the_providers_verify_them() -> None:
    msg = OutgoingMessage(id="n-" + "a" * 30, channel="voice", body="", template="alarm", phone=LANDLINE,
                          params={"unit": "东城街道", "loc": "1号电梯", "what": "电梯困人",
                                  "level": "红色报警"})
    params = AliyunVoice("http://x/voice/aliyun", KEY_ID, SECRET, "057100000000").build(msg)
    assert params["Action"] == "SingleCallByTts" and params["CalledNumber"] == LANDLINE
    assert len(params["OutId"]) <= 15 and sms_aliyun.verify_params(params, SECRET)
    assert not sms_aliyun.verify_params({**params, "CalledNumber": "13800000000"}, SECRET)
    mobile = OutgoingMessage(id=msg.id, channel="voice", body="", template="alarm", phone="13800000101",
                             params=msg.params)
    body, headers = TencentVoice("http://vms.test/voice/tencent", KEY_ID, SECRET, "1400000001").build(mobile)
    assert headers["x-tc-action"] == "SendTtsVoice" and "/vms/tc3_request" in headers["authorization"]
    assert sms_tencent.verify_request(headers, body, {KEY_ID: SECRET}) == ""
    assert sms_tencent.verify_request(headers, body.replace(b"13800000101", b"13800000102"),
                                      {KEY_ID: SECRET}) != ""
    assert json.loads(body)["CalledNumber"] == "+8613800000101"


# --- on real services ----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_key1_acknowledges_as_the_recipient(provider: str, pool: asyncpg.Pool, sim: SmsSimulator,
                                                  clock: ManualClock, voice_service: Any) -> None:
    svc = await voice_service(provider)
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    number = LANDLINE if provider == "aliyun" else "13800000111"
    await script(sim, number, "key1")
    nid = await queue_call(pool, trapped.id, number, clock)
    await svc.tick()
    placed = await calls(sim, number)
    assert len(placed) == 1 and placed[0]["provider"] == provider
    said = placed[0]["script"]  # where, what, how severe, what to do, how to acknowledge
    assert said.startswith("这里是区应急指挥中心。安居小区1号电梯") and "发生电梯困人，红色报警。请" in said
    assert placed[0]["script"].endswith("确认收到请按1。")

    async def acked() -> bool:
        return bool(await q(pool, "SELECT 1 FROM alerts WHERE id=$1 AND acked_at IS NOT NULL", trapped.id))

    assert await until(acked)
    assert await until(lambda: status_is(pool, nid, "delivered"))
    (a,) = await q(pool, "SELECT acked_by FROM alerts WHERE id=$1", trapped.id)
    tl = await q(pool, "SELECT actor, outcome FROM alert_transitions WHERE alert_id=$1"
                       " AND action='acknowledge'", trapped.id)
    assert [(t["actor"], t["outcome"]) for t in tl] == [("voice:东城街道东城值班", "applied")]
    assert "东城值班" in a["acked_by"] or "township:T1:duty" in a["acked_by"]
    audit = await q(pool, "SELECT outcome FROM inbound_audit WHERE channel='voice_key'")
    assert [r["outcome"] for r in audit] == ["acknowledged"]
    attempts = await q(pool, "SELECT outcome, error FROM notification_attempts WHERE notification_id=$1"
                             " ORDER BY id", nid)
    assert attempts[0]["outcome"] == "sent" and any("按1确认" in t["error"] for t in attempts)


async def test_unanswered_call_is_redialled_then_escalates_to_the_duty_operator(
        pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, voice_service: Any) -> None:
    svc = await voice_service("aliyun")
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    await script(sim, LANDLINE, "no_answer", "busy")
    nid = await queue_call(pool, trapped.id, LANDLINE, clock)
    await svc.tick()
    assert await until(lambda: status_is(pool, nid, "pending"))
    r = await row(pool, nid)
    assert r["attempts"] == 1 and "未接听" in r["last_error"] and r["next_attempt_at"] > clock.now()
    clock.advance(timedelta(seconds=61))
    await svc.tick()  # the redial
    assert len(await calls(sim, LANDLINE)) == 2
    assert await until(lambda: status_is(pool, nid, "failed"))
    r = await row(pool, nid)
    assert r["attempts"] == 2 and r["last_error"].startswith("未接通：呼叫2次")
    await svc.tick()  # the voice escalation: the duty operator is called about it
    duty = await calls(sim, DUTY)
    assert len(duty) == 1 and "电话通知东城街道东城值班未接通" in duty[0]["script"]
    rows = await q(pool, "SELECT channel, status, template FROM notifications WHERE alert_id=$1"
                         " AND recipient_phone=$2", trapped.id, DUTY)
    voice_rows = [(x["channel"], x["template"]) for x in rows if x["channel"] == "voice"]
    assert voice_rows == [("voice", "voice_unanswered")]
    await svc.tick()
    assert len(await calls(sim, DUTY)) == 1  # once per given-up call
    outcomes = [x["outcome"] for x in await q(
        pool, "SELECT outcome FROM notification_attempts WHERE notification_id=$1 ORDER BY id", nid)]
    assert outcomes == ["sent", "undelivered", "sent", "undelivered"]


async def test_provider_error_is_recorded_and_retried(pool: asyncpg.Pool, sim: SmsSimulator,
                                                     clock: ManualClock, voice_service: Any) -> None:
    svc = await voice_service("aliyun")
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    await script(sim, LANDLINE, "error:isp.SYSTEM_ERROR", "answered")
    nid = await queue_call(pool, trapped.id, LANDLINE, clock)
    await svc.tick()
    r = await row(pool, nid)
    assert r["status"] == "pending" and r["attempts"] == 1 and "isp.SYSTEM_ERROR" in r["last_error"]
    assert await calls(sim, LANDLINE) == []
    clock.set(r["next_attempt_at"])
    await svc.tick()
    assert len(await calls(sim, LANDLINE)) == 1
    assert await until(lambda: status_is(pool, nid, "delivered"))
    outcomes = [x["outcome"] for x in await q(
        pool, "SELECT outcome FROM notification_attempts WHERE notification_id=$1 ORDER BY id", nid)]
    assert outcomes == ["retrying", "sent", "delivered"]


async def test_tencent_refuses_a_landline_for_good_and_it_escalates(
        pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, voice_service: Any) -> None:
    svc = await voice_service("tencent")
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    nid = await queue_call(pool, trapped.id, LANDLINE, clock)
    await svc.tick()
    r = await row(pool, nid)
    assert r["status"] == "failed" and "不是手机号" in r["last_error"]
    await svc.tick()
    assert len(await calls(sim, DUTY)) == 1


async def test_red_alarm_unacknowledged_after_voice_after_is_called(
        pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, voice_service: Any) -> None:
    svc = await voice_service("aliyun", voice_config("5m"))
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    sms_phones = {x["recipient_phone"] for x in await q(
        pool, "SELECT recipient_phone FROM notifications WHERE alert_id=$1 AND channel='sms'", trapped.id)}
    assert sms_phones
    clock.advance(timedelta(minutes=4))
    await svc.tick()
    assert await calls(sim) == []
    clock.advance(timedelta(minutes=1))
    await svc.tick()
    assert {c["number"] for c in await calls(sim)} == sms_phones
    await svc.tick()
    assert len(await calls(sim)) == len(sms_phones)  # once


def test_the_voice_endpoint_follows_the_sms_gateway_or_is_the_providers() -> None:
    from alerting.notify.voice import default_url, make_voice_notifier
    from hazmon.settings import VoiceSettings

    assert default_url("aliyun", "http://127.0.0.1:18123/webhook/sms") == "http://127.0.0.1:18123/voice/aliyun"
    assert default_url("tencent", "https://sms.tencentcloudapi.com/") == "https://vms.tencentcloudapi.com/"
    assert default_url("aliyun", "https://dysmsapi.aliyuncs.com/") == "https://dyvmsapi.aliyuncs.com/"
    n = make_voice_notifier(VoiceSettings(url="http://gw.test/v"), "http://127.0.0.1:1/webhook/sms")
    assert isinstance(n.provider, AliyunVoice) and n.provider.url == "http://gw.test/v"


def test_voice_after_must_be_positive() -> None:
    from hazmon.errors import ConfigError

    raw = raw_routes()
    raw["route"]["routes"][0]["voice_after"] = "0s"
    with pytest.raises(ConfigError, match="voice_after"):
        parse_config(raw, file="t.yaml")


def test_aliyun_call_codes_mean_what_its_table_says() -> None:
    from alerting.voice_inbound import parse_call_receipts

    sent = [{"call_id": f"c{code}", "status_code": code, "status_msg": "", "dtmf": dtmf}
            for code, dtmf in (("200000", ""), ("200000", "1"), ("200001", ""), ("200002", ""), ("200003", ""),
                               ("200008", ""), ("200011", ""), ("299999", ""))]
    got = [r.outcome for r in parse_call_receipts("aliyun", sent)]
    # heard / pressed 1 / hung up early (not heard whole: redial) / busy / rang unanswered /
    # heard without a key / number out of service / a code we do not know
    assert got == ["answered", "key1", "no_answer", "busy", "no_answer", "answered", "failed", "failed"]


def test_the_gas_advice_is_spoken_whole_and_a_long_one_cut_at_a_clause() -> None:
    from alerting.templates import what_to_do

    script = VOICE_TEMPLATES["voice_alarm"]
    base = {"site": "李记饺子馆（云栖店）", "device": "后厨炒灶区", "what": "可燃气体浓度低限报警", "sev": "橙"}
    heard = tts_params(script, {**base, "todo": what_to_do("gas.low")}, "aliyun")
    assert heard["todo"] == what_to_do("gas.low") and heard["todo"].endswith("119")
    long_todo = "，".join(["请立即关闭燃气阀门并开窗通风"] * 8)
    cut = tts_params(script, {**base, "todo": long_todo}, "aliyun")["todo"]
    assert cut.endswith("开窗通风") and len(cut) <= 80


async def test_a_receipt_that_overtakes_its_send_result_is_applied_when_the_result_is_written(
        pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, voice_service: Any, inbound: str) -> None:
    # a busy sender writes the call's id seconds after the provider answered; the provider's
    # receipt for it is answered at once and applied once the id is there (not lost as unknown)
    from alerting.notify.sms_webhook import callback_token

    svc = await voice_service("aliyun")
    trapped = ev("elevator.trapped", "E7", "S7")
    await svc.handle_events([trapped])
    await svc.tick()
    nid = await queue_call(pool, trapped.id, LANDLINE, clock)
    await q(pool, "UPDATE notifications SET status='sending' WHERE id=$1", nid)
    body = [{"call_id": "early-1", "status_code": "200000", "status_msg": "用户听完语音", "dtmf": ""}]
    async with httpx.AsyncClient() as c:
        t0 = time.monotonic()
        r = await c.post(f"{inbound}/voice/receipt/aliyun", params={"token": callback_token(SECRET, "aliyun")},
                         json=body)
        answered_in = time.monotonic() - t0
    assert r.status_code == 200 and r.json()["code"] == 0, r.text
    assert answered_in < 1.0  # the provider is not kept waiting
    await asyncio.sleep(2.5)  # the send result is written only now (past the first lookups)
    await q(pool, """UPDATE notifications SET status='sent', provider='voice-aliyun',
                         provider_message_id='early-1', attempts=1 WHERE id=$1""", nid)
    assert await until(lambda: status_is(pool, nid, "delivered"), tries=300)
    attempts = await q(pool, "SELECT outcome, error FROM notification_attempts WHERE notification_id=$1", nid)
    assert [(a["outcome"], a["error"]) for a in attempts] == [("delivered", "已接听（200000 用户听完语音）")]


async def test_a_receipt_goes_to_the_newest_call_of_its_id(
        pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, voice_service: Any, inbound: str) -> None:
    # a kept database holds the calls of earlier runs; a restarted simulator (or a provider reusing
    # an id) must not have this run's receipt applied to a call of the day before
    from alerting.notify.sms_webhook import callback_token

    svc = await voice_service("aliyun")
    old, new = ev("elevator.trapped", "E6", "S6"), ev("elevator.trapped", "E6", "S6", at=clock.now() + timedelta(hours=1))
    await svc.handle_events([old])
    await svc.tick()
    before = await queue_call(pool, old.id, LANDLINE, clock)
    clock.advance(timedelta(hours=1))
    await svc.handle_events([new])
    await svc.tick()
    after = await queue_call(pool, new.id, LANDLINE, clock)
    await q(pool, """UPDATE notifications SET status='sent', provider='voice-aliyun', provider_message_id='same-1',
                         attempts=1, created_at = created_at - CASE WHEN id=$1 THEN interval '1 day' ELSE
                         interval '0' END WHERE id = ANY($2::text[])""", before, [before, after])
    body = [{"call_id": "same-1", "status_code": "200000", "status_msg": "用户听完语音", "dtmf": ""}]
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{inbound}/voice/receipt/aliyun", params={"token": callback_token(SECRET, "aliyun")},
                         json=body)
    assert r.status_code == 200
    assert await until(lambda: status_is(pool, after, "delivered"))
    assert (await row(pool, before))["status"] == "sent"
