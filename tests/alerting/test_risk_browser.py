"""The 风险分级 page in real headless Chromium over the sample district: real and false alarms judged at
three 桂溪镇 restaurants, a 重大隐患 at a residential estate and an overdue one at a 三合一场所, graded by the shipped
rules (data/risk_rules.yaml) — the page lists the sites by grade with their reasons, filters by grade,
镇街 and 行业, opens a site's 变化记录, in Chinese only; a township's user sees only its sites.
Screenshots: docs/screenshots/risk_desktop.png, risk_phone.png."""

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
from alerting.ledger import find_hazard, register_hazard, supervise_hazard  # noqa: E402
from alerting.risk import grade_all  # noqa: E402
from alerting.risk_rules import load_rules  # noqa: E402
from hazmon.contracts import Severity, Verdict  # noqa: E402

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def _scenario(dsn: str) -> tuple[dict[str, str], dict[str, str]]:
    users = await seed_sample(dsn)
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        gas = await conn.fetch(
            """SELECT DISTINCT ON (d.site_id) d.id, d.site_id FROM devices d JOIN sites s ON s.id = d.site_id
               WHERE d.domain = 'gas' AND s.township_id = 'T03' AND s.industry = '餐饮'
               ORDER BY d.site_id, d.id LIMIT 3""")

        async def judged(device: str, site: str, at: datetime, verdict: Verdict) -> None:
            aid = await make_alert(conn, device, site, "gas", "gas.high", Severity.RED, now=at,
                                   township_id="T03", department_ids=("zj",), summary="可燃气体浓度超过报警值")
            assert (await lc.verify(conn, aid, actor="centre:demo", now=at + timedelta(minutes=5),
                                    verdict=verdict, reason="研判")).applied

        for i, verdict in enumerate((Verdict.REAL, Verdict.REAL, Verdict.REAL, Verdict.FALSE)):
            await judged(gas[0]["id"], gas[0]["site_id"], now - timedelta(days=2 + i), verdict)
        for i, verdict in enumerate((Verdict.REAL, Verdict.FALSE)):
            await judged(gas[1]["id"], gas[1]["site_id"], now - timedelta(days=3 + i), verdict)
        await judged(gas[2]["id"], gas[2]["site_id"], now - timedelta(days=1), Verdict.FALSE)
        estate = await conn.fetchval("SELECT id FROM sites WHERE industry = '住宅物业' ORDER BY id LIMIT 1")
        await find_hazard(conn, actor="centre:demo", now=now - timedelta(days=9), site_id=estate,
                          domain="elevator", grade="major", title="电梯制动器失效", hazard_id="H-r1")
        shop = await conn.fetchval("SELECT id FROM sites WHERE industry = '三合一场所' ORDER BY id LIMIT 1")
        await find_hazard(conn, actor="centre:demo", now=now - timedelta(days=20), site_id=shop,
                          domain="fire", title="住人区域与经营区域未分隔", hazard_id="H-r2")
        await register_hazard(conn, "H-r2", actor="centre:demo", now=now - timedelta(days=20), reason="登记")
        assert (await supervise_hazard(conn, "H-r2", actor="centre:demo", now=now - timedelta(days=20),
                                       deadline=now - timedelta(days=5), supervisor="区消防救援大队", reason="督办",
                                       owner="店主", measures="设置防火分隔", funds="自筹", plan="疏散")).applied
        rules, digest = load_rules()
        await grade_all(conn, rules, digest, now=now)
        names = {"top": gas[0]["site_id"], "estate": estate, "shop": shop}
        names = {k: await conn.fetchval("SELECT name FROM sites WHERE id = $1", v) for k, v in names.items()}
    finally:
        await conn.close()
    return users, names


@pytest.fixture
def risk_server(pg_dsn):
    users, names = asyncio.run(_scenario(pg_dsn))
    srv = ConsoleServer(pg_dsn).start()
    yield srv, users, names
    srv.stop()


def _login(page, url: str, user: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#login-username", user)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("[data-testid=app-view]:not(.hidden)")


def _no_latin(page) -> None:
    text = page.inner_text("main").replace("KTV", "")  # 阳光KTV: a venue's name as people call it
    assert not re.search(r"[A-Za-z]{2,}", text), text
    assert not re.search(r"\b[ST]\d{2,}\b|\bV\d{4}\b", text), "a raw id where a person reads"


def _cards(page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=risk-card]", "els => els.map(e => e.dataset.grade)")


def test_the_risk_page_lists_sites_by_grade_with_reasons(risk_server, browser_page):  # noqa: F811
    srv, users, names = risk_server
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    _login(page, srv.url, users["centre"])
    page.goto(srv.url + "/#/risk")
    page.wait_for_selector("[data-testid=risk-card]")
    assert page.locator("nav a[data-view=risk]").inner_text() == "风险分级"
    grades = _cards(page)
    assert len(grades) == 240 and grades == sorted(grades, key=["red", "orange", "yellow", "blue"].index)
    first = page.locator("[data-testid=risk-card]").first
    # 餐饮 20 + 用气 10 + 报警 (4 judged here, the sample's open ones too) × 2 + 真实 3 × 15 = 45 → 红
    assert names["top"] in first.inner_text()
    assert re.search(r"近30天报警 \d 起 \+\d+；近30天真实报警 3 起 \+45", first.inner_text())
    assert "红 · 重大风险" in first.inner_text()
    counts = page.inner_text("[data-testid=risk-counts]")
    assert re.search(r"\d+ 家 红（重大风险）", counts)
    _no_latin(page)
    page.screenshot(path=str(DOCS / "risk_desktop.png"), full_page=False)

    # filter: 橙 only — the 住宅物业 with its 重大隐患 is among them (黄 by score, 橙 by the floor)
    page.click("[data-testid=risk-count-orange]")
    page.wait_for_timeout(300)
    assert set(_cards(page)) == {"orange"}
    estate = page.locator("[data-testid=risk-card]", has_text=names["estate"])
    assert "未销号重大隐患 1 项 +20（至少橙）" in estate.inner_text()
    estate.locator("summary").click()
    page.wait_for_selector("[data-testid=risk-history] li")
    assert "未评级→橙" in estate.locator("[data-testid=risk-history]").inner_text()
    page.click("[data-testid=risk-count-orange]")  # off again
    page.select_option("[data-testid=risk-industry]", "三合一场所")
    page.wait_for_timeout(300)
    shop = page.locator("[data-testid=risk-card]", has_text=names["shop"])
    assert "逾期未整改隐患 1 项 +10" in shop.inner_text()
    page.select_option("[data-testid=risk-industry]", "")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(srv.url + "/#/risk")
    page.wait_for_selector("[data-testid=risk-card]")
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=str(DOCS / "risk_phone.png"), full_page=False)


def test_a_township_sees_only_its_sites(risk_server, browser_page):  # noqa: F811
    srv, users, _ = risk_server
    page = browser_page
    _login(page, srv.url, users["township"])
    page.goto(srv.url + "/#/risk")
    page.wait_for_selector("[data-testid=risk-card]")
    towns = page.eval_on_selector_all("[data-testid=risk-township] option",
                                      "els => els.map(e => e.textContent)")
    assert towns[0] == "全部镇街" and len(towns) == 2
    _no_latin(page)
