"""Replays to the Alertmanager-compatible endpoint within Prometheus's resend window (issue 20):
the stale ones are refused and audited (tests/alerting/test_am_receiver.py); a captured firing
request sent again after its alert resolved is taken (Prometheus itself resends) but reopens
nothing and reaches no phone — the alert id is its label set and ``startsAt``, and a resolved
alert's firing record is a replay. Real services: the inbound app under uvicorn, Kafka,
PostgreSQL, the SMS gateway simulator over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
import uvicorn
from alerting_helpers import SECRET, ServiceFactory, consume, messages

from alerting.clock import ManualClock
from alerting.inbound import InboundConfig, build_app
from hazmon.topics import Topics
from sim.gateway import SmsSimulator

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.watchdog]

TOKEN = "prom-bearer-token-for-replays"
DUTY = "13900000000"


@pytest.fixture
async def inbound_url(pool: asyncpg.Pool, clock: ManualClock, pg_dsn: str, kafka_bootstrap: str,
                      topics: Topics) -> AsyncIterator[str]:
    cfg = InboundConfig(secret=SECRET, alertmanager_token=TOKEN, kafka_bootstrap=kafka_bootstrap,
                        events_topic=topics.events)
    app = build_app(pool, clock, config=cfg, dsn=pg_dsn)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", proxy_headers=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await app.aclose()


async def _post(url: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient() as c:
        return await c.post(f"{url}/api/v2/alerts", content=body,
                            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})


async def test_a_captured_firing_request_replayed_after_the_resolve_reopens_nothing(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    inbound_url: str, topics: Topics, kafka_bootstrap: str,
) -> None:
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    now = clock.now()
    labels = {"alertname": "HazmonStageDown", "severity": "red", "job": "hazmon-alerting", "instance": "alerting:9100"}

    def alert(ends: str) -> bytes:
        return json.dumps([{"labels": labels, "annotations": {"summary": "告警服务停止运行"},
                            "startsAt": (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
                            "endsAt": ends, "generatorURL": "http://prometheus:9090/graph"}]).encode()

    captured = alert((now + timedelta(minutes=4)).isoformat().replace("+00:00", "Z"))
    assert (await _post(inbound_url, captured)).status_code == 200
    assert await consume(svc, 1) == 1
    clock.advance(31)
    await svc.tick()
    assert len(await messages(sim, DUTY)) == 1
    ended = (clock.now() - timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    assert (await _post(inbound_url, alert(ended))).status_code == 200
    assert await consume(svc, 1) == 1
    # the captured firing request, sent again 2 minutes later (inside the 20-minute window)
    clock.advance(120)
    assert (await _post(inbound_url, captured)).status_code == 200
    assert await consume(svc, 1) == 1
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT state FROM alerts WHERE domain = 'system'")
    assert [r["state"] for r in rows] == ["resolved"]
    clock.advance(60)  # (before the red ladder's 工作提醒单, 5 min after the alarm)
    await svc.tick()
    sent = await messages(sim, DUTY)
    assert len(sent) == 1 and "告警服务停止运行" in sent[0]["body"], [m["body"] for m in sent]
