"""What-if replay (alerting/replay.py) on a scripted morning of stored readings: one threshold
changed gives exactly the alert differences computed by hand below, a changed route exactly the
notifications per role, the live tables are the same after every replay, and each bad input gets
its precise error (and changes nothing).

The script (S1-GAS1 厨房燃气探测器 at 老王饭店, one reading a minute, 09:00–10:30 China time):
peak 1 (minutes 10–20) 4 8 12 **21 23 24 23** 12 8 4 0, peak 2 (minutes 40–50) 4 8 12 **16 17 18 17**
12 8 4 0, zero otherwise; no step rises by 10 %LEL within 60 s (no rate-of-rise alarm).

* live thresholds (低报 20 %LEL, confirm 2): peak 1 → gas.low starting at 09:13; peak 2 stays below.
* 低报 15: peak 1 starts at 09:13 too (21 is its first reading ≥ 15) — the same alert; peak 2 →
  a new gas.low starting at 09:43. Added: exactly that one.
* 低报 25: peak 1 never reaches it. Removed: exactly the 09:13 alert, which was judged 误报 live.

Notifications (data/routes.yaml): a gas 橙 alarm takes route gas-high → receiver life_safety
(business, grid member, township, department, covering leader, maintainer; send_resolved): per
alert one alarm and one 恢复 message, each an SMS to 老王, 张网格, 东城值班 and 住建值班 (S1 has no
包保领导, no lift) and one console entry for the duty desk.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import yaml
from alerting_helpers import ROUTES, ev

from alerting import lifecycle as lc
from alerting import store
from alerting.config import load_config as load_routes
from alerting.errors import InvalidAction, RouteConfigError
from alerting.intake import place
from alerting.replay import Proposal, ReplayResult, detectors_from_text, replay, routes_from_text
from alerting.replay_data import ReplayScope
from detectors.batch import BatchOutput
from detectors.config import load_config
from detectors.storage import Storage
from hazmon.contracts import Severity, Verdict
from hazmon.errors import ConfigError
from hazmon.registry import load_registry
from hazmon.settings_replay import ReplaySettings

pytestmark = pytest.mark.asyncio(loop_scope="session")

DETECTORS = Path(__file__).resolve().parents[2] / "data" / "detectors.yaml"
T9 = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)  # 09:00 China time
START, END = T9, T9 + timedelta(minutes=91)  # 09:00–10:31: no 离线 (the last reading is at 10:30)
NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
PEAK1 = {10: 4, 11: 8, 12: 12, 13: 21, 14: 23, 15: 24, 16: 23, 17: 12, 18: 8, 19: 4}
PEAK2 = {40: 4, 41: 8, 42: 12, 43: 16, 44: 17, 45: 18, 46: 17, 47: 12, 48: 8, 49: 4}
MODEL = "厨房燃气探测器"


def minute(m: int) -> datetime:
    return T9 + timedelta(minutes=m)


async def script(pool: asyncpg.Pool) -> str:
    """The readings through the detectors' storage writer, and the live alert of peak 1 judged
    误报 (plus a real fire alarm at 夕阳红养老院 in the period). Returns the false alarm's id."""
    rows = [
        (
            "S1-GAS1",
            "gas_lel",
            minute(m),
            float({**PEAK1, **PEAK2}.get(m, 0)),
            "%LEL",
            None,
            minute(m) + timedelta(seconds=1),
        )
        for m in range(91)
    ]
    async with pool.acquire() as conn:
        storage = Storage(conn)
        await storage.prepare()
        await storage.write(BatchOutput(readings=rows))
        await storage.flush()
        registry = await load_registry(conn)
        config = load_routes(ROUTES)
        false = ev("gas.low", "S1-GAS1", "S1", at=minute(13), severity=Severity.ORANGE)
        real = ev("fire.alarm", "S3-FIRE", "S3", at=minute(30))
        for e in (false, real):
            async with conn.transaction():
                pl, _route, _resp = place(e, registry, config, config.key_periods, now=e.starts_at)
                await store.record_events(conn, [pl], now=e.starts_at)
        await lc.verify(
            conn, false.id, actor="op", now=minute(20), verdict=Verdict.FALSE, reason="误报：炒菜油烟"
        )
        await lc.verify(conn, real.id, actor="op", now=minute(31), verdict=Verdict.REAL, reason="确认火警")
    return false.id


