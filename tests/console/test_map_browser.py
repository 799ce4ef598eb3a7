"""辖区地图 in real headless Chromium over the sample district: the township boundaries with their
names, villages, sites clustered when zoomed out and split when zoomed in, the toggle to 风险等级
(GET /api/risk/sites; while it is absent every site reads 未评级), no English word or code where a
person reads. Screenshots: docs/screenshots/map_desktop.png, map_phone.png, map_zoomed_desktop.png, and with
grades and 区域预警 map_risk_desktop.png, map_risk_phone.png."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from console_server import ConsoleServer
from map_district import PASSWORD, seed_sample
from test_console_browser import browser_page  # noqa: F401

from sim.sample import generate

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TOWNS = ["临江街道", "青山镇", "桂溪镇", "云栖街道"]


@pytest.fixture
def sample_server(pg_dsn):
    users = asyncio.run(seed_sample(pg_dsn))
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


def _no_latin(page) -> None:
    text = page.inner_text("main")
    titles = page.eval_on_selector_all(
        "main title, main [aria-label], main [title]",
        "els => els.map(e => e.textContent + ' ' + (e.getAttribute('aria-label') || '')"
        " + ' ' + (e.getAttribute('title') || ''))")
    for t in [text, *titles]:  # KTV: in the names of the sample's venues (阳光KTV), as people call them
        assert not re.search(r"[A-Za-z]{2,}", t.replace("KTV", "")), t


def _clusters(page) -> list[int]:
    return page.eval_on_selector_all("[data-testid=map] g.map-cluster",
                                     "els => els.map(e => +e.dataset.cluster)")


def _open_map(page, url: str) -> None:
    page.goto(url + "/#/map")
    page.wait_for_selector("[data-testid=map] path.map-town")
    page.wait_for_timeout(300)


def test_the_map_draws_the_district_and_toggles_to_risk(sample_server, browser_page):  # noqa: F811
    srv, users = sample_server
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    _login(page, srv.url, users["centre"])
    _open_map(page, srv.url)
    assert page.locator("[data-testid=map] path.map-town").count() == 4
    assert page.locator("[data-testid=map] path.map-village").count() == 12
    names = page.eval_on_selector_all("[data-testid=map] text.map-town-name",
                                      "els => els.map(e => e.textContent)")
    assert names == TOWNS
    assert "4 个镇街 · 240 个场所" in page.inner_text("main h2")
    # zoomed out, neighbouring sites are clustered: the counts add up to every site
    clusters = _clusters(page)
    singles = page.locator("[data-testid=map] circle[data-site]").count()
    assert clusters and sum(clusters) + singles == 240
    # a cluster holding an alarm takes the worst colour among its sites
    looks = page.eval_on_selector_all("[data-testid=map] [data-look]", "els => els.map(e => e.dataset.look)")
    assert "red" in looks
    legend = page.inner_text("[data-testid=map-legend]")
    assert "红色报警" in legend and "聚合的场所数" in legend
    _no_latin(page)
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "map_desktop.png"), full_page=True)

    page.click("[data-testid=map-mode-risk]")
    page.wait_for_selector("[data-testid=map-legend] >> text=未评级")
    looks = page.eval_on_selector_all("[data-testid=map] [data-look]", "els => els.map(e => e.dataset.look)")
    assert set(looks) <= {"red", "orange", "yellow", "blue", "none"}
    assert "重大风险（红）" in page.inner_text("[data-testid=map-legend]")
    _no_latin(page)
    page.click("[data-testid=map-mode-alarm]")

    # the wheel over the biggest cluster zooms in there: it splits into its sites, village names appear
    box = page.eval_on_selector_all(
        "[data-testid=map] g.map-cluster",
        "els => { const g = els.sort((a, b) => b.dataset.cluster - a.dataset.cluster)[0];"
        " const r = g.querySelector('circle').getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2, +g.dataset.cluster]; }")
    page.mouse.move(box[0], box[1])
    for _ in range(9):
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(60)
    assert page.locator("[data-testid=map] g.map-cluster").count() == 0
    assert page.locator("[data-testid=map] circle[data-site]").count() >= box[2]
    assert page.locator("[data-testid=map] text.map-village-name").count() > 0
    # a tap says what a hover title says (phones have no hover): the site, its township, its state
    site = page.locator("[data-testid=map] circle[data-site]").first
    name = site.locator("title").text_content().split(" · ")[0]
    site.dispatch_event("click")
    info = page.inner_text("[data-testid=map-info]")
    assert info.startswith(name + " · ") and any(t in info for t in TOWNS), info
    page.locator("[data-testid=map] path[data-township=T03]").dispatch_event("click")
    assert page.inner_text("[data-testid=map-info]") == "桂溪镇"
    page.click("[data-testid=map-zoom-out]")
    page.click("[data-testid=map-pan-left]")
    _no_latin(page)
    page.screenshot(path=str(DOCS / "map_zoomed_desktop.png"), full_page=True)
    page.click("[data-testid=map-reset]")
    assert sum(_clusters(page)) + page.locator("[data-testid=map] circle[data-site]").count() == 240

    page.set_viewport_size({"width": 390, "height": 844})
    _open_map(page, srv.url)
    width = page.eval_on_selector("[data-testid=map]", "el => el.getBoundingClientRect().width")
    assert width <= 390
    _no_latin(page)
    page.screenshot(path=str(DOCS / "map_phone.png"), full_page=True)


# Stand-ins for GET /api/risk/sites and GET /api/area-warnings in the shapes of issue 15's contracts
# 2 and 3, answered only while the real endpoint says 404 (the RISK and WARN helpers' work has not
# landed): the one thing here that is not the product itself.
_GRADE = {"医院": "red", "养老": "red", "商场": "orange", "学校": "orange", "工业企业": "yellow",
          "三合一场所": "yellow", "文化场所": "orange"}
_GRADE_ZH = {"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝"}


def _risk_items() -> list[dict]:
    out = []
    for s in generate().tables["sites"]:
        grade = _GRADE.get(s["industry"], "blue")
        out.append({"site_id": s["id"], "site_name": s["name"], "township_id": s["township_id"],
                    "grade": grade, "grade_zh": _GRADE_ZH[grade], "score": 50,
                    "reasons": [f"行业：{s['industry']}"]})
    return out


_WARNINGS = [
    {"id": "w1", "scope": "township", "scope_zh": "片", "key": "T03", "name": "桂溪镇", "level": "orange",
     "level_zh": "橙色", "reasons": ["近7天真实报警5起"], "since": "2026-12-01T00:00:00Z"},
    {"id": "w2", "scope": "industry", "scope_zh": "线", "key": "餐饮", "name": "餐饮", "level": "yellow",
     "level_zh": "黄色", "reasons": ["燃气报警偏多"], "since": "2026-12-01T00:00:00Z"},
]


def _stand_in(page, path: str, body: dict, used: list[str]) -> None:
    def handle(route) -> None:
        real = route.fetch()
        if real.status != 404:
            route.fulfill(response=real)
            return
        used.append(path)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body, ensure_ascii=False))

    page.route(f"**{path}", handle)


def test_risk_grades_and_area_warnings_on_the_map(sample_server, browser_page):  # noqa: F811
    srv, users = sample_server
    page = browser_page
    used: list[str] = []
    _stand_in(page, "/api/risk/sites", {"items": _risk_items()}, used)
    _stand_in(page, "/api/area-warnings", {"items": _WARNINGS}, used)
    page.set_viewport_size({"width": 1366, "height": 900})
    _login(page, srv.url, users["centre"])
    _open_map(page, srv.url)
    page.click("[data-testid=map-mode-risk]")
    page.wait_for_selector("[data-testid=map-legend] >> text=重大风险（红）")
    assert page.locator("[data-testid=map-risk-missing]").count() == 0
    looks = set(page.eval_on_selector_all("[data-testid=map] [data-look]",
                                          "els => els.map(e => e.dataset.look)"))
    assert looks <= {"red", "orange", "yellow", "blue", "none"}
    if "/api/risk/sites" in used:
        assert {"red", "orange"} <= looks and "none" not in looks
    if "/api/area-warnings" in used:
        shaded = page.eval_on_selector_all("[data-testid=map] path[data-warning]",
                                           "els => els.map(e => [e.dataset.township, e.dataset.warning])")
        assert shaded == [["T03", "orange"]]
        listed = page.inner_text("[data-testid=map-warnings]")
        assert "区域预警 · 2 条" in listed and "片 · 桂溪镇：近7天真实报警5起" in listed
    _no_latin(page)
    page.screenshot(path=str(DOCS / "map_risk_desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    _no_latin(page)
    page.screenshot(path=str(DOCS / "map_risk_phone.png"), full_page=True)
