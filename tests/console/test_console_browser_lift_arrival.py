"""维保到场 on the alert page in real headless Chromium: the centre's operator sees by when the
维保单位 must arrive, clicks 维保到场, and the timeline shows it (who, the time taken)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from console_district import PASSWORD
from console_server import ConsoleServer

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip("Debian's chromium is not installed (scripts/setup_browser.sh installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright missing")


def _start_timer(dsn: str, alert_id: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        now = datetime.now(UTC)
        try:
            await conn.execute("INSERT INTO lift_arrivals (alert_id, device_id, maintainer_id, started_at, due_at)"
                               " VALUES ($1, 'E1', 'M1', $2, $3)", alert_id, now - timedelta(minutes=8),
                               now + timedelta(minutes=22))
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as ex:  # the test thread belongs to Playwright
        ex.submit(lambda: asyncio.run(go())).result(timeout=60)


def test_the_operator_records_the_arrival_on_the_alert_page(fresh_api, tmp_path):
    aid = fresh_api.seeded.alerts["elev_s2"]
    _start_timer(fresh_api.dsn, aid)
    srv = ConsoleServer(fresh_api.dsn).start()
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                       headless=True, args=ARGS,
                                                       viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.goto(srv.url + "/")
            page.wait_for_selector("#login-form")
            page.fill("#login-username", "centre1")
            page.fill("#login-password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_selector("[data-testid=board]")
            page.goto(f"{srv.url}/#/alert/{aid}")
            page.wait_for_selector("[data-testid=btn-arrival]")
            assert "前到场" in page.inner_text("body")
            page.screenshot(path=str(SHOTS / "lift_arrival_before.png"))
            page.click("[data-testid=btn-arrival]")  # by selector: the live page re-renders
            page.wait_for_selector("[data-testid=timeline] >> text=维保到场")
            timeline = page.inner_text("[data-testid=timeline]")
            assert "维保单位到场，用时8分钟（30分钟时限内）" in timeline, timeline
            assert page.locator("[data-testid=btn-arrival]").count() == 0
            page.screenshot(path=str(SHOTS / "lift_arrival_after.png"))
            ctx.close()
    finally:
        srv.stop()