def proposed(low: float) -> str:
    raw = yaml.safe_load(DETECTORS.read_text(encoding="utf-8"))
    raw.setdefault("models", {})[MODEL] = {"gas": {"low_lel": low}}
    return yaml.safe_dump(raw, allow_unicode=True)


def live() -> Proposal:
    return Proposal(load_config(DETECTORS), load_routes(ROUTES))


async def checksum(pool: asyncpg.Pool) -> dict[str, tuple[int, str]]:
    """Every table of the database: its row count and an md5 of its rows."""
    async with pool.acquire() as conn:
        names = [
            r[0]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        out = {}
        for n in names:
            r = await conn.fetchrow(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text),"
                f" '')) AS h FROM \"{n}\" t"
            )
            out[n] = (r["n"], r["h"])
        return out


async def run(pool: asyncpg.Pool, proposal: Proposal, **kw: object) -> ReplayResult:
    async with pool.acquire() as conn:
        return await replay(
            conn,
            proposal,
            start=kw.pop("start", START),
            end=kw.pop("end", END),  # type: ignore[arg-type]
            now=NOW,
            **kw,
        )  # type: ignore[arg-type]


def roles(r: ReplayResult) -> dict[str, tuple[int, int, int, int]]:
    return {x.role: (x.live, x.proposed, x.sms_live, x.sms_proposed) for x in r.roles if x.live or x.proposed}


async def test_lower_threshold_adds_exactly_the_second_peak(pool: asyncpg.Pool) -> None:
    await script(pool)
    before = await checksum(pool)
    p = live()
    r = await run(
        pool, Proposal(p.live_detectors, p.live_routes, detectors_from_text(proposed(15), "proposed.yaml"))
    )
    assert [(d.device_id, d.site_id, d.kind, d.starts_at) for d in r.added] == [
        ("S1-GAS1", "S1", "gas.low", minute(43))
    ]
    assert r.removed == ()
    assert (r.live_alerts, r.proposed_alerts, r.live_in_store) == (1, 2, 1)
    assert (r.added[0].site_name, r.added[0].kind_zh, r.added[0].severity_zh) == (
        "老王饭店",
        "可燃气体浓度低限报警",
        "橙",
    )
    # per alert: an alarm and a 恢复 SMS to each of four roles, a console entry to the duty desk twice;
    # the new alarm (nobody acted on it) also climbs the 橙 ladder: 工作提醒单 at 09:58 (15 min) to
    # 东城值班 and 张网格 with its console entry, 风险警示单 would be 10:43, after the period. The
    # stored 09:13 alarm, judged 误报 at 09:20, issues none.
    assert roles(r) == {
        "business": (2, 4, 2, 4),
        "grid_member": (2, 5, 2, 5),
        "township": (2, 5, 2, 5),
        "department": (2, 4, 2, 4),
        "duty_operator": (2, 5, 0, 0),
    }
    assert (r.sms_live, r.sms_proposed, r.messages_live, r.messages_proposed) == (8, 18, 2, 4)
    assert (r.notices_live["reminder"], r.notices_proposed["reminder"], r.notices_proposed["warning"]) == (
        0,
        1,
        0,
    )
    # the period's 误报率: two stored alerts judged, one false
    assert (r.stored_alerts, r.judged, r.false_alarms, r.false_alarm_rate) == (2, 2, 1, 0.5)
    assert await checksum(pool) == before  # nothing live changed


