"""The out-of-band watchdog on the real pipeline (issue 20 item 2): mosquitto, two bridges,
Tansu, the detector, PostgreSQL, alerting and the SMS/voice gateway simulator as processes (the
session's ``pipeline``), and ``hazmon watchdog`` as its own process with its default timings.

Each fault is real: alerting kill -9; the database made read-only for every session (what a
failover to a standby does: ``default_transaction_read_only`` and the sessions cut); the SMS
provider answering every request 503; the watchdog kill -9. Each asserts what the duty
operator's phones got from the simulator: the page within 60 s over SMS **and** a call (or the
call alone when SMS is what fails), nothing more while it lasts, and exactly one 恢复 after the fix.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from hazmon.procs import HazmonProcess
from hazmon.stack import free_port
from sim.harness import AckedPublisher, PipelineProcesses, fire_alarm_message, http_json, wait_until

pytestmark = [pytest.mark.watchdog, pytest.mark.fault, pytest.mark.timeout(600)]

SMS_PHONE = "13900000777"  # the watchdog's duty operator: SMS
VOICE_PHONE = "13900000778"  # and the number it calls
ROUTES_DUTY = "13900000000"  # routes_e2e.yaml duty_operator: alerting's own alarms


@pytest.fixture(scope="module")
def watchdog(pipeline: PipelineProcesses) -> Iterator[HazmonProcess]:
    http_port = free_port()
    stages = {name: f"http://127.0.0.1:{proc.metrics_port}/metrics" for name, proc in pipeline.stages.items()}
    env = {**pipeline.env(),
           "HAZMON_WATCHDOG__INSTANCE": "wd-e2e",
           "HAZMON_WATCHDOG__DUTY_SMS_PHONE": SMS_PHONE,
           "HAZMON_WATCHDOG__DUTY_VOICE_PHONE": VOICE_PHONE,
           "HAZMON_WATCHDOG__STAGES": json.dumps(stages),
           "HAZMON_WATCHDOG__HTTP_PORT": str(http_port)}
    proc = HazmonProcess("watchdog", ["watchdog"], pipeline.run_dir / "stages", env,
                         ready_url=f"http://127.0.0.1:{http_port}/healthz")
    proc.http_port = http_port  # type: ignore[attr-defined]
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _sms(p: PipelineProcesses, phone: str = SMS_PHONE) -> list[dict[str, Any]]:
    assert p.sms is not None
    return list(http_json(f"{p.sms.url}/messages?phone={phone}"))


def _calls(p: PipelineProcesses) -> list[dict[str, Any]]:
    assert p.sms is not None
    return list(http_json(f"{p.sms.url}/voice/calls?number={VOICE_PHONE}"))


def _mode(p: PipelineProcesses, **mode: Any) -> None:
    assert p.sms is not None
    req = urllib.request.Request(f"{p.sms.url}/admin/mode", data=json.dumps(mode).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def _healthz(wd: HazmonProcess) -> dict[str, Any]:
    return dict(http_json(f"http://127.0.0.1:{wd.http_port}/healthz"))  # type: ignore[attr-defined]


class _Phones:
    """What the watchdog's duty operator received after a mark: pages, 恢复 and calls."""

    def __init__(self, p: PipelineProcesses) -> None:
        self.p = p
        self.sms0, self.calls0 = len(_sms(p)), len(_calls(p))

    def sms(self, words: str) -> list[dict[str, Any]]:
        return [m for m in _sms(self.p)[self.sms0:] if words in m["body"]]

    def calls(self, words: str) -> list[dict[str, Any]]:
        return [c for c in _calls(self.p)[self.calls0:] if words in c["script"]]


async def _quiet(p: PipelineProcesses, wd: HazmonProcess, timeout_s: float = 90.0) -> None:
    """Before a fault: the pipeline up and the watchdog with no incident open."""
    started = p.ensure_running()
    if started:
        print(f"restarted before the test: {', '.join(started)}")
    if not wd.is_running:
        wd.start()
    # a canary another test left silent may be open: each test counts its own problem's messages
    await wait_until(lambda: set(_healthz(wd)["open"]) <= {"canary_broken"}, timeout_s, 1.0,
                     "watchdog with no open incident")


