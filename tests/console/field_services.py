"""The services behind the field page's browser tests (test_console_field_browser.py): the SMS
gateway simulator in its 阿里云 shape and alerting's own outbox sender, order pass and follow-up
pass, on an event loop of their own — the test thread belongs to Playwright. What a phone
received is read from the simulator."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from console_district import NOW

from alerting import lifecycle
from alerting.compose import ComposeContext
from alerting.config import load_config
from alerting.followup import send_outcomes
from alerting.notify.sms import SmsNotifier
from alerting.notify.sms_aliyun import AliyunSms
from alerting.outbox import NewNotification, OutboxSender, enqueue
from alerting.templates import Deployment, ack_placeholder, render, variant
from alerting.workorder_notify import notify_due_orders
from hazmon.contracts import NotificationRequest, Recipient, RecipientRole
from hazmon.registry import load_registry
from hazmon.settings import Settings
from sim.gateway import SimulatorConfig, SmsSimulator

__all__ = ["Services", "GRID_V1", "BOSS_S1", "SIGN"]

GRID_V1 = "13900001111"  # 东门社区's grid member (console_district)
BOSS_S1 = "13812345678"  # 王老板, 老王饭店's 主要负责人
KEY, SECRET, SIGN = "field-key", "field-secret", "区应急指挥中心"


class Services:
    """The simulator and the outbox sender on an event loop of their own (the test thread
    belongs to Playwright)."""

    def __init__(self, dsn: str, console_url: str) -> None:
        self.dsn, self.console_url = dsn, console_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="field-services", daemon=True)
        self.thread.start()
        self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _start(self) -> None:
        self.sim = SmsSimulator(SimulatorConfig(keys={KEY: SECRET}, ack_url=f"{self.console_url}/ack"))
        await self.sim.start()
        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=3)
        self.notifier = SmsNotifier(AliyunSms(f"{self.sim.url}/aliyun", KEY, SECRET, SIGN), timeout_s=5.0)
        self.sender = OutboxSender(self.pool, {"sms": self.notifier})

    async def _stop(self) -> None:
        await self.notifier.aclose()
        await self.pool.close()
        await self.sim.stop()

    def stop(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def sms(self, phone: str) -> list[str]:
        """Deliver what is queued (one pass of the sender), then what the phone received."""

        async def go() -> list[str]:
            await self.sender.run_once(datetime.now(UTC))
            async with httpx.AsyncClient() as c:
                return [
                    m["body"]
                    for m in (await c.get(f"{self.sim.url}/messages", params={"phone": phone})).json()
                ]

        return self.run(go())

    def sql(self, query: str, *args: Any) -> list[Any]:
        async def go() -> list[Any]:
            async with self.pool.acquire() as conn:
                return list(await conn.fetch(query, *args))

        return self.run(go())

    def alarm_sms(self, alert_id: str) -> None:
        """The alarm SMS with its link to 东门社区's grid member, as alerting's flush queues it."""

        async def go() -> None:
            name = variant("alarm", "sup", "gas.high", link=True)
            params = {
                "level": "红色报警",
                "unit": "老王饭店",
                "loc": "后厨",
                "what": "可燃气体浓度超标",
                "reading": "32%LEL",
                "when": "11月20日09:56",
                "code": "000000",
                "token": ack_placeholder(),
                "person": "王老板",
                "phone": BOSS_S1,
            }
            body, sent = render(
                name,
                params,
                sign_name=SIGN,
                provider="aliyun",
                deployment=Deployment(f"{self.console_url}/ack", "0571-88001110"),
            )
            r = Recipient(
                role=RecipientRole.GRID_MEMBER,
                name="陈网格",
                unit="东门社区",
                phone=GRID_V1,
                rule="territory:V1",
            )
            req = NotificationRequest(
                id="n-field-grid",
                alert_id=alert_id,
                channel="sms",
                recipient=r,
                template="alarm",
                body=body,
                created_at=NOW,
            )
            async with self.pool.acquire() as conn:
                await enqueue(conn, [NewNotification(req, sent)], now=NOW)

        self.run(go())

    def dispatch(self, alert_id: str, unit: str) -> None:
        async def go() -> None:
            async with self.pool.acquire() as conn:
                r = await lifecycle.dispatch(
                    conn, alert_id, actor="centre:centre1", now=datetime.now(UTC), units=[unit]
                )
                assert r.applied, r.problem

        self.run(go())

    async def _ctx(self) -> ComposeContext:
        async with self.pool.acquire() as conn:
            registry = await load_registry(conn)
        return ComposeContext(
            registry, load_config(Settings().routes_file), SIGN, f"{self.console_url}/ack", "aliyun"
        )

    def notify_orders(self) -> int:
        """alerting's work-order timer pass: each new order told to its person (SMS with its link)."""

        async def go() -> int:
            return await notify_due_orders(self.pool, await self._ctx(), datetime.now(UTC))

        return self.run(go())

    def outcomes(self) -> int:
        """alerting's follow-up pass: the outcome SMS of the alarms closed since the last pass."""

        async def go() -> int:
            async with self.pool.acquire() as conn:
                registry = await load_registry(conn)
            ctx = ComposeContext(
                registry, load_config(Settings().routes_file), SIGN, f"{self.console_url}/ack", "aliyun"
            )
            return await send_outcomes(self.pool, ctx, datetime.now(UTC))

        return self.run(go())
