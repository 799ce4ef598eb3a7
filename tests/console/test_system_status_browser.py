"""监测系统运行状态 in real headless Chromium (Debian's), desktop (1366×900) and phone (390×844):
the page reads in Chinese with no English word visible, refreshes by itself, and the alert
page's timeline names its actors in words. Screenshots: artifacts/screenshots/system_status_*.png
(copies in docs/screenshots/)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from console_district import PASSWORD
from console_server import ConsoleServer
from system_status_seed import seed_monitor

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
#: what may stay Latin on a Chinese page: payload format names and units (%LEL: the red alarm bar
#: over every page names the unacknowledged alarm, e.g. 燃气浓度 32%LEL)
ALLOWED = re.compile(r"GB/T|JSON|SenML|\bms\b|%LEL")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip("Debian's chromium is not installed (scripts/setup_browser.sh installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright missing")


def _db(dsn: str, fn: Callable[[Any], Awaitable[None]]) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await fn(conn)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as ex:  # the test thread belongs to Playwright
        ex.submit(lambda: asyncio.run(go())).result(timeout=60)


async def _seed(conn: Any) -> None:
    await seed_monitor(conn)
    await conn.execute("UPDATE console_users SET display_name = '李值班' WHERE username = 'centre1'")


async def _alerting_beats_again(conn: Any) -> None:
    await conn.execute("UPDATE stage_heartbeats SET beat_at = now() WHERE stage = 'alerting'")


def _english(text: str) -> list[str]:
    return LATIN_WORD.findall(ALLOWED.sub("", text))


def test_the_status_page_reads_in_chinese_on_desktop_and_phone(fresh_api, tmp_path):
    _db(fresh_api.dsn, _seed)
    srv = ConsoleServer(fresh_api.dsn).start()
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            for size, viewport in SIZES.items():
                ctx = p.chromium.launch_persistent_context(str(tmp_path / f"profile-{size}"), executable_path=CHROMIUM,
                                                           headless=True, args=ARGS, viewport=viewport, locale="zh-CN")
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.goto(srv.url + "/")
                page.wait_for_selector("#login-form")
                page.fill("#login-username", "centre1")
                page.fill("#login-password", PASSWORD)
                page.click("#login-submit")
                page.wait_for_selector("[data-testid=board]")
                page.click("#nav a[data-view=system]")  # linked from the navigation
                page.wait_for_selector("[data-testid=sys-canaries]")
                body = page.inner_text("body")
                for words in ("监测系统运行状态", "各环节心跳", "检测服务", "告警服务", "接入网关 2 号", "值守看门狗",
                              "燃气（JSON）", "消防（GB/T 26875.3）", "中断于：检测服务", "积压 1,234 条",
                              "正在呼叫值班员：短信接口无法连接", "秒前"):
                    assert words in body, (size, words)
                assert _english(body) == [], (size, [ln for ln in body.splitlines() if _english(ln)])
                page.screenshot(path=str(SHOTS / f"system_status_{size}.png"), full_page=True)
                ctx.close()

            # it refreshes by itself: alerting beats again → 延迟 becomes 正常 without a reload
            ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile-desktop"), executable_path=CHROMIUM,
                                                       headless=True, args=ARGS, viewport=SIZES["desktop"],
                                                       locale="zh-CN")
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.goto(srv.url + "/#/system")
            alerting = page.locator("[data-testid=sys-stage][data-stage=alerting] [data-testid=sys-state]").first
            alerting.wait_for()
            assert alerting.inner_text() == "延迟"
            _db(fresh_api.dsn, _alerting_beats_again)
            page.wait_for_function(
                "() => document.querySelector('[data-stage=alerting] [data-testid=sys-state]').textContent === '正常'",
                timeout=12_000)

            # the alert page's timeline: 系统, not "system"
            page.goto(f"{srv.url}/#/alert/{fresh_api.seeded.alerts['gas_s1']}")
            page.wait_for_selector("[data-testid=timeline]")
            timeline = page.inner_text("[data-testid=timeline]")
            assert "系统" in timeline and "system" not in timeline, timeline
            ctx.close()
    finally:
        srv.stop()
