"""The 区域预警 page in real headless Chromium (Debian's /usr/bin/chromium) over the sample district:
real alarms judged 真实警情 at two 桂溪镇 restaurants, a 重大隐患 and an overdue one, a fatal accident
in 临江街道, evaluated by the shipped rules (data/area_warnings.yaml), then a raise — the page shows
the warnings by 片/线/点 with their reasons and history in Chinese only, the duty board its mark.
Screenshots: docs/screenshots/warnings_desktop.png, warnings_phone.png, warnings_board_desktop.png."""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from console_district import make_alert  # noqa: E402
from console_server import ConsoleServer  # noqa: E402
from map_district import PASSWORD, seed_sample  # noqa: E402
from test_console_browser import browser_page  # noqa: E402, F401

from alerting import lifecycle as lc  # noqa: E402
from alerting.accidents import NewAccident, add_accident  # noqa: E402
from alerting.area_warning import run_pass  # noqa: E402
from alerting.area_warning_rules import load_rules  # noqa: E402
from alerting.compose import ComposeContext  # noqa: E402
from alerting.config import load_config  # noqa: E402
from alerting.ledger import find_hazard, register_hazard, supervise_hazard  # noqa: E402
from hazmon.contracts import Severity, Verdict  # noqa: E402
from hazmon.registry import load_registry  # noqa: E402

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "screenshots"


async def _scenario(dsn: str) -> dict[str, str]:
    users = await seed_sample(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=3)
    now = datetime.now(UTC)
    try:
        async with pool.acquire() as conn:
            gas = await conn.fetch(
                """SELECT DISTINCT ON (d.site_id) d.id, d.site_id
                     FROM devices d JOIN sites s ON s.id = d.site_id
                    WHERE d.domain = 'gas' AND s.township_id = 'T03' ORDER BY d.site_id, d.id LIMIT 2"""
            )

            async def real(device: str, site: str, at: datetime) -> None:
                aid = await make_alert(
                    conn,
                    device,
                    site,
                    "gas",
                    "gas.high",
                    Severity.RED,
                    now=at,
                    township_id="T03",
                    department_ids=("zj",),
                    summary="可燃气体浓度超过报警值",
                )
                assert (
                    await lc.verify(
                        conn,
                        aid,
                        actor="centre:demo",
                        now=at + timedelta(minutes=5),
                        verdict=Verdict.REAL,
                        reason="现场确认泄漏",
                    )
                ).applied

            for i in range(3):
                await real(gas[0]["id"], gas[0]["site_id"], now - timedelta(days=3 + i))
            await real(gas[1]["id"], gas[1]["site_id"], now - timedelta(days=2))
            await real(gas[1]["id"], gas[1]["site_id"], now - timedelta(days=1))
            await find_hazard(
                conn,
                actor="centre:demo",
                now=now - timedelta(days=9),
                site_id=gas[1]["site_id"],
                domain="gas",
                grade="major",
                title="燃气管道穿越地下室未设报警装置",
                hazard_id="H-w1",
            )
            await find_hazard(
                conn,
                actor="centre:demo",
                now=now - timedelta(days=9),
                site_id=gas[1]["site_id"],
                domain="gas",
                title="燃气软管老化",
                hazard_id="H-w2",
            )
            await register_hazard(
                conn, "H-w2", actor="centre:demo", now=now - timedelta(days=9), reason="登记"
            )
            await supervise_hazard(
                conn,
                "H-w2",
                actor="centre:demo",
                now=now - timedelta(days=9),
                deadline=now - timedelta(days=2),
                supervisor="桂溪镇",
                reason="督办",
                owner="店长",
                measures="更换软管",
                funds="企业自筹",
                plan="关阀疏散",
            )
            site = await conn.fetchval(
                "SELECT id FROM sites WHERE township_id = 'T01' AND industry = '工业企业' LIMIT 1"
            )
            await add_accident(
                conn,
                NewAccident(
                    occurred_at=now - timedelta(days=12),
                    township_id="T01",
                    site_id=site,
                    domain="fire",
                    level="general",
                    deaths=1,
                    injuries=2,
                    title="车间火灾",
                ),
                actor="centre:demo",
                now=now,
            )
        ctx = ComposeContext(await load_registry(pool), load_config(ROOT / "data" / "routes.yaml"))
        rules = load_rules()
        await run_pass(pool, ctx, rules, now - timedelta(hours=2))
        async with pool.acquire() as conn:  # two more real alarms: the first restaurant 橙 → 红
            for i in range(2):
                await real(gas[0]["id"], gas[0]["site_id"], now - timedelta(hours=1, minutes=i))
        res = await run_pass(pool, ctx, rules, now - timedelta(minutes=30))
        assert res.raised >= 1, res
    finally:
        await pool.close()
    return users


