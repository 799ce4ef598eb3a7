"""KPI figures on a known scenario (November 2026, China time), and the report command."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from alerting_helpers import ServiceFactory, ev

from alerting import ledger
from alerting import lifecycle as lc
from alerting.clock import ManualClock
from alerting.kpi import bulletin, compute_kpis, period_bounds
from hazmon.contracts import Severity, Verdict

pytestmark = pytest.mark.asyncio(loop_scope="session")

START, END = period_bounds("2026-11")  # 2026-10-31T16:00Z .. 2026-11-30T16:00Z
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def at(day: int, hour: int = 1) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


async def _scenario(pool: asyncpg.Pool, svc_factory: ServiceFactory) -> None:
    svc = await svc_factory()
    a1 = ev("gas.high", "S1-GAS1", "S1", at=at(5))
    a2 = ev("fire.alarm", "S3-FIRE", "S3", at=at(10))
    a3 = ev("elevator.trapped", "E6", "S6", at=at(12))
    a4 = ev("device.offline", "E6", "S6", at=datetime(2026, 11, 20, 0, 0, tzinfo=UTC), domain="elevator",
            severity=Severity.YELLOW)
    a5 = ev("device.offline", "S4-GAS1", "S4", at=datetime(2026, 11, 29, 16, 0, tzinfo=UTC), severity=Severity.YELLOW)
    before = ev("gas.high", "S1-GAS1", "S1", at=datetime(2026, 10, 20, 1, 0, tzinfo=UTC))
    muted = ev("elevator.fault", "E6", "S6", at=at(15), severity=Severity.BLUE)
    await svc.handle_events([a1, a2, a3, a4, a5, before, muted])
    await svc.handle_events([a4.model_copy(update={"state": "resolved", "ends_at": a4.starts_at + DAY})])
    async with pool.acquire() as c:
        await c.execute("UPDATE alerts SET suppressed_by='silence:test' WHERE id=$1", muted.id)
        m = timedelta(minutes=1)
        await lc.verify(c, a1.id, actor="op", now=a1.starts_at + 2 * m, verdict=Verdict.REAL, reason="确认")
        await lc.dispatch(c, a1.id, actor="op", now=a1.starts_at + 3 * m, units=["住建"])
        await lc.start_handling(c, a1.id, actor="grid", now=a1.starts_at + 10 * m)
        await lc.feedback(c, a1.id, actor="grid", now=a1.starts_at + 30 * m, note="已处置")
        await lc.close(c, a1.id, actor="op", now=a1.starts_at + 40 * m, reason="办结")
        await lc.verify(c, a2.id, actor="op", now=a2.starts_at + 10 * m, verdict=Verdict.FALSE, reason="误报")
        await lc.close(c, a2.id, actor="op", now=a2.starts_at + 20 * m, reason="误报关闭")
        await lc.acknowledge(c, a3.id, actor="物业吴", now=a3.starts_at + 4 * m)
        # presence at report time: S4's detector offline since its offline alarm, S5's never heard
        # from (no presence row), every other device online
        await c.execute("INSERT INTO device_presence (device_id, state, since, last_seen)"
                        " SELECT id, 'online', $1, $1 FROM devices WHERE id NOT IN ('S4-GAS1', 'S5-GAS1')",
                        at(1))
        await c.execute("INSERT INTO device_presence (device_id, state, since, last_seen)"
                        " VALUES ('S4-GAS1', 'offline', $1, $1)", a5.starts_at)
        # hazards: four found in November (one struck off, one rectified), one in October
        h = [("H1", "S1", "gas", at(3)), ("H2", "S2", "gas", at(4)), ("H3", "S3", "fire", at(6)),
             ("H4", "S6", "elevator", at(7)), ("H0", "S1", "gas", datetime(2026, 10, 2, tzinfo=UTC))]
        for hid, site, dom, when in h:
            await ledger.find_hazard(c, actor="insp", now=when, site_id=site, domain=dom, title="隐患", hazard_id=hid)
        for hid in ("H1", "H2", "H3", "H0"):
            await ledger.register_hazard(c, hid, actor="insp", now=at(8), reason="入账")
        for hid in ("H1", "H2", "H0"):
            await ledger.rectify_hazard(c, hid, actor="owner", now=at(9), reason="整改")
        await ledger.strike_off_hazard(c, "H1", actor="zj", now=at(10), reason="销号")


async def test_kpis_on_a_known_scenario(pool: asyncpg.Pool, clock: ManualClock, make_service: ServiceFactory) -> None:
    await _scenario(pool, make_service)
    async with pool.acquire() as c:
        b = await bulletin(c, start=START, end=END, now=NOW)
        by_township = await compute_kpis(c, start=START, end=END, now=NOW, dimension="township")
    t = b.row("total", "all")
    # 安装全覆盖: S1, S2, S4 need a gas alarm; S1 and S2 have one online
    assert (t.sites_required, t.sites_covered) == (3, 2) and t.coverage_rate == pytest.approx(2 / 3)
    # 在线全时段: 30 devices × 30 days; E6 offline 1 day, S4-GAS1 the last day, S5-GAS1 never heard from
    assert t.devices == 30
    assert t.online_rate == pytest.approx(1 - (1 + 1 + 30) / (30 * 30))
    # 报警全处置: five alarms in November (the October one and the silenced one do not count), two closed
    assert (t.alerts, t.alerts_closed) == (5, 2) and t.closure_rate == pytest.approx(0.4)
    assert t.ack_median_s == 240 and t.ack_p90_s == pytest.approx(528)  # acks at 2, 10, 4 minutes
    # 办结用时 over the alarms not judged false: a1 closed at 40 minutes (a2, a 误报, closed at 20, is not a 处置)
    assert t.close_median_s == 2400 and t.close_p90_s == pytest.approx(2400)
    # 研判: a1 real, a2 false; 误报率 = false ÷ alarms with a verdict
    assert (t.real, t.false, t.test, t.fault) == (1, 1, 0, 0) and t.false_alarm_rate == pytest.approx(0.5)
    # 隐患: four found in November, H1 struck off and H2 rectified
    assert (t.hazards_found, t.hazards_rectified) == (4, 2) and t.rectification_rate == pytest.approx(0.5)

    t1, t2 = (next(r for r in by_township if r.key == k) for k in ("T1", "T2"))
    assert t1.name == "东城街道" and (t1.alerts, t1.alerts_closed) == (3, 1) and t1.coverage_rate == 1.0
    assert (t2.alerts, t2.alerts_closed) == (2, 1) and t2.coverage_rate == 0.0
    assert (t1.hazards_found, t1.hazards_rectified, t2.hazards_found, t2.hazards_rectified) == (3, 2, 1, 0)
    zj, sj, mz = b.row("department", "zj"), b.row("department", "sj"), b.row("department", "mz")
    assert (zj.alerts, zj.alerts_closed, zj.sites_required, zj.sites_covered) == (2, 1, 3, 2)
    assert (sj.alerts, sj.alerts_closed, sj.coverage_rate) == (2, 0, None)
    assert (mz.alerts, mz.alerts_closed) == (1, 1)  # fire at the 养老院 concerns 民政
    el = b.row("domain", "elevator")
    assert el.devices == 1 and el.online_rate == pytest.approx(1 - 1 / 30)
    text = b.text()
    assert "安全生产监测预警通报（2026-11-01 至 2026-11-30，2026年11月）" in text and "处置率 40.0%" in text
    assert "排查隐患 4 处，整改 2 处，整改率 50.0%" in text and "【按镇街】" in text


async def test_report_command_prints_and_writes_csv(
    pool: asyncpg.Pool, pg_dsn: str, clock: ManualClock, make_service: ServiceFactory, tmp_path: Path,
) -> None:
    await _scenario(pool, make_service)
    out = tmp_path / "bulletin.csv"
    env = {**os.environ, "HAZMON_POSTGRES__DSN": pg_dsn}
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "hazmon.cli", "report", "--period", "2026-11", "--csv", str(out)],
        capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "安全生产监测预警通报" in proc.stdout and "东城街道" in proc.stdout
    with out.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    total = next(r for r in rows if r["维度"] == "全区")
    assert total["报警数"] == "5" and total["排查隐患"] == "4" and total["整改率(%)"] == "50.0"
    assert total["误报率(%)"] == "50.0" and total["名称"] == "全区"
    assert {r["编码"] for r in rows if r["维度"] == "镇街"} == {"T1", "T2"}
    bad = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "hazmon.cli", "report", "--period", "2026-13"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert bad.returncode == 2 and "月份须为01至12" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

