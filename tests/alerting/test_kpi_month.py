"""The scripted month's golden figures (tests/alerting/kpi_month.py, computed by hand) from
alerting.kpi, the API (/api/kpis), `hazmon report` and its CSV — the same numbers everywhere."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
from kpi_month import END, NOW, START, load_district, month_service, script_month

from alerting.clock import ManualClock
from alerting.kpi import bulletin
from alerting.kpi.render import width
from console.app import create_app
from console.users import create_demo_accounts
from hazmon.settings import PostgresSettings, Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def month(pg_dsn: str, tmp_path: Path):
    await load_district(pg_dsn, tmp_path)
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    clock = ManualClock(START)
    svc = await month_service(pool, clock)
    try:
        expected = await script_month(pool, svc, clock)
        async with pool.acquire() as c:
            await create_demo_accounts(c, password="kpi-month-pw")
        yield pool, expected
    finally:
        await svc.stop()
        await pool.close()


async def _api(pg_dsn: str, **params: str) -> httpx.Response:
    app = create_app(Settings(postgres=PostgresSettings(dsn=pg_dsn)), clock=lambda: NOW)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
            r = await c.post("/api/auth/login", json={"username": "demo-centre", "password": "kpi-month-pw"})
            assert r.status_code == 200, r.text
            return await c.get(params.pop("path", "/api/kpis"), params=params,
                               headers={"Authorization": f"Bearer {r.json()['token']}"})


async def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "hazmon.cli", *args],
                                   capture_output=True, text=True, env=env, timeout=60, check=False)


def _pct(v: float) -> str:
    return f"{v * 100:.1f}%"


async def test_the_month_in_figures(month) -> None:
    pool, x = month
    async with pool.acquire() as c:
        b = await bulletin(c, start=START, end=END, now=NOW)
    t = b.row("total", "all")
    assert t.devices == x.devices and t.online_rate == pytest.approx(x.online_rate)
    assert (t.sites_required, t.sites_covered) == (x.sites_required, x.sites_covered)
    assert t.coverage_rate == pytest.approx(x.coverage_rate)
    assert (t.alerts, t.alerts_closed) == (x.alerts, x.alerts_closed)
    assert t.closure_rate == pytest.approx(x.closure_rate)
    assert (t.real, t.false, t.test, t.fault) == (x.real, x.false, x.test, x.fault)
    assert t.false_alarm_rate == pytest.approx(x.false_alarm_rate)
    assert (t.ack_median_s, t.ack_p90_s) == pytest.approx((x.ack_median_s, x.ack_p90_s))
    assert (t.arrive_median_s, t.arrive_p90_s) == pytest.approx((x.arrive_median_s, x.arrive_p90_s))
    assert (t.close_median_s, t.close_p90_s) == pytest.approx((x.close_median_s, x.close_p90_s))
    assert (t.hazards_found, t.hazards_rectified) == (x.hazards_found, x.hazards_rectified)
    assert t.rectification_rate == pytest.approx(x.rectification_rate)
    assert (t.overdue_alerts, t.overdue_orders, t.overdue_hazards) == (
        x.overdue_alerts, x.overdue_orders, x.overdue_hazards)
    # 同比: November 2025 from its own snapshots (B1-G not heard yet, C1-G not installed) — the
    # live state (B1-G offline since the 26th, C1-G online) would say otherwise
    assert b.year_ago is not None and b.previous is not None
    y, p = b.year_ago.row("total", "all"), b.previous.row("total", "all")
    assert y.online_rate == pytest.approx(x.yoy_online_rate)
    assert y.coverage_rate == pytest.approx(x.yoy_coverage_rate)
    assert y.alerts == x.yoy_alerts and y.closure_rate == pytest.approx(x.yoy_closure_rate)
    assert y.false_alarm_rate == pytest.approx(x.yoy_false_alarm_rate)
    assert y.rectification_rate == pytest.approx(x.yoy_rectification_rate)
    yoy = lambda f: b.change("total", "all", f, "yoy")  # noqa: E731
    assert yoy("coverage_rate") == pytest.approx(x.coverage_rate - x.yoy_coverage_rate)
    assert yoy("online_rate") == pytest.approx(x.online_rate - x.yoy_online_rate)
    assert yoy("alerts") == pytest.approx((x.alerts - x.yoy_alerts) / x.yoy_alerts)
    # 环比: October 2026
    assert p.online_rate == pytest.approx(x.mom_online_rate)
    assert p.coverage_rate == pytest.approx(x.mom_coverage_rate)
    assert p.alerts == x.mom_alerts and p.closure_rate == pytest.approx(x.mom_closure_rate)
    # townships: figures and ranking
    for key, alerts, closed in x.township_alerts:
        r = b.row("township", key)
        assert (r.alerts, r.alerts_closed) == (alerts, closed), key
    for key, rate in x.township_online:
        assert b.row("township", key).online_rate == pytest.approx(rate), key
    for key, rate in x.township_coverage:
        assert b.row("township", key).coverage_rate == pytest.approx(rate), key
    assert tuple((k, b.row("township", k).rank) for k, _ in x.township_rank) == x.township_rank
    # 厂商排名
    assert tuple(v.key for v in b.vendors) == x.vendor_order
    va = next(v for v in b.vendors if v.key == "va")
    assert va.online_rate == pytest.approx(x.va_online_rate)
    assert va.false_alarm_rate == pytest.approx(x.va_false_alarm_rate)
    assert next(v for v in b.vendors if v.key == "vc").fault_rate == pytest.approx(x.vc_fault_rate)
    # full names (no cut at 10 characters), CJK-aligned: the lines of a table have one display width
    text = b.text()
    assert "区住房和城乡建设局" in text and "安可燃气安全科技有限公司" in text
    for table in text.split("【")[2:]:
        lines = table.splitlines()[1:]
        assert len({width(line) for line in lines if line}) == 1, table


async def test_api_report_and_csv_show_the_same_numbers(month, pg_dsn: str, tmp_path: Path) -> None:
    _, x = month
    # the API
    r = await _api(pg_dsn, period="2026-11")
    assert r.status_code == 200, r.text
    body = r.json()
    total = next(row for row in body["rows"] if row["dimension"] == "total")
    assert total["online_rate"] == pytest.approx(x.online_rate)
    assert total["coverage_rate"] == pytest.approx(x.coverage_rate)
    assert total["closure_rate"] == pytest.approx(x.closure_rate)
    assert total["false_alarm_rate"] == pytest.approx(x.false_alarm_rate)
    assert total["changes"]["coverage_rate"]["yoy"] == pytest.approx(x.coverage_rate - x.yoy_coverage_rate)
    assert total["changes"]["online_rate"]["mom"] == pytest.approx(x.online_rate - x.mom_online_rate)
    assert body["label"] == "2026年11月" and body["year_ago"]["label"] == "2025年11月"
    assert [v["key"] for v in body["vendors"]] == list(x.vendor_order)
    # `hazmon report` and its CSV
    out = tmp_path / "bulletin.csv"
    env = {**os.environ, "HAZMON_POSTGRES__DSN": pg_dsn}
    proc = await _cli(env, "report", "--period", "2026-11", "--csv", str(out))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert f"安装覆盖率 {_pct(x.coverage_rate)}（3/4，同比 +25.0个百分点）" in text
    assert f"设备在线率 {_pct(x.online_rate)}（同比 +12.1个百分点）" in text
    assert f"处置率 {_pct(x.closure_rate)}（同比 +35.0个百分点）" in text
    assert f"误报率 {_pct(x.false_alarm_rate)}（同比 -35.7个百分点）" in text
    assert "排查隐患 4 处，整改 2 处，整改率 50.0%（同比 +16.7个百分点）" in text
    assert "逾期报警 1 起、超时工单 1 件、逾期隐患 1 处" in text
    with out.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    t = next(row for row in rows if row["维度"] == "全区")
    assert t["设备在线率(%)"] == f"{x.online_rate * 100:.1f}" and t["安装覆盖率(%)"] == "75.0"
    assert t["处置率(%)"] == "75.0" and t["误报率(%)"] == f"{x.false_alarm_rate * 100:.1f}"
    assert t["安装覆盖率同比"] == "+25.0" and t["设备在线率环比"] == f"{(x.online_rate - 1) * 100:+.1f}"
    assert {row["名称"] for row in rows if row["维度"] == "镇街"} == {"东城街道", "西山镇", "南湖街道"}


async def test_a_future_or_empty_period_is_refused_in_chinese(month, pg_dsn: str) -> None:
    r = await _api(pg_dsn, period="2027-01")
    assert r.status_code == 422 and r.json()["detail"].startswith("所选时段尚未开始"), r.text
    r = await _api(pg_dsn, period="2024-03")
    assert r.status_code == 422 and r.json()["detail"] == "所选时段内没有任何监测数据", r.text
    r = await _api(pg_dsn, path="/api/bulletin", period="2024-03", format="csv")
    assert r.status_code == 422, r.text
    env = {**os.environ, "HAZMON_POSTGRES__DSN": pg_dsn}
    for period, words in (("2099-01", "所选时段尚未开始"), ("2024-03", "所选时段内没有任何监测数据")):
        proc = await _cli(env, "report", "--period", period)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert proc.stdout == ""