async def _state(p: PipelineProcesses) -> asyncpg.Record:
    rows = await p.fetch("SELECT * FROM watchdog_state WHERE instance = 'wd-e2e'")
    return rows[0]


async def test_alerting_killed_pages_over_sms_and_voice_then_one_recovery(
        live_pipeline: PipelineProcesses, watchdog: HazmonProcess) -> None:
    p = live_pipeline
    await _quiet(p, watchdog)
    phones = _Phones(p)
    t0 = time.monotonic()
    p.component("alerting").kill()
    try:
        waited = await wait_until(lambda: phones.sms("告警服务停止运行") and phones.calls("告警服务停止运行"),
                                  60, 0.5, "the page over SMS and voice")
        print(f"paged {waited:.1f} s after kill -9 of alerting")
        page = phones.sms("告警服务停止运行")[0]
        assert page["body"].startswith("监测系统故障：告警服务停止运行，报警短信和电话无法发出（")
        assert page["body"].endswith("）。请立即组织检修，检修期间人工值守。") and page["template"] == "watchdog.page"
        call = phones.calls("告警服务停止运行")[0]
        assert call["script"] == ("这里是区应急指挥中心监测系统看门狗。告警服务停止运行，报警短信和电话无法发出。"
                                  "请立即组织检修，检修期间人工值守。")
        state = await _state(p)
        assert state["verdict"] == "down" and "告警服务停止运行" in state["paged_about"]
        assert state["paging_since"] is not None
        await asyncio.sleep(20)  # four more rounds: no page repeated
        assert len(phones.sms("监测系统故障：告警服务停止运行")) == 1 and len(phones.calls("告警服务停止运行")) == 1
    finally:
        p.component("alerting").start()
    await wait_until(lambda: phones.sms("监测系统恢复：告警服务"), 60, 0.5, "the 恢复 SMS")
    await asyncio.sleep(15)
    recovered = phones.sms("监测系统恢复：告警服务")
    assert len(recovered) == 1 and recovered[0]["template"] == "watchdog.ok", recovered
    for text in (page["body"], call["script"], recovered[0]["body"]):
        print(f"the duty operator got: {text}")
    assert recovered[0]["body"].startswith("监测系统恢复：告警服务已恢复正常（")
    assert len(phones.sms("监测系统故障：告警服务停止运行")) == 1 and len(phones.calls("告警服务停止运行")) == 1  # a 恢复 is no call
    assert time.monotonic() - t0 < 300
    assert "告警服务停止运行" not in (await _state(p))["paged_about"]


async def _read_only(p: PipelineProcesses, on: bool) -> None:
    """``default_transaction_read_only`` for the hazmon database, and every session of it cut
    (a failover to a standby does both; the pools reconnect)."""
    conn = await asyncpg.connect(p.postgres.dsn("postgres"), timeout=10)
    try:
        sql = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
        await conn.execute(f"ALTER DATABASE hazmon {sql}")
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = 'hazmon' AND pid <> pg_backend_pid()")
    finally:
        await conn.close()


async def test_the_database_refusing_writes_pages_then_one_recovery(
        live_pipeline: PipelineProcesses, watchdog: HazmonProcess) -> None:
    p = live_pipeline
    await _quiet(p, watchdog)
    phones = _Phones(p)
    await _read_only(p, True)
    try:
        waited = await wait_until(lambda: phones.sms("数据库拒绝写入") and phones.calls("数据库拒绝写入"),
                                  60, 0.5, "the page over SMS and voice")
        print(f"paged {waited:.1f} s after the database went read-only")
        assert phones.sms("数据库拒绝写入")[0]["body"].startswith("监测系统故障：数据库拒绝写入，报警无法记录和发出（")
        health = _healthz(watchdog)
        assert health["ok"] and health["verdict"] == "down" and set(health["open"]) - {"canary_broken"} == {"db_refuses_writes"}
        await asyncio.sleep(5)
        assert len(phones.sms("监测系统故障：数据库拒绝写入")) == 1 and len(phones.calls("数据库拒绝写入")) == 1
    finally:
        await _read_only(p, False)
    await wait_until(lambda: phones.sms("监测系统恢复：数据库写入"), 60, 0.5, "the 恢复 SMS")
    await asyncio.sleep(15)
    recovered = phones.sms("监测系统恢复：数据库写入")
    assert len(recovered) == 1 and recovered[0]["body"].startswith("监测系统恢复：数据库写入已恢复正常（"), recovered
    assert len(phones.sms("监测系统故障：数据库拒绝写入")) == 1 and len(phones.calls("数据库拒绝写入")) == 1
    state = await _state(p)  # written again once the database takes writes
    assert "数据库拒绝写入" not in state["paged_about"]


