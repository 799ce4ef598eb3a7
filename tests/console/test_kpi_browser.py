"""The 考核指标 page in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) on
the scripted month (tests/alerting/kpi_month.py): the tiles show the golden figures with their
同比/环比 arrows, the rankings and the vendor league are there, the period selector moves to a
year and a custom span, a future period is refused in words; screenshots desktop and phone go to
docs/screenshots/kpi_*.png."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import sys
from pathlib import Path

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "alerting"))
from kpi_month import NOW, START, load_district, month_service, script_month  # noqa: E402

from alerting.clock import ManualClock  # noqa: E402
from console.users import create_demo_accounts  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "kpi-page-pw"

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


def _tile(page, testid: str) -> str:
    return page.inner_text(f"[data-testid={testid}] b")


def test_kpi_page_on_the_scripted_month(month_server, tmp_path: Path) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        for size, viewport, mobile in (("desktop", {"width": 1400, "height": 900}, False),
                                       ("phone", {"width": 390, "height": 844}, True)):
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / f"profile-{size}"), executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport=viewport, locale="zh-CN", is_mobile=mobile, has_touch=mobile)
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.goto(month_server.url + "/")
                page.fill("#login-username", "demo-centre")
                page.fill("#login-password", PASSWORD)
                page.click("#login-submit")
                page.wait_for_selector("[data-testid=app-view]:not(.hidden)")
                page.goto(month_server.url + "/#/kpi/2026-11")
                page.wait_for_selector("[data-testid=kpi-tiles]")
                assert "考核指标 · 2026年11月" in page.inner_text("h2")
                # the golden figures (tests/alerting/kpi_month.py), as the API and the report give them
                assert _tile(page, "kpi-coverage") == "75.0%"
                assert _tile(page, "kpi-online") == "92.1%"
                assert _tile(page, "kpi-closure") == "75.0%"
                assert _tile(page, "kpi-false") == "14.3%"
                assert _tile(page, "kpi-alerts") == "8/6"
                assert page.inner_text("[data-testid=kpi-coverage] [data-testid=chg-yoy-coverage_rate]") == \
                    "同比 ↑ +25.0个百分点"
                assert page.inner_text("[data-testid=kpi-online] [data-testid=chg-mom-online_rate]") == \
                    "环比 ↓ -7.9个百分点"
                assert page.inner_text("[data-testid=kpi-false] [data-testid=chg-yoy-false_alarm_rate]") == \
                    "同比 ↓ -35.7个百分点"
                towns = page.inner_text("[data-testid=kpi-rank-township]")
                assert towns.index("东城街道") < towns.index("南湖街道") < towns.index("西山镇")
                vendors = page.inner_text("[data-testid=kpi-vendors]")
                assert vendors.index("联梯物联网科技有限公司") < vendors.index("安可燃气安全科技有限公司")
                assert "安全生产监测预警通报" in page.inner_text("[data-testid=bulletin]")
                page.screenshot(path=str(DOCS / f"kpi_{size}.png"), full_page=True)
                if size == "desktop":
                    # the period selector: the year 2026, then a custom span
                    page.select_option("[data-testid=kpi-kind]", "year")
                    page.select_option("[data-testid=kpi-year]", "2026")
                    page.click("[data-testid=kpi-apply]")
                    page.wait_for_selector("h2:has-text('考核指标 · 2026年')")
                    page.select_option("[data-testid=kpi-kind]", "custom")
                    page.fill("[data-testid=kpi-from]", "2026-11-01")
                    page.fill("[data-testid=kpi-to]", "2026-11-15")
                    page.click("[data-testid=kpi-apply]")
                    page.wait_for_selector("h2:has-text('2026-11-01 至 2026-11-15')")
                    page.screenshot(path=str(DOCS / "kpi_custom_desktop.png"), full_page=False)
                    # a period not begun: refused in words, nothing else shown
                    page.goto(month_server.url + "/#/kpi/2027-03")
                    err = page.wait_for_selector("[data-testid=kpi-error]")
                    assert err.inner_text().startswith("所选时段尚未开始")
                    assert page.locator("[data-testid=kpi-tiles]").count() == 0
            finally:
                ctx.close()
