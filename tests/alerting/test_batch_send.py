"""One text to several numbers in one provider request (the generic gateway's batch shape and
腾讯云 SendSms's PhoneNumberSet), against the SMS simulator over HTTP: fewer requests in a storm,
and each number still has its own outcome — a refused number fails alone, an outage retries the
whole batch."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest
from alerting_helpers import SECRET, T0, ServiceFactory, ev, messages, set_mode

from alerting.clock import ManualClock
from alerting.notify.sms_webhook import webhook_signature
from alerting.outbox import NewNotification, OutboxPolicy, enqueue, notification_id
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole
from hazmon.settings_budget import SmsBudgetSettings
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _item(phone: str, body: str, name: str = "老王") -> NewNotification:
    r = Recipient(role=RecipientRole.BUSINESS, name=name, unit="老王饭店", phone=phone, rule="test")
    return NewNotification(NotificationRequest(
        id=notification_id("A1", r, 0, "sms:alarm"), alert_id="", channel="sms", recipient=r,
        template="alarm", body=body, created_at=T0), params={"site": "老王饭店"}, priority=1)


async def _requests(sim: SmsSimulator, provider: str = "webhook") -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as c:
        return [r for r in (await c.get(f"{sim.url}/requests")).json() if r["provider"] == provider]


@pytest.mark.parametrize("provider", ["webhook", "tencent"])
async def test_a_group_message_to_several_recipients_is_one_request(
    provider: str, pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider=provider)
    # one text without a 回复码 (a resolved notice, a broadcast) to several numbers
    async with pool.acquire() as conn:
        await enqueue(conn, [_item("13800001001", "报警已解除"), _item("13800001002", "报警已解除", "老李"),
                             _item("13800001003", "报警已解除", "老张")], now=T0)
    await svc.tick()
    got = await messages(sim)
    assert len(got) == 3 and len({m["body"] for m in got}) == 1
    reqs = await _requests(sim, provider)
    assert len(reqs) == 1
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, recipient_phone, status, provider_message_id FROM notifications"
                                " WHERE channel='sms'")
    assert {r["status"] for r in rows} == {"sent"} and len(rows) == len(got)
    # each row has the message id the provider gave its number, none shared
    given = {(m["phone"], m["message_id"]) for m in got}
    assert {(r["recipient_phone"], r["provider_message_id"]) for r in rows} == given
    if provider == "webhook":  # the generic gateway also gets each row's own id
        assert {r["id"] for r in rows} == {m["client_ref"] for m in got}


async def test_the_gateway_takes_each_recipients_own_text_in_one_request(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    await svc.handle_events([ev("elevator.trapped", "E6", "S6")])
    await svc.tick()
    got = await messages(sim)
    assert len(got) >= 2 and len({m["body"] for m in got}) == len(got)  # own 回复码 and link token each
    reqs = await _requests(sim)
    assert len(reqs) == 1
    sent = json.loads(reqs[0]["body"])
    assert "body" not in sent and all(m["body"] and m["params"]["code"] for m in sent["messages"])
    async with pool.acquire() as conn:
        codes = {r["phone"]: r["code"] for r in await conn.fetch("SELECT phone, code FROM alert_ack_grants")}
    assert {m["phone"]: m["params"]["code"] for m in got} == codes  # each number got its own code


async def test_alarm_texts_carry_each_recipients_own_code_so_go_one_request_each(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider="tencent")  # 腾讯云: one TemplateParamSet per SendSms
    await svc.handle_events([ev("elevator.trapped", "E6", "S6")])
    await svc.tick()
    got = await messages(sim)
    assert len(got) >= 2 and len({m["body"] for m in got}) == len(got)  # own 回复码 and link token each
    # same length per registered text (the business's and the supervision text differ): the
    # placeholders had the final size
    for tpl in {m["params"]["_tpl"] for m in got}:
        assert len({len(m["body"]) for m in got if m["params"]["_tpl"] == tpl}) == 1
    assert len(await _requests(sim, "tencent")) == len(got)


@pytest.mark.parametrize(("provider", "requests"), [("tencent", 2), ("webhook", 1)])
async def test_different_texts_are_not_batched_together(
    provider: str, requests: int, pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock,
    make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider=provider)
    async with pool.acquire() as conn:
        await enqueue(conn, [_item("13800001001", "甲"), _item("13800001002", "乙", "老李"),
                             _item("13800001003", "甲", "老张")], now=T0)
    await svc.tick()
    reqs = await _requests(sim, provider)
    # 腾讯云: 甲 to two numbers in one request, 乙 alone; the gateway takes each number's own text
    assert len(reqs) == requests
    got = {m["phone"]: m["body"] for m in await messages(sim)}
    if provider == "webhook":  # (腾讯云 renders its registered template, not our text)
        assert got == {"13800001001": "甲", "13800001002": "乙", "13800001003": "甲"}
    assert len(got) == 3


@pytest.mark.parametrize(("provider", "why"), [("webhook", "invalid phone number"),
                                               ("tencent", "IncorrectPhoneNumber")])
async def test_a_refused_number_fails_alone(
    provider: str, why: str, pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock,
    make_service: ServiceFactory,
) -> None:
    svc = await make_service(provider=provider)
    async with pool.acquire() as conn:
        # a number no gateway takes (the registry refuses it; a row can still hold one)
        await enqueue(conn, [_item("13800001001", "火警"), _item("12345", "火警", "坏号码")], now=T0)
    await svc.tick()
    assert len(await _requests(sim, provider)) == 1
    async with pool.acquire() as conn:
        rows = {r["recipient_phone"]: r for r in await conn.fetch(
            "SELECT recipient_phone, status, last_error FROM notifications")}
    assert rows["13800001001"]["status"] == "sent"
    assert rows["12345"]["status"] == "failed" and why in rows["12345"]["last_error"]


async def test_one_number_is_never_twice_in_a_request(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    # the same person in two roles (two rows, one text): providers answer per number, so two requests
    # (腾讯云's 30 s same-content rule off here: with it the second waits, tests/alerting/test_sms_budget.py)
    no_same_text_rule = OutboxPolicy(sms_budget=SmsBudgetSettings(tencent_same_text_s=0))
    svc = await make_service(provider="tencent", policy=no_same_text_rule)
    async with pool.acquire() as conn:
        await enqueue(conn, [_item("13800001001", "火警", "老王"), _item("13800001001", "火警", "王经理"),
                             _item("13800001002", "火警", "老李")], now=T0)
    await svc.tick()
    assert len(await _requests(sim, "tencent")) == 2
    async with pool.acquire() as conn:
        assert {r["status"] for r in await conn.fetch("SELECT status FROM notifications")} == {"sent"}


async def test_an_outage_retries_the_whole_batch_and_loses_none(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    await set_mode(sim, fail_next=1, fail_status=503)
    async with pool.acquire() as conn:
        await enqueue(conn, [_item(f"1380000100{i}", "火警", f"人{i}") for i in range(3)], now=T0)
    await svc.tick()
    async with pool.acquire() as conn:
        assert {r["status"] for r in await conn.fetch("SELECT status FROM notifications")} == {"pending"}
        attempts = await conn.fetch("SELECT outcome, http_status FROM notification_attempts")
    assert len(attempts) == 3 and {(a["outcome"], a["http_status"]) for a in attempts} == {("retrying", 503)}
    assert await messages(sim) == []
    clock.advance(60)
    await svc.tick()
    assert sorted(m["phone"] for m in await messages(sim)) == [f"1380000100{i}" for i in range(3)]
    assert len(await _requests(sim)) == 2  # the failed batch, then the batch that went through


async def test_the_gateway_refuses_a_malformed_batch(sim: SmsSimulator) -> None:
    async with httpx.AsyncClient() as c:
        for payload in (b'{"body": "x", "messages": []}', b'{"body": "x", "messages": "13800001001"}',
                        b'{"messages": [{"id": "a", "phone": "13800001001"}]}'):
            r = await c.post(f"{sim.url}/webhook/sms", content=payload,
                             headers={"x-hazmon-signature": webhook_signature(SECRET, payload)})
            assert r.status_code == 400 and "messages" in r.json()["error"]
    assert await messages(sim) == []