@pytest.fixture
def warn_server(pg_dsn: str):
    users = asyncio.run(_scenario(pg_dsn))
    srv = ConsoleServer(pg_dsn).start()
    yield srv, users
    srv.stop()


def _login(page, url: str, user: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#login-username", user)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("[data-testid=app-view]:not(.hidden)")


def _chinese_only(page) -> None:
    text = page.inner_text("main")
    assert not re.search(r"[A-Za-z]{2,}", text), text
    assert not re.search(r"\b(?:T0\d|S\d{5}|acc-|H-w)", text), text  # no raw ids


def test_the_warnings_page_and_the_board_mark(warn_server, browser_page) -> None:  # noqa: F811
    srv, users = warn_server
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    _login(page, srv.url, users["centre"])
    page.goto(srv.url + "/#/warnings")
    page.wait_for_selector("[data-testid=warn-card]")
    assert page.inner_text("main h2") == "区域预警（三色）"
    town = page.locator("[data-testid=warn-col-township] [data-testid=warn-card]")
    names = town.all_inner_texts()
    assert any("桂溪镇" in t and "红色预警点位2个" in t for t in names), names  # both restaurants red
    sites = page.inner_text("[data-testid=warn-col-site]")
    assert "近30天真实警情5起，达到红色预警标准（5起）" in sites
    assert "近一年事故死亡1人，达到红色预警标准（1人）" in sites
    assert "未整改重大隐患1项" in sites
    page.eval_on_selector_all("details.warn-history", "ds => ds.forEach(d => { d.open = true; })")
    raised = page.locator("[data-testid=warn-col-site] [data-testid=warn-card]", has_text="升级").first
    hist = raised.inner_text()
    assert "发布：橙色" in hist and "升级：橙色→红色" in hist and "已通知：" in hist, hist
    assert page.locator("[data-testid=acc-form]").count() == 1
    _chinese_only(page)
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "warnings_desktop.png"), full_page=True)

    page.goto(srv.url + "/#/board")
    page.wait_for_selector("[data-testid=board-warn-mark]")
    mark = page.inner_text("[data-testid=board-warn-mark]")
    assert mark.startswith("区域预警：") and "红色" in mark, mark
    page.screenshot(path=str(DOCS / "warnings_board_desktop.png"))

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(srv.url + "/#/warnings")
    page.wait_for_selector("[data-testid=warn-card]")
    page.locator("details.warn-history").first.evaluate("d => d.open = true")
    _chinese_only(page)
    page.screenshot(path=str(DOCS / "warnings_phone.png"), full_page=True)

    # a township sees its own 片 and 点 only; no accident form
    page.set_viewport_size({"width": 1366, "height": 900})
    page.click("#logout")
    _login(page, srv.url, users["township"])
    page.goto(srv.url + "/#/warnings")
    page.wait_for_selector("[data-testid=warn-counts]")
    assert page.locator("[data-testid=acc-form]").count() == 0
    assert "行业领域 · 0 条" in page.inner_text("[data-testid=warn-col-industry]")
