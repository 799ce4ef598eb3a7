"""Prometheus's alerts through the Alertmanager-compatible endpoint (issue 20 item 3).

Real services only: the alerting inbound app served by uvicorn on 127.0.0.1, the Kafka-protocol
broker (the alerts are published on the events topic and consumed by the service like a
detector's), PostgreSQL and the SMS gateway simulator over HTTP. The payloads are the shape
Prometheus posts (Alertmanager API v2 ``PostableAlerts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
import yaml
from alerting_helpers import SECRET, ServiceFactory, consume, messages

from alerting.am_receiver import SYSTEM_SITE, alert_id
from alerting.clock import ManualClock
from alerting.inbound import InboundApp, InboundConfig, build_app
from hazmon.topics import Topics
from sim.gateway import SmsSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = "prom-bearer-token-for-tests"
DUTY = "13900000000"  # data/routes.yaml: 中心值班员, who takes an alarm nobody else is responsible for
Serve = Callable[[], Awaitable[str]]


@pytest.fixture
async def serve(pool: asyncpg.Pool, clock: ManualClock, pg_dsn: str, kafka_bootstrap: str,
                topics: Topics) -> AsyncIterator[Serve]:
    started: list[tuple[uvicorn.Server, asyncio.Task[None], InboundApp]] = []

    async def start() -> str:
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
        started.append((server, task, app))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, task, app in started:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await app.aclose()


def _alert(name: str, *, starts: datetime, ends: datetime, severity: str = "red", **labels: str
           ) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": "检测服务停止运行",
                        "description": f"{labels.get('instance', '')} 已 1 分钟无法抓取指标"},
        "startsAt": starts.isoformat().replace("+00:00", ".123456789Z"),
        "endsAt": ends.isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
    }


async def _post(url: str, alerts: Any, token: str | None = TOKEN, raw: bytes | None = None,
                auth: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if auth is not None:
        headers["Authorization"] = auth
    body = raw if raw is not None else json.dumps(alerts, ensure_ascii=False).encode()
    async with httpx.AsyncClient() as c:
        return await c.post(f"{url}/api/v2/alerts", content=body, headers=headers)


async def _audit(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT * FROM inbound_audit WHERE channel = 'alertmanager' ORDER BY id")


async def _alerts(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT * FROM alerts WHERE domain = 'system' ORDER BY id")


async def test_a_prometheus_alert_is_routed_to_the_duty_operator_and_resolves(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    serve: Serve, topics: Topics, kafka_bootstrap: str,
) -> None:
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    url = await serve()
    now = clock.now()
    firing = _alert("HazmonStageDown", starts=now - timedelta(minutes=1), ends=now + timedelta(minutes=4),
                    job="hazmon-detect", instance="detect:9100")
    r = await _post(url, [firing])
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "alerts": 1}
    assert await consume(svc, 1) == 1

    [row] = await _alerts(pool)
    assert row["kind"] == "system.hazmon_stage_down" and row["state"] == "firing"
    assert row["severity"] == "red" and row["site_id"] == SYSTEM_SITE
    labels = json.loads(row["labels"])
    assert labels["job"] == "hazmon-detect" and labels["instance"] == "detect:9100"
    assert labels["source"] == "prometheus"

    clock.advance(31)  # the default route's group_wait (30s)
    await svc.tick()
    sms = await messages(sim, DUTY)
    assert len(sms) == 1, sms
    assert "检测服务停止运行" in sms[0]["body"], sms[0]["body"]

    # Prometheus resends the firing alert every minute: the same alert, nothing sent again
    clock.advance(60)
    again = {**firing, "endsAt": (clock.now() + timedelta(minutes=4)).isoformat().replace("+00:00", "Z")}
    assert (await _post(url, [again])).status_code == 200
    assert await consume(svc, 1) == 1
    await svc.tick()
    assert len(await messages(sim, DUTY)) == 1
    assert len(await _alerts(pool)) == 1

    # resolved: endsAt in the past
    ended = clock.now() - timedelta(seconds=5)
    resolved = {**firing, "endsAt": ended.isoformat().replace("+00:00", "Z")}
    assert (await _post(url, [resolved])).status_code == 200
    assert await consume(svc, 1) == 1
    [row] = await _alerts(pool)
    assert row["state"] == "resolved" and row["ends_at"] == ended
    assert await _audit(pool) == []


@pytest.mark.watchdog  # issue 20's fault list (./run.sh test -m watchdog)
async def test_forged_and_replayed_requests_are_refused_and_audited(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    serve: Serve, topics: Topics, kafka_bootstrap: str,
) -> None:
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    url = await serve()
    now = clock.now()
    alert = _alert("HazmonStageDown", starts=now - timedelta(minutes=1), ends=now + timedelta(minutes=4),
                   job="hazmon-detect", instance="detect:9100")

    no_token = await _post(url, [alert], token=None)
    assert no_token.status_code == 401 and "Authorization" in no_token.json()["error"]
    wrong = await _post(url, [alert], token=TOKEN + "x")
    assert wrong.status_code == 401 and wrong.json()["error"] == "Bearer 令牌无效"
    basic = await _post(url, [alert], auth=f"Basic {TOKEN}")
    assert basic.status_code == 401 and basic.json()["error"] == "Authorization 头不是 Bearer 令牌"
    # a request captured long ago and sent again: its alert ended 1 h before now
    old = _alert("HazmonStageDown", starts=now - timedelta(hours=2), ends=now - timedelta(hours=1),
                 job="hazmon-detect", instance="detect:9100")
    replay = await _post(url, [old])
    assert replay.status_code == 409 and "重放" in replay.json()["error"]
    future = _alert("HazmonStageDown", starts=now + timedelta(hours=1), ends=now + timedelta(hours=2))
    assert (await _post(url, [future])).status_code == 400
    not_json = await _post(url, None, raw=b"{not json")
    assert not_json.status_code == 400 and not_json.json()["error"] == "请求体不是 JSON"
    big = await _post(url, None, raw=b"[" + b" " * (70 * 1024) + b"]")
    assert big.status_code == 413

    rows = await _audit(pool)
    assert [r["outcome"] for r in rows] == ["forged", "forged", "forged", "replayed", "bad_request",
                                           "bad_request", "too_large"]
    assert all(r["provider"] == "prometheus" and r["ip"] == "127.0.0.1" for r in rows)
    assert "Bearer 令牌无效" in json.loads(rows[1]["detail"])["error"]
    # nothing of it reached the events topic, the alerts or a phone
    assert await consume(svc, 1, max_polls=3) == 0
    assert await _alerts(pool) == []
    clock.advance(60)
    await svc.tick()
    assert await messages(sim) == []


@pytest.mark.watchdog  # issue 20's fault list (./run.sh test -m watchdog)
async def test_a_flood_of_prometheus_alerts_is_one_sms(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    serve: Serve, topics: Topics, kafka_bootstrap: str,
) -> None:
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    url = await serve()
    now = clock.now()
    flood = [_alert("HazmonStageDown", starts=now - timedelta(minutes=1), ends=now + timedelta(minutes=4),
                    job="hazmon-bridge", instance=f"bridge-{i}:9100") for i in range(64)]
    assert (await _post(url, flood)).status_code == 200
    assert await consume(svc, 64) == 64
    rows = await _alerts(pool)
    assert len(rows) == 64 and len({r["group_key"] for r in rows}) == 1
    started = (now - timedelta(minutes=1)).replace(microsecond=123456)  # Prometheus's nanoseconds, cut
    assert {r["id"] for r in rows} == {alert_id(a["labels"], started) for a in flood}
    clock.advance(31)
    await svc.tick()
    clock.advance(31)
    await svc.tick()
    sms = await messages(sim, DUTY)
    assert len(sms) == 1, [m["body"] for m in sms]
    assert "等64处" in sms[0]["body"], sms[0]["body"]
    assert await messages(sim) == sms  # nobody else is responsible for the monitoring itself


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary (Debian's prometheus package, "
                                               "scripts/setup_system.sh installs it for promtool)")
async def test_real_prometheus_posts_its_alerts_through_to_the_duty_operator(
    pool: asyncpg.Pool, sim: SmsSimulator, clock: ManualClock, make_service: ServiceFactory,
    serve: Serve, topics: Topics, kafka_bootstrap: str, tmp_path: Path,
) -> None:
    """Prometheus itself (its notifier, API v2, bearer credentials file) → the endpoint → Kafka
    → the consume loop → an SMS at the duty operator's phone."""
    clock.set(datetime.now(UTC))  # Prometheus stamps its alerts with the real time
    svc = await make_service(topics=topics, bootstrap=kafka_bootstrap)
    url = await serve()
    (tmp_path / "token").write_text(TOKEN, encoding="utf-8")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "t", "interval": "1s", "rules": [{
        "alert": "HazmonStageDown", "expr": "vector(1)", "labels": {"severity": "red", "job": "hazmon-detect"},
        "annotations": {"summary": "监测链路环节停止运行", "description": "检测服务已 1 分钟无法抓取指标"}}]}]},
        allow_unicode=True), encoding="utf-8")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"evaluation_interval": "1s"}, "rule_files": ["rules.yml"],
        "alerting": {"alertmanagers": [{
            "api_version": "v2", "authorization": {"type": "Bearer", "credentials_file": str(tmp_path / "token")},
            "static_configs": [{"targets": [url.removeprefix("http://")]}]}]}}), encoding="utf-8")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    web = f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    proc = await asyncio.create_subprocess_exec(
        PROMETHEUS or "prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address={web}",
        "--rules.alert.resend-delay=1s", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        rows: list[asyncpg.Record] = []
        for _ in range(40):  # bounded: Prometheus drops the alerts it has before its notifier is ready
            await svc.poll_once(timeout_ms=500)
            rows = await _alerts(pool)
            if rows:
                break
    finally:
        proc.terminate()
        await proc.wait()
    assert [r["kind"] for r in rows] == ["system.hazmon_stage_down"]
    assert json.loads(rows[0]["labels"])["job"] == "hazmon-detect"
    clock.advance(31)
    await svc.tick()
    [sms] = await messages(sim, DUTY)
    assert sms["body"].startswith("红色报警："), sms["body"]  # the severity in words (alerting/templates/)
    assert "的检测服务发生监测链路环节停止运行：检测服务已 1 分钟无法抓取指标（" in sms["body"], sms["body"]
    assert "）。监测系统环节故障：请立即检查该服务并恢复，恢复前报警可能无法及时发出。回复" in sms["body"], sms["body"]
    assert await _audit(pool) == []
