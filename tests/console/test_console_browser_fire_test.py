"""The alert page shows a fire.test (a GB/T 26875.3 part in 测试状态) as 测试, in real headless
Chromium: the board card and the alert page carry the 测试 tag; a real fire alarm does not."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
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
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip(
        "Debian's chromium is not installed (scripts/setup_browser.sh installs it)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright missing")


def _alerts(dsn: str) -> tuple[str, str]:
    async def go() -> tuple[str, str]:
        conn = await asyncpg.connect(dsn)
        now = datetime.now(UTC) - timedelta(minutes=1)
        try:
            test = await make_alert(
                conn,
                "F1",
                "S3",
                "fire",
                "fire.test",
                Severity.BLUE,
                now=now,
                township_id="T2",
                department_ids=("D-YJ",),
                summary="测试 火警 火灾报警系统1号 2F 仓库（部件处于测试状态，非真实火警）",
            )
            real = await make_alert(
                conn,
                "F1",
                "S3",
                "fire",
                "fire.alarm",
                Severity.RED,
                now=now,
                township_id="T2",
                department_ids=("D-YJ",),
                summary="火警 火灾报警系统2号 2F 仓库",
            )
            return test, real
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as ex:  # the test thread belongs to Playwright
        return ex.submit(lambda: asyncio.run(go())).result(timeout=60)


def test_a_fire_test_is_shown_as_test_and_a_real_alarm_is_not(fresh_api, tmp_path):
    test_id, real_id = _alerts(fresh_api.dsn)
    srv = ConsoleServer(fresh_api.dsn).start()
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport={"width": 1400, "height": 900},
                locale="zh-CN",
            )
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.goto(srv.url + "/")
                page.wait_for_selector("#login-form")
                page.fill("#login-username", "centre1")
                page.fill("#login-password", PASSWORD)
                page.click("#login-submit")
                page.wait_for_selector("[data-testid=board]")
                test_card = page.wait_for_selector(f"[data-alert-id='{test_id}']")
                assert test_card.query_selector("[data-testid=alert-test]").inner_text() == "测试"
                real_card = page.wait_for_selector(f"[data-alert-id='{real_id}']")
                assert real_card.query_selector("[data-testid=alert-test]") is None
                page.goto(f"{srv.url}/#/alert/{test_id}")
                tag = page.wait_for_selector("[data-testid=alert-test]")
                assert tag.inner_text() == "测试"
                assert "非真实火警" in page.inner_text("main")
                page.screenshot(path=str(SHOTS / "20_fire_test_alert.png"))
                page.goto(f"{srv.url}/#/alert/{real_id}")
                page.wait_for_selector("main >> text=火警 火灾报警系统2号 2F 仓库")  # not the red alarm bar
                assert page.locator("[data-testid=alert-test]").count() == 0
            finally:
                ctx.close()
    finally:
        srv.stop()
