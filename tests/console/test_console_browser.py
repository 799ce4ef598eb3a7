"""End to end in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright):
sign in, watch a new alarm arrive on the board without reloading, acknowledge, 研判 and 办结 it,
and see the KPI change. Screenshots of the main pages go to artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from console_district import PASSWORD, make_alert
from console_server import ConsoleServer

from hazmon.contracts import Severity

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip("Debian's chromium is not installed (scripts/setup_browser.sh installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright missing")


def _in_thread(coro_fn):
    """Run DB work on its own loop in another thread (the test thread belongs to Playwright)."""
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(lambda: asyncio.run(coro_fn())).result(timeout=60)


def _new_alarm(dsn: str) -> str:
    async def go() -> str:
        conn = await asyncpg.connect(dsn)
        now = datetime.now(UTC)
        try:
            await conn.executemany(  # the gas curve the detail page charts: rising to 41 %LEL
                "INSERT INTO readings (device_id, metric, ts, value, unit, received_at) VALUES ($1,$2,$3,$4,$5,$3)",
                [("G4", "gas_lel", now - timedelta(minutes=m), 3.0 + max(0, 10 - m) * 3.8, "%LEL") for m in range(30, -1, -1)],
            )
            return await make_alert(conn, "G4", "S4", "gas", "gas.high", Severity.RED, now=now - timedelta(minutes=1),
                                    township_id="T2", department_ids=("D-ZJ",), summary="河西面馆 燃气浓度超限 41%LEL")
        finally:
            await conn.close()
    return _in_thread(go)


@pytest.fixture
def browser_page(tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1400, "height": 900}, locale="zh-CN",
        )
        try:
            yield ctx.pages[0] if ctx.pages else ctx.new_page()
        finally:
            ctx.close()


@pytest.fixture
def server(fresh_api):
    srv = ConsoleServer(fresh_api.dsn).start()
    yield srv
    srv.stop()


def _login(page, url: str, user: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#login-username", user)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("[data-testid=board]")
    page.wait_for_selector("#live.on", timeout=15_000)


def _kpi_alerts(page) -> tuple[int, int]:
    page.goto(page.url.split("#")[0] + "#/kpi")
    tile = page.wait_for_selector("[data-testid=kpi-alerts] b")
    total, closed = re.match(r"(\d+)/(\d+)", tile.inner_text()).groups()
    return int(total), int(closed)


def test_operator_sees_new_alarm_live_and_closes_it(server, fresh_api, browser_page):
    page = browser_page
    page.goto(server.url + "/")
    page.wait_for_selector("#login-form")
    page.screenshot(path=str(SHOTS / "01_login.png"))
    _login(page, server.url, "centre1")
    assert page.locator("[data-testid=alert-card]").count() == 3

    aid = _new_alarm(fresh_api.dsn)  # while the page is open: no reload from here on
    card = page.wait_for_selector(f"[data-testid=col-red] [data-alert-id='{aid}']", timeout=15_000)
    assert "河西面馆" in card.inner_text()
    assert page.inner_text("[data-testid=count-red] b") == "2"
    page.screenshot(path=str(SHOTS / "02_board_live_alarm.png"))

    total0, closed0 = _kpi_alerts(page)
    page.screenshot(path=str(SHOTS / "03_kpi_before.png"))

    page.goto(f"{server.url}/#/alert/{aid}")
    page.wait_for_selector("[data-testid=btn-ack]").click()
    page.wait_for_selector("[data-testid=timeline] >> text=centre1（中心值班员）")  # acknowledged by, in words (console/actors.py)
    assert page.locator("[data-testid=btn-ack]").count() == 0
    page.select_option("[data-testid=verdict]", "false")
    page.fill("[data-testid=verify-reason]", "现场确认为误报（厨房蒸汽）")
    page.click("[data-testid=btn-verify]")
    page.wait_for_selector("[data-testid=close-reason]").fill("误报，已提醒企业清洁探头")
    page.screenshot(path=str(SHOTS / "04_alert_detail.png"))
    page.click("[data-testid=btn-close]")
    page.wait_for_selector("[data-testid=alert-phase]:has-text('办结')")
    timeline = page.inner_text("[data-testid=timeline]")
    for step in ("报警", "确认", "研判", "办结"):
        assert step in timeline
    page.screenshot(path=str(SHOTS / "05_alert_closed.png"))

    total1, closed1 = _kpi_alerts(page)
    assert (total1, closed1) == (total0, closed0 + 1)
    page.wait_for_selector("[data-testid=kpi-chart]")
    page.screenshot(path=str(SHOTS / "06_kpi_after.png"), full_page=True)

    page.goto(server.url + "/#/board")
    page.wait_for_selector("[data-testid=board]")
    assert page.locator(f"[data-alert-id='{aid}']").count() == 0
    page.goto(server.url + "/#/map")
    page.wait_for_selector("[data-testid=map] circle")
    assert page.locator("[data-testid=map] circle").count() == 4
    page.screenshot(path=str(SHOTS / "07_map.png"))
    page.goto(server.url + "/#/health")
    page.wait_for_selector("[data-testid=health-table]")
    assert "从未上线" in page.inner_text("[data-testid=health-table]")
    page.screenshot(path=str(SHOTS / "08_device_health.png"))


def _touch_alert(dsn: str, aid: str, summary: str) -> None:
    """Another writer changes the alert (alerting re-firing it, another operator): a new version."""
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("UPDATE alerts SET summary=$2, version=version+1, updated_at=now() WHERE id=$1", aid, summary)
        finally:
            await conn.close()
    _in_thread(go)


def test_a_live_update_keeps_what_the_operator_is_typing(server, fresh_api, browser_page):
    page = browser_page
    page.goto(server.url + "/")
    _login(page, server.url, "centre1")
    aid = _new_alarm(fresh_api.dsn)
    page.goto(f"{server.url}/#/alert/{aid}")
    page.wait_for_selector("[data-testid=btn-ack]").click()
    page.wait_for_selector("[data-testid=timeline] >> text=centre1（中心值班员）")
    page.select_option("[data-testid=verdict]", "fault")
    page.fill("[data-testid=verify-reason]", "探头老化，待更换")  # half-written, not submitted
    page.focus("[data-testid=verify-reason]")
    _touch_alert(fresh_api.dsn, aid, "河西面馆 燃气浓度超限 43%LEL（复报）")
    page.wait_for_selector("text=43%LEL（复报）", timeout=15_000)  # the page re-rendered live
    assert page.input_value("[data-testid=verify-reason]") == "探头老化，待更换"
    assert page.input_value("[data-testid=verdict]") == "fault"
    assert page.evaluate("document.activeElement.dataset.testid") == "verify-reason"
    # submitting uses the kept text, and the next render starts empty
    page.click("[data-testid=btn-verify]")
    page.wait_for_selector("[data-testid=btn-dispatch]")
    assert "探头老化，待更换" in page.inner_text("[data-testid=timeline]")


def test_township_user_sees_only_its_township(server, fresh_api, browser_page):
    page = browser_page
    _login(page, server.url, "town-t2")
    sites = {c.inner_text().split("\n")[0] for c in page.query_selector_all("[data-testid=alert-card]")}
    assert sites == {"新河五金厂"}
    assert page.locator("#nav a[data-view=diagnostics]").is_hidden()
    page.screenshot(path=str(SHOTS / "09_township_board.png"))
