"""The board for a long shift (issue 14 item 7) in real headless Chromium (Debian's, through
Playwright), at 1366×900 and 390×844: a new red alarm flashes and plays its tone — after the
one tap 开启声音提示 that browsers require — until someone acknowledges it, 静音 stops the tone
only; 逾期 is highlighted; the filters narrow the board; the history finds a 办结 alarm; the
wall screen (大屏) at 1920×1080. Screenshots: docs/screenshots/board_{desktop,phone}.png and
wall_1920.png.

The tone is WebAudio generated in the page: headless Chromium has no speaker to listen to, so
the test reads what the page reports (window.hazmonAlarm: the AudioContext running after the
tap, the count of tones played) and the flashing animation's computed name."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from console_district import PASSWORD, make_alert
from console_server import ConsoleServer

from hazmon.contracts import Severity

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip("Debian's chromium is not installed (scripts/setup_browser.sh installs it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright missing")


def _in_thread(coro_fn):
    """DB work on its own loop in another thread (the test thread belongs to Playwright)."""
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(lambda: asyncio.run(coro_fn())).result(timeout=60)


def _sql(dsn: str, *statements: tuple) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for sql, *args in statements:
                await conn.execute(sql, *args)
        finally:
            await conn.close()
    _in_thread(go)


def _new_red(dsn: str) -> str:
    """A red alarm starting now (the board's hub reads changes after its cursor: the latest
    change it saw, now when the test acknowledged one through the API)."""
    async def go() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return await make_alert(conn, "G4", "S4", "gas", "gas.high", Severity.RED,
                                    now=datetime.now(UTC), township_id="T2",
                                    department_ids=("D-ZJ",), summary="河西面馆 燃气浓度超限 41%LEL")
        finally:
            await conn.close()
    return _in_thread(go)


def _post(server, api, path: str, body: dict) -> None:
    token = api.tokens["centre1"][0]
    r = httpx.post(server.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text


@pytest.fixture
def server(fresh_api):
    srv = ConsoleServer(fresh_api.dsn).start()
    yield srv
    srv.stop()


@pytest.fixture
def chromium(tmp_path):
    with sync_api.sync_playwright() as p:
        contexts = []

        def open_page(viewport: dict):
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / f"profile-{len(contexts)}"), executable_path=CHROMIUM, headless=True,
                args=ARGS, viewport=viewport, locale="zh-CN",
            )
            contexts.append(ctx)
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.on("pageerror", lambda e: print("page error:", e))
            return page

        try:
            yield open_page
        finally:
            for ctx in contexts:
                ctx.close()


def _login(page, url: str, user: str = "centre1") -> None:
    page.goto(url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#login-username", user)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("[data-testid=board]")
    page.wait_for_selector("#live.on", timeout=15_000)


def _cards(page) -> list[str]:
    return sorted(page.eval_on_selector_all("[data-testid=alert-card]",
                                            "cs => cs.map((c) => c.dataset.alertId)"))


@pytest.mark.parametrize("size", list(SIZES))
def test_new_red_alarm_flashes_and_plays_until_acknowledged(server, fresh_api, chromium, size):
    # the seeded red alarm acknowledged first: the one that rings is the new one
    _post(server, fresh_api, f"/api/alerts/{fresh_api.seeded.alerts['gas_s1']}/acknowledge", {})
    page = chromium(SIZES[size])
    _login(page, server.url)
    assert page.is_hidden("[data-testid=alarm-bar]")
    assert page.evaluate("window.hazmonAlarm") == {"audioStarted": False, "beeps": 0, "ringing": 0}

    aid = _new_red(fresh_api.dsn)  # arrives live, no reload
    card = page.wait_for_selector(f"[data-testid=col-red] [data-alert-id='{aid}'].ringing", timeout=15_000)
    assert card.evaluate("(c) => getComputedStyle(c).animationName") == "ring"
    bar = page.wait_for_selector("[data-testid=alarm-bar]:visible")
    assert "红色报警未确认 1 条：河西面馆 燃气浓度超限" in bar.inner_text()
    assert bar.inner_text().count("河西面馆") == 1  # its summary starts with the site: named once
    assert bar.evaluate("(b) => getComputedStyle(b).animationName") == "ring-bar"
    # no sound before a gesture: the page asks for the one tap
    assert page.evaluate("window.hazmonAlarm.audioStarted") is False
    page.click("[data-testid=alarm-enable]")
    page.wait_for_function("() => window.hazmonAlarm.audioStarted && window.hazmonAlarm.beeps >= 2",
                           timeout=10_000)
    assert page.get_attribute("body", "data-alarm-sound") == "playing"
    assert page.locator("[data-testid=alarm-enable]").count() == 0

    # 静音: the tone stops, the flashing does not; a second tap brings the tone back
    page.click("[data-testid=alarm-mute]")
    assert page.get_attribute("body", "data-alarm-sound") == "off"
    muted_at = page.evaluate("window.hazmonAlarm.beeps")
    page.wait_for_timeout(1800)
    assert page.evaluate("window.hazmonAlarm.beeps") == muted_at
    assert page.is_visible("[data-testid=alarm-bar]") and "已静音" in page.inner_text("[data-testid=alarm-mute]")
    page.click("[data-testid=alarm-mute]")
    page.wait_for_function(f"() => window.hazmonAlarm.beeps > {muted_at}", timeout=5_000)

    # someone acknowledges it (here: another operator, through the API): bar, tone and flashing stop
    _post(server, fresh_api, f"/api/alerts/{aid}/acknowledge", {})
    page.wait_for_selector("[data-testid=alarm-bar]", state="hidden", timeout=15_000)
    assert page.get_attribute("body", "data-alarm-sound") == "off"
    page.wait_for_selector(f"[data-alert-id='{aid}']:not(.ringing)")
    stopped_at = page.evaluate("window.hazmonAlarm.beeps")
    page.wait_for_timeout(1800)
    assert page.evaluate("window.hazmonAlarm.beeps") == stopped_at

    # another new red rings again, sound still on (no second tap); 确认 on its page stops it
    aid2 = _new_red_later(fresh_api.dsn)
    page.wait_for_selector("[data-testid=alarm-bar]:visible", timeout=15_000)
    page.wait_for_function(f"() => window.hazmonAlarm.beeps > {stopped_at}", timeout=5_000)
    page.click("[data-testid=alarm-text]")
    page.wait_for_selector("[data-testid=btn-ack]").click()
    page.wait_for_selector("[data-testid=alarm-bar]", state="hidden", timeout=15_000)
    assert page.get_attribute("body", "data-alarm-sound") == "off"
    assert aid2


def _new_red_later(dsn: str) -> str:
    async def go() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return await make_alert(conn, "G1", "S1", "gas", "gas.leak", Severity.RED, now=datetime.now(UTC),
                                    township_id="T1", department_ids=("D-ZJ",), summary="老王饭店 燃气泄漏")
        finally:
            await conn.close()
    return _in_thread(go)


@pytest.mark.parametrize("size", list(SIZES))
def test_filters_narrow_the_board_and_overdue_is_highlighted(server, fresh_api, chromium, size):
    gas, elev, fire = (fresh_api.seeded.alerts[k] for k in ("gas_s1", "elev_s2", "fire_s3"))
    now = datetime.now(UTC)
    # what alerting writes when the trapped-passenger alarm's 到场 limit passes (alerting/arrival.py)
    _sql(fresh_api.dsn, ("""INSERT INTO lift_arrivals (alert_id, device_id, maintainer_id, started_at, due_at)
                            VALUES ($1, 'E1', 'M1', $2, $3)""", elev, now - timedelta(minutes=40),
                         now - timedelta(minutes=10)))
    page = chromium(SIZES[size])
    _login(page, server.url)
    assert _cards(page) == sorted([gas, elev, fire])
    late = page.locator(f"[data-alert-id='{elev}'] [data-testid=alert-overdue]")
    assert "维保单位超时未到场" in late.inner_text()
    assert page.get_attribute(f"[data-alert-id='{elev}']", "data-overdue") == "1"
    assert page.inner_text("[data-testid=count-overdue] b") == "1"
    page.screenshot(path=str(DOCS_SHOTS / f"board_{size}.png"), full_page=True)

    page.select_option("[data-testid=board-filter-domain]", "gas")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=alert-card]').length === 1")
    assert _cards(page) == [gas]
    page.select_option("[data-testid=board-filter-domain]", "")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=alert-card]').length === 3")
    page.select_option("[data-testid=board-filter-township_id]", label="新河街道")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=alert-card]').length === 1")
    assert _cards(page) == [fire]
    page.click("[data-testid=board-filter-clear]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=alert-card]').length === 3")
    # 派发 the gas alarm: the 派发 stage holds it alone, 研判 the other two
    _post(server, fresh_api, f"/api/alerts/{gas}/verify", {"verdict": "real", "reason": "视频复核"})
    _post(server, fresh_api, f"/api/alerts/{gas}/dispatch", {"orders": [{"unit_id": "T1"}]})
    # its 工单 past the deadline (what alerting's timer pass finds): listed, and on the alarm's card
    _sql(fresh_api.dsn, ("UPDATE work_orders SET created_at = now() - interval '65 minutes',"
                         " deadline = now() - interval '5 minutes' WHERE alert_id = $1", gas))
    page.select_option("[data-testid=board-filter-stage]", label="派发")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=alert-card]').length === 1")
    assert _cards(page) == [gas]
    assert "城关镇" in page.inner_text("[data-testid=overdue-orders]")
    assert "工单逾期" in page.inner_text(f"[data-alert-id='{gas}'] [data-testid=alert-overdue]")
    page.select_option("[data-testid=board-filter-stage]", "")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=alert-card]').length === 3")
    page.select_option("[data-testid=board-filter-stage]", label="研判")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=alert-card]').length === 2")
    assert _cards(page) == sorted([elev, fire])
    # a live change that leaves the filter leaves the board: 研判 → the fire alarm 派发
    _post(server, fresh_api, f"/api/alerts/{fire}/verify", {"verdict": "real", "reason": "烟感复核"})
    _post(server, fresh_api, f"/api/alerts/{fire}/dispatch", {"orders": [{"unit_id": "T2"}]})
    page.wait_for_function("() => document.querySelectorAll('[data-testid=alert-card]').length === 1",
                           timeout=15_000)
    assert _cards(page) == [elev]


def _cst_today() -> str:
    return (datetime.now(UTC) + timedelta(hours=8)).date().isoformat()


@pytest.mark.parametrize("size", list(SIZES))
def test_history_finds_a_closed_alarm(server, fresh_api, chromium, size):
    gas = fresh_api.seeded.alerts["gas_s1"]
    _post(server, fresh_api, f"/api/alerts/{gas}/verify", {"verdict": "false", "reason": "厨房蒸汽"})
    _post(server, fresh_api, f"/api/alerts/{gas}/close", {"reason": "误报，已提醒企业清洁探头"})
    page = chromium(SIZES[size])
    _login(page, server.url)
    page.goto(server.url + "/#/history")
    page.wait_for_selector("[data-testid=history-total]")
    assert "共 1 条" in page.inner_text("[data-testid=history-total]")
    page.fill("[data-testid=history-q]", "老王")
    page.click("[data-testid=history-search]")
    row = page.wait_for_selector(f"[data-testid=history-row][data-alert-id='{gas}']")
    assert "老王饭店" in row.inner_text() and "误报" in row.inner_text()
    page.fill("[data-testid=history-q]", "五金厂")
    page.click("[data-testid=history-search]")
    page.wait_for_selector("[data-testid=history-empty]")
    # by device and verdict, and by date (the seeded alarm started on 2026-11-20, CST)
    page.fill("[data-testid=history-q]", "")
    page.fill("[data-testid=history-device_id]", "G1")
    page.select_option("[data-testid=history-verdict]", "false")
    page.fill("[data-testid=history-from]", "2026-11-20")
    page.fill("[data-testid=history-to]", "2026-11-20")
    page.click("[data-testid=history-search]")
    page.wait_for_selector(f"[data-testid=history-row][data-alert-id='{gas}']")
    page.fill("[data-testid=history-from]", "2026-11-21")
    page.fill("[data-testid=history-to]", _cst_today())
    page.click("[data-testid=history-search]")
    page.wait_for_selector("[data-testid=history-empty]")
    page.fill("[data-testid=history-from]", "2026-11-20")
    page.click("[data-testid=history-search]")
    page.wait_for_selector(f"[data-testid=history-row][data-alert-id='{gas}']").click()
    page.wait_for_selector("[data-testid=alert-phase]:has-text('办结')")
    assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"] + 1


def test_wall_screen_at_1920(server, fresh_api, chromium):
    page = chromium({"width": 1920, "height": 1080})
    _login(page, server.url)
    page.goto(server.url + "/#/wall")
    page.wait_for_selector("[data-testid=wall]")
    assert page.is_hidden("header.top")  # the page alone
    assert page.inner_text("[data-testid=wall-total]") == "3"
    assert page.inner_text("[data-testid=wall-count-red] b") == "1"
    assert page.inner_text("[data-testid=wall-townships] li:first-child").startswith("城关镇")
    assert "老王饭店" in page.inner_text("[data-testid=wall-red]")
    assert page.inner_text("[data-testid=wall-orders-overdue]") == "0"
    domains = page.inner_text("[data-testid=wall-domains]")
    assert all(d in domains for d in ("燃气", "电梯", "消防"))
    # readable across a room: the counts in very large type, the lines large; all on one screen
    size_of = "(sel) => parseFloat(getComputedStyle(document.querySelector(sel)).fontSize)"
    assert page.evaluate(size_of, ".wall-tile b") >= 80
    assert page.evaluate(size_of, ".wall-reds li") >= 24
    assert page.evaluate("document.documentElement.scrollWidth") <= 1920
    assert page.evaluate("document.documentElement.scrollHeight") <= 1080, "the wall needs scrolling"
    # a new alarm shows without a reload
    _new_red(fresh_api.dsn)
    page.wait_for_function("() => document.querySelector('[data-testid=wall-total]').textContent === '4'",
                           timeout=20_000)
    assert "河西面馆" in page.inner_text("[data-testid=wall-red]")
    page.wait_for_timeout(300)
    page.screenshot(path=str(DOCS_SHOTS / "wall_1920.png"))
    assert page.evaluate("document.documentElement.scrollHeight") <= 1080, "the wall needs scrolling"
    page.click("[data-testid=wall-exit]")
    page.wait_for_selector("[data-testid=board]")
    assert page.is_visible("header.top")


def test_wall_screen_on_a_phone(server, fresh_api, chromium):
    page = chromium(SIZES["phone"])
    _login(page, server.url, "town-t1")
    page.goto(server.url + "/#/wall")
    page.wait_for_selector("[data-testid=wall]")
    assert page.inner_text("[data-testid=wall-total]") == "2"  # its township only
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
