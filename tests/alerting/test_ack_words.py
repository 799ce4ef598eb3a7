"""收到 / 确认 / 1 from a recipient, the device's 恢复 winning over a racing acknowledgement, and
a refused-ack audit row for every refusal (issue 13 item 6).

Real services: PostgreSQL, the SMS gateway simulator over HTTP (it delivers the replies to
alerting's inbound app, served by uvicorn, signed as the webhook gateway signs them), the
alerting service sending through it. The race is two real connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from alerting_helpers import SECRET, ServiceFactory, ev, messages, resolved, set_mode

from alerting.ack_link import confirm_link, link_result_page
from alerting.ack_reply import handle_reply, is_ack_word
from alerting.clock import ManualClock
from alerting.inbound import InboundApp, InboundConfig, build_app
from alerting.lifecycle import close, verify
from alerting.store import Placement, record_events
from hazmon.contracts import Severity, Verdict
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

BUSINESS = "13800006001"  # S6 安居小区's 物业吴 (alerting_helpers)
GRID = "13800000201"  # V1's 张网格
STRANGER = "13912345678"  # never told of anything
Inbound = Callable[..., Awaitable[str]]


async def q(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql, *args))


@pytest.fixture
async def start_inbound(pool: asyncpg.Pool, clock: ManualClock, pg_dsn: str) -> AsyncIterator[Inbound]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None], InboundApp]] = []

    async def start(**overrides: Any) -> str:
        app = build_app(pool, clock, config=InboundConfig(secret=SECRET, **overrides), dsn=pg_dsn)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", proxy_headers=False))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
            await asyncio.sleep(0.01)
        servers.append((server, task, app))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, task, app in servers:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await app.aclose()


async def reply(sim: SmsSimulator, phone: str, text: str) -> dict[str, Any]:
    """A reply as the provider delivers it (the simulator posts it, signed); the inbound's answer."""
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{sim.url}/admin/reply", json={"phone": phone, "text": text, "provider": "webhook"})
    got = r.json()
    return {"status": got["status"], **json.loads(got["answer"])}


async def audit_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await q(pool, "SELECT * FROM inbound_audit WHERE channel = 'sms_reply' ORDER BY id")


async def acked(pool: asyncpg.Pool, alert_id: str) -> str | None:
    return (await q(pool, "SELECT acked_by FROM alerts WHERE id=$1", alert_id))[0]["acked_by"]


async def two_alarms(make_service: ServiceFactory, sim: SmsSimulator, clock: ManualClock, inbound: str
                     ) -> tuple[Any, str, str]:
    """电梯困人 at S6 (T0), then 电梯故障 at S6 three minutes later: both sent to the business
    and the grid member. Returns the service and (older, newer) alert ids."""
    svc = await make_service()
    await set_mode(sim, callback_url=inbound, receipt_delay_s=0.01)
    trapped = ev("elevator.trapped", "E6", "S6")
    await svc.handle_events([trapped])
    await svc.tick()
    clock.advance(timedelta(minutes=1))
    fault = ev("elevator.fault", "E6", "S6", at=clock.now(), severity=Severity.ORANGE)
    await svc.handle_events([fault])
    clock.advance(timedelta(minutes=2))  # past the faults route's group_wait
    await svc.tick()
    sent = {(m["phone"], m["params"].get("code")) for m in await messages(sim, BUSINESS)}
    assert len(sent) == 2, sent
    return svc, trapped.id, fault.id


async def codes(pool: asyncpg.Pool) -> dict[tuple[str, str], str]:
    """Each recipient's own 回复码 per (alert, number)."""
    return {(r["alert_id"], r["phone"]): r["code"] for r in await q(pool, "SELECT * FROM alert_ack_grants")}


async def test_what_counts_as_an_acknowledging_word() -> None:
    for yes in ("收到", "确认", "1", "好的收到", "收到。", "１", " 收到 ", "收到了", "已收到", "确认收到",
                "好的，收到！", "ok收到", "收到，谢谢", "\u3000确认\n"):
        assert is_ack_word(yes), yes
    for no in ("", "。", "不知道", "收到了吗", "12", "11", "没收到", "取消", "不确认", "2", "收到123"):
        assert not is_ack_word(no), no