async def test_higher_threshold_removes_the_false_alarm(pool: asyncpg.Pool) -> None:
    false_id = await script(pool)
    before = await checksum(pool)
    p = live()
    r = await run(
        pool,
        Proposal(p.live_detectors, p.live_routes, detectors_from_text(proposed(25))),
        scope=ReplayScope(model=MODEL),
    )
    assert r.added == ()
    assert [(d.id, d.device_id, d.kind, d.starts_at, d.verdict) for d in r.removed] == [
        (false_id, "S1-GAS1", "gas.low", minute(13), "false")
    ]
    assert (r.removed_judged, r.removed_false) == (1, 1)
    assert (r.stored_alerts, r.judged, r.false_alarms) == (1, 1, 1)  # the model's alerts only
    assert (r.sms_live, r.sms_proposed) == (8, 0)
    text = r.text()
    assert (
        "减少告警 1 起（其中已研判 1 起，研判为误报 1 起）" in text and "误报率" in text and "100.0%" in text
    )
    assert "老王饭店" in text and "型号 厨房燃气探测器" in text
    assert await checksum(pool) == before


async def test_changed_route_changes_notifications_per_role(pool: asyncpg.Pool) -> None:
    await script(pool)
    before = await checksum(pool)
    raw = yaml.safe_load(ROUTES.read_text(encoding="utf-8"))
    gas = next(x for x in raw["route"]["routes"] if x.get("name") == "gas-high")
    gas["receiver"] = "maintenance"  # business, grid member, maintainer; no 恢复 message
    p = live()
    r = await run(
        pool,
        Proposal(
            p.live_detectors,
            p.live_routes,
            routes=routes_from_text(yaml.safe_dump(raw, allow_unicode=True), "new-routes.yaml"),
        ),
    )
    assert r.added == () and r.removed == ()
    assert roles(r) == {
        "business": (2, 1, 2, 1),
        "grid_member": (2, 1, 2, 1),
        "township": (2, 0, 2, 0),
        "department": (2, 0, 2, 0),
        "duty_operator": (2, 1, 0, 0),
    }
    assert (r.sms_live, r.sms_proposed) == (8, 2)
    assert r.routes_file == "new-routes.yaml"
    assert await checksum(pool) == before


async def test_bad_input_errors_and_changes_nothing(pool: asyncpg.Pool) -> None:
    await script(pool)
    before = await checksum(pool)
    p = live()
    with pytest.raises(InvalidAction, match=r"回放时段超过上限：所选 2 天，上限 1 天"):
        await run(pool, p, start=START, end=START + timedelta(days=2), limits=ReplaySettings(max_days=1))
    with pytest.raises(InvalidAction, match="所选时段内没有任何监测数据"):
        await run(pool, p, start=START - timedelta(days=3), end=START - timedelta(days=2))
    with pytest.raises(InvalidAction, match="所选时段尚未开始"):
        await run(pool, p, start=NOW + timedelta(days=1), end=NOW + timedelta(days=2))
    with pytest.raises(InvalidAction, match="回放数据超过上限：所选时段有 91 条读数和设备上报，上限 10 条"):
        await run(pool, p, limits=ReplaySettings(max_readings=10))
    with pytest.raises(InvalidAction, match="登记册中没有型号 不存在的型号的设备"):
        await run(pool, p, scope=ReplayScope(model="不存在的型号"))
    with pytest.raises(ConfigError, match=r"^proposed.yaml: models.厨房燃气探测器: gas.low_lel: "):
        detectors_from_text(f"models:\n  {MODEL}:\n    gas:\n      low_lel: -5\n", "proposed.yaml")
    with pytest.raises(ConfigError, match=r"^proposed.yaml: not valid YAML"):
        detectors_from_text("models: [", "proposed.yaml")
    raw = yaml.safe_load(ROUTES.read_text(encoding="utf-8"))
    raw["route"]["routes"][0]["receiver"] = "nobody"
    with pytest.raises(RouteConfigError, match=r"new-routes.yaml: route.routes\[0\].receiver: "):
        routes_from_text(yaml.safe_dump(raw, allow_unicode=True), "new-routes.yaml")
    assert await checksum(pool) == before


