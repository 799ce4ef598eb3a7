"""An acknowledgement stops the reminders (再次提醒, alarm_repeat) to whoever acknowledged and, per
the route's ``ack_stops``, to their unit or to everybody (issue 13 item 6).

Real services: PostgreSQL, the alerting service sending through the SMS gateway simulator over
HTTP; the acknowledgements are real replies (alerting.ack_reply) and a real short-link POST
(alerting.ack_link) on the database the service reads. S6 安居小区 gets a second contact here,
so its business unit has two people.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from alerting_helpers import (
    KEY_ID,
    SECRET,
    ServiceFactory,
    config_with,
    ev,
    messages,
    raw_routes,
    resolved,
    set_mode,
)

from alerting.ack_link import confirm_link
from alerting.ack_reply import ReplyConfirm, handle_reply
from alerting.ack_stops import RecipientAck, still_reminded
from alerting.clock import ManualClock
from alerting.config import parse_config
from alerting.errors import RouteConfigError
from alerting.inbound import InboundConfig, build_app
from alerting.lifecycle import acknowledge
from alerting.notify.console import ConsoleNotifier
from alerting.notify.sms import SmsNotifier
from alerting.notify.sms_webhook import WebhookSms
from alerting.notify.voice import VoiceNotifier
from alerting.notify.voice_aliyun import AliyunVoice
from alerting.service import AlertingOptions, AlertingService
from hazmon.contracts import Recipient, RecipientRole
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

WU, ZHENG = "13800006001", "13800006002"  # 安居小区's two contacts
LANDLINE = "057188880101"  # 东城街道's duty line in the landline tests, as dialled
GRID, TOWNSHIP, DEPT = "13800000201", "13800000101", "13800000302"  # 张网格, 东城值班, 市监值班
NO_SMS = ReplyConfirm(enabled=False)


def routes(ack_stops: str | None) -> Any:
    raw = raw_routes()
    if ack_stops is not None:
        raw["route"]["ack_stops"] = ack_stops  # the root's: every route inherits it
    return parse_config(raw, file="test-routes.yaml")


async def q(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql, *args))


async def trapped_alarm(pool: asyncpg.Pool, make_service: ServiceFactory, sim: SmsSimulator,
                        ack_stops: str | None) -> tuple[Any, str]:
    """A second contact at S6, then 电梯困人 there (route elevator-trapped: no group wait,
    reminders every 30 min), sent."""
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO site_contacts (site_id, name, role, phone)"
                           " VALUES ('S6','物业郑','值班',$1)", ZHENG)
    svc = await make_service(config=routes(ack_stops))
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    first = {m["phone"] for m in await messages(sim) if m["template"] == "alarm"}
    assert {WU, ZHENG, GRID, TOWNSHIP, DEPT} <= first, first
    return svc, trapped.id


async def reply_code(pool: asyncpg.Pool, clock: ManualClock, alert_id: str, phone: str) -> str:
    code = (await q(pool, "SELECT code FROM alert_ack_grants WHERE alert_id=$1 AND phone=$2 LIMIT 1",
                    alert_id, phone))[0]["code"]
    async with pool.acquire() as conn:
        out = await handle_reply(conn, provider="webhook", phone=phone, text=f"{code} 收到", now=clock.now(),
                                 confirm=NO_SMS)
    return out.outcome


async def reminded(svc: Any, sim: SmsSimulator, clock: ManualClock) -> set[str]:
    """Past the route's repeat interval: the numbers the reminder went to."""
    before = len(await messages(sim))
    clock.advance(timedelta(minutes=31))
    await svc.tick()
    return {m["phone"] for m in (await messages(sim))[before:] if m["template"] == "alarm_repeat"}


