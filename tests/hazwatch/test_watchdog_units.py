"""The watchdog's parts: the incident rules (pure, a clock as argument), its texts against the
providers' rules, its imports (an allow-list), alerting's selfwatch decision, and one database
round on the real PostgreSQL of the test session (write probe, a read-only database, the
outbox and the SMS attempts as alerting leaves them)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from alerting import selfwatch
from alerting.notify.voice import VOICE_TEMPLATES, render_script, tts_params
from alerting.templates import PROVIDERS
from hazmon.settings_watchdog import WatchdogSettings
from hazmon.stack.postgres import with_database
from hazwatch import texts
from hazwatch.checks import DbRound, database_round
from hazwatch.incidents import Incidents, Observation, Page, Recovered
from hazwatch.service import observe

pytestmark = pytest.mark.watchdog

T0 = datetime(2026, 12, 7, 0, 59, tzinfo=UTC)  # 08:59 China time
ROOT = Path(__file__).resolve().parents[2]


def _s(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def _run(inc: Incidents, rounds: Sequence[tuple[float, Mapping[str, bool | None]]]) -> list[tuple[float, Any]]:
    out: list[tuple[float, Any]] = []
    for t, seen in rounds:
        for action in inc.step([Observation(k, v, f"{k} detail") for k, v in seen.items()], _s(t)):
            out.append((t, action))
    return out


def test_a_problem_is_paged_once_after_confirmation_and_recovers_once() -> None:
    inc = Incidents(confirm=timedelta(seconds=15), clear=timedelta(seconds=10))
    rounds = [(t, {"alerting_down": True}) for t in range(0, 60, 5)]
    rounds += [(t, {"alerting_down": False}) for t in range(60, 120, 5)]
    got = _run(inc, rounds)
    assert got == [(15, Page("alerting_down", _s(0), "alerting_down detail")),
                   (70, Recovered("alerting_down", _s(0), _s(60)))]


def test_a_blip_is_not_paged_and_unknown_rounds_change_nothing() -> None:
    inc = Incidents(confirm=timedelta(seconds=15), clear=timedelta(seconds=10))
    got = _run(inc, [(0, {"db_unreachable": True}), (5, {"db_unreachable": True}), (10, {"db_unreachable": False}),
                     (15, {"db_unreachable": True}), (20, {"db_unreachable": True})])
    assert got == []  # never 15 s in a row
    got = _run(inc, [(30, {"db_unreachable": True}), (35, {"canary_broken": None, "db_unreachable": True})])
    assert [type(a).__name__ for _, a in got] == ["Page"]  # from 15 s on, 20 s bad
    # an open incident seen unknown neither clears nor pages again
    assert _run(inc, [(t, {"db_unreachable": None}) for t in range(40, 200, 5)]) == []
    assert inc.open_incidents().keys() == {"db_unreachable"}


def test_a_consequence_is_not_paged_while_its_cause_is_bad_nor_right_after() -> None:
    inc = Incidents(confirm=timedelta(seconds=15), clear=timedelta(seconds=10), settle=timedelta(seconds=60))
    rounds = [(t, {"alerting_down": True, "canary_broken": True, "outbox_stuck": True}) for t in range(0, 120, 5)]
    # alerting back: the canary flows again 20 s later, within the settle time
    rounds += [(t, {"alerting_down": False, "canary_broken": t < 140, "outbox_stuck": False})
               for t in range(120, 240, 5)]
    got = _run(inc, rounds)
    assert [(t, type(a).__name__, a.problem) for t, a in got] == [  # type: ignore[attr-defined]
        (15, "Page", "alerting_down"), (130, "Recovered", "alerting_down")]
    # a canary still silent once the settle time is over is paged
    inc2 = Incidents(confirm=timedelta(seconds=15), clear=timedelta(seconds=10), settle=timedelta(seconds=60))
    rounds = [(t, {"alerting_down": True, "canary_broken": True}) for t in range(0, 60, 5)]
    rounds += [(t, {"alerting_down": False, "canary_broken": True}) for t in range(60, 240, 5)]
    pages = [(t, a.problem) for t, a in _run(inc2, rounds) if isinstance(a, Page)]
    assert pages == [(15, "alerting_down"), (130, "canary_broken")]  # last inhibited at 55: + 60 + 15


def test_a_restarted_watchdog_does_not_page_again_and_still_says_recovered() -> None:
    inc = Incidents(confirm=timedelta(seconds=15), clear=timedelta(seconds=10))
    inc.restore({"alerting_down": _s(-300), "not_a_problem": _s(-300)})
    got = _run(inc, [(t, {"alerting_down": True}) for t in range(0, 30, 5)])
    assert got == []
    got = _run(inc, [(t, {"alerting_down": False}) for t in range(30, 60, 5)])
    assert got == [(40, Recovered("alerting_down", _s(-300), _s(30)))]


def _variables(text: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", text)


@pytest.mark.parametrize("problem", sorted(texts.PROBLEMS))
def test_every_page_and_recovery_text_keeps_the_providers_rules(problem: str) -> None:
    since, until = T0, T0 + timedelta(minutes=4)
    for tpl, params in ((texts.PAGE, texts.page_params(problem, since)),
                        (texts.RECOVERED, texts.recovered_params(problem, since, until))):
        assert list(params) == list(tpl.params) == _variables(tpl.text)
        assert not re.search(r"\}\{", tpl.text) and not re.search(r"[【】]|https?://|\d{7,}", tpl.text)
        for rules in PROVIDERS.values():
            assert not set(tpl.params) & rules.forbidden_names
        for value in params.values():
            assert 0 < len(value) <= texts.VAR_MAX == min(r.var_max for r in PROVIDERS.values()), value
        body = texts.render(tpl, params)
        assert len(f"【区应急指挥中心】{body}") <= 134, body  # two segments at most
        for provider in ("aliyun", "tencent"):
            assert tpl.name in texts.SMS_TEMPLATE_CODES[provider]
    assert texts.render(texts.PAGE, texts.page_params("alerting_down", since)) == (
        "监测系统故障：告警服务停止运行，报警短信和电话无法发出（12月7日08:59起）。请立即组织检修，检修期间人工值守。")
    assert texts.render(texts.RECOVERED, texts.recovered_params("alerting_down", since, until)) == (
        "监测系统恢复：告警服务已恢复正常（12月7日08:59至09:03）。请核查故障期间的报警是否均已发出并处置。")
    script = VOICE_TEMPLATES[texts.VOICE_TEMPLATE]
    p = texts.PROBLEMS[problem]
    values = tts_params(script, {"what": p.what, "impact": p.impact}, "aliyun")
    assert values == {"what": p.what, "impact": p.impact}  # nothing cut
    assert p.what in render_script(script, values) and "按1" not in script.text  # nothing would answer a key


def test_the_watchdog_imports_only_the_spine_and_alertings_channels() -> None:
    """The allow-list the import-linter contract cannot state: every import of hazwatch is the
    stdlib, a third-party library other than a Kafka client, the spine, hazwatch itself, or
    alerting.notify / alerting.errors / alerting.templates."""
    allowed_alerting = ("alerting.notify", "alerting.errors", "alerting.templates")
    bad = []
    for path in sorted((ROOT / "hazwatch").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                if top in ("ingest", "detectors", "console", "sim", "aiokafka", "tests") or (
                        top == "alerting" and not name.startswith(allowed_alerting)):
                    bad.append(f"{path.name}: {name}")
    assert not bad, bad


def test_selfwatch_raises_once_per_silent_watchdog_and_resolves_when_it_beats_again() -> None:
    now = _s(100)
    beats = [{"instance": "wd-1", "beat_at": _s(40), "age_s": 60.0, "detail": json.dumps({"alarm_after_s": 30})},
             {"instance": "wd-2", "beat_at": _s(95), "age_s": 5.0, "detail": "{}"},
             {"instance": "wd-3", "beat_at": _s(80), "age_s": 20.0, "detail": json.dumps({"alarm_after_s": 10})}]
    raised = selfwatch.events_due(beats, [], now)
    assert [(e.labels["instance"], e.state.value) for e in raised] == [("wd-1", "firing"), ("wd-3", "firing")]
    ev = raised[0]
    assert ev.kind == selfwatch.KIND and ev.domain == "system" and ev.starts_at == _s(40)
    assert ev.site_id == "区应急指挥中心监测系统" and ev.component == "主机wd-1" and ev.summary == "看门狗心跳中断"
    assert selfwatch.events_due(beats, [], now)[0].id == ev.id  # the same episode, the same id
    open_alerts = [{"id": ev.id, "starts_at": ev.starts_at, "instance": "wd-1"},
                   {"id": "wdhb-gone", "starts_at": _s(0), "instance": "wd-9"}]
    assert [e.labels["instance"] for e in selfwatch.events_due(beats, open_alerts, now)] == ["wd-3", "wd-9"]
    beats[0] = {**beats[0], "age_s": 2.0, "beat_at": _s(98)}
    resolved = selfwatch.events_due(beats, open_alerts, now)
    assert [(e.id, e.state.value, e.starts_at) for e in resolved if e.labels["instance"] == "wd-1"] == [
        (ev.id, "resolved", _s(40))]


def _cfg(**kw: Any) -> WatchdogSettings:
    return WatchdogSettings(duty_sms_phone="13900000777", stages={"alerting": "http://x/metrics"}, **kw)


async def _round(dsn: str) -> DbRound:
    return await database_round(dsn, timeout_s=5, instance="wd-test", started_at=T0,
                                detail={"alarm_after_s": 30}, sms_window_s=600)


async def test_a_database_round_on_real_postgres(pg_dsn: str, pg_server_dsn: str) -> None:
    db = await _round(pg_dsn)
    try:
        assert db.reachable and db.writable is True and db.outbox_overdue_s is None and db.sms_failures == 0
        assert db.canaries == [] and db.heartbeats == {}
        row = await db.conn.fetchrow("SELECT detail FROM stage_heartbeats WHERE stage = 'watchdog'")
        assert json.loads(row["detail"]) == {"alarm_after_s": 30}
        # alerting's outbox as it leaves it: a row due 5 min ago, and SMS attempts failing in a row
        now = datetime.now(UTC)
        await db.conn.execute(
            """INSERT INTO notifications (id, channel, recipient_role, rule, template, body, status,
                   next_attempt_at, created_at, updated_at)
               VALUES ('n-1', 'sms', 'business', 'r', 'alarm', 'x', 'pending', $1, $1, $1),
                      ('n-2', 'sms', 'business', 'r', 'alarm', 'x', 'sent', $2, $2, $2)""",
            now - timedelta(minutes=5), now)
        await db.conn.executemany(
            "INSERT INTO notification_attempts (notification_id, attempt, at, provider, outcome, error) "
            "VALUES ($1, $2, $3, 'webhook', $4, $5)",
            [("n-2", 1, now - timedelta(seconds=60), "sent", ""),
             *[("n-1", i, now - timedelta(seconds=50 - i), "retrying", "webhook: HTTP 503") for i in range(1, 5)]])
    finally:
        await db.close()
    db = await _round(pg_dsn)
    await db.close()
    assert 290 < (db.outbox_overdue_s or 0) < 400 and db.sms_failures == 4 and "503" in db.sms_error
    obs, _ = observe(_cfg(), {"alerting": ""}, "", db)
    bad = {o.problem for o in obs if o.bad}
    assert bad == {"sms_failing", "outbox_stuck"}, obs
    # the database refusing writes (what a failover to a standby does): new sessions read only
    name = pg_dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(with_database(pg_server_dsn, "postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        db = await _round(pg_dsn)
        await db.close()
        assert db.reachable and db.writable is False and "25006" in db.write_error
        obs, _ = observe(_cfg(), {"alerting": ""}, "", db)
        assert {o.problem for o in obs if o.bad} >= {"db_refuses_writes"}
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await admin.close()
    db = await _round(with_database(pg_dsn, "no_such_database_here"))
    assert not db.reachable and db.conn is None and "3D000" in db.error
    obs, _ = observe(_cfg(), {"alerting": "ConnectError"}, "", db)
    known = {o.problem: o.bad for o in obs}
    assert known["db_unreachable"] is True and known["alerting_down"] is True
    assert known["db_refuses_writes"] is None and known["canary_broken"] is None and known["sms_failing"] is None


def test_a_restarted_stages_old_heartbeat_is_no_finding_a_silent_stage_is() -> None:
    db = DbRound(reachable=True, writable=True, sms_failures=0, canaries=[],
                 heartbeats={("detect", "h:1"): 900.0, ("detect", "h:2"): 3.0, ("alerting", "h:7"): 3.0,
                             ("alerting", "h:8"): 4.0, ("console", "h:5"): 120.0, ("console", "h:4"): 800.0})
    _, info = observe(_cfg(), {"alerting": "", "bridge-1": "ConnectError"}, "", db)
    got = {f["check"]: f["ok"] for f in info}
    assert got == {"stage:bridge-1": False, "heartbeat:alerting/h:7": True, "heartbeat:alerting/h:8": True,
                   "heartbeat:console/h:5": False, "heartbeat:detect/h:2": True, "canary": True}


async def test_a_silent_canary_is_paged_only_while_alerting_has_not_said_so(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("""
            INSERT INTO townships (id, name) VALUES ('T-C', '探针镇');
            INSERT INTO sites (id, name, township_id) VALUES ('S-C', '区应急指挥中心探针', 'T-C');
            INSERT INTO vendors (id, name, adapter, mqtt_username) VALUES ('canaryv', '探针', 'hazmon_json', 'canaryv');
            INSERT INTO domains (name, name_zh) VALUES ('gas', '燃气') ON CONFLICT DO NOTHING;
            INSERT INTO devices (id, vendor_id, domain, site_id, expected_interval_s, is_canary)
                VALUES ('canary-json', 'canaryv', 'gas', 'S-C', 10, true);
            INSERT INTO canary_state (device_id, family, arrived_at) VALUES ('canary-json', 'hazmon_json',
                now() - interval '5 seconds');""")
        db = await _round(pg_dsn)
        await db.close()
        assert db.canaries is not None and [(c.family, c.said) for c in db.canaries] == [("hazmon_json", False)]
        assert {o.problem: o.bad for o in observe(_cfg(), {"alerting": ""}, "", db)[0]}["canary_broken"] is False
        await conn.execute("UPDATE canary_state SET arrived_at = now() - interval '5 minutes'")
        db = await _round(pg_dsn)
        await db.close()
        obs = {o.problem: o for o in observe(_cfg(), {"alerting": ""}, "", db)[0]}
        assert obs["canary_broken"].bad is True and "hazmon_json 探针已 300 秒未到达" in obs["canary_broken"].detail
        # alerting raised 监测链路中断 for the family: its job, not the watchdog's
        await conn.execute("UPDATE canary_state SET broken_since = now() - interval '4 minutes', broken_hop = 'detect'")
        db = await _round(pg_dsn)
        await db.close()
        assert {o.problem: o.bad for o in observe(_cfg(), {"alerting": ""}, "", db)[0]}["canary_broken"] is False
    finally:
        await conn.close()


def _hazmon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    return subprocess.run([sys.executable, "-m", "hazmon.cli", *args], env={**clean, **env}, capture_output=True,
                          text=True, timeout=60)


def test_hazmon_watchdog_once_and_its_refusal_without_a_phone(pg_dsn: str) -> None:
    env = {"HAZMON_POSTGRES__DSN": pg_dsn, "HAZMON_WATCHDOG__HTTP_PORT": "0",
           "HAZMON_WATCHDOG__STAGES": json.dumps({"alerting": "http://127.0.0.1:9/metrics"}),
           "HAZMON_SMS__URL": "http://127.0.0.1:9/webhook/sms"}
    nobody = _hazmon(env, "watchdog", "--once")
    assert nobody.returncode == 2 and "HAZMON_WATCHDOG__DUTY_SMS_PHONE: empty" in nobody.stderr, nobody.stderr
    once = _hazmon({**env, "HAZMON_WATCHDOG__DUTY_SMS_PHONE": "13900000777"}, "watchdog", "--once")
    assert once.returncode == 2, once.stdout + once.stderr
    lines = once.stdout.splitlines()
    assert lines[0].startswith("BAD alerting_down: alerting 健康端点无响应") and "BAD sms_unreachable" in once.stdout
    assert "ok  db_unreachable: 正常" in lines and "ok  db_refuses_writes: 正常" in lines
    assert lines[-1] == "verdict: down"
