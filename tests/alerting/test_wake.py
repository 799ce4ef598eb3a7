"""The service's loops are woken by work, not by the tick: with a tick of an hour, an event
landing on Kafka for a ``group_wait: 0s`` route still becomes its SMS (consume → flush wakes the
timers → the queued rows wake the sender). Also: the batched outbox writes (one INSERT for many
rows, outcomes written per batch) keep the dedup-by-id and per-phone guarantees."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import asyncpg
from alerting_helpers import T0, ServiceFactory, consume, ev, messages, produce

from alerting.clock import ManualClock
from alerting.config import load_config
from alerting.outbox import NewNotification, OutboxPolicy, enqueue, notification_id
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole
from hazmon.topics import Topics
from sim.gateway import SmsSimulator

E2E_ROUTES = Path(__file__).resolve().parents[1] / "e2e" / "routes_e2e.yaml"
#: 幸福商场 (S2): the business, 张网格, 东城街道, 应急 and 消防救援 (life_safety receiver)
FIRE_PHONES = {"13800002001", "13800000201", "13800000101", "13800000303", "13800000304"}


async def rows(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch(sql, *args))


async def _until(pred, *, polls: int = 200) -> bool:  # type: ignore[no-untyped-def]
    for _ in range(polls):
        if await pred():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_event_on_kafka_becomes_sms_without_waiting_for_a_tick(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, topics: Topics, kafka_bootstrap: str,
) -> None:
    svc = await make_service(config=load_config(E2E_ROUTES), topics=topics, bootstrap=kafka_bootstrap)
    stop = asyncio.Event()
    runner = asyncio.create_task(svc.run(stop, tick_s=3600))
    try:
        await asyncio.sleep(0.5)  # the start-up pass is over: from here only a wake can flush or send
        await produce(kafka_bootstrap, topics, [ev("fire.alarm", "P2", "S2")])

        async def all_sent() -> bool:
            return {m["phone"] for m in await messages(sim)} >= FIRE_PHONES

        assert await _until(all_sent), f"sent: {sorted({m['phone'] for m in await messages(sim)})}"
        got = await messages(sim)
        assert len(got) == len({m["phone"] for m in got})  # one each

        async def all_recorded() -> bool:  # outcomes are written just after the requests returned
            return not await rows(pool, "SELECT id FROM notifications WHERE status IN ('pending','sending')")

        assert await _until(all_recorded)
        assert len(await rows(pool, "SELECT id FROM notification_attempts WHERE outcome='sent'")) == len(got) + 1
    finally:
        stop.set()
        # stop wakes both loops: run returns without waiting out the hour
        await asyncio.wait_for(runner, timeout=30)
    with contextlib.suppress(Exception):
        assert runner.exception() is None


async def test_replayed_event_sends_nothing_more_through_the_woken_loops(
    pool: asyncpg.Pool, sim: SmsSimulator, make_service: ServiceFactory, topics: Topics, kafka_bootstrap: str,
) -> None:
    svc = await make_service(config=load_config(E2E_ROUTES), topics=topics, bootstrap=kafka_bootstrap)
    e = ev("fire.alarm", "P2", "S2")
    await produce(kafka_bootstrap, topics, [e])
    assert await consume(svc, 1) == 1
    await svc.tick()
    first = len(await messages(sim))
    assert first >= len(FIRE_PHONES)
    await produce(kafka_bootstrap, topics, [e, e])
    assert await consume(svc, 2) == 2
    svc.send_wake.clear()
    await svc.tick()
    assert len(await messages(sim)) == first
    assert not svc.send_wake.is_set()  # nothing queued, nothing woken


def _req(alert: str, phone: str, body: str) -> NewNotification:
    r = Recipient(role=RecipientRole.BUSINESS, name="老王", unit="老王饭店", phone=phone, rule="test")
    return NewNotification(NotificationRequest(
        id=notification_id(alert, r, 0, "sms:alarm"), alert_id="", channel="sms", recipient=r,
        template="alarm", body=body, created_at=T0))


async def test_enqueue_in_one_statement_inserts_each_id_once(pool: asyncpg.Pool) -> None:
    a, b = _req("A1", "13800001001", "甲"), _req("A2", "13800001001", "乙")
    async with pool.acquire() as conn:
        assert await enqueue(conn, [a, b, a], now=T0) == [a.request.id, b.request.id]
        assert await enqueue(conn, [b, a], now=T0) == []  # a replay queues nothing
    assert len(await rows(pool, "SELECT id FROM notifications")) == 2


async def test_per_phone_limit_counts_the_rows_of_the_same_batch(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service(policy=OutboxPolicy(per_phone_per_hour=2))
    items = [_req(f"B{i}", "13800001001", f"公益短信{i}") for i in range(5)]
    async with pool.acquire() as conn:
        await enqueue(conn, items, now=T0)
    await svc.tick()  # all five are claimed in one batch
    assert len(await messages(sim, "13800001001")) == 2
    waiting = await rows(pool, "SELECT next_attempt_at FROM notifications WHERE status='pending'")
    assert len(waiting) == 3 and all(w["next_attempt_at"] == T0 + timedelta(hours=1) for w in waiting)
    limited = await rows(pool, "SELECT 1 FROM notification_attempts WHERE outcome='rate_limited'")
    assert len(limited) == 3
    clock.set(T0 + timedelta(hours=1, seconds=1))
    await svc.tick()
    assert len(await messages(sim, "13800001001")) == 4  # two more an hour later, one still waits


async def test_identical_text_already_sent_is_suppressed_in_a_batch(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    async with pool.acquire() as conn:
        await enqueue(conn, [_req("C1", "13800001001", "同一条")], now=T0)
    await svc.tick()
    clock.advance(60)
    async with pool.acquire() as conn:
        await enqueue(conn, [_req("C2", "13800001001", "同一条"), _req("C3", "13800001001", "另一条")], now=clock.now())
    await svc.tick()
    assert [m["body"] for m in await messages(sim, "13800001001")].count("【区应急指挥中心】同一条") <= 1
    st = {r["status"] for r in await rows(pool, "SELECT status FROM notifications WHERE body='同一条'")}
    assert st == {"sent", "suppressed"}
    assert len(await messages(sim, "13800001001")) == 2


async def test_a_batch_applies_each_alerts_records_in_order_in_one_pass(
    pool: asyncpg.Pool, make_service: ServiceFactory,
) -> None:
    from alerting_helpers import resolved

    svc = await make_service()
    gas = ev("gas.high", "S1-GAS1", "S1")
    fire = ev("fire.alarm", "P2", "S2")
    gone = resolved(gas, T0 + timedelta(minutes=5))
    # firing and resolved of one alert in the same batch, another alert, and a replay of the first
    assert await svc.handle_events([gas, fire, gone, gas]) == ["new", "new", "resolved", "replay"]
    assert await svc.handle_events([fire, gone]) == ["replay", "replay"]
    alerts = {r["id"]: r for r in await rows(pool, "SELECT id, state, ack_code, version FROM alerts")}
    assert alerts[gas.id]["state"] == "resolved" and alerts[gas.id]["version"] == 2
    assert alerts[fire.id]["state"] == "firing"
    assert len({a["ack_code"] for a in alerts.values()}) == 2  # distinct 回复码
    trail = [(r["alert_id"], r["action"]) for r in await rows(
        pool, "SELECT alert_id, action FROM alert_transitions WHERE action IN ('fire','resolve') ORDER BY id")]
    assert sorted(trail) == sorted([(gas.id, "fire"), (fire.id, "fire"), (gas.id, "resolve")])
    groups = {r["key"] for r in await rows(pool, "SELECT key FROM alert_groups")}
    assert len(groups) == 2