async def test_by_default_an_acknowledgement_stops_the_reminders_to_the_whole_unit(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc, alert_id = await trapped_alarm(pool, make_service, sim, None)  # routes.yaml says nothing: unit
    assert await reply_code(pool, clock, alert_id, WU) == "acknowledged"
    got = await reminded(svc, sim, clock)
    assert got == {GRID, TOWNSHIP, DEPT}, got  # neither 物业吴 nor his colleague 物业郑
    for m in await messages(sim):
        if m["phone"] in (WU, GRID) and m["template"] in ("alarm", "alarm_repeat"):
            print("sms:", m["template"], m["phone"][:3] + "****" + m["phone"][-4:], m["body"])
    notes = [json.loads(t["detail"]) for t in await q(
        pool, "SELECT detail FROM alert_transitions WHERE alert_id=$1 AND action='notify' ORDER BY id",
        alert_id)]
    [stopped] = [n["ack_stopped"] for n in notes if "ack_stopped" in n]  # the reminder's, on the timeline
    assert [(s["name"], s["rule"]) for s in stopped] == [
        ("物业吴", "site:S6:contact"), ("物业郑", "site:S6:contact")]
    # the grid member says 收到 too: the next reminder leaves them out as well
    async with pool.acquire() as conn:
        word = await handle_reply(conn, provider="webhook", phone=GRID, text="收到", now=clock.now(),
                                  confirm=NO_SMS)
    assert word.outcome == "already_acknowledged" and word.alert_id == alert_id
    assert await reminded(svc, sim, clock) == {TOWNSHIP, DEPT}


async def test_recipient_policy_stops_only_who_acknowledged_by_reply_or_link(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc, alert_id = await trapped_alarm(pool, make_service, sim, "recipient")
    assert await reply_code(pool, clock, alert_id, WU) == "acknowledged"
    # the grid member taps the link in their SMS (a colleague was first: recorded for them)
    [body] = [m["body"] for m in await messages(sim, GRID) if m["template"] == "alarm"]
    token = re.search(r"http://ack\.test/a/([0-9A-Za-z_-]{22})", body)
    assert token is not None, body
    async with pool.acquire() as conn:
        link = await confirm_link(conn, token.group(1), now=clock.now(), ip="10.0.0.9")
    assert link.outcome == "already_acknowledged"
    got = await reminded(svc, sim, clock)
    assert got == {ZHENG, TOWNSHIP, DEPT}, got  # 物业郑 is still reminded: only 物业吴 answered
    vias = {r["phone"]: r["acked_via"] for r in await q(
        pool, "SELECT DISTINCT phone, acked_via FROM alert_ack_grants WHERE acked_at IS NOT NULL")}
    assert vias == {WU: "sms_reply", GRID: "link"}


async def test_all_policy_stops_every_reminder_once_the_alarm_is_acknowledged(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc, alert_id = await trapped_alarm(pool, make_service, sim, "all")
    async with pool.acquire() as conn:  # an operator on the console, not a recipient
        assert (await acknowledge(conn, alert_id, actor="op1", now=clock.now(), via="console")).applied
    assert await reminded(svc, sim, clock) == set()


async def test_no_acknowledgement_no_change(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc, _alert_id = await trapped_alarm(pool, make_service, sim, "unit")
    assert await reminded(svc, sim, clock) == {WU, ZHENG, GRID, TOWNSHIP, DEPT}


async def test_still_reminded_is_pure_and_keys_on_number_and_rule() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 11, 3, tzinfo=UTC)

    def who(name: str, phone: str | None, rule: str, role: RecipientRole = RecipientRole.BUSINESS
            ) -> Recipient:
        return Recipient(role=role, name=name, unit="安居小区", phone=phone, rule=rule)

    wu, zheng = who("物业吴", WU, "site:S6:contact"), who("物业郑", ZHENG, "site:S6:contact")
    # a leader named by two rules is one recipient (rules joined by ';'): either rule's ack is theirs
    lead = who("赵副区长", "13800000402", "matrix:R-elevator:leader:L2;matrix:R-fire:leader:L2",
               RecipientRole.LEADER)
    ack = RecipientAck("a1", "site:S6:contact", "business", "安居小区", WU, at, "sms_reply")
    assert still_reminded([wu, zheng, lead], [ack], "recipient") == ((zheng, lead), (wu,))
    assert still_reminded([wu, zheng, lead], [ack], "unit") == ((lead,), (wu, zheng))
    assert still_reminded([wu, zheng, lead], [ack], "all") == ((), (wu, zheng, lead))
    lead_ack = RecipientAck("a1", "matrix:R-fire:leader:L2", "leader", "副区长", "13800000402", at, "link")
    assert still_reminded([wu, lead], [lead_ack], "unit") == ((wu,), (lead,))
    assert still_reminded([wu, lead], [], "all", alert_acked=True) == ((), (wu, lead))
    assert still_reminded([wu, lead], [], "unit", alert_acked=True) == ((wu, lead), ())


async def test_an_unknown_policy_is_refused_naming_the_field() -> None:
    raw = raw_routes()
    raw["route"]["routes"][1]["ack_stops"] = "everyone"
    with pytest.raises(RouteConfigError) as exc:
        parse_config(raw, file="routes.yaml")
    [(path, problem)] = [p for p in exc.value.problems if "ack_stops" in p[0]]
    assert path == "route.routes[1].ack_stops" and "'recipient', 'unit' or 'all'" in problem, (path, problem)
    assert config_with().route.ack_stops == "unit"


@pytest.fixture
async def inbound(pool: asyncpg.Pool, clock: ManualClock) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    app = build_app(pool, clock, config=InboundConfig(secret=SECRET))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await app.aclose()


async def landline_service(pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, inbound: str,
                           ack_stops: str, receipt_delay_s: float = 0.01
                           ) -> tuple[AlertingService, list[Any]]:
    """东城街道's duty line a landline (reached by a call, 按1确认 acknowledging: scripted key 1)."""
    async with pool.acquire() as conn:
        await conn.execute("UPDATE townships SET duty_phone='0571-88880101' WHERE id='T1'")
    sms = SmsNotifier(WebhookSms(f"{sim.url}/webhook/sms", SECRET, "区应急指挥中心"), timeout_s=2.0)
    voice = VoiceNotifier(AliyunVoice(f"{sim.url}/voice/aliyun", KEY_ID, SECRET, "057100000000"),
                          timeout_s=2.0)
    svc = AlertingService(pool=pool, config=routes(ack_stops), clock=clock,
                          notifiers={"sms": sms, "console": ConsoleNotifier(), "voice": voice},
                          options=AlertingOptions(ack_base_url="http://ack.test/a"))
    await svc.start()
    await set_mode(sim, callback_url=inbound, receipt_delay_s=receipt_delay_s)
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{sim.url}/voice/admin/script", json={"number": LANDLINE, "outcomes": ["key1"]})
        assert r.status_code == 200, r.text
    return svc, [sms, voice]


async def key_press(pool: asyncpg.Pool) -> str | None:
    """The outcome of the audited key press, once its receipt arrived."""
    for _ in range(100):
        got = await q(pool, "SELECT outcome FROM inbound_audit WHERE channel='voice_key'")
        if got:
            return str(got[0]["outcome"])
        await asyncio.sleep(0.05)
    return None


async def test_a_duty_room_that_pressed_1_is_not_called_again_with_the_reminder(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, inbound: str,
) -> None:
    """The alarm is a call to the landline, 按1确认 acknowledges; the reminder calls nobody who
    pressed 1 (policy recipient: the business is still reminded)."""
    svc, notifiers = await landline_service(pool, sim, clock, inbound, "recipient")
    try:
        trapped = ev("elevator.trapped", "E6", "S6")
        await svc.handle_events([trapped])
        await svc.tick()
        assert await key_press(pool) == "acknowledged"
        clock.advance(timedelta(minutes=31))
        await svc.tick()
        rows = await q(pool, "SELECT channel, recipient_phone FROM notifications WHERE alert_id=$1"
                             " AND template='alarm_repeat' AND channel IN ('sms', 'voice')", trapped.id)
        assert {(r["channel"], r["recipient_phone"]) for r in rows} == {
            ("sms", WU), ("sms", GRID), ("sms", DEPT)}, rows  # no call to the landline that pressed 1
    finally:
        await svc.stop()
        for n in notifiers:
            await n.aclose()


async def test_a_key_press_whose_receipt_comes_after_the_recovery_is_refused(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, inbound: str,
) -> None:
    svc, notifiers = await landline_service(pool, sim, clock, inbound, "unit", receipt_delay_s=1.0)
    try:
        trapped = ev("elevator.trapped", "E6", "S6")
        await svc.handle_events([trapped])
        await svc.tick()  # the call is placed; its receipt (key 1) arrives a second later …
        await svc.handle_events([resolved(trapped, clock.now())])  # … after the 恢复
        assert await key_press(pool) == "resolved_alert"
        (a,) = await q(pool, "SELECT acked_at, state FROM alerts WHERE id=$1", trapped.id)
        assert a["acked_at"] is None and a["state"] == "resolved"
        tl = await q(pool, "SELECT actor, outcome, reason FROM alert_transitions WHERE alert_id=$1"
                           " AND action='acknowledge'", trapped.id)
        assert [(t["actor"], t["outcome"], t["reason"]) for t in tl] == [
            ("voice:东城街道东城值班", "rejected", "报警已恢复")]
    finally:
        await svc.stop()
        for n in notifiers:
            await n.aclose()