async def test_a_word_acknowledges_the_numbers_most_recent_open_alert_only(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    start_inbound: Inbound,
) -> None:
    inbound = await start_inbound()
    svc, older, newer = await two_alarms(make_service, sim, clock, inbound)
    before = len(await messages(sim, BUSINESS))
    got = await reply(sim, BUSINESS, "好的收到")
    assert got["status"] == 200 and got["outcome"] == "acknowledged", got
    assert "最近一条" in got["message"] and "另有1条" in got["message"], got
    assert (await acked(pool, newer) or "").startswith("sms_reply:site:S6:contact")
    assert await acked(pool, older) is None  # only the most recent
    [row] = await audit_rows(pool)
    assert row["outcome"] == "acknowledged" and row["alert_id"] == newer
    assert row["recipient_id"] == "site:S6:contact" and row["phone_masked"] == "138****6001"
    print("audit:", row["outcome"], row["phone_masked"], row["recipient_id"], row["detail"])
    detail = json.loads(row["detail"])
    assert detail["by"] == "word" and detail["open_alerts"] == 2 and detail["latest_only"] is True
    tl = await q(pool, "SELECT outcome, reason, detail FROM alert_transitions WHERE alert_id=$1"
                       " AND action='acknowledge'", newer)
    assert [t["outcome"] for t in tl] == ["applied"] and "最近一条" in tl[0]["reason"]
    assert json.loads(tl[0]["detail"])["others"] == [older]
    # the replier is told which alarm, through the outbox like every SMS
    await svc.tick()
    confirm = (await messages(sim, BUSINESS))[before:]
    assert len(confirm) == 1, confirm
    assert confirm[0]["template"] == "ack_confirm" and confirm[0]["params"]["_tpl"] == "ack_confirm.more"
    assert confirm[0]["body"].startswith(
        "已确认收到：安居小区的电梯故障（11月3日09:01）；另有1条报警未确认"), confirm
    print("confirmation SMS:", confirm[0]["body"])
    # the same word again (people send twice): the same alarm, already acknowledged, no second SMS
    again = await reply(sim, BUSINESS, "１")
    assert again["outcome"] == "already_acknowledged" and await acked(pool, older) is None
    await svc.tick()
    assert len(await messages(sim, BUSINESS)) == before + 1
    # the grid member's word: the same most recent alert, a colleague was first; recorded for them
    grid = await reply(sim, GRID, " 收到。 ")
    assert grid["outcome"] == "already_acknowledged", grid
    marks = await q(pool, "SELECT phone, acked_via FROM alert_ack_grants WHERE alert_id=$1"
                          " AND acked_at IS NOT NULL", newer)
    assert {m["phone"] for m in marks} == {BUSINESS, GRID}
    assert {m["acked_via"] for m in marks} == {"sms_reply"}
    replies = await q(pool, "SELECT outcome, phone FROM sms_replies ORDER BY id")
    assert [r["outcome"] for r in replies] == ["acknowledged", "already_acknowledged", "already_acknowledged"]


async def test_a_word_from_a_number_without_an_open_alert_acknowledges_nothing(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    start_inbound: Inbound,
) -> None:
    inbound = await start_inbound()
    svc, older, newer = await two_alarms(make_service, sim, clock, inbound)
    got = await reply(sim, STRANGER, "收到")
    assert got["status"] == 404 and got["outcome"] == "no_open_alert", got
    # the business's alerts recover: a word then finds nothing open (恢复 is not open)
    await svc.handle_events([resolved(ev("elevator.trapped", "E6", "S6"), clock.now()),
                             resolved(ev("elevator.fault", "E6", "S6", at=clock.now() - timedelta(minutes=2),
                                         severity=Severity.ORANGE), clock.now())])
    late = await reply(sim, BUSINESS, "确认")
    assert late["outcome"] == "no_open_alert", late
    assert await acked(pool, older) is None and await acked(pool, newer) is None
    assert not await q(pool, "SELECT 1 FROM alert_ack_grants WHERE acked_at IS NOT NULL")
    rows = await audit_rows(pool)
    assert [(r["outcome"], r["phone_masked"], r["alert_id"]) for r in rows] == [
        ("no_open_alert", "139****5678", None), ("no_open_alert", "138****6001", None)]
    assert [r["outcome"] for r in await q(pool, "SELECT outcome FROM sms_replies ORDER BY id")] == [
        "no_open_alert", "no_open_alert"]
    # chit-chat is kept, not audited as an attempt, and acknowledges nothing
    chat = await reply(sim, BUSINESS, "请问是什么情况")
    assert chat["outcome"] == "no_code" and len(await audit_rows(pool)) == 2


async def test_the_recovery_wins_over_a_racing_acknowledgement(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    start_inbound: Inbound, pg_dsn: str,
) -> None:
    inbound = await start_inbound()
    svc, older, _newer = await two_alarms(make_service, sim, clock, inbound)
    code = (await codes(pool))[(older, BUSINESS)]
    trapped = ev("elevator.trapped", "E6", "S6")
    resolver = await asyncpg.connect(pg_dsn)
    try:
        # connection 1: the 恢复 is being written (its transaction holds the alert's row) …
        tr = resolver.transaction()
        await tr.start()
        [(_a, what)] = await record_events(resolver, [Placement(resolved(trapped, clock.now()))],
                                           now=clock.now())
        assert what == "resolved"
        # … connection 2: the business's reply with the right code arrives meanwhile
        async with pool.acquire() as conn:
            racing = asyncio.create_task(handle_reply(conn, provider="webhook", phone=BUSINESS, text=code,
                                                      now=clock.now()))
            await asyncio.sleep(0.5)
            assert not racing.done()  # it waits for the alert's row, it does not decide on a stale read
            await tr.commit()
            out = await asyncio.wait_for(racing, 10)
    finally:
        await resolver.close()
    assert out.outcome == "resolved_alert" and out.status == 409 and "已恢复" in out.message
    assert await acked(pool, older) is None
    tl = await q(pool, "SELECT action, outcome, reason FROM alert_transitions WHERE alert_id=$1 ORDER BY id",
                 older)
    assert [(t["action"], t["outcome"]) for t in tl][-2:] == [
        ("resolve", "applied"), ("acknowledge", "rejected")]
    assert tl[-1]["reason"] == "报警已恢复"
    [row] = await audit_rows(pool)
    assert row["outcome"] == "resolved_alert" and row["alert_id"] == older
    assert not await q(pool, "SELECT 1 FROM alert_ack_grants WHERE acked_at IS NOT NULL")
    await svc.tick()
    assert not [m for m in await messages(sim, BUSINESS) if m["template"] == "ack_confirm"]