async def test_the_database_killed_pages_unreachable_then_one_recovery(
        live_pipeline: PipelineProcesses, watchdog: HazmonProcess) -> None:
    p = live_pipeline
    await _quiet(p, watchdog)
    phones = _Phones(p)
    p.component("postgres").kill()
    try:
        waited = await wait_until(lambda: phones.sms("数据库无法连接") and phones.calls("数据库无法连接"),
                                  60, 0.5, "the page over SMS and voice")
        print(f"paged {waited:.1f} s after kill -9 of PostgreSQL")
        assert phones.sms("数据库无法连接")[0]["body"].startswith("监测系统故障：数据库无法连接，报警无法记录和发出（")
        assert set(_healthz(watchdog)["open"]) - {"canary_broken"} == {"db_unreachable"}  # its consequences are not paged
        await asyncio.sleep(5)
        assert len(phones.sms("监测系统故障：数据库无法连接")) == 1 and len(phones.calls("数据库无法连接")) == 1
    finally:
        p.component("postgres").start()
    await wait_until(lambda: phones.sms("监测系统恢复：数据库连接"), 90, 0.5, "the 恢复 SMS")
    await asyncio.sleep(15)
    recovered = phones.sms("监测系统恢复：数据库连接")
    assert len(recovered) == 1 and recovered[0]["body"].startswith("监测系统恢复：数据库连接已恢复正常（"), recovered
    assert len(phones.sms("监测系统故障：数据库无法连接")) == 1 and len(phones.calls("数据库无法连接")) == 1


async def _panel(p: PipelineProcesses) -> str:
    rows = await p.fetch(
        """SELECT d.id FROM devices d JOIN sites s ON s.id = d.site_id
           WHERE d.vendor_id = 'firenet' AND d.parent_id IS NULL ORDER BY d.id DESC LIMIT 1""")
    return str(rows[0]["id"])


async def test_the_sms_provider_failing_every_request_the_call_still_reaches_the_operator(
        live_pipeline: PipelineProcesses, watchdog: HazmonProcess) -> None:
    p = live_pipeline
    await _quiet(p, watchdog)
    phones = _Phones(p)
    assert p.sms is not None
    requests0 = len(http_json(f"{p.sms.url}/requests"))
    _mode(p, fail_next=1_000_000)  # every SMS request of anyone answered 503
    pub = AckedPublisher(p.mqtt.host, p.mqtt.port, p.mqtt.users["hazmon-sim"], [], rate=1.0)
    try:
        t0 = time.monotonic()
        pub.publish_raw(*fire_alarm_message(await _panel(p)))  # alerting has an alarm to send, and cannot
        waited = await wait_until(lambda: phones.calls("报警短信发送失败"), 60, 0.5, "the page by voice")
        print(f"called {waited:.1f} s after the fire alarm whose SMS failed")
        assert phones.calls("报警短信发送失败")[0]["script"].startswith(
            "这里是区应急指挥中心监测系统看门狗。报警短信发送失败，报警短信无法送达。")
        # the watchdog tried its SMS too, and was refused like everyone else
        tried = [r for r in http_json(f"{p.sms.url}/requests")[requests0:]
                 if r["provider"] == "webhook" and SMS_PHONE in r.get("body", "")]
        assert tried and "报警短信发送失败" in tried[0]["body"]
        assert phones.sms("报警短信发送失败") == []
        print(f"the duty operator was called: {phones.calls('报警短信发送失败')[0]['script']}")
        assert time.monotonic() - t0 < 60
    finally:
        _mode(p, fail_next=0)
        pub.close()
    await wait_until(lambda: phones.sms("监测系统恢复：报警短信发送"), 120, 0.5, "the 恢复 SMS")
    await asyncio.sleep(15)
    recovered = phones.sms("监测系统恢复：报警短信发送")
    assert len(recovered) == 1 and recovered[0]["body"].startswith("监测系统恢复：报警短信发送已恢复正常（")
    assert len(phones.calls("报警短信发送失败")) == 1
    assert len(phones.sms("监测系统故障：报警短信发送失败")) <= 1  # the page SMS, if it got through before the 恢复


