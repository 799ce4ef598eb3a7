"""Fixtures for alerting tests; the district and helpers are in ``alerting_helpers``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from alerting_helpers import KEY_ID, ROUTES, SECRET, T0, ServiceFactory, fill_registry

from alerting.clock import ManualClock
from alerting.config import AlertingConfig, load_config
from alerting.notify.console import ConsoleNotifier
from alerting.notify.sms import SmsNotifier
from alerting.notify.sms_aliyun import AliyunSms
from alerting.notify.sms_tencent import TencentSms
from alerting.notify.sms_webhook import WebhookSms
from alerting.outbox import OutboxPolicy
from alerting.service import AlertingOptions, AlertingService
from hazmon.topics import Topics
from sim.gateway import SimulatorConfig, SmsSimulator


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=6)
    async with p.acquire() as conn:
        await fill_registry(conn)
    yield p
    await p.close()


@pytest.fixture
async def sim() -> AsyncIterator[SmsSimulator]:
    s = SmsSimulator(SimulatorConfig(webhook_secret=SECRET, keys={KEY_ID: SECRET}))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def make_service(pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock
                       ) -> AsyncIterator[ServiceFactory]:
    made: list[tuple[AlertingService, SmsNotifier]] = []

    async def factory(*, provider: str = "webhook", config: AlertingConfig | None = None,
                      topics: Topics | None = None, bootstrap: str | None = None,
                      policy: OutboxPolicy | None = None, group_id: str = "alerting-test") -> AlertingService:
        if provider == "aliyun":
            prov: Any = AliyunSms(f"{sim.url}/aliyun", KEY_ID, SECRET, "区应急指挥中心")
        elif provider == "tencent":
            prov = TencentSms(f"{sim.url}/tencent", KEY_ID, SECRET, "区应急指挥中心", "1400000001")
        else:
            prov = WebhookSms(f"{sim.url}/webhook/sms", SECRET, "区应急指挥中心")
        sms = SmsNotifier(prov, timeout_s=2.0)
        svc = AlertingService(
            pool=pool, config=config or load_config(ROUTES), clock=clock,
            notifiers={"sms": sms, "console": ConsoleNotifier()},
            options=AlertingOptions(
                topics=topics, bootstrap=bootstrap, group_id=group_id, ack_base_url="http://ack.test/a",
                outbox_policy=policy or OutboxPolicy(base_delay=timedelta(seconds=10),
                                                     max_delay=timedelta(minutes=5))),
        )
        await svc.start()
        made.append((svc, sms))
        return svc

    yield factory
    for svc, sms in made:
        await svc.stop()
        await sms.aclose()