async def test_a_link_tapped_after_the_recovery_is_refused(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    start_inbound: Inbound,
) -> None:
    inbound = await start_inbound()
    svc, older, _newer = await two_alarms(make_service, sim, clock, inbound)
    [body] = [m["body"] for m in await messages(sim, BUSINESS) if m["template"] == "alarm"
              and "电梯困人" in m["body"]]
    token = re.search(r"/a/([0-9A-Za-z_-]{22})", body)
    assert token is not None, body
    await svc.handle_events([resolved(ev("elevator.trapped", "E6", "S6"), clock.now())])
    async with pool.acquire() as conn:
        out = await confirm_link(conn, token.group(1), now=clock.now(), ip="10.0.0.7")
    assert (out.outcome, out.status) == ("resolved_alert", 409) and await acked(pool, older) is None
    page, status = link_result_page(out)
    assert status == 409 and "该报警已恢复" in page and "安居小区" not in page
    [row] = await q(pool, "SELECT outcome, alert_id FROM inbound_audit WHERE channel='link'")
    assert (row["outcome"], row["alert_id"]) == ("resolved_alert", older)


async def test_every_refusal_leaves_an_audit_row_and_acknowledges_nothing(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    start_inbound: Inbound,
) -> None:
    inbound = await start_inbound(per_phone_failures=3)
    svc, older, newer = await two_alarms(make_service, sim, clock, inbound)
    held = await codes(pool)
    mine = held[(older, BUSINESS)]
    async with pool.acquire() as conn:  # the older alarm is closed (a test): its codes are void
        await verify(conn, older, actor="op1", now=clock.now(), verdict=Verdict.TEST, reason="测试")
        await close(conn, older, actor="op1", now=clock.now(), reason="测试结束")
    cases = [
        (STRANGER, held[(newer, BUSINESS)], 403, "non_recipient", newer),  # someone else's code
        (STRANGER, "收到", 404, "no_open_alert", None),  # a word, nothing open for that number
        (BUSINESS, mine, 409, "closed_alert", older),  # expired: the alert is 办结
        (BUSINESS, "000000" if "000000" not in held.values() else "999999", 404, "unknown_code", None),
        (BUSINESS, "123456" if "123456" not in held.values() else "654321", 404, "unknown_code", None),
        (BUSINESS, held[(newer, BUSINESS)], 429, "rate_limited", None),  # the 4th attempt that failed
    ]
    for phone, text, status, outcome, alert_id in cases:
        got = await reply(sim, phone, text)
        assert (got["status"], got["outcome"]) == (status, outcome), (phone, text, got)
        row = (await audit_rows(pool))[-1]
        assert (row["outcome"], row["alert_id"]) == (outcome, alert_id), dict(row)
        assert row["phone_masked"] in ("139****5678", "138****6001")
    assert await acked(pool, newer) is None and await acked(pool, older) == "op1"
    assert not await q(pool, "SELECT 1 FROM alert_ack_grants WHERE acked_at IS NOT NULL")
    rejected = await q(pool, "SELECT alert_id, actor FROM alert_transitions WHERE action='acknowledge'"
                             " AND outcome='rejected' ORDER BY id")
    assert [(r["alert_id"], r["actor"]) for r in rejected] == [
        (newer, "sms_reply:non_recipient"), (older, "sms_reply:site:S6:contact")]
    assert len(await q(pool, "SELECT 1 FROM sms_replies")) == len(cases)
    for r in await audit_rows(pool):  # what an operator reads in inbound_audit
        print("audit:", r["outcome"], r["phone_masked"], r["recipient_id"] or "-", r["alert_id"] or "-",
              r["detail"])
    before = len(await messages(sim))
    await svc.tick()
    # a refusal sends no SMS (the business is told the closed test alarm's outcome: 经核实为测试，已办结)
    after = await messages(sim)
    assert [m["template"] for m in after[before:]] == ["outcome"], after[before:]
    assert "经核实为测试，已办结" in after[-1]["body"] and after[-1]["phone"] == BUSINESS