async def _selfwatch_sms(p: PipelineProcesses, since: datetime) -> list[dict[str, Any]]:
    """The SMS of alerting's 看门狗心跳中断 alerts about wd-e2e that started after ``since``."""
    rows = await p.fetch(
        """SELECT n.id FROM notifications n JOIN alerts a ON a.id = n.alert_id
           WHERE a.kind = 'system.watchdog_heartbeat_lost' AND a.labels->>'instance' = 'wd-e2e'
             AND a.starts_at >= $1 AND n.channel = 'sms'""", since)
    ids = {r["id"] for r in rows}
    return [m for m in _sms(p, ROUTES_DUTY) if m["client_ref"] in ids]


async def test_the_watchdog_killed_alerting_raises_its_alarm_then_recovery(
        live_pipeline: PipelineProcesses, watchdog: HazmonProcess) -> None:
    p = live_pipeline
    await _quiet(p, watchdog)
    since = datetime.now(UTC) - timedelta(seconds=2 * watchdog_poll_s() + 5)
    watchdog.kill()
    try:
        waited = await wait_until(lambda: _selfwatch_sms(p, since), 120, 1.0, "alerting's alarm to the duty operator")
        print(f"alerting raised 看门狗心跳中断 {waited:.1f} s after kill -9 of the watchdog")
        alarm = await _selfwatch_sms(p, since)
        assert len(alarm) == 1 and "主机wd-e2e发生看门狗心跳中断" in alarm[0]["body"] and "红色" in alarm[0]["body"], alarm
    finally:
        watchdog.start()

    async def recovered() -> list[dict[str, Any]]:
        return [m for m in await _selfwatch_sms(p, since) if "解除" in m["body"]]

    try:
        await wait_until(recovered, 90, 1.0, "alerting's 恢复 of the watchdog's heartbeat")
    except TimeoutError:
        rows = await p.fetch(
            """SELECT n.id, n.template, n.status, n.last_error, n.next_attempt_at, a.state, a.group_key
               FROM alerts a LEFT JOIN notifications n ON n.alert_id = a.id
               WHERE a.kind = 'system.watchdog_heartbeat_lost' AND a.starts_at >= $1""", since)
        groups = await p.fetch("SELECT * FROM alert_groups WHERE key = ANY($1::text[])",
                               list({r["group_key"] for r in rows}))
        raise AssertionError(f"no 恢复: {[dict(r) for r in rows]} groups {[dict(g) for g in groups]}") from None
    await asyncio.sleep(10)
    mine = await _selfwatch_sms(p, since)
    assert len(mine) == 2 and len(await recovered()) == 1, [m["body"] for m in mine]
    for m in mine:
        print(f"the duty operator got from alerting: {m['body']}")
    rows = await p.fetch("SELECT state FROM alerts WHERE kind = 'system.watchdog_heartbeat_lost' "
                         "AND labels->>'instance' = 'wd-e2e' AND starts_at >= $1", since)
    assert [r["state"] for r in rows] == ["resolved"]


def watchdog_poll_s() -> float:
    from hazmon.settings_watchdog import WatchdogSettings

    return WatchdogSettings().poll_s
