"""Events through Kafka into alerting, against real PostgreSQL and the SMS simulator over HTTP,
with a controllable clock: who gets what, and when."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from alerting_helpers import T0, ServiceFactory, consume, ev, messages, produce, produce_raw, resolved

from alerting.clock import ManualClock
from hazmon.contracts import DeadLetter, Severity
from hazmon.topics import Topics
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

BUSINESS_S1, GRID_V1, DUTY_T1, ZJ = "13800001001", "13800000201", "13800000101", "13800000301"


async def rows(pool: asyncpg.Pool, sql: str, *args: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(sql, *args)


async def test_matrix_resolution_through_kafka(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    topics: Topics, kafka_bootstrap: str,
) -> None:
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    gas = ev("gas.high", "S1-GAS1", "S1")
    await produce(kafka_bootstrap, topics, [gas])
    assert await consume(svc, 1) == 1

    await svc.tick()  # group_wait (10 s for gas-high) not over: nothing yet
    assert await messages(sim) == []
    clock.advance(10)
    rep = await svc.tick()
    assert rep.flushed == 1
    got = {m["phone"]: m for m in await messages(sim)}
    # 企业主体 + 属地 (网格员, 街道值班) + 行业监管 (住建 for gas); life_safety also names 包保 (none at S1)
    assert set(got) == {BUSINESS_S1, GRID_V1, DUTY_T1, ZJ}
    body = got[BUSINESS_S1]["body"]
    assert "老王饭店" in body and "厨房燃气探测器" in body and "可燃气体浓度超高限报警" in body and "红色" in body
    assert "11月3日09:00" in body and "关闭燃气阀门" in body
    code = got[BUSINESS_S1]["params"]["code"]  # the business's own 回复码 (each recipient has theirs)
    assert f"回复{code}确认" in body and len({m["params"]["code"] for m in got.values()}) == len(got)
    # each notification names the matrix rule that chose its recipient
    rules = {r["recipient_phone"]: r["rule"] for r in await rows(
        pool, "SELECT recipient_phone, rule FROM notifications WHERE channel='sms'")}
    assert rules == {BUSINESS_S1: "site:S1:contact", GRID_V1: "village:V1:grid_member",
                     DUTY_T1: "township:T1:duty", ZJ: "matrix:R-gas:department:zj"}
    alert = (await rows(pool, "SELECT township_id, department_ids, phase FROM alerts WHERE id=$1", gas.id))[0]
    assert alert["township_id"] == "T1" and alert["department_ids"] == ["zj"] and alert["phase"] == "alarm"


async def test_fire_at_elderly_home_reaches_civil_affairs_and_covering_leader(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    await svc.handle_events([ev("fire.alarm", "S3-FIRE", "S3", component="3层12号")])
    clock.advance(10)
    await svc.tick()
    phones = {m["phone"] for m in await messages(sim)}
    # 应急 + 消防救援 (fire rule), 民政 (养老 rule), 包保领导 陈主任, 西山镇, 李网格, 孙院长
    assert phones == {"13800000303", "13800000304", "13800000305", "13800000409", "13800000102",
                      "13800000202", "13800003001"}


async def test_twenty_smoke_detectors_on_one_panel_make_one_message_and_replay_sends_nothing(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    topics: Topics, kafka_bootstrap: str,
) -> None:
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    burst = [ev("fire.alarm", f"P2-D{i:02d}", "S2", at=T0 + timedelta(seconds=i % 7)) for i in range(1, 21)]
    await produce(kafka_bootstrap, topics, burst)
    assert await consume(svc, 20) == 20
    clock.advance(10)
    await svc.tick()
    sms = await messages(sim)
    per_phone: dict[str, int] = {}
    for m in sms:
        per_phone[m["phone"]] = per_phone.get(m["phone"], 0) + 1
    assert per_phone and all(n == 1 for n in per_phone.values()), per_phone  # one message each, not twenty
    assert "等20处" in sms[0]["body"] and "幸福商场" in sms[0]["body"]
    assert len(await rows(pool, "SELECT 1 FROM alert_groups")) == 1
    sent_before = len(sms)

    # the detectors replay the same 20 events (at-least-once): nothing new is sent
    await produce(kafka_bootstrap, topics, burst)
    assert await consume(svc, 20) == 20
    clock.advance(timedelta(minutes=3))  # past group_interval: a flush happens, with nothing new
    await svc.tick()
    assert len(await messages(sim)) == sent_before
    alarms = [m for m in await messages(sim) if m["template"] == "alarm"]
    assert len(alarms) == sent_before
    # a fresh consumer group re-reading the topic from the start (a restarted alerting) neither
    fresh = await make_service(topics=topics, bootstrap=kafka_bootstrap, group_id="alerting-test-2")
    assert await consume(fresh, 40) == 40
    clock.advance(timedelta(minutes=3))
    await fresh.tick()
    assert len([m for m in await messages(sim) if m["template"] == "alarm"]) == sent_before
    # one escalation ladder for the group, not twenty: 工作提醒单 for its first alarm only
    notices = await rows(pool, "SELECT alert_id, level FROM notices")
    lead = min(burst, key=lambda e: (e.starts_at, e.id))
    assert [(n["alert_id"], n["level"]) for n in notices] == [(lead.id, "reminder")]
    assert (await rows(pool, "SELECT count(*) AS n FROM alerts"))[0]["n"] == 20


async def test_gateway_offline_inhibits_its_detectors_offline(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    y = Severity.YELLOW
    gw = ev("device.offline", "G2", "S2", severity=y)
    kids = [ev("device.offline", f"G2-GAS{i}", "S2", severity=y) for i in range(1, 4)]
    await svc.handle_events([gw, *kids])
    clock.advance(timedelta(minutes=2))
    await svc.tick()
    sup = {r["id"]: r["suppressed_by"] for r in await rows(pool, "SELECT id, suppressed_by FROM alerts")}
    assert sup[gw.id] == ""
    assert all(sup[k.id] == f"inhibit:hub-offline:{gw.id}" for k in kids)
    bodies = [m["body"] for m in await messages(sim)]
    assert bodies and all("燃气网关" in b and "设备离线" in b for b in bodies)
    assert not any("等" in b for b in bodies)  # the three detectors are not counted in


async def test_fire_alarm_inhibits_faults_on_the_same_panel_until_it_resolves(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    fire = ev("fire.alarm", "P2-D01", "S2")
    fault = ev("fire.fault", "P2-D02", "S2", severity=Severity.YELLOW)
    await svc.handle_events([fire, fault])
    clock.advance(timedelta(minutes=1))
    await svc.tick()
    assert not any("消防设备故障" in m["body"] for m in await messages(sim))
    assert (await rows(pool, "SELECT suppressed_by FROM alerts WHERE id=$1", fault.id))[0]["suppressed_by"] \
        == f"inhibit:fire-over-fault:{fire.id}"
    # the fire is put out; the fault is still there and is now told at the group's next flush
    clock.advance(timedelta(minutes=1))
    await svc.handle_events([resolved(fire, clock.now())])
    clock.advance(timedelta(minutes=5))
    await svc.tick()
    assert any("消防设备故障" in m["body"] for m in await messages(sim))
    assert (await rows(pool, "SELECT suppressed_by FROM alerts WHERE id=$1", fault.id))[0]["suppressed_by"] == ""


async def test_silence_mutes_until_it_expires(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    from alerting.silence import create_silence, silence_audit

    svc = await make_service()
    async with pool.acquire() as conn:
        sil = await create_silence(conn, actor="op-li", now=clock.now(), matchers=['site_id="S6"', 'domain="elevator"'],
                                   ends_at=clock.now() + timedelta(hours=1), reason="电梯维保 9:00-10:00")
    fault = ev("elevator.door_lock_fault", "E6", "S6", severity=Severity.ORANGE)
    await svc.handle_events([fault])
    clock.advance(timedelta(minutes=1))
    await svc.tick()
    assert await messages(sim) == []
    assert (await rows(pool, "SELECT suppressed_by FROM alerts"))[0]["suppressed_by"] == f"silence:{sil.id}"
    # still firing during the window: still nothing, and no escalation either
    clock.advance(timedelta(minutes=50))
    await svc.tick()
    assert await messages(sim) == [] and not await rows(pool, "SELECT 1 FROM notices")
    # the window ends; at the next flush the still-firing fault is told
    clock.advance(timedelta(minutes=10))
    await svc.tick()
    got = await messages(sim)
    assert {m["phone"] for m in got} >= {"13800006001", GRID_V1}
    assert "电梯门锁回路故障" in got[0]["body"]
    async with pool.acquire() as conn:
        audit = await silence_audit(conn, sil.id)
    assert [a["action"] for a in audit] == ["create"] and audit[0]["actor"] == "op-li"


async def test_bad_records_go_to_dead_letter_and_the_loop_goes_on(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    topics: Topics, kafka_bootstrap: str,
) -> None:
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    good = ev("gas.high", "S1-GAS1", "S1")
    await produce_raw(kafka_bootstrap, topics, [b"{not json", json.dumps({"v": 1, "id": "x"}).encode()])
    await produce(kafka_bootstrap, topics, [good])
    assert await consume(svc, 3) == 3
    assert len(await rows(pool, "SELECT 1 FROM alerts")) == 1
    dlq = AIOKafkaConsumer(topics.deadletter, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                           group_id="dlq-reader")
    await dlq.start()
    try:
        got: list[DeadLetter] = []
        for _ in range(20):
            batch = await dlq.getmany(timeout_ms=500)
            got += [DeadLetter.model_validate_json(r.value) for rs in batch.values() for r in rs]
            if len(got) >= 2:
                break
    finally:
        await dlq.stop()
    assert len(got) == 2 and all(d.stage == "alerting" and d.reason == "schema" for d in got)
    assert got[0].raw == b"{not json"


async def test_nobody_configured_still_reaches_duty_operator(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    # a site the registry does not know, in a domain no rule covers
    await svc.handle_events([ev("power.outage", "X-1", "S-UNKNOWN", domain="power")])
    clock.advance(timedelta(seconds=30))
    await svc.tick()
    got = await messages(sim)
    assert [m["phone"] for m in got] == ["13900000000"]
    rule = (await rows(pool, "SELECT rule FROM notifications WHERE channel='sms'"))[0]["rule"]
    assert rule == "fallback:duty_operator"
    # warnings an operator sees at load
    assert any("domain 'power' has no responsible department" in w for w in svc.warnings)
    assert any("S4" in w and "no contacts" in w for w in svc.warnings)
    assert any("S5" in w and "'12345'" in w for w in svc.warnings)


async def test_invalid_phone_is_skipped_others_still_told(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    await svc.handle_events([ev("gas.high", "S5-GAS1", "S5")])
    clock.advance(10)
    await svc.tick()
    phones = {m["phone"] for m in await messages(sim)}
    assert "12345" not in phones and {"13800000202", "13800000102", ZJ} <= phones



async def test_matrix_changes_are_picked_up_on_reload(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    async with pool.acquire() as conn:  # the district moves gas to 应急 (an edit in the console)
        await conn.execute("UPDATE matrix_rules SET department_ids='{yj}' WHERE id='R-gas'")
    await svc.reload()
    await svc.handle_events([ev("gas.high", "S1-GAS1", "S1")])
    clock.advance(10)
    await svc.tick()
    phones = {m["phone"] for m in await messages(sim)}
    assert "13800000303" in phones and ZJ not in phones
    assert (await rows(pool, "SELECT department_ids FROM alerts"))[0]["department_ids"] == ["yj"]


async def test_route_naming_an_unknown_domain_is_a_warning(
    pool: asyncpg.Pool, make_service: ServiceFactory,
) -> None:
    from alerting_helpers import config_with, raw_routes

    raw = raw_routes()
    raw["route"]["routes"].append({"name": "hazchem", "matchers": ['domain="hazchem"'], "receiver": "standard"})
    svc = await make_service(config=config_with(route=raw["route"]))
    assert any("route 'hazchem'" in w and "matches nothing" in w for w in svc.warnings)


async def test_metrics_count_notifications_escalations_and_ack_time(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    from prometheus_client import REGISTRY

    from alerting.inbound import handle_reply

    def val(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    sent0 = val("hazmon_alerting_notifications_total", channel="sms", outcome="sent")
    esc0 = val("hazmon_alerting_escalations_total", level="reminder")
    ack0 = val("hazmon_alerting_time_to_ack_seconds_count")
    svc = await make_service()
    gas = ev("gas.high", "S1-GAS1", "S1")
    await svc.handle_events([gas])
    clock.advance(timedelta(minutes=6))
    await svc.tick()
    # the alarm to 4, the 工作提醒单 to the township and its grid member (a business gets no notice)
    assert val("hazmon_alerting_notifications_total", channel="sms", outcome="sent") - sent0 == 4 + 2
    assert val("hazmon_alerting_escalations_total", level="reminder") - esc0 == 1
    code = (await messages(sim, "13800001001"))[0]["params"]["code"]
    async with pool.acquire() as conn:
        await handle_reply(conn, provider="webhook", phone="13800001001", text=code, now=clock.now())
    assert val("hazmon_alerting_time_to_ack_seconds_count") - ack0 == 1


async def test_broadcast_is_audited_and_rate_limited(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    from alerting.broadcast import broadcast
    from alerting.outbox import OutboxPolicy

    svc = await make_service(policy=OutboxPolicy(per_phone_per_hour=1))
    async with pool.acquire() as conn:
        r = await broadcast(conn, actor="ajb-zhou", now=clock.now(), broadcast_id="bc-spring", reason="春节前安全提示",
                            body="春节将至，请检查燃气管道和报警装置，离店关阀断电。", township_ids=["T1"],
                            key_period_id="2027-spring-festival")
        again = await broadcast(conn, actor="ajb-zhou", now=clock.now(), broadcast_id="bc-spring", reason="重复执行",
                                body="春节将至，请检查燃气管道和报警装置，离店关阀断电。", township_ids=["T1"])
    assert (r.recipients, r.queued, again.queued) == (3, 3, 0)  # S1, S2, S6 contacts in 东城街道; idempotent
    await svc.tick()
    got = await messages(sim)
    assert {m["phone"] for m in got} == {"13800001001", "13800002001", "13800006001"}
    assert all(m["template"] == "broadcast" and "离店关阀断电" in m["body"] for m in got)
    audit = (await rows(pool, "SELECT created_by, reason, recipients FROM broadcasts"))[0]
    assert (audit["created_by"], audit["reason"], audit["recipients"]) == ("ajb-zhou", "春节前安全提示", 3)
    # the per-phone limit applies to broadcasts: a second one to the same phones waits
    async with pool.acquire() as conn:
        await broadcast(conn, actor="ajb-zhou", now=clock.now(), broadcast_id="bc-2", reason="寒潮提示",
                        body="寒潮来袭，注意燃气安全。", township_ids=["T1"])
    await svc.tick()
    assert len(await messages(sim)) == 3
    assert len(await rows(pool, "SELECT 1 FROM notifications WHERE broadcast_id='bc-2' AND status='pending'")) == 3


async def test_consumer_lag_counts_the_events_still_behind_on_the_topic(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    topics: Topics, kafka_bootstrap: str,
) -> None:
    """hazmon_alerting_consumer_lag (the dashboard's 告警服务积压): three events of one device (one
    partition) taken one per poll leave 2, then 1, then 0 behind (as of the fetch that brought
    each: a record prefetched before more were produced counts what was there then)."""
    from prometheus_client import REGISTRY

    kinds = ("gas.high", "gas.sensor_fault", "gas.valve_fault")
    await produce(kafka_bootstrap, topics, [ev(k, "S1-GAS1", "S1", severity=Severity.YELLOW) for k in kinds])
    # produced before the consumer starts: its first fetch already sees all three
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)

    def lag() -> float:
        return sum(s.value for m in REGISTRY.collect() if m.name == "hazmon_alerting_consumer_lag"
                   for s in m.samples if s.labels["topic"] == topics.events)

    seen: list[float] = []
    for _ in range(60):
        if await svc.poll_once(timeout_ms=500, max_records=1):
            seen.append(lag())
        if len(seen) == 3:
            break
    assert seen == [2, 1, 0]
