"""Alerting watches the watchdog (alerting/selfwatch.py, issue 20 item 2): on the real
PostgreSQL, the real service with data/routes.yaml and the SMS gateway simulator over HTTP. A
watchdog heartbeat older than its ``alarm_after_s`` is one red 看门狗心跳中断 to the duty operator
(route ``watchdog-heartbeat``), never repeated, and one 恢复 when the heartbeat moves again."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg
import pytest
from alerting_helpers import ServiceFactory, messages

from alerting import selfwatch
from alerting.clock import ManualClock
from sim.gateway import SmsSimulator

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.watchdog]

DUTY = "13900000000"  # data/routes.yaml duty_operator


@pytest.fixture
def clock() -> ManualClock:
    # the heartbeats' ages are the database's clock: the service's must be the same time
    return ManualClock(datetime.now(UTC))


async def _beat(pool: asyncpg.Pool, age_s: float) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO stage_heartbeats (stage, instance, started_at, beat_at, detail)
               VALUES ('watchdog', 'wd-1', now() - interval '1 hour', now() - make_interval(secs => $1), $2)
               ON CONFLICT (stage, instance) DO UPDATE SET beat_at = EXCLUDED.beat_at""",
            float(age_s), json.dumps({"alarm_after_s": 30}))


async def test_a_silent_watchdog_is_one_red_alarm_to_the_duty_operator_then_one_recovery(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
) -> None:
    svc = await make_service()
    await _beat(pool, 5)
    assert await selfwatch.check(svc, clock.now()) == []  # beating: nothing
    await _beat(pool, 45)
    assert await selfwatch.check(svc, clock.now()) == ["new"]
    await svc.tick()  # group_wait 0s
    sms = await messages(sim, DUTY)
    assert len(sms) == 1, sms
    body = sms[0]["body"]
    print(body)
    # the duty operator's own job, in words (templates/system.py): no supervision of a business
    assert body.startswith("红色报警：区应急指挥中心监测系统的主机wd-1发生看门狗心跳中断（"), body
    assert "。看门狗进程停止：请检查值守看门狗服务并重启，恢复前告警服务失去外部监督。回复" in body, body
    assert "督促企业" not in body and "企业联系人" not in body and "中心值班电话" not in body, body
    assert await messages(sim) == sms  # nobody but the duty operator
    # the next passes, and a restarted alerting, raise nothing again
    assert await selfwatch.check(svc, clock.now()) == []
    again = await make_service(group_id="alerting-test-2")
    assert await selfwatch.check(again, clock.now()) == []
    clock.advance(60)
    await svc.tick()
    assert len(await messages(sim, DUTY)) == 1
    # it beats again: resolved, and the 恢复 goes out (send_resolved of the duty desk)
    await _beat(pool, 1)
    assert await selfwatch.check(svc, clock.now()) == ["resolved"]
    clock.advance(1)
    await svc.tick()
    sms = await messages(sim, DUTY)
    assert len(sms) == 2 and sms[1]["body"].startswith("区应急指挥中心监测系统的主机wd-1的看门狗心跳中断已于"), sms[-1]
    assert sms[1]["body"].endswith("解除，请确认值守看门狗服务运行正常，并记录故障原因。"), sms[-1]
    assert await selfwatch.check(svc, clock.now()) == []
    clock.advance(600)
    await svc.tick()
    later = (await messages(sim, DUTY))[2:]
    print(sms[1]["body"], [m["body"] for m in later])
    assert not [m for m in later if m["template"] in ("alarm", "resolved")], later
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT state, severity, site_id FROM alerts WHERE kind = $1", selfwatch.KIND)
    assert [tuple(r) for r in rows] == [("resolved", "red", "区应急指挥中心监测系统")]