async def test_replay_command_prints_the_diff(pool: asyncpg.Pool, pg_dsn: str, tmp_path: Path) -> None:
    await script(pool)
    path = tmp_path / "proposed.yaml"
    path.write_text(proposed(15), encoding="utf-8")
    env = {**os.environ, "HAZMON_POSTGRES__DSN": pg_dsn}
    args = [
        sys.executable,
        "-m",
        "hazmon.cli",
        "replay",
        "--from",
        "2026-11-03T09:00",
        "--to",
        "2026-11-03T10:31",
        "--detectors",
        str(path),
        "--model",
        MODEL,
    ]
    proc = await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout)
    assert "新增告警 1 起" in proc.stdout and "S1-GAS1" in proc.stdout and "11-03 09:43:00" in proc.stdout
    assert "短信（条）" in proc.stdout
    js = await asyncio.to_thread(
        subprocess.run, [*args, "--json"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    data = json.loads(js.stdout)
    assert [a["starts_at"] for a in data["added"]] == [minute(43).isoformat()]
    assert data["sms_live"] == 8 and data["sms_proposed"] == 18  # 16 alarm/恢复 + the 工作提醒单's 2
    raw = yaml.safe_load(ROUTES.read_text(encoding="utf-8"))
    next(x for x in raw["route"]["routes"] if x.get("name") == "gas-high")["receiver"] = "maintenance"
    routes = tmp_path / "routes-new.yaml"
    routes.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    only_routes = await asyncio.to_thread(  # the live thresholds named again: one engine, the routes compared
        subprocess.run,
        [*args[:9], str(DETECTORS), "--routes", str(routes), "--json"],
        capture_output=True,
        text=True,
        env={**env, "HAZMON_DETECTORS_FILE": str(DETECTORS)},
        timeout=120,
        check=False,
    )
    data = json.loads(only_routes.stdout)
    assert (data["detectors_file"], data["added"], data["removed"]) == ("", [], [])
    assert (data["sms_live"], data["sms_proposed"]) == (8, 2)
    bad = await asyncio.to_thread(
        subprocess.run,
        [*args[:7], "2026-12-20", *args[8:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert bad.returncode != 0 and "回放时段超过上限" in bad.stderr, (bad.stdout, bad.stderr)


async def test_quiet_hours_hold_is_counted_apart(pool: asyncpg.Pool) -> None:
    """西山村's 无人小店 (S4, no contacts) detector reports 23:00–23:10 China time, then falls silent:
    离线 (黄) at 23:13 (three 60 s intervals after 23:10), flushed at 23:15 (route offline,
    group_wait 2m) inside quiet hours (22:00–07:00 keeps only red and orange): the SMS to 李网格
    waits for the morning digest (held, not an SMS of the replay), the business has no contact
    (the matrix names nobody there), the duty desk's console entry is not held."""
    night = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)  # 23:00 China time
    rows = [
        (
            "S4-GAS1",
            "gas_lel",
            night + timedelta(minutes=m),
            0.0,
            "%LEL",
            None,
            night + timedelta(minutes=m, seconds=1),
        )
        for m in range(11)
    ]
    async with pool.acquire() as conn:
        storage = Storage(conn)
        await storage.prepare()
        await storage.write(BatchOutput(readings=rows))
    r = await run(pool, live(), start=night, end=night + timedelta(minutes=30))
    assert r.live_alerts == r.proposed_alerts == 1
    grid = next(x for x in r.roles if x.role == "grid_member")
    assert (grid.sms_live, grid.held_live, grid.held_proposed) == (0, 1, 1)
    business = next(x for x in r.roles if x.role == "business")
    assert (business.live, business.undeliverable_live) == (0, 0)  # no contact: the matrix names nobody
    duty = next(x for x in r.roles if x.role == "duty_operator")
    assert (duty.live, duty.sms_live, duty.held_live) == (1, 0, 0)  # the console entry, never held
    assert "夜间暂缓（现行 → 拟议）" in r.text() and "1 → 1" in r.text()
