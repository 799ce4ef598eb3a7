"""The 通报 page in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) on the
scripted month (tests/alerting/kpi_month.py): the period selector, the composed overview with the
golden figures, 存在问题, the three downloads (the PDF fetched through the page's own link), a
future period refused in words; screenshots docs/screenshots/bulletin_desktop.png and
bulletin_phone.png."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import shutil
import sys
from pathlib import Path

import asyncpg
import pytest
from kpi_month import NOW, START, load_district, month_service, script_month

from alerting.clock import ManualClock
from console.users import create_demo_accounts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "bulletin-page-pw"

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip("Debian's chromium is not installed (scripts/setup_browser.sh installs it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright missing")


def _script(dsn: str, tmp: Path) -> None:
    async def go() -> None:
        await load_district(dsn, tmp)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
        clock = ManualClock(START)
        svc = await month_service(pool, clock)
        try:
            await script_month(pool, svc, clock)
            async with pool.acquire() as c:
                await create_demo_accounts(c, password=PASSWORD)
        finally:
            await svc.stop()
            await pool.close()
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        ex.submit(lambda: asyncio.run(go())).result(timeout=120)


@pytest.fixture
def month_server(pg_dsn: str, tmp_path: Path):
    from console_server import ConsoleServer

    _script(pg_dsn, tmp_path)
    srv = ConsoleServer(pg_dsn, clock=lambda: NOW).start()
    yield srv
    srv.stop()


def test_bulletin_page_on_the_scripted_month(month_server, tmp_path: Path) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        for size, viewport, mobile in (("desktop", {"width": 1400, "height": 900}, False),
                                       ("phone", {"width": 390, "height": 844}, True)):
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / f"profile-{size}"), executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport=viewport, locale="zh-CN", is_mobile=mobile, has_touch=mobile, accept_downloads=True)
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.goto(month_server.url + "/")
                page.fill("#login-username", "demo-centre")
                page.fill("#login-password", PASSWORD)
                page.click("#login-submit")
                page.wait_for_selector("[data-testid=app-view]:not(.hidden)")
                page.goto(month_server.url + "/#/bulletin/2026-11")
                page.wait_for_selector("[data-testid=bulletin-doc]")
                assert page.inner_text("[data-testid=bulletin-title]") == "2026年11月安全生产监测预警工作情况通报"
                opening = page.inner_text("[data-testid=bulletin-opening]")
                assert "设备在线率92.1%（同比上升12.1个百分点）" in opening
                assert "处置率75.0%（同比上升35.0个百分点）" in opening
                text = page.inner_text("[data-testid=bulletin-doc]")
                assert "存在问题" in text and "西山镇（" in text and "下一步工作" in text
                # no raw ids where a person reads: T1/T2/A1-G, English field names
                assert not re.search(r"\b(?:[TVABC]\d|[A-C]\d-[GEF]|online_rate|township)\b", text), text
                page.screenshot(path=str(DOCS / f"bulletin_{size}.png"), full_page=True)
                if size == "desktop":
                    with page.expect_download() as dl:
                        page.click("[data-testid=bulletin-pdf]")
                    path = dl.value.path()
                    assert dl.value.suggested_filename.endswith(".pdf")
                    assert path is not None and Path(path).read_bytes()[:5] == b"%PDF-"
                    # the selector: 第四季度 2026 (a quarter not over yet still has its data)
                    page.select_option("[data-testid=bulletin-kind]", "quarter")
                    page.select_option("[data-testid=bulletin-year]", "2026")
                    page.select_option("[data-testid=bulletin-quarter]", "4")
                    page.click("[data-testid=bulletin-apply]")
                    page.wait_for_selector("[data-testid=bulletin-title]:has-text('2026年第四季度')")
                    page.goto(month_server.url + "/#/bulletin/2027-03")
                    err = page.wait_for_selector("[data-testid=bulletin-error]")
                    assert err.inner_text().startswith("所选时段尚未开始")
                    assert page.locator("[data-testid=bulletin-files]").count() == 0
            finally:
                ctx.close()
